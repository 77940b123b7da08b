"""``tbeqtl cis`` and ``tbeqtl trans`` end to end on files, as a tensorQTL user runs them.

A small GEUVADIS-like cohort (tests/cis_cohort.py) is written as PLINK 2 and VCF holding extra
individuals in another order, with an expression BED and a covariate file in MatrixEQTL's
orientation. What is checked here:

- the command writes tensorQTL's file names and columns, and its tables equal the Python API on
  the same cohort (plumbing: the statistics themselves are checked against statsmodels in
  tests/test_cis_*.py and tests/test_trans.py);
- PLINK 2 and VCF input give identical results, and so do GTEx-style sample IDs mapped to donors
  with ``--gtex-ids`` or ``--sample-map``;
- ``run.json`` records each step with its input checksums, against hashlib;
- bad input exits with status 2 and a message naming what is wrong.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from cis_cohort import make_cohort

from tbeqtl.association.cis import map_cis, map_nominal
from tbeqtl.association.post import calculate_qvalues
from tbeqtl.association.trans import map_trans
from tbeqtl.cli import main
from tbeqtl.io import write_expression_bed, write_plink, write_vcf
from tbeqtl.io.pgen import write_pgen

NPERM = 200


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(3, n=120, n_variants=600, n_phenotypes=12, chroms=("chr1", "chr2"), span=1_500_000)


@pytest.fixture(scope="module")
def files(cohort, tmp_path_factory):
    """The cohort on disk: genotypes with extra individuals in reverse order."""
    root = tmp_path_factory.mktemp("cohort")
    geno = cohort.genotype_df.iloc[:, ::-1]
    info = cohort.variant_df.assign(ref="A", alt="G")
    write_pgen(geno, info, root / "geno")
    write_vcf(geno.replace(-9, np.nan).astype(float), root / "geno.vcf.gz", snp_info_df=info)
    write_plink(geno.replace(-9, np.nan).astype(float), root / "plink1", snp_info_df=info)
    pos = cohort.phenotype_pos_df.rename(columns={"chr": "chrom"})
    write_expression_bed(cohort.phenotype_df, pos, root / "expr.bed.gz")
    cohort.covariates_df.T.to_csv(root / "cov.txt", sep="\t")  # covariates x samples, like GEUVADIS
    return root


def _run(*args) -> int:
    return main([*map(str, args), "--log-level", "WARNING"])


def _cis(files, out, mode, *extra, genotypes="geno"):
    return _run(
        "cis",
        "--mode",
        mode,
        "--genotypes",
        files / genotypes,
        "--phenotypes",
        files / "expr.bed.gz",
        "--covariates",
        files / "cov.txt",
        "--out",
        out,
        "--permutations",
        NPERM,
        "--seed",
        7,
        *extra,
    )


@pytest.fixture(scope="module")
def workflow(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    assert _cis(files, out, "nominal") == 0
    assert _cis(files, out, "permutations", "--fdr", "0.1") == 0
    return out


def test_nominal_files_and_columns_match_the_api(cohort, workflow, tmp_path):
    api = map_nominal(
        cohort.genotype_df,
        cohort.variant_df,
        cohort.phenotype_df,
        cohort.phenotype_pos_df,
        "api",
        cohort.covariates_df,
        output_dir=tmp_path,
    )
    for chrom in ("chr1", "chr2"):
        got = pd.read_parquet(workflow / f"tbeqtl.cis_qtl_pairs.{chrom}.parquet")
        assert list(got.columns[:3]) == ["phenotype_id", "variant_id", "start_distance"]
        for col in ("af", "ma_samples", "ma_count", "pval_nominal", "slope", "slope_se"):
            assert col in got.columns
        pd.testing.assert_frame_equal(got, pd.read_parquet(api[chrom]))


def test_permutation_table_matches_the_api_and_has_tensorqtl_columns(cohort, workflow):
    got = pd.read_csv(workflow / "tbeqtl.cis_qtl.txt.gz", sep="\t", index_col=0)
    want = calculate_qvalues(
        map_cis(
            cohort.genotype_df,
            cohort.variant_df,
            cohort.phenotype_df,
            cohort.phenotype_pos_df,
            cohort.covariates_df,
            nperm=NPERM,
            seed=7,
        ),
        fdr=0.1,
    )
    expected = [
        "num_var",
        "beta_shape1",
        "beta_shape2",
        "true_df",
        "pval_true_df",
        "variant_id",
        "start_distance",
        "end_distance",
        "ma_samples",
        "ma_count",
        "af",
        "pval_nominal",
        "slope",
        "slope_se",
        "pval_perm",
        "pval_beta",
        "qval",
        "pval_nominal_threshold",
    ]
    assert list(got.columns) == expected
    assert list(got.index) == list(want.index)
    assert (got["variant_id"] == want["variant_id"]).all()
    # the text file keeps 6 significant digits, as tensorQTL's
    num = [c for c in expected if c != "variant_id"]
    np.testing.assert_allclose(got[num].to_numpy(float), want[num].to_numpy(float), rtol=1e-5, atol=0)
    signif = pd.read_parquet(workflow / "tbeqtl.cis_qtl.signif_pairs.parquet")
    egenes = set(want.index[want["qval"] <= 0.1])
    assert set(signif["phenotype_id"]) <= egenes and len(signif) > 0
    thr = want.loc[signif["phenotype_id"], "pval_nominal_threshold"].to_numpy()
    assert (signif["pval_nominal"].to_numpy() < thr).all()


def test_run_json_records_each_step_with_checksums(files, workflow):
    runs = json.loads((workflow / "run.json").read_text())["runs"]
    assert set(runs) == {"cis_nominal", "cis_permutations"}
    sums = runs["cis_permutations"]["input_sha256"]
    names = ("geno.pgen", "geno.pvar", "geno.psam", "expr.bed.gz", "cov.txt")
    for name in names:
        assert sums[str(files / name)] == hashlib.sha256((files / name).read_bytes()).hexdigest()
    # genotype files first, whichever of the two reading threads finished first
    assert list(sums) == [str(files / name) for name in names]
    assert runs["cis_permutations"]["params"]["permutations"] == NPERM
    assert runs["cis_permutations"]["counts"]["phenotypes"] > 0


@pytest.mark.parametrize("genotypes", ["geno.vcf.gz", "plink1"])
def test_vcf_and_plink1_inputs_give_the_same_tables(files, workflow, tmp_path, genotypes):
    assert _cis(files, tmp_path, "permutations", "--fdr", "0.1", genotypes=genotypes) == 0
    a = pd.read_csv(workflow / "tbeqtl.cis_qtl.txt.gz", sep="\t", index_col=0)
    b = pd.read_csv(tmp_path / "tbeqtl.cis_qtl.txt.gz", sep="\t", index_col=0)
    pd.testing.assert_frame_equal(a, b)


def test_independent_mode_writes_ranked_variants(files, workflow, tmp_path):
    cis_table = workflow / "tbeqtl.cis_qtl.txt.gz"
    assert _cis(files, tmp_path, "independent", "--cis-output", cis_table, "--fdr", "0.1") == 0
    got = pd.read_csv(tmp_path / "tbeqtl.cis_independent_qtl.txt.gz", sep="\t")
    assert {"phenotype_id", "rank", "variant_id", "pval_beta"} <= set(got.columns)
    perm = pd.read_csv(cis_table, sep="\t", index_col=0)
    assert set(got["phenotype_id"]) <= set(perm.index[perm["qval"] <= 0.1])
    first = got[got["rank"] == 1].set_index("phenotype_id")["variant_id"]
    assert len(first) > 0


def test_gtex_sample_ids_map_to_donors(cohort, files, workflow, tmp_path):
    """GTEx-style sample IDs: --gtex-ids and --sample-map give the tables of the donor IDs."""
    pos = cohort.phenotype_pos_df.rename(columns={"chr": "chrom"})
    gtex = {s: f"{s[:2]}-{s[2:]}-0126-SM-5A" for s in cohort.phenotype_df.columns}
    pheno = cohort.phenotype_df.rename(columns=gtex)
    geno = cohort.genotype_df.rename(columns=lambda s: f"{s[:2]}-{s[2:]}")
    info = cohort.variant_df.assign(ref="A", alt="G")
    write_pgen(geno, info, tmp_path / "gtex_geno")
    write_expression_bed(pheno, pos, tmp_path / "expr.bed.gz")
    cohort.covariates_df.rename(index=gtex).to_csv(tmp_path / "cov.txt", sep="\t")  # samples x covariates
    pd.DataFrame({"sample": list(gtex.values()), "individual": [v[:8] for v in gtex.values()]}).to_csv(
        tmp_path / "map.tsv", sep="\t", index=False
    )
    want = pd.read_csv(workflow / "tbeqtl.cis_qtl.txt.gz", sep="\t", index_col=0)
    for extra, out in ((["--gtex-ids"], "a"), (["--sample-map", tmp_path / "map.tsv"], "b")):
        args = [
            "--genotypes",
            tmp_path / "gtex_geno",
            "--phenotypes",
            tmp_path / "expr.bed.gz",
            "--covariates",
            tmp_path / "cov.txt",
            "--permutations",
            NPERM,
            "--seed",
            7,
            "--fdr",
            "0.1",
        ]
        assert _run("cis", "--mode", "permutations", *args, *extra, "--out", tmp_path / out) == 0
        got = pd.read_csv(tmp_path / out / "tbeqtl.cis_qtl.txt.gz", sep="\t", index_col=0)
        pd.testing.assert_frame_equal(got, want)


def test_trans_command_matches_the_api(cohort, files, tmp_path):
    assert (
        _run(
            "trans",
            "--genotypes",
            files / "geno",
            "--phenotypes",
            files / "expr.bed.gz",
            "--covariates",
            files / "cov.txt",
            "--out",
            tmp_path,
            "--pval-threshold",
            1e-3,
            "--maf-threshold",
            0.05,
        )
        == 0
    )
    got = pd.read_parquet(tmp_path / "tbeqtl.trans_qtl_pairs.parquet")
    assert list(got.columns) == ["variant_id", "phenotype_id", "pval", "b", "b_se", "af"]
    want = map_trans(
        cohort.genotype_df,
        cohort.phenotype_df,
        cohort.covariates_df,
        variant_df=cohort.variant_df,
        pval_threshold=1e-3,
        maf_threshold=0.05,
    )
    key = ["variant_id", "phenotype_id"]
    pd.testing.assert_frame_equal(
        got.sort_values(key, ignore_index=True), want.sort_values(key, ignore_index=True), check_like=True
    )
    run = json.loads((tmp_path / "run.json").read_text())["runs"]["trans"]
    assert run["counts"]["n_tests"] == want.attrs["n_tests"]


def test_trans_filter_cis_drops_pairs_near_the_phenotype(cohort, files, tmp_path):
    args = [
        "--genotypes",
        files / "geno",
        "--phenotypes",
        files / "expr.bed.gz",
        "--covariates",
        files / "cov.txt",
        "--pval-threshold",
        1e-3,
    ]
    assert _run("trans", *args, "--out", tmp_path / "all") == 0
    assert _run("trans", *args, "--filter-cis", 1e6, "--out", tmp_path / "far") == 0
    every = pd.read_parquet(tmp_path / "all" / "tbeqtl.trans_qtl_pairs.parquet")
    far = pd.read_parquet(tmp_path / "far" / "tbeqtl.trans_qtl_pairs.parquet")
    pos = cohort.phenotype_pos_df
    v = cohort.variant_df.loc[every["variant_id"]]
    p = pos.loc[every["phenotype_id"]]
    near = (
        (v["chrom"].to_numpy() == p["chr"].to_numpy())
        & (v["pos"].to_numpy() >= p["start"].to_numpy() - 1e6)
        & (v["pos"].to_numpy() <= p["end"].to_numpy() + 1e6)
    )
    assert near.any()
    assert len(far) == int((~near).sum())


def test_phenotype_sample_without_genotypes_is_named(cohort, files, tmp_path, caplog):
    pheno = cohort.phenotype_df.copy()
    pheno["NOBODY1"] = 0.5
    pos = cohort.phenotype_pos_df.rename(columns={"chr": "chrom"})
    write_expression_bed(pheno, pos, tmp_path / "expr.bed.gz")
    cov = cohort.covariates_df.copy()
    cov.loc["NOBODY1"] = 1.0
    cov.to_csv(tmp_path / "cov.txt", sep="\t")
    status = _run(
        "cis",
        "--mode",
        "nominal",
        "--genotypes",
        files / "geno",
        "--phenotypes",
        tmp_path / "expr.bed.gz",
        "--covariates",
        tmp_path / "cov.txt",
        "--out",
        tmp_path / "o",
    )
    assert status == 2
    assert "NOBODY1" in (tmp_path / "o" / "tbeqtl.log").read_text()


@pytest.mark.parametrize(
    "case",
    [
        "no_cis_output",
        "no_egenes",
        "pgen_without_pvar",
        "interaction_in_independent",
        "no_interaction_file",
        "no_phenotype_file",
        "neither_file",
    ],
)
def test_bad_input_exits_2_with_a_message(files, workflow, tmp_path, case):
    extra, genotypes = [], "geno"
    if case == "no_egenes":
        table = pd.read_csv(workflow / "tbeqtl.cis_qtl.txt.gz", sep="\t", index_col=0)
        table["qval"] = 1.0
        table.to_csv(tmp_path / "none.txt.gz", sep="\t")
        extra = ["--cis-output", tmp_path / "none.txt.gz"]
    if case == "pgen_without_pvar":
        for suffix in (".pgen", ".psam"):
            (tmp_path / f"lone{suffix}").write_bytes((files / f"geno{suffix}").read_bytes())
        genotypes = tmp_path / "lone"
    mode = "independent" if case in ("no_cis_output", "no_egenes") else "nominal"
    if case == "interaction_in_independent":
        mode, extra = "independent", ["--interaction", tmp_path / "i.tsv"]
    if case == "no_interaction_file":
        extra = ["--interaction", tmp_path / "absent.tsv"]
    if case in ("no_phenotype_file", "neither_file"):  # read on a second thread (open_cohort)
        genotypes = tmp_path / "absent_geno" if case == "neither_file" else genotypes
        status = _run(
            "cis", "--mode", mode, "--genotypes", files / genotypes, "--phenotypes",
            tmp_path / "absent.bed.gz", "--out", tmp_path / "o",
        )  # fmt: skip
    else:
        status = _cis(files, tmp_path / "o", mode, *extra, genotypes=genotypes)
    assert status == 2
    log = (tmp_path / "o" / "tbeqtl.log").read_text()
    message = {
        "no_cis_output": "--cis-output",
        "no_egenes": "eGene",
        "pgen_without_pvar": ".pvar",
        "no_interaction_file": "absent.tsv: interaction table not found",
        "interaction_in_independent": "--interaction",
        "no_phenotype_file": "absent.bed.gz: phenotype file not found",
        "neither_file": "absent_geno",  # the genotype error is the one reported
    }[case]
    assert message in log
    assert not list((tmp_path / "o").glob("*.parquet"))


def test_open_cohort_closes_the_source_when_the_tables_fail(monkeypatch):
    """cohort_inputs.open_cohort: the second thread's error is raised and the opened source closed."""
    import argparse

    from tbeqtl.cli import cohort_inputs
    from tbeqtl.errors import InputError

    closed = []

    class Source:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            closed.append(True)
            return False

    def bad_tables(args, checksums):
        checksums["expr"] = "x"
        raise InputError("phenotype file not found", path="expr")

    monkeypatch.setattr(cohort_inputs, "open_source", lambda args, checksums: Source())
    monkeypatch.setattr(cohort_inputs, "read_phenotypes", bad_tables)
    checksums: dict = {}
    with pytest.raises(InputError, match="phenotype file not found"):
        with cohort_inputs.open_cohort(argparse.Namespace(), checksums):
            pytest.fail("the block must not run")
    assert closed == [True]


def _interaction_file(cohort, path):
    rng = np.random.default_rng(11)
    samples = cohort.phenotype_df.columns
    pd.DataFrame(
        {"interaction_score": rng.uniform(size=len(samples))}, index=pd.Index(samples, name="sample_id")
    ).to_csv(path, sep="\t")
    return path


def test_nominal_interaction_writes_terms_and_top_associations(cohort, files, tmp_path):
    """--interaction: tensorQTL's columns per pair (values checked against statsmodels in
    test_interaction.py) and, per phenotype, the pair with the largest |b_gi / b_gi_se|."""
    inter = _interaction_file(cohort, tmp_path / "inter.tsv")
    assert _cis(files, tmp_path / "o", "nominal", "--interaction", inter) == 0
    pairs = pd.concat(pd.read_parquet(p) for p in sorted((tmp_path / "o").glob("*.cis_qtl_pairs.*.parquet")))
    for col in ("b_g", "b_g_se", "pval_g", "b_i", "b_i_se", "pval_i", "b_gi", "b_gi_se", "pval_gi"):
        assert col in pairs.columns
    top = pd.read_csv(tmp_path / "o" / "tbeqtl.cis_qtl_top_assoc.txt.gz", sep="\t", index_col=0)
    t = (pairs["b_gi"] / pairs["b_gi_se"]).abs()
    best = (
        pairs.assign(t=t)
        .dropna(subset=["t"])
        .sort_values("t", ascending=False)
        .drop_duplicates("phenotype_id")
    )
    assert set(top.index) == set(best["phenotype_id"])
    assert (top.loc[best["phenotype_id"], "variant_id"].to_numpy() == best["variant_id"].to_numpy()).all()


def test_trans_interaction_keeps_pairs_by_the_interaction_p(cohort, files, tmp_path):
    inter = _interaction_file(cohort, tmp_path / "inter.tsv")
    args = [
        "--genotypes",
        files / "geno",
        "--phenotypes",
        files / "expr.bed.gz",
        "--covariates",
        files / "cov.txt",
        "--pval-threshold",
        1e-2,
        "--interaction",
        inter,
        "--out",
        tmp_path / "o",
    ]
    assert _run("trans", *args) == 0
    got = pd.read_parquet(tmp_path / "o" / "tbeqtl.trans_qtl_pairs.parquet")
    assert {"b_gi", "b_gi_se", "pval_gi", "af"} <= set(got.columns)
    assert len(got) > 0 and (got["pval_gi"] <= 1e-2).all()
