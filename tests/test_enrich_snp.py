"""SNP-class (LDSC baselineLD-style) enrichment: readers, BED intersection, Fisher/BH references, errors."""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact
from statsmodels.stats.multitest import multipletests

from tbeqtl.cli import main
from tbeqtl.enrich import annotations_from_bed, read_snp_annotations, snp_annotation_enrichment
from tbeqtl.errors import InputError, MissingDependencyError


@pytest.fixture
def tbeqtl_log(caplog):
    """caplog that also sees records after the CLI made the ``tbeqtl`` logger non-propagating."""
    logger = logging.getLogger("tbeqtl")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


ANNOT_TEXT = (
    "CHR\tBP\tSNP\tCM\tbase\tCoding_UCSC\tTFBS_ENCODE\tGERP.NS\tMAFbin1\n"
    "1\t100\trs1\t0\t1\t1\t0\t2.5\t1\n"
    "1\t200\trs2\t0\t1\t0\t1\t-1.0\t0\n"
    "1\t300\trs3\t0\t1\t1\t1\t0.0\t0\n"
    "2\t150\trs4\t0\t1\t0\t0\t3.1\t1\n"
)


def test_read_ldsc_annot_keeps_binary_classes_only(tmp_path):
    path = tmp_path / "baselineLD.1.annot.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(ANNOT_TEXT)
    df = read_snp_annotations(path)
    assert list(df.columns) == ["chrom", "pos", "Coding_UCSC", "TFBS_ENCODE"]  # no base, MAF bin, GERP
    assert df.loc["rs3", "chrom"] == "chr1" and df.loc["rs4", "pos"] == 150
    assert df["Coding_UCSC"].tolist() == [True, False, True, False]


def test_read_parquet_and_tsv_and_several_files(tmp_path):
    df = pd.read_csv(pd.io.common.StringIO(ANNOT_TEXT), sep="\t")
    df.iloc[:2].to_parquet(tmp_path / "a.parquet", index=False)
    df.iloc[2:].to_csv(tmp_path / "b.tsv", sep="\t", index=False)
    out = read_snp_annotations([tmp_path / "a.parquet", tmp_path / "b.tsv"])
    assert list(out.index) == ["rs1", "rs2", "rs3", "rs4"]
    df.drop(columns="TFBS_ENCODE").to_csv(tmp_path / "c.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="different annotation columns"):
        read_snp_annotations([tmp_path / "a.parquet", tmp_path / "c.tsv"])


def test_multiallelic_rows_merge_but_conflicts_raise(tmp_path):
    text = ANNOT_TEXT + "1\t100\trs1\t0\t1\t1\t0\t2.5\t1\n"
    (tmp_path / "dup.tsv").write_text(text)
    assert len(read_snp_annotations(tmp_path / "dup.tsv")) == 4
    (tmp_path / "bad.tsv").write_text(ANNOT_TEXT + "1\t100\trs1\t0\t1\t0\t0\t2.5\t1\n")
    with pytest.raises(InputError, match="repeated.*rs1"):
        read_snp_annotations(tmp_path / "bad.tsv")


def test_thin_annot_without_snp_ids_is_rejected(tmp_path):
    (tmp_path / "thin.annot").write_text("Coding_UCSC\tTFBS\n1\t0\n0\t1\n")
    with pytest.raises(InputError, match="no SNP ID column"):
        read_snp_annotations(tmp_path / "thin.annot")


def _random_annotations(rng, n_snps=2000, n_classes=12):
    ids = [f"rs{i}" for i in range(n_snps)]
    freq = rng.uniform(0.02, 0.4, size=n_classes)
    values = rng.uniform(size=(n_snps, n_classes)) < freq
    df = pd.DataFrame(values, index=ids, columns=[f"class{j}" for j in range(n_classes)])
    df.insert(0, "pos", np.arange(n_snps) * 100 + 1)
    df.insert(0, "chrom", "chr1")
    return df


def test_fisher_per_class_and_bh_match_scipy_and_statsmodels(rng):
    annot = _random_annotations(rng)
    background = list(annot.index[:1500])
    snps = list(rng.choice(background, size=120, replace=False))
    res = snp_annotation_enrichment({"blood": snps}, background, annot)
    assert len(res) == 12 and set(res["set"]) == {"blood"}
    for row in res.itertuples():
        in_class = annot.loc[background, row.annotation]
        a = int(in_class.loc[snps].sum())
        k = int(in_class.sum())
        ref = fisher_exact([[a, 120 - a], [k - a, 1500 - 120 - k + a]], alternative="greater")
        assert (row.overlap, row.class_size, row.n_set, row.n_background) == (a, k, 120, 1500)
        assert row.p_value == pytest.approx(ref.pvalue, rel=1e-9)
        assert row.odds_ratio == pytest.approx(ref.statistic)
    np.testing.assert_allclose(res["fdr"], multipletests(res["p_value"], method="fdr_bh")[1], rtol=1e-12)


def _simulate(rng, n_rep):
    found, fdp, any_null = 0, [], 0
    for _ in range(n_rep):
        annot = _random_annotations(rng)
        bg = list(annot.index)
        planted = list(rng.choice(annot.index[annot["class3"]], size=30, replace=False))
        snps = sorted(set(planted) | set(rng.choice(bg, size=100, replace=False)))
        sig = snp_annotation_enrichment(snps, bg, annot).query("fdr < 0.1")
        found += int("class3" in set(sig["annotation"]))
        # the other classes are drawn independently of class3, so their discoveries are false
        fdp.append(float((sig["annotation"] != "class3").sum()) / max(len(sig), 1))
        null = snp_annotation_enrichment(list(rng.choice(bg, size=130, replace=False)), bg, annot)
        any_null += int((null["fdr"] < 0.1).any())
    return found, np.asarray(fdp), any_null


def test_planted_class_found_and_null_fdr_held(rng):
    n_rep = 40
    found, fdp, any_null = _simulate(rng, n_rep)
    assert found >= 0.9 * n_rep
    # FDR = E[false discovery proportion] <= 0.1, up to Monte Carlo error (the slow test uses 500 repeats)
    assert fdp.mean() <= 0.1 + 2 * fdp.std() / np.sqrt(n_rep)
    assert any_null <= 0.1 * n_rep + 2 * np.sqrt(n_rep * 0.09)


@pytest.mark.slow
def test_planted_class_fdr_many_repeats():
    n_rep = 500
    found, fdp, any_null = _simulate(np.random.default_rng(5), n_rep)
    assert found >= 0.95 * n_rep
    assert fdp.mean() <= 0.1
    assert any_null <= 0.1 * n_rep


def test_unknown_snps_are_reported_and_dropped_or_raise(rng, tbeqtl_log):
    annot = _random_annotations(rng, n_snps=300)
    bg = list(annot.index) + ["rsX1", "rsX2", "rsX3"]
    with tbeqtl_log.at_level("WARNING", logger="tbeqtl.enrich.snp_annotation"):
        res = snp_annotation_enrichment(["rs1", "rs2", "rsX1"], bg, annot)
    assert "3 of 303 background SNPs are not in the annotation table" in tbeqtl_log.text
    assert res.attrs["ids"]["n_unknown"] == 3
    assert res.attrs["ids"]["n_unknown_in_set"] == 1
    assert (res["n_background"] == 300).all() and (res["n_set"] == 2).all()
    with pytest.raises(InputError, match="not in the annotation table.*rsX1, rsX2, rsX3"):
        snp_annotation_enrichment(["rs1"], bg, annot, on_unknown="error")


def test_bad_sets():
    annot = _random_annotations(np.random.default_rng(1), n_snps=50)
    with pytest.raises(InputError, match="is empty"):
        snp_annotation_enrichment([], list(annot.index), annot)
    with pytest.raises(InputError, match="not in the background.*rs999"):
        snp_annotation_enrichment(["rs1", "rs999"], list(annot.index[:10]), annot)
    with pytest.raises(InputError, match="not in the annotation table"):
        snp_annotation_enrichment(["rs1"], list(annot.index), annot, classes=["nope"])


# --------------------------------------------------------------------------- BED intervals
POS = pd.DataFrame(
    {"chrom": ["1", "1", "1", "2", "X"], "pos": [100, 101, 500, 1000, 5]},
    index=pd.Index(["s1", "s2", "s3", "s4", "s5"], name="snp"),
)


def test_bed_intersection_matches_interval_arithmetic(tmp_path, rng):
    # BED is 0-based half-open: [99, 100) holds the base at 1-based position 100 only
    (tmp_path / "enh.bed").write_text("chr1\t99\t100\tpeak1\nchr2\t900\t1000\tpeak2\nchrX\t10\t20\n")
    bed_df = pd.DataFrame({"chrom": ["1"], "start": [450], "end": [501]})
    out = annotations_from_bed(POS, {"enhancer": tmp_path / "enh.bed", "dhs": bed_df}, genome="hg19")
    assert out["enhancer"].tolist() == [True, False, False, True, False]
    assert out["dhs"].tolist() == [False, False, True, False, False]
    # random intervals against a direct computation
    n = 400
    pos = pd.DataFrame(
        {"chrom": "chr3", "pos": rng.integers(1, 100_000, size=n)}, index=[f"r{i}" for i in range(n)]
    )
    starts = rng.integers(0, 99_000, size=30)
    intervals = pd.DataFrame(
        {"chrom": "chr3", "start": starts, "end": starts + rng.integers(1, 3000, size=30)}
    )
    got = annotations_from_bed(pos, {"x": intervals})["x"].to_numpy()
    zero_based = pos["pos"].to_numpy()[:, None] - 1
    expected = (
        (zero_based >= intervals["start"].to_numpy()) & (zero_based < intervals["end"].to_numpy())
    ).any(1)
    np.testing.assert_array_equal(got, expected)


def test_bed_bad_rows_and_mismatched_build(tmp_path):
    (tmp_path / "bad.bed").write_text("chr1\t50\t10\n")
    with pytest.raises(InputError, match="start <= end"):
        annotations_from_bed(POS, {"bad": tmp_path / "bad.bed"})
    hg38_pos = pd.DataFrame({"chrom": ["chr17", "chr17"], "pos": [1000, 83_000_000]}, index=["ok", "beyond"])
    with pytest.raises(InputError, match=r"genome build hg19.*fit hg38.*beyond \(chr17:83000000\)"):
        annotations_from_bed(
            hg38_pos, {"dhs": pd.DataFrame({"chrom": ["chr17"], "start": [0], "end": [10]})}, genome="hg19"
        )


def test_missing_bedtools_binary(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError, match="apt-get install bedtools"):
        annotations_from_bed(POS, {"x": pd.DataFrame({"chrom": ["1"], "start": [0], "end": [10]})})


# --------------------------------------------------------------------------- real annotations
@pytest.fixture(scope="module")
def polyfun():
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "gtex_eqtl_and_snp_annotations" / "polyfun_example_annotations_hg19.tsv.gz"
    if not path.is_file():
        pytest.skip("shared annotation table is not present")
    return read_snp_annotations(path)


def test_real_annotations_planted_and_null(polyfun):
    rng = np.random.default_rng(3)
    assert len(polyfun) == 182_450 and "base" not in polyfun.columns
    bg = polyfun.index
    coding = polyfun.index[polyfun["Coding_UCSC_common"]]
    snps = list(rng.choice(coding, size=40, replace=False)) + list(rng.choice(bg, size=400, replace=False))
    res = snp_annotation_enrichment(
        {"planted": snps, "null": list(rng.choice(bg, 440, replace=False))}, bg, polyfun
    )
    planted = res[res["set"] == "planted"]
    assert planted.iloc[0]["annotation"] == "Coding_UCSC_common" and planted.iloc[0]["fdr"] < 1e-10
    assert not (res.loc[res["set"] == "null", "fdr"] < 0.1).any()


# --------------------------------------------------------------------------- CLI
def test_cli_snp_annot(tmp_path):
    (tmp_path / "x.annot").write_text(ANNOT_TEXT.replace("\t", " "))
    (tmp_path / "blood.txt").write_text("rs1\nrs3\n")
    (tmp_path / "bg.txt").write_text("rs1\nrs2\nrs3\nrs4\n")
    (tmp_path / "pos.tsv").write_text("SNP\tCHR\tBP\nrs1\t1\t100\nrs2\t1\t200\nrs3\t1\t300\nrs4\t2\t150\n")
    (tmp_path / "enh.bed").write_text("chr1\t250\t350\n")
    out = tmp_path / "out"
    rc = main(
        [
            "enrich",
            "snp-annot",
            "--snps",
            str(tmp_path / "blood.txt"),
            "--background",
            str(tmp_path / "bg.txt"),
            "--annotations",
            str(tmp_path / "x.annot"),
            "--bed",
            f"enh={tmp_path / 'enh.bed'}",
            "--positions",
            str(tmp_path / "pos.tsv"),
            "--genome",
            "hg19",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    df = pd.read_csv(out / "enrichment.tsv", sep="\t")
    assert set(df["annotation"]) == {"Coding_UCSC", "TFBS_ENCODE", "enh"}
    assert df.set_index("annotation").loc["Coding_UCSC", "overlap"] == 2
    assert df.set_index("annotation").loc["enh", "overlap"] == 1
    assert (df["set"] == "blood").all()


def test_integer_zero_one_columns_are_classes_and_others_are_rejected():
    annot = pd.DataFrame(
        {"chrom": "chr1", "pos": [1, 2, 3, 4], "A": [1, 0, 1, 0], "score": [0.5, 1, 2, 0]},
        index=["s1", "s2", "s3", "s4"],
    )
    res = snp_annotation_enrichment(["s1", "s3"], list(annot.index), annot)
    assert res["annotation"].tolist() == ["A"]
    assert res["overlap"].iloc[0] == 2
    with pytest.raises(InputError, match="boolean or 0/1.*score"):
        snp_annotation_enrichment(["s1"], list(annot.index), annot, classes=["A", "score"])
