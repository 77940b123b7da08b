"""``tbeqtl prepare`` end to end on a small GTEx-shaped cohort in the real formats.

The cohort (:func:`test_prepare_select.build_cohort`): a GTEx GCT of three tissues, a
SampleAttributesDS (SAMPID, SMTSD) with a sample absent from the counts, a SubjectPhenotypesDS,
a GENCODE-style GTF (protein_coding, lincRNA, miRNA, pseudogenes, chrX genes), and the same
genotypes as a VCF and a PLINK 2 set holding three donors without RNA, with INFO ``IMP`` flags.
Every count of the manifest is compared with a direct pandas/numpy computation, the LD pruning
with a direct ``r^2``, and the VCF and PLINK 2 runs with each other.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from test_prepare_select import build_cohort, check_pruning

from tbeqtl.cli import main
from tbeqtl.errors import InputError
from tbeqtl.io import write_pgen, write_vcf
from tbeqtl.pipeline.prepared import PreparedData
from tbeqtl.prepare import PrepareOptions, prepare

OPTIONS = PrepareOptions(maf=0.1, max_missing=0.1, n_ancestry=2, genotype_pcs=3, seed=4)
CLI_OPTIONS = [
    "--maf",
    "0.1",
    "--max-missing",
    "0.1",
    "--n-ancestry",
    "2",
    "--genotype-pcs",
    "3",
    "--seed",
    "4",
]


def _args(c: dict, geno_key: str = "vcf") -> dict:
    p = c["paths"]
    return {
        "counts": p["counts"],
        "sample_attributes": p["sample_attributes"],
        "subject_attributes": p["subject_attributes"],
        "genotypes": p[geno_key],
        "genes": p["genes"],
    }


def _cli(c: dict, out, *extra: str, geno_key: str = "vcf") -> int:
    a = _args(c, geno_key)
    return main(
        [
            "prepare",
            "--counts",
            str(a["counts"]),
            "--sample-attributes",
            str(a["sample_attributes"]),
            "--subject-attributes",
            str(a["subject_attributes"]),
            "--genotypes",
            str(a["genotypes"]),
            "--genes",
            str(a["genes"]),
            "--out",
            str(out),
            *CLI_OPTIONS,
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("prepare")
    c = build_cohort(folder / "cohort")
    assert _cli(c, folder / "from_vcf") == 0
    prepare(**_args(c, "pgen"), out=folder / "from_pgen", options=OPTIONS)
    return {"cohort": c, "vcf": folder / "from_vcf", "pgen": folder / "from_pgen", "folder": folder}


def _direct(c: dict) -> dict:
    """The selection computed directly with pandas/numpy from the frames the cohort was written from."""
    counts, attrs, geno, snp_info = c["counts"], c["attrs"], c["geno"], c["snp_info"]
    donor = {s: "-".join(s.split("-")[:2]) for s in counts.columns}
    with_attrs = [s for s in counts.columns if s in attrs.index]
    kept = sorted(s for s in with_attrs if donor[s] in geno.columns)
    individuals = sorted({donor[s] for s in kept})
    info = c["gene_info"]
    typed = info.index[
        info["gene_type"].isin(["protein_coding", "lincRNA"]) & info["chrom"].isin(["chr1", "chr2"])
    ]
    typed = typed.intersection(counts.index)
    medians = counts.loc[typed, kept].T.groupby(attrs.loc[kept, "tissue"]).median().T
    genes = medians.index[(medians >= 5).any(axis=1)]
    g = geno[individuals]
    auto = snp_info.index[snp_info["chrom"].isin(["chr1", "chr2"])]
    not_imp = auto[~auto.isin(list(c["imputed"]))]
    miss_ok = not_imp[(g.loc[not_imp].isna().mean(axis=1) <= 0.1).to_numpy()]
    p = g.loc[miss_ok].mean(axis=1) / 2
    maf_ok = miss_ok[(np.minimum(p, 1 - p) >= 0.1).to_numpy()]
    return {
        "kept": kept,
        "individuals": individuals,
        "genes": genes,
        "maf_ok": maf_ok,
        "counts": {
            "samples_input": counts.shape[1],
            "samples_with_attributes": len(with_attrs),
            "n_samples": len(kept),
            "n_individuals": len(individuals),
            "n_tissues": 3,
            "individuals_genotyped_input": geno.shape[1],
            "genes_input": len(counts),
            "genes_type_autosome": len(typed),
            "genes_expressed": len(genes),
            "n_genes": len(genes),
            "snps_input": len(snp_info),
            "snps_autosomal": len(auto),
            "snps_not_imputed": len(not_imp),
            "snps_missing_ok": len(miss_ok),
            "snps_maf_ok": len(maf_ok),
        },
    }


def test_counts_match_direct_computation(runs):
    c = runs["cohort"]
    direct = _direct(c)
    prepared = PreparedData.open(runs["vcf"], verify=True)
    counts = prepared.manifest["counts"]
    for key, value in direct["counts"].items():
        assert counts[key] == value, key
    assert counts["snps_ld_pruned"] == counts["n_snps"] == len(prepared.snp_info_df)
    assert list(prepared.sample_info_df.index) == direct["kept"]
    assert list(prepared.individual_info_df.index) == direct["individuals"]
    assert set(prepared.gene_info_df.index) == set(direct["genes"])
    assert prepared.gene_chromosomes == ["chr1", "chr2"] == prepared.snp_chromosomes
    assert prepared.sample_info_df["tissue"].to_dict() == {s: c["tissue_of"][s] for s in direct["kept"]}
    library = c["counts"].loc[direct["genes"], direct["kept"]].sum(axis=0)
    pd.testing.assert_series_equal(
        prepared.library_size_s.astype(np.int64),
        library.astype(np.int64),
        check_names=False,
        check_index_type=False,
    )
    for chrom in prepared.gene_chromosomes:
        part = prepared.load_counts(chrom)
        np.testing.assert_array_equal(part.to_numpy(), c["counts"].loc[part.index, part.columns].to_numpy())
    geno = c["geno"][direct["individuals"]]
    for chrom in prepared.snp_chromosomes:
        part = prepared.load_genotypes(chrom)
        np.testing.assert_array_equal(part.to_numpy(), geno.loc[part.index].to_numpy())
        candidates = direct["maf_ok"][c["snp_info"].loc[direct["maf_ok"], "chrom"].to_numpy() == chrom]
        assert set(part.index) <= set(candidates)
        check_pruning(geno.loc[candidates], c["snp_info"]["pos"], part.index)
    assert list(prepared.genotype_pcs_df.columns) == ["genoPC1", "genoPC2", "genoPC3"]
    beta, tau = prepared.ancestry
    assert beta.shape == (counts["n_snps"], 2) and tau.shape == (counts["n_individuals"], 2)
    np.testing.assert_allclose(tau.sum(axis=1), 1.0, atol=1e-9)
    manifest = prepared.manifest
    assert manifest["params"]["ld_r2"] == 0.2 and manifest["params"]["ld_window_kb"] == 200
    assert manifest["params"]["ld_tool"].startswith("PLINK v1.9")
    assert any(k.endswith("GTEx_WGS.vcf") for k in manifest["inputs"])
    assert (runs["vcf"] / "tbeqtl.log").is_file()
    assert not [p for p in runs["folder"].iterdir() if p.name.startswith(".")]  # temporary folders removed


def test_vcf_and_pgen_give_identical_folders(runs):
    a, b = PreparedData.open(runs["vcf"]), PreparedData.open(runs["pgen"])
    for attr in (
        "sample_info_df",
        "individual_info_df",
        "gene_info_df",
        "snp_info_df",
        "library_size_s",
        "genotype_pcs_df",
    ):
        left, right = getattr(a, attr), getattr(b, attr)
        (pd.testing.assert_series_equal if isinstance(left, pd.Series) else pd.testing.assert_frame_equal)(
            left, right
        )
    for chrom in a.snp_chromosomes:
        pd.testing.assert_frame_equal(a.load_genotypes(chrom), b.load_genotypes(chrom))
    for chrom in a.gene_chromosomes:
        pd.testing.assert_frame_equal(a.load_counts(chrom), b.load_counts(chrom))
    for left, right in zip(a.ancestry, b.ancestry, strict=True):
        pd.testing.assert_frame_equal(left, right)
    drop = ("inputs", "files", "tbeqtl_version")
    ma = {k: v for k, v in a.manifest.items() if k not in drop}
    mb = {k: v for k, v in b.manifest.items() if k not in drop}
    assert ma == mb


def test_rerun_same_inputs_does_nothing(runs):
    before = (runs["pgen"] / "manifest.json").stat().st_mtime_ns
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    core_logger = logging.getLogger("tbeqtl.prepare.core")
    core_logger.addHandler(handler)
    try:
        prepare(**_args(runs["cohort"], "pgen"), out=runs["pgen"], options=OPTIONS)
    finally:
        core_logger.removeHandler(handler)
    assert any("nothing to do" in r.getMessage() for r in records)
    assert (runs["pgen"] / "manifest.json").stat().st_mtime_ns == before


def test_rerun_other_options_refused_then_forced(runs, tmp_path):
    out = tmp_path / "prep"
    prepare(**_args(runs["cohort"], "pgen"), out=out, options=OPTIONS)
    other = PrepareOptions(maf=0.2, max_missing=0.1, n_ancestry=2, genotype_pcs=3, seed=4)
    with pytest.raises(InputError, match="other inputs or options.*--force"):
        prepare(**_args(runs["cohort"], "pgen"), out=out, options=other)
    assert json.loads((out / "manifest.json").read_text())["params"]["maf"] == 0.1
    prepare(**_args(runs["cohort"], "pgen"), out=out, options=other, force=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"]["maf"] == 0.2
    assert (
        manifest["counts"]["snps_maf_ok"] < PreparedData.open(runs["pgen"]).manifest["counts"]["snps_maf_ok"]
    )


def test_given_ancestry_is_checked_and_copied(runs, tmp_path):
    beta, tau = PreparedData.open(runs["pgen"]).ancestry
    beta_path, tau_path = tmp_path / "beta.tsv", tmp_path / "tau.tsv"
    (beta.iloc[::-1] * 0.5 + 0.25).to_csv(beta_path, sep="\t")  # another order, other values
    tau.to_csv(tau_path, sep="\t")
    out = prepare(
        **_args(runs["cohort"], "pgen"),
        out=tmp_path / "prep",
        options=OPTIONS,
        ancestry_beta=beta_path,
        ancestry_tau=tau_path,
    )
    got_beta, got_tau = PreparedData.open(out).ancestry
    np.testing.assert_allclose(got_beta.to_numpy(), (beta * 0.5 + 0.25).to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(got_tau.to_numpy(), tau.to_numpy(), rtol=1e-12)


def test_failure_after_writing_leaves_nothing(runs, tmp_path):
    beta, tau = PreparedData.open(runs["pgen"]).ancestry
    beta_path, tau_path = tmp_path / "beta.tsv", tmp_path / "tau.tsv"
    beta.iloc[1:].to_csv(beta_path, sep="\t")  # one prepared SNP missing: fails after the partitions
    tau.to_csv(tau_path, sep="\t")
    out = tmp_path / "prep"
    with pytest.raises(InputError, match=beta.index[0]):
        prepare(
            **_args(runs["cohort"], "pgen"),
            out=out,
            options=OPTIONS,
            ancestry_beta=beta_path,
            ancestry_tau=tau_path,
        )
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beta.tsv", "tau.tsv"]


def test_cell_types_and_covariates_merged(runs, tmp_path):
    kept = PreparedData.open(runs["pgen"]).sample_info_df.index
    rng = np.random.default_rng(0)
    cells = pd.DataFrame(rng.random((2, len(kept))), index=["Neutrophils", "Fibroblasts"], columns=kept)
    cells.to_csv(tmp_path / "xcell.tsv", sep="\t")  # xCell: cell types x samples
    pd.DataFrame({"PCR": rng.integers(0, 2, len(kept))}, index=kept).to_csv(tmp_path / "cov.tsv", sep="\t")
    out = prepare(
        **_args(runs["cohort"], "pgen"),
        out=tmp_path / "prep",
        options=OPTIONS,
        cell_types=tmp_path / "xcell.tsv",
        covariates=tmp_path / "cov.tsv",
    )
    info = PreparedData.open(out).sample_info_df
    np.testing.assert_allclose(info["celltype_Neutrophils"].to_numpy(), cells.loc["Neutrophils"].to_numpy())
    assert "PCR" in info.columns and list(info.columns[:2]) == ["individual", "tissue"]


def test_bad_inputs_name_what_is_wrong(runs, tmp_path, capsys):
    c = runs["cohort"]
    extra = [
        d
        for d in c["geno"].columns
        if d not in {s.split("-")[0] + "-" + s.split("-")[1] for s in c["counts"]}
    ]
    only_extra = tmp_path / "only_extra.vcf"
    write_vcf(c["geno"][extra], only_extra, snp_info_df=c["snp_info"])  # a VCF without the samples' donors
    renamed = tmp_path / "renamed"
    write_pgen(c["geno"].rename(columns=lambda d: d.replace("GTEX", "NA")), c["snp_info"], renamed)
    cases = [
        ({"geno": only_extra}, "no individual in common"),
        ({"geno": renamed}, "no individual in common"),
        ({"extra": ["--tissue-column", "SMTISSUE"]}, "no tissue column 'SMTISSUE'"),
    ]
    for case, message in cases:
        out = tmp_path / "out"
        a = _args(c)
        if "geno" in case:
            a["genotypes"] = case["geno"]
        status = main(
            [
                "prepare",
                "--counts",
                str(a["counts"]),
                "--sample-attributes",
                str(a["sample_attributes"]),
                "--subject-attributes",
                str(a["subject_attributes"]),
                "--genotypes",
                str(a["genotypes"]),
                "--genes",
                str(a["genes"]),
                "--out",
                str(out),
                *case.get("extra", []),
            ]
        )
        err = capsys.readouterr().err
        assert status == 2 and message in err, (case, err[-500:])
        assert sorted(p.name for p in out.iterdir()) == ["tbeqtl.log"]  # nothing prepared left behind
    with pytest.raises(InputError, match="both --ancestry-beta and --ancestry-tau"):
        prepare(**_args(c), out=tmp_path / "x", ancestry_beta=tmp_path / "b.tsv")


@pytest.mark.parametrize("fmt", ["tsv", "parquet", "h5ad"])
def test_other_count_formats_give_the_same_folder(runs, tmp_path, fmt):
    import anndata

    from tbeqtl.io import write_counts

    c = runs["cohort"]
    path = tmp_path / f"counts.{fmt}"
    if fmt == "h5ad":
        obs = pd.DataFrame(
            {"individual": ["-".join(s.split("-")[:2]) for s in c["counts"].columns]},
            index=c["counts"].columns,
        )
        anndata.AnnData(
            X=c["counts"].T.to_numpy(dtype=np.float32), obs=obs, var=pd.DataFrame(index=c["counts"].index)
        ).write_h5ad(path)
    else:
        write_counts(c["counts"], path)
    out = prepare(**{**_args(c, "pgen"), "counts": path}, out=tmp_path / "prep", options=OPTIONS)
    a, b = PreparedData.open(out), PreparedData.open(runs["pgen"])
    pd.testing.assert_frame_equal(a.sample_info_df, b.sample_info_df)
    pd.testing.assert_frame_equal(a.gene_info_df, b.gene_info_df)
    for chrom in a.gene_chromosomes:
        pd.testing.assert_frame_equal(a.load_counts(chrom), b.load_counts(chrom))
    assert a.manifest["counts"] == b.manifest["counts"]


def test_plink1_without_imputed_flag(runs, tmp_path):
    """A PLINK 1 set has no INFO field: nothing is flagged; with --keep-imputed it equals the PLINK 2 run."""
    from tbeqtl.io import write_plink

    c = runs["cohort"]
    write_plink(c["geno"], tmp_path / "bed", snp_info_df=c["snp_info"])
    keep = PrepareOptions(**{**OPTIONS.params(), "gene_types": OPTIONS.gene_types, "drop_imputed": False})
    a = PreparedData.open(
        prepare(**{**_args(c), "genotypes": tmp_path / "bed"}, out=tmp_path / "a", options=OPTIONS)
    )
    assert a.manifest["counts"]["imputed_flag_available"] is False
    assert a.manifest["counts"]["snps_not_imputed"] == a.manifest["counts"]["snps_autosomal"]
    b = PreparedData.open(prepare(**_args(c, "pgen"), out=tmp_path / "b", options=keep))
    pd.testing.assert_frame_equal(a.snp_info_df[["chrom", "pos"]], b.snp_info_df[["chrom", "pos"]])
    for chrom in a.snp_chromosomes:
        pd.testing.assert_frame_equal(a.load_genotypes(chrom), b.load_genotypes(chrom))


def test_rerun_after_a_partition_was_deleted_rebuilds_it(runs, tmp_path):
    out = prepare(**_args(runs["cohort"], "pgen"), out=tmp_path / "prep", options=OPTIONS)
    (out / "genotypes" / "chr2.parquet").unlink()
    prepare(**_args(runs["cohort"], "pgen"), out=out, options=OPTIONS)
    a, b = PreparedData.open(out, verify=True), PreparedData.open(runs["pgen"])
    pd.testing.assert_frame_equal(a.load_genotypes("chr2"), b.load_genotypes("chr2"))


def test_gct_read_in_blocks_gives_the_same_folder(runs, tmp_path, monkeypatch):
    import tbeqtl.prepare.inputs as inputs

    monkeypatch.setattr(inputs, "GCT_BLOCK_VALUES", 100)  # blocks of 3 genes
    out = prepare(**_args(runs["cohort"], "pgen"), out=tmp_path / "prep", options=OPTIONS)
    a, b = PreparedData.open(out), PreparedData.open(runs["pgen"])
    pd.testing.assert_frame_equal(a.gene_info_df, b.gene_info_df)
    for chrom in a.gene_chromosomes:
        pd.testing.assert_frame_equal(a.load_counts(chrom), b.load_counts(chrom))
    assert a.manifest["counts"] == b.manifest["counts"]


def test_truncated_gct_is_an_error(runs, tmp_path):
    import gzip

    lines = gzip.open(runs["cohort"]["paths"]["counts"], "rt").read().splitlines()
    bad = tmp_path / "truncated.gct"
    bad.write_text("\n".join(lines[:-2]) + "\n")
    with pytest.raises(InputError, match="truncated"):
        prepare(**{**_args(runs["cohort"], "pgen"), "counts": bad}, out=tmp_path / "prep", options=OPTIONS)
    assert not (tmp_path / "prep").exists()
