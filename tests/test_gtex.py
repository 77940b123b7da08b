"""GTEx comparison: v8-format readers, designed overlaps (data/gtex_v8_fixture), KS test, v6 table, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tbeqtl.cli import main
from tbeqtl.enrich.gtex import compare_with_gtex, tissue_key
from tbeqtl.errors import InputError
from tbeqtl.io.gtex import (
    read_gtex_egenes,
    read_gtex_lookup,
    read_gtex_pairs,
    read_gtex_trans,
    read_gtex_v6_zscores,
)

FIXTURE = Path(__file__).parent / "data" / "gtex_v8_fixture"


@pytest.fixture
def gtex_df():
    return pd.concat(
        [
            read_gtex_pairs(FIXTURE / "Whole_Blood.v8.signif_variant_gene_pairs.txt.gz"),
            read_gtex_pairs(FIXTURE / "Thyroid.v8.signif_variant_gene_pairs.parquet"),
            read_gtex_trans(FIXTURE / "trans_eqtls.txt"),
        ],
        ignore_index=True,
    )


@pytest.fixture
def calls_df():
    return pd.read_csv(FIXTURE / "our_calls.tsv", sep="\t")


def test_readers_parse_v8_layouts():
    pairs = read_gtex_pairs(FIXTURE / "Whole_Blood.v8.signif_variant_gene_pairs.txt.gz")
    raw = pd.read_csv(FIXTURE / "Whole_Blood.v8.signif_variant_gene_pairs.txt.gz", sep="\t")
    assert (pairs["tissue"] == "Whole_Blood").all() and (pairs["kind"] == "cis").all()
    assert pairs["gene_id"].iloc[0] == raw["gene_id"].iloc[0].split(".")[0]  # version stripped
    np.testing.assert_array_equal(pairs["p_value"], raw["pval_nominal"])
    thyroid = read_gtex_pairs(FIXTURE / "Thyroid.v8.signif_variant_gene_pairs.parquet")
    assert (thyroid["tissue"] == "Thyroid").all() and len(thyroid) == 3
    egenes = read_gtex_egenes(FIXTURE / "Whole_Blood.v8.egenes.txt.gz")
    assert len(egenes) == 6  # the gene with qval 0.6 is not an eGene
    trans = read_gtex_trans(FIXTURE / "trans_eqtls.txt")
    assert trans["kind"].eq("trans").all() and sorted(trans["tissue"].unique()) == ["Thyroid", "Whole_Blood"]
    lookup = read_gtex_lookup(FIXTURE / "lookup_table.txt.gz")
    assert lookup["rs_id"].isna().sum() == 1  # '.' means no rsID


def test_designed_overlaps(gtex_df, calls_df):
    lookup = read_gtex_lookup(FIXTURE / "lookup_table.txt.gz")
    res = compare_with_gtex(calls_df, gtex_df, lookup_df=lookup, tissue="Whole Blood")
    s = res.summary_df.set_index(["kind", "level"])
    cols = ["n_ours", "n_gtex", "n_shared", "n_novel", "n_unmapped"]
    # expected counts derived by hand in tests/data/gtex_v8_fixture/README.md
    assert s.loc[("cis", "pair"), cols].tolist() == [6, 8, 3, 2, 1]
    assert s.loc[("cis", "egene"), cols].tolist() == [5, 6, 5, 0, 0]
    assert s.loc[("cis", "evariant"), cols].tolist() == [6, 8, 4, 1, 1]
    assert s.loc[("trans", "pair"), cols].tolist() == [2, 2, 2, 0, 0]
    assert s.loc[("cis", "pair"), "fraction_shared"] == pytest.approx(3 / 5)
    pairs = res.pairs_df.set_index(["kind", "snp"])
    assert pairs.loc[("cis", "rs111"), "variant_id"] == ""  # unmapped, not novel
    assert not pairs.loc[("cis", "rs111"), "novel"]
    assert sorted(pairs.index[pairs["novel"]]) == [("cis", "rs103"), ("cis", "rs105")]
    assert not pairs.loc[("cis", "rs103"), "in_gtex_pair"] and pairs.loc[("cis", "rs103"), "in_gtex_egene"]
    raw = pd.read_csv(FIXTURE / "Whole_Blood.v8.signif_variant_gene_pairs.txt.gz", sep="\t")
    assert pairs.loc[("cis", "rs100"), "gtex_p_value"] == raw["pval_nominal"].iloc[0]


def test_ks_matches_scipy(gtex_df, calls_df):
    """The statistic against D = max |F_ours - F_gtex| computed here; the p-value is compared with the
    same ``scipy.stats.ks_2samp`` call the code makes, so that part checks plumbing only (which
    p-values go in, per tissue and kind)."""
    lookup = read_gtex_lookup(FIXTURE / "lookup_table.txt.gz")
    res = compare_with_gtex(calls_df, gtex_df, lookup_df=lookup, tissue="Whole_Blood")
    cis = res.ks_df.set_index("kind").loc["cis"]
    ours = calls_df.loc[calls_df["kind"] == "cis", "p_value"].to_numpy(dtype=float)
    ref = gtex_df.loc[(gtex_df["tissue"] == "Whole_Blood") & (gtex_df["kind"] == "cis"),
                      "p_value"].to_numpy(dtype=float)
    assert cis["statistic"] == pytest.approx(_ks_d(ours, ref), rel=1e-12)
    assert cis["p_value"] == pytest.approx(stats.ks_2samp(ours, ref).pvalue)
    assert (cis["n_ours"], cis["n_gtex"]) == (6, 8)


def _ks_d(first, second):
    """Two-sample KS statistic by its definition: the largest gap between the two empirical CDFs."""
    first, second = np.sort(first), np.sort(second)
    pooled = np.concatenate([first, second])
    return float(np.max(np.abs(np.searchsorted(first, pooled, side="right") / len(first)
                               - np.searchsorted(second, pooled, side="right") / len(second))))


def test_ks_detects_shifted_p_values_and_not_equal_ones(rng):
    n = 400
    gtex = pd.DataFrame(
        {
            "tissue": "T",
            "kind": "cis",
            "variant_id": [f"chr1_{i + 1}_A_G_b38" for i in range(n)],
            "gene_id": [f"ENSG{i:011d}" for i in range(n)],
            "p_value": 10 ** -rng.uniform(3, 12, n),
        }
    )
    same = pd.DataFrame(
        {
            "snp": gtex["variant_id"],
            "gene": gtex["gene_id"],
            "kind": "cis",
            "p_value": 10 ** -rng.uniform(3, 12, n),
        }
    )
    moderate = same.assign(p_value=10 ** -rng.uniform(2, 6, n))
    for calls, p_ok in ((same, lambda p: p > 0.01), (moderate, lambda p: p < 1e-10)):
        ks = compare_with_gtex(calls, gtex, tissue="T").ks_df.iloc[0]
        assert p_ok(ks["p_value"]), ks["p_value"]
        d = _ks_d(calls["p_value"].to_numpy(), gtex["p_value"].to_numpy())
        assert 0 < d < 1 and ks["statistic"] == pytest.approx(d, rel=1e-12)
    # pair-level overlap of IDs already in GTEx form needs no lookup table
    assert compare_with_gtex(same, gtex, tissue="T").summary_df["n_shared"].iloc[0] == n


def test_pooled_tissues_and_explicit_variant_map(gtex_df, calls_df):
    res = compare_with_gtex(calls_df, gtex_df, snp_to_variant={"rs100": "chr1_1000000_A_G_b38"}, tissue="all")
    s = res.summary_df.set_index(["kind", "level"])
    assert s.loc[("cis", "pair"), "n_shared"] == 1  # only rs100 is mapped
    assert s.loc[("cis", "pair"), "n_gtex"] == 8 + 3  # both tissues pooled
    assert s.loc[("cis", "pair"), "n_unmapped"] == 5


def test_errors(gtex_df, calls_df, tmp_path):
    lookup = read_gtex_lookup(FIXTURE / "lookup_table.txt.gz")
    with pytest.raises(InputError, match="no SNP of the calls maps"):
        compare_with_gtex(calls_df, gtex_df, tissue="Whole_Blood")
    with pytest.raises(InputError, match="'Liver' is not in the GTEx list"):
        compare_with_gtex(calls_df, gtex_df, lookup_df=lookup, tissue="Liver", missing_tissue="error")
    with pytest.raises(InputError, match="no tissue of the calls is in the GTEx list.*Liver"):
        compare_with_gtex(calls_df, gtex_df, lookup_df=lookup, tissue="Liver")
    two = pd.concat([calls_df.assign(tissue="Liver"), calls_df.assign(tissue="Whole Blood")])
    res = compare_with_gtex(two, gtex_df, lookup_df=lookup)
    assert set(res.summary_df["tissue"]) == {"Whole Blood"}  # Liver skipped (logged)
    with pytest.raises(InputError, match="tissue"):
        compare_with_gtex(calls_df, gtex_df, lookup_df=lookup)
    with pytest.raises(InputError, match="call kinds"):
        compare_with_gtex(calls_df.assign(kind="both"), gtex_df, lookup_df=lookup, tissue="Thyroid")
    with pytest.raises(InputError, match="no eQTL calls"):
        compare_with_gtex(calls_df.iloc[:0], gtex_df, lookup_df=lookup, tissue="Thyroid")
    bad = pd.read_csv(FIXTURE / "Whole_Blood.v8.signif_variant_gene_pairs.txt.gz", sep="\t")
    bad.loc[0, "variant_id"] = "1:12345"
    bad.to_csv(tmp_path / "X.v8.signif_variant_gene_pairs.txt.gz", sep="\t", index=False)
    with pytest.raises(InputError, match="chr_pos_ref_alt_b38.*1:12345"):
        read_gtex_pairs(tmp_path / "X.v8.signif_variant_gene_pairs.txt.gz")
    bad.drop(columns="pval_nominal").to_csv(tmp_path / "Y.txt", sep="\t", index=False)
    with pytest.raises(InputError, match="lacks columns"):
        read_gtex_pairs(tmp_path / "Y.txt")


def test_tissue_key():
    assert tissue_key("Whole Blood") == tissue_key("Whole_Blood") == "whole_blood"
    assert tissue_key("Skin - Sun Exposed (Lower leg)") == "skin_sun_exposed_lower_leg"


def test_real_v6_table(shared_data):
    v6 = read_gtex_v6_zscores(
        shared_data / "gtex_eqtl_and_snp_annotations" / "gtex_v6_top_eqtl_zscores_1000x44.tsv.gz"
    )
    assert v6["tissue"].nunique() == 44
    assert v6["variant_id"].str.endswith("_b37").all() and not v6["gene_id"].str.contains(r"\.").any()
    np.testing.assert_allclose(v6["p_value"], 2 * stats.norm.sf(v6["z"].abs()))
    strong = read_gtex_v6_zscores(
        shared_data / "gtex_eqtl_and_snp_annotations" / "gtex_v6_top_eqtl_zscores_1000x44.tsv.gz",
        z_threshold=5,
    )
    assert (strong["z"].abs() >= 5).all() and len(strong) < len(v6)
    # our "calls": the whole-blood rows at |z| >= 5 are all found, with identical p-values (KS p = 1)
    blood = strong[strong["tissue"] == "Whole_Blood"]
    calls = pd.DataFrame(
        {"snp": blood["variant_id"], "gene": blood["gene_id"], "p_value": blood["p_value"], "kind": "cis"}
    )
    res = compare_with_gtex(calls, strong, tissue="Whole_Blood")
    pair = res.summary_df.set_index("level").loc["pair"]
    assert pair["n_shared"] == pair["n_ours"] == len(blood)
    assert res.ks_df["p_value"].iloc[0] == pytest.approx(1.0)


def test_cli_compare_gtex(tmp_path):
    out = tmp_path / "gtex"
    rc = main(
        [
            "compare-gtex",
            "--calls",
            str(FIXTURE / "our_calls.tsv"),
            "--tissue",
            "Whole_Blood",
            "--gtex-pairs",
            str(FIXTURE / "Whole_Blood.v8.signif_variant_gene_pairs.txt.gz"),
            "--gtex-egenes",
            str(FIXTURE / "Whole_Blood.v8.egenes.txt.gz"),
            "--gtex-trans",
            str(FIXTURE / "trans_eqtls.txt"),
            "--lookup",
            str(FIXTURE / "lookup_table.txt.gz"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    summary = pd.read_csv(out / "comparison.tsv", sep="\t").set_index(["kind", "level"])
    assert summary.loc[("cis", "pair"), "n_shared"] == 3
    assert (out / "pairs.tsv").is_file() and (out / "ks.tsv").is_file()
    ks = json.loads((out / "ks.json").read_text())
    assert ks["results"]["Whole_Blood/cis"]["n_ours"] == 6
    rc = main(["compare-gtex", "--calls", str(FIXTURE / "our_calls.tsv"), "--out", str(tmp_path / "x")])
    assert rc == 2  # no GTEx list given
