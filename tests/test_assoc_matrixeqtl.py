"""map_eqtls against MatrixEQTL 2.3's own outputs on its sample data (tests/data/matrixeqtl_sample).

Bar: relative 1e-6 on every t/F, p, beta and FDR; identical test counts, df, histogram counts and
per-SNP/gene minimum p-values. See tests/data/matrixeqtl_sample/README.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tbeqtl.association import map_eqtls
from tbeqtl.association.histogram import histogram_edges

#: committed golden files (a copy of ../shared/data/matrixeqtl_sample; provenance in its README)
SAMPLE = Path(__file__).resolve().parent / "data" / "matrixeqtl_sample"
RTOL = 1e-6
RUNS = {"linear_cis": "linear", "anova_cis": "anova", "cross_cis": "linear_cross"}
HIST = {
    "linear_cis": True,
    "linear_all": "qqplot",
    "anova_cis": 20,
    "cross_cis": [0, 1e-3, 1e-2, 0.05, 0.2, 0.5, 1],
}


def _read(base, name):
    return pd.read_csv(base / "input" / name, sep="\t", index_col=0)


def test_committed_golden_files_are_the_shared_ones(shared_data):
    """The copy under tests/data is byte for byte the shared folder's (runs where ../shared exists)."""
    shared = shared_data / "matrixeqtl_sample"

    def files(root):
        return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                      if p.is_file() and p.name != "README.md")

    names = files(shared)
    assert names == files(SAMPLE) and len(names) == 17
    for name in names:
        assert (SAMPLE / name).read_bytes() == (shared / name).read_bytes(), name


@pytest.fixture
def me():
    base = SAMPLE
    return {
        "base": base,
        "snps": _read(base, "SNP.txt"),
        "expr": _read(base, "GE.txt"),
        "cov": _read(base, "Covariates.txt"),
        "snp_pos": _read(base, "snpsloc.txt"),
        "gene_pos": _read(base, "geneloc.txt"),
    }


def _run(me, run, **kw):
    split = run != "linear_all"
    model = RUNS.get(run, "linear")
    return map_eqtls(
        me["snps"],
        me["expr"],
        me["cov"],
        snp_pos_df=me["snp_pos"] if split else None,
        gene_pos_df=me["gene_pos"] if split else None,
        model=model,
        pv_cis=1.0 if split else 0.0,
        pv_trans=1.0,
        pvalue_hist=HIST[run],
        min_pvalues=True,
        **kw,
    )


def _gold(me, run, part):
    return pd.read_csv(me["base"] / "out" / f"{run}.{part}.tsv", sep="\t")


def _compare(ours: pd.DataFrame, gold: pd.DataFrame):
    stat_gold = "F-test" if "F-test" in gold.columns else "t-stat"
    stat_ours = "f_stat" if stat_gold == "F-test" else "t_stat"
    merged = gold.merge(
        ours,
        left_on=["SNP", "gene"],
        right_on=["snp", "gene"],
        how="outer",
        indicator=True,
        suffixes=("_gold", ""),
    )
    assert (merged["_merge"] == "both").all(), merged["_merge"].value_counts()
    assert len(merged) == len(gold)
    pairs = [(stat_gold, stat_ours), ("p-value", "p_value"), ("FDR", "fdr")]
    if "beta" in gold.columns:
        pairs.append(("beta_gold", "beta"))
    else:
        assert ours["beta"].isna().all()
    for g, o in pairs:
        np.testing.assert_allclose(
            merged[o].to_numpy(float), merged[g].to_numpy(float), rtol=RTOL, atol=0, err_msg=f"{g} vs {o}"
        )
    # MatrixEQTL's row order: |statistic| descending
    assert np.all(np.diff(np.abs(ours[stat_ours].to_numpy())) <= 0)


@pytest.mark.parametrize("run", ["linear_cis", "anova_cis", "cross_cis"])
def test_cis_trans_tables_match_matrixeqtl(me, run):
    res = _run(me, run)
    _compare(res.cis, _gold(me, run, "cis"))
    _compare(res.trans, _gold(me, run, "trans"))


def test_single_pool_matches_matrixeqtl(me):
    res = _run(me, "linear_all")
    assert res.pools == ["all"]
    _compare(res.all, _gold(me, "linear_all", "all"))


def test_native_output_files_match(me):
    res = _run(me, "linear_cis")
    for part in ("cis", "trans"):
        gold = pd.read_csv(me["base"] / "out" / f"native_linear_cis.{part}.txt", sep="\t")
        # the native files are written with 15 significant digits (rounding ~1e-13 relative for tiny p)
        merged = gold.merge(getattr(res, part), left_on=["SNP", "gene"], right_on=["snp", "gene"])
        assert len(merged) == len(gold)
        np.testing.assert_allclose(merged["p_value"], merged["p-value"], rtol=1e-12)


def _summary(me):
    df = pd.read_csv(me["base"] / "out" / "summary.tsv", sep="\t")
    return df[df["run"] != "run"].astype({"ntests": int, "dfFull": int})  # the file repeats its header


@pytest.mark.parametrize("run", ["linear_cis", "linear_all", "anova_cis", "cross_cis"])
def test_test_counts_and_df(me, run):
    res = _run(me, run)
    summary = _summary(me)
    rows = summary[summary["run"] == run].drop_duplicates(["run", "part"])
    for _, row in rows.iterrows():
        if row["part"] == "all" and run != "linear_all":
            assert sum(res.n_tests[p] for p in ("cis", "trans")) == row["ntests"]
        else:
            assert res.n_tests[row["part"]] == row["ntests"]
        assert res.params["df"] == row["dfFull"]


@pytest.mark.parametrize("run", ["linear_cis", "linear_all", "anova_cis", "cross_cis"])
def test_pvalue_histograms_match(me, run):
    res = _run(me, run)
    gold = pd.read_csv(me["base"] / "out" / "hist.tsv", sep="\t")
    gold = gold[gold["run"] == run].astype({"bin_lo": float, "bin_hi": float, "count": int})
    for part, sub in gold.groupby("part"):
        ours = res.hist[res.hist["pool"] == part].sort_values("bin_hi")
        assert len(ours) == len(sub)
        assert ours["count"].sum() == sub["count"].sum()
        # the same edges (the stored qqplot table pairs some lo/hi of empty bins out of order, so
        # edges are compared as a set and counts on the non-empty bins)
        gold_edges = np.unique(np.concatenate([sub["bin_lo"], sub["bin_hi"]]))
        our_edges = np.unique(np.concatenate([ours["bin_lo"], ours["bin_hi"]]))
        np.testing.assert_allclose(our_edges, gold_edges, rtol=1e-12)
        good = sub[sub["count"] > 0]
        assert (good["bin_lo"] < good["bin_hi"]).all()
        assert (ours["count"] > 0).sum() == len(good)
        pos = np.searchsorted(ours["bin_hi"].to_numpy(), good["bin_hi"].to_numpy() * (1 - 1e-12))
        np.testing.assert_allclose(ours["bin_lo"].to_numpy()[pos], good["bin_lo"].to_numpy(), rtol=1e-12)
        np.testing.assert_array_equal(ours["count"].to_numpy()[pos], good["count"].to_numpy())


def test_qqplot_edges_are_matrixeqtls():
    edges = histogram_edges("qqplot")
    assert edges.size == 6175 and edges[0] == 0 and edges[-1] == 1
    assert edges[1] < np.finfo(float).tiny


@pytest.mark.parametrize("run", ["linear_cis", "linear_all", "anova_cis", "cross_cis"])
def test_min_pvalues_match(me, run):
    res = _run(me, run)
    gold = pd.read_csv(me["base"] / "out" / "min_pvalues.tsv", sep="\t")
    gold = gold[gold["run"] == run]
    merged = gold.merge(
        res.min_pvalues,
        left_on=["part", "kind", "id"],
        right_on=["pool", "kind", "id"],
        suffixes=("_gold", ""),
    )
    assert len(merged) == len(gold) > 0
    np.testing.assert_allclose(
        merged["min_pvalue"].to_numpy(float), merged["min_pvalue_gold"].to_numpy(float), rtol=RTOL
    )


def _matrixeqtl_fdr(p_sorted, m):
    """Straight loop over MatrixEQTL's definition: FDR_i = min_{j>=i} p_j m / j, capped at 1."""
    n = len(p_sorted)
    out = [0.0] * n
    running = 1.0
    for i in range(n - 1, -1, -1):
        running = min(running, p_sorted[i] * m / (i + 1))
        out[i] = running
    return np.array(out)


@pytest.mark.parametrize(("pv_cis", "pv_trans"), [(0.1, 0.05), (0.5, 0.02)])
def test_thresholded_output_and_fdr(me, pv_cis, pv_trans):
    res = map_eqtls(
        me["snps"],
        me["expr"],
        me["cov"],
        snp_pos_df=me["snp_pos"],
        gene_pos_df=me["gene_pos"],
        pv_cis=pv_cis,
        pv_trans=pv_trans,
    )
    for part, pv in (("cis", pv_cis), ("trans", pv_trans)):
        gold = _gold(me, "linear_cis", part)
        kept = gold[gold["p-value"] <= pv].sort_values("p-value")
        ours = getattr(res, part)
        assert set(zip(ours["snp"], ours["gene"], strict=True)) == set(
            zip(kept["SNP"], kept["gene"], strict=True)
        )
        expected = _matrixeqtl_fdr(kept["p-value"].to_numpy(), len(gold))
        merged = kept.assign(expected=expected).merge(ours, left_on=["SNP", "gene"], right_on=["snp", "gene"])
        np.testing.assert_allclose(merged["fdr"], merged["expected"], rtol=RTOL)
        # thresholded FDR is never below the full-table BH
        assert np.all(merged["fdr"].to_numpy() >= merged["FDR"].to_numpy() * (1 - 1e-12))
        assert res.n_tests[part] == len(gold)


@pytest.mark.parametrize(
    "options",
    [
        {"precision": "float32"},
        {"backend": "torch-cpu"},
        {"backend": "torch-cpu", "precision": "float32"},
        {"block_size": 4},
    ],
)
def test_other_precisions_and_backends_give_the_same_rows(me, options):
    res = _run(me, "cross_cis", **options)
    _compare(res.cis, _gold(me, "cross_cis", "cis"))
    _compare(res.trans, _gold(me, "cross_cis", "trans"))
    res = map_eqtls(
        me["snps"],
        me["expr"],
        me["cov"],
        snp_pos_df=me["snp_pos"],
        gene_pos_df=me["gene_pos"],
        pv_cis=0.2,
        pv_trans=0.05,
        **options,
    )
    ref = map_eqtls(
        me["snps"],
        me["expr"],
        me["cov"],
        snp_pos_df=me["snp_pos"],
        gene_pos_df=me["gene_pos"],
        pv_cis=0.2,
        pv_trans=0.05,
    )
    for part in ("cis", "trans"):
        pd.testing.assert_frame_equal(
            getattr(res, part)[["snp", "gene"]], getattr(ref, part)[["snp", "gene"]]
        )
        np.testing.assert_allclose(getattr(res, part)["t_stat"], getattr(ref, part)["t_stat"], rtol=1e-12)


def test_input_dataframes_are_not_modified(me):
    before = {k: me[k].copy() for k in ("snps", "expr", "cov")}
    _run(me, "linear_cis")
    for k, df in before.items():
        pd.testing.assert_frame_equal(me[k], df)


def test_sample_order_does_not_matter(me):
    ref = _run(me, "linear_cis")
    cols = list(me["expr"].columns)[::-1]
    res = map_eqtls(
        me["snps"].iloc[::-1],
        me["expr"][cols].iloc[::-1],
        me["cov"][cols[3:] + cols[:3]],
        snp_pos_df=me["snp_pos"],
        gene_pos_df=me["gene_pos"],
        pv_cis=1.0,
        pv_trans=1.0,
    )
    for part in ("cis", "trans"):
        a = getattr(ref, part).set_index(["snp", "gene"]).sort_index()
        b = getattr(res, part).set_index(["snp", "gene"]).sort_index()
        np.testing.assert_allclose(
            a[["beta", "t_stat", "p_value", "fdr"]], b[["beta", "t_stat", "p_value", "fdr"]], rtol=1e-10
        )
