"""``tbeqtl map`` end to end: MatrixEQTL text inputs, PLINK + GCT inputs, outputs and run.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tbeqtl.io as tio
from tbeqtl.cli import main


@pytest.fixture
def me_inputs():
    """MatrixEQTL's sample data and 2.3 outputs, committed under tests/data (see its README)."""
    return Path(__file__).resolve().parent / "data" / "matrixeqtl_sample"


def _args(base, out, *extra):
    d = base / "input"
    return [
        "map",
        "--snps",
        str(d / "SNP.txt"),
        "--expression",
        str(d / "GE.txt"),
        "--covariates",
        str(d / "Covariates.txt"),
        "--snp-pos",
        str(d / "snpsloc.txt"),
        "--gene-pos",
        str(d / "geneloc.txt"),
        "--out",
        str(out),
        *extra,
    ]


def test_map_on_matrixeqtl_files_matches_matrixeqtl(me_inputs, tmp_path):
    out = tmp_path / "run"
    assert main(_args(me_inputs, out, "--pv-cis", "1", "--pv-trans", "1", "--pvalue-hist", "100")) == 0
    for part in ("cis", "trans"):
        ours = pd.read_csv(out / f"{part}.tsv", sep="\t")
        assert list(ours.columns) == ["snp", "gene", "beta", "t_stat", "p_value", "fdr"]
        gold = pd.read_csv(me_inputs / "out" / f"linear_cis.{part}.tsv", sep="\t")
        merged = gold.merge(ours, left_on=["SNP", "gene"], right_on=["snp", "gene"])
        assert len(merged) == len(gold) == len(ours)
        for g, o in (("beta_x", "beta_y"), ("t-stat", "t_stat"), ("p-value", "p_value"), ("FDR", "fdr")):
            np.testing.assert_allclose(merged[o], merged[g], rtol=1e-6)
    meta = json.loads((out / "run.json").read_text())
    assert meta["n_tests"] == {"cis": 100, "trans": 50}
    assert meta["params"]["df"] == 12 and meta["params"]["model"] == "linear"
    assert len(meta["input_sha256"]) == 5 and all(len(v) == 64 for v in meta["input_sha256"].values())
    assert {"tbeqtl", "numpy", "scipy", "pandas", "python"} <= set(meta["versions"])
    hist = pd.read_csv(out / "hist.tsv", sep="\t")
    assert hist.groupby("pool")["count"].sum().to_dict() == {"all": 150, "cis": 100, "trans": 50}
    assert (out / "tbeqtl.log").exists()


def test_map_anova_parquet_and_gene_types(me_inputs, tmp_path):
    types = tmp_path / "types.tsv"
    genes = [f"Gene_{i:02d}" for i in range(1, 11)]
    pd.DataFrame({"gene": genes, "gene_type": ["protein_coding", "lincRNA"] * 5}).to_csv(
        types, sep="\t", index=False
    )
    out = tmp_path / "anova"
    args = _args(
        me_inputs, out, "--model", "anova", "--pv-cis", "1", "--pv-trans", "1", "--gene-types", str(types)
    )
    assert main(args) == 0
    tsv = pd.read_csv(out / "cis.tsv", sep="\t", keep_default_na=False)
    assert list(tsv.columns) == [
        "snp",
        "gene",
        "beta",
        "f_stat",
        "p_value",
        "fdr",
        "gene_type",
        "fdr_by_type",
    ]
    assert (tsv["beta"] == "").all()  # empty for anova
    out_pq = tmp_path / "anova_pq"
    assert (
        main(
            [
                *_args(
                    me_inputs,
                    out_pq,
                    "--model",
                    "anova",
                    "--pv-cis",
                    "1",
                    "--pv-trans",
                    "1",
                    "--gene-types",
                    str(types),
                ),
                "--format",
                "parquet",
            ]
        )
        == 0
    )
    pq = pd.read_parquet(out_pq / "cis.parquet")
    np.testing.assert_allclose(pq["f_stat"], tsv["f_stat"].astype(float))
    gold = pd.read_csv(me_inputs / "out" / "anova_cis.cis.tsv", sep="\t")
    merged = gold.merge(pq, left_on=["SNP", "gene"], right_on=["snp", "gene"])
    np.testing.assert_allclose(merged["f_stat"], merged["F-test"], rtol=1e-6)
    meta = json.loads((out_pq / "run.json").read_text())
    assert meta["n_tests"]["cis:protein_coding"] + meta["n_tests"]["cis:lincRNA"] == 100


def test_map_without_positions_writes_one_pool(me_inputs, tmp_path):
    d = me_inputs / "input"
    out = tmp_path / "all"
    assert (
        main(
            [
                "map",
                "--snps",
                str(d / "SNP.txt"),
                "--expression",
                str(d / "GE.txt"),
                "--out",
                str(out),
                "--pv-trans",
                "0.05",
            ]
        )
        == 0
    )
    assert (out / "all.tsv").exists() and not (out / "cis.tsv").exists()
    assert json.loads((out / "run.json").read_text())["n_tests"] == {"all": 150}


def test_map_bad_input_is_a_one_line_error(me_inputs, tmp_path, capsys):
    bad = tmp_path / "cov.txt"
    text = (me_inputs / "input" / "Covariates.txt").read_text().replace("\t36\t", "\tNA\t", 1)
    bad.write_text(text)
    args = _args(me_inputs, tmp_path / "bad")
    args[args.index("--covariates") + 1] = str(bad)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "missing values" in err and "Sam_01" in err
    assert not (tmp_path / "bad" / "cis.tsv").exists()


def test_map_on_plink_and_gct(tmp_path, rng):
    n, n_snps, n_genes = 40, 30, 12
    ids = [f"IND{i:02d}" for i in range(n)]
    geno = pd.DataFrame(
        rng.binomial(2, 0.4, (n_snps, n)).astype(float), columns=ids, index=[f"rs{i}" for i in range(n_snps)]
    )
    geno.iloc[4, 7] = np.nan
    snp_info = pd.DataFrame(
        {"chrom": "chr1", "pos": np.arange(n_snps) * 20_000 + 100, "ref": "A", "alt": "G"}, index=geno.index
    )
    expr = pd.DataFrame(
        rng.normal(size=(n_genes, n)), columns=ids, index=[f"ENSG{i:04d}" for i in range(n_genes)]
    )
    expr.iloc[0] += geno.iloc[2].fillna(1).to_numpy()
    gene_pos = pd.DataFrame(
        {
            "chrom": "chr1",
            "start": np.arange(n_genes) * 50_000 + 1,
            "end": np.arange(n_genes) * 50_000 + 2000,
            "strand": "+",
            "gene_type": "protein_coding",
        },
        index=expr.index,
    )
    tio.write_plink(geno, tmp_path / "geno", snp_info_df=snp_info)
    tio.write_gct(expr, tmp_path / "expr.gct.gz")
    tio.write_gene_bed(gene_pos, tmp_path / "genes.bed")
    out = tmp_path / "out"
    assert (
        main(
            [
                "map",
                "--snps",
                str(tmp_path / "geno.bed"),
                "--expression",
                str(tmp_path / "expr.gct.gz"),
                "--gene-pos",
                str(tmp_path / "genes.bed"),
                "--pv-cis",
                "1",
                "--pv-trans",
                "1",
                "--cis-dist",
                "30000",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    cis = pd.read_csv(out / "cis.tsv", sep="\t")
    trans = pd.read_csv(out / "trans.tsv", sep="\t")
    assert len(cis) + len(trans) == n_snps * n_genes
    from tbeqtl.association import map_eqtls

    ref = map_eqtls(
        geno, expr, snp_pos_df=snp_info, gene_pos_df=gene_pos, cis_dist=30_000, pv_cis=1, pv_trans=1
    )
    merged = ref.cis.merge(cis, on=["snp", "gene"])
    assert len(merged) == len(ref.cis) == len(cis)
    np.testing.assert_allclose(merged["t_stat_y"], merged["t_stat_x"], rtol=1e-6)
    meta = json.loads((out / "run.json").read_text())
    assert len(meta["input_sha256"]) == 5  # .bed, .bim, .fam, expression, gene positions


def test_map_on_expression_bed_with_covariates(tmp_path, rng):
    n, n_snps, n_genes = 30, 20, 8
    ids = [f"IND{i:02d}" for i in range(n)]
    geno = pd.DataFrame(
        rng.binomial(2, 0.4, (n_snps, n)).astype(float), columns=ids, index=[f"rs{i}" for i in range(n_snps)]
    )
    snp_pos = pd.DataFrame({"chrom": "chr2", "pos": np.arange(n_snps) * 40_000 + 100}, index=geno.index)
    expr = pd.DataFrame(
        rng.normal(size=(n_genes, n)), columns=ids, index=[f"ENSG{i:04d}" for i in range(n_genes)]
    )
    gene_pos = pd.DataFrame(
        {
            "chrom": "chr2",
            "start": np.arange(n_genes) * 90_000 + 1,
            "end": np.arange(n_genes) * 90_000 + 3000,
        },
        index=expr.index,
    )
    cov = pd.DataFrame(rng.normal(size=(n, 2)), index=ids, columns=["pc1", "pc2"])  # samples x covariates
    tio.write_matrixeqtl_matrix(geno, tmp_path / "snps.txt", id_header="snpid")
    tio.write_matrixeqtl_snpsloc(snp_pos, tmp_path / "snpsloc.txt")
    tio.write_expression_bed(expr, gene_pos, tmp_path / "expr.bed.gz")
    cov.to_csv(tmp_path / "cov.tsv", sep="\t", index_label="sample")
    out = tmp_path / "out"
    assert (
        main(
            [
                "map",
                "--snps",
                str(tmp_path / "snps.txt"),
                "--expression",
                str(tmp_path / "expr.bed.gz"),
                "--covariates",
                str(tmp_path / "cov.tsv"),
                "--snp-pos",
                str(tmp_path / "snpsloc.txt"),
                "--pv-cis",
                "1",
                "--pv-trans",
                "1",
                "--cis-dist",
                "50000",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    from tbeqtl.association import map_eqtls

    ref = map_eqtls(
        geno, expr, cov.T, snp_pos_df=snp_pos, gene_pos_df=gene_pos, cis_dist=50_000, pv_cis=1, pv_trans=1
    )
    meta = json.loads((out / "run.json").read_text())
    assert meta["n_tests"] == ref.n_tests and meta["params"]["n_covariates"] == 2
    cis = pd.read_csv(out / "cis.tsv", sep="\t")
    merged = ref.cis.merge(cis, on=["snp", "gene"])
    assert len(merged) == len(cis) == len(ref.cis) > 0
    np.testing.assert_allclose(merged["p_value_y"], merged["p_value_x"], rtol=1e-6)


def _superset_case(tmp_path, rng):
    n_ind, n_snps, n_genes = 45, 25, 6
    ids = [f"IND{i:02d}" for i in range(n_ind)]
    geno = pd.DataFrame(
        rng.binomial(2, 0.35, (n_snps, n_ind)).astype(float),
        columns=ids,
        index=[f"rs{i}" for i in range(n_snps)],
    )
    geno.iloc[3, 5] = np.nan
    snp_info = pd.DataFrame(
        {"chrom": "chr3", "pos": np.arange(n_snps) * 30_000 + 500, "ref": "C", "alt": "T"}, index=geno.index
    )
    expr_ids = sorted(rng.choice(ids, size=33, replace=False))
    expr = pd.DataFrame(
        rng.normal(size=(n_genes, len(expr_ids))),
        columns=expr_ids,
        index=[f"ENSG{i:04d}" for i in range(n_genes)],
    )
    expr.iloc[1] += geno.loc["rs4", expr_ids].fillna(1).to_numpy()
    gene_pos = pd.DataFrame(
        {
            "chrom": "chr3",
            "start": np.arange(n_genes) * 100_000 + 1,
            "end": np.arange(n_genes) * 100_000 + 900,
        },
        index=expr.index,
    )
    shuffled = list(rng.permutation(ids))  # the genotype file in another order, with 12 extra individuals
    tio.write_plink(geno[shuffled], tmp_path / "all", snp_info_df=snp_info)
    tio.write_pgen(geno[shuffled], snp_info, tmp_path / "all")
    tio.write_plink(geno[expr_ids], tmp_path / "same", snp_info_df=snp_info)
    tio.write_expression_bed(expr, gene_pos, tmp_path / "expr.bed.gz")
    return geno, expr, snp_info, gene_pos


def _map(tmp_path, snps, out, expression="expr.bed.gz"):
    args = ["map", "--snps", str(snps), "--expression", str(tmp_path / expression)]
    return main(
        [*args, "--pv-cis", "1", "--pv-trans", "1", "--cis-dist", "60000", "--out", str(tmp_path / out)]
    )


def test_map_subsets_a_genotype_superset_to_the_expression_samples(tmp_path, rng):
    """Issue 14 item 1: extra genotyped individuals (any order) are dropped by ID, results unchanged."""
    from tbeqtl.association import map_eqtls

    geno, expr, snp_info, gene_pos = _superset_case(tmp_path, rng)
    assert _map(tmp_path, tmp_path / "all.bed", "superset") == 0
    log = (tmp_path / "superset" / "tbeqtl.log").read_text()
    assert "kept the 33 expression samples of 45 individuals (12 not in the expression" in log
    assert _map(tmp_path, tmp_path / "same", "equal") == 0
    assert _map(tmp_path, tmp_path / "all.pgen", "pgen") == 0
    for part in ("cis.tsv", "trans.tsv"):
        equal = (tmp_path / "equal" / part).read_text()
        assert (tmp_path / "superset" / part).read_text() == equal
        assert (tmp_path / "pgen" / part).read_text() == equal
    ref = map_eqtls(
        geno[expr.columns],
        expr,
        snp_pos_df=snp_info,
        gene_pos_df=gene_pos,
        cis_dist=60_000,
        pv_cis=1,
        pv_trans=1,
    )
    cis = pd.read_csv(tmp_path / "superset" / "cis.tsv", sep="\t")
    merged = ref.cis.merge(cis, on=["snp", "gene"])
    assert len(merged) == len(cis) == len(ref.cis) > 0
    np.testing.assert_allclose(merged["t_stat_y"], merged["t_stat_x"], rtol=1e-12)
    meta = json.loads((tmp_path / "pgen" / "run.json").read_text())
    assert {Path(p).name for p in meta["input_sha256"]} == {"all.pgen", "all.pvar", "all.psam", "expr.bed.gz"}


def test_map_expression_sample_without_genotypes_is_named(tmp_path, rng, capsys):
    geno, expr, _, gene_pos = _superset_case(tmp_path, rng)
    extra = expr.copy()
    extra["NOGENO1"] = 0.5
    extra["NOGENO2"] = -0.5
    tio.write_expression_bed(extra, gene_pos, tmp_path / "extra.bed.gz")
    assert _map(tmp_path, tmp_path / "all", "bad", expression="extra.bed.gz") == 2
    err = capsys.readouterr().err
    assert "expression samples without genotypes" in err and "NOGENO1" in err and "NOGENO2" in err
