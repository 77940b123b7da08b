"""Genome-wide BH over the chromosome-pair runs (``fdr_genome``), from the runs' candidate tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from tbeqtl.association.fdr import bh_fdr
from tbeqtl.association.result import gene_type_group
from tbeqtl.errors import InputError
from tbeqtl.pipeline.genome_fdr import genome_wide_calls, genome_wide_fdr
from tbeqtl.pipeline.orchestrate import _counts_table
from tbeqtl.schema import validate_table

LEVEL = 0.1
TYPES = ["protein_coding", "lincRNA", "lncRNA", "miRNA"]


def _all_tests(rng, *, n_runs=3, n_tests=400) -> pd.DataFrame:
    """Every test of several runs: 2 factor sets x 2 tissues x cis/trans, mixed gene types, with signal,
    p-values rounded so that some are tied (also across runs)."""
    frames = []
    for run in range(n_runs):
        for fs in ("all", "tissue"):
            for tissue in ("T1", "T2"):
                for klass in ("cis", "trans"):
                    n = int(rng.integers(n_tests // 2, n_tests))
                    p = rng.uniform(size=n)
                    n_signal = int(rng.integers(0, 25))
                    p[:n_signal] = rng.beta(0.05, 1.0, size=n_signal)
                    frames.append(pd.DataFrame({
                        "pair": f"chr{run}__chr9", "factor_set": fs, "tissue": tissue, "class": klass,
                        "snp": [f"rs{run}_{i}" for i in range(n)], "gene": [f"g{i % 37}" for i in range(n)],
                        "gene_type": rng.choice(TYPES, size=n), "p_value": np.round(p, 4)}))
    return pd.concat(frames, ignore_index=True)


def _n_tests(tests: pd.DataFrame) -> pd.DataFrame:
    """run.json's n_tests as the gather reads them: per run, per class and per class x gene-type group."""
    groups = tests.assign(gene_type=[gene_type_group(t) for t in tests["gene_type"]])
    by_group = groups.groupby(["pair", "factor_set", "tissue", "class", "gene_type"]).size()
    by_class = tests.groupby(["pair", "factor_set", "tissue", "class"]).size()
    rows = [(*k[1:], int(n)) for k, n in by_group.items()]
    rows += [(*k[1:], "all", int(n)) for k, n in by_class.items()]
    return pd.DataFrame(rows, columns=["factor_set", "tissue", "class", "gene_type", "n_tests"])


def _reference(tests: pd.DataFrame, *, by_type: bool) -> np.ndarray:
    """statsmodels' BH on the concatenated full p-value vector of each pooled family."""
    family = tests["gene_type"].map(gene_type_group) if by_type else pd.Series("all", index=tests.index)
    out = np.full(len(tests), np.nan)
    keys = [tests["factor_set"], tests["tissue"], tests["class"], family]
    for _, idx in tests.groupby(keys).indices.items():
        out[idx] = multipletests(tests["p_value"].to_numpy()[idx], method="fdr_bh")[1]
    return out


@pytest.mark.parametrize("by_type", [True, False])
def test_genome_fdr_equals_statsmodels_on_all_tests(rng, by_type):
    tests = _all_tests(rng)
    ref = _reference(tests, by_type=by_type)
    cand = tests["p_value"].to_numpy() <= LEVEL
    candidates = tests.loc[cand].reset_index(drop=True)
    if not by_type:
        candidates = candidates.drop(columns="gene_type")
    got = genome_wide_fdr(candidates, _n_tests(tests), level=LEVEL)
    expected = ref[cand]
    exact = expected <= LEVEL
    assert exact.sum() >= 40 and (~exact).sum() >= 40  # both cases are exercised
    np.testing.assert_allclose(got[exact], expected[exact], rtol=1e-12)
    assert np.isnan(got[~exact]).all()
    # every test a BH over all tests calls at the level is a candidate
    assert not ((ref <= LEVEL) & ~cand).any()


def test_candidate_subset_gives_the_full_table_values(rng):
    """p <= q suffices, and any superset of the candidates gives the same values."""
    tests = _all_tests(rng, n_runs=2)
    counts = _n_tests(tests)
    full = genome_wide_fdr(tests, counts, level=LEVEL)
    cand = tests["p_value"].to_numpy() <= LEVEL
    sub = genome_wide_fdr(tests.loc[cand], counts, level=LEVEL)
    np.testing.assert_array_equal(sub, full[cand])
    assert np.isnan(full[~cand]).all()
    extra = cand | (rng.uniform(size=len(tests)) < 0.3)
    sup = genome_wide_fdr(tests.loc[extra], counts, level=LEVEL)
    np.testing.assert_array_equal(sup, full[extra])
    # the values up to the level are the full BH (not only the candidates' own BH)
    np.testing.assert_allclose(full[~np.isnan(full)], _reference(tests, by_type=True)[~np.isnan(full)])


def test_genome_fdr_errors(rng):
    cands = pd.DataFrame({"factor_set": "all", "tissue": "T", "class": "cis", "p_value": [0.01, 0.02]})
    counts = pd.DataFrame({"factor_set": "all", "tissue": "T", "class": "cis", "gene_type": "all",
                           "n_tests": [1]})
    with pytest.raises(InputError, match="n_tests = 1"):
        genome_wide_fdr(cands, counts, level=LEVEL)
    with pytest.raises(InputError, match="no test count"):
        genome_wide_fdr(cands.assign(tissue="U"), counts, level=LEVEL)
    assert genome_wide_fdr(cands.iloc[:0], counts, level=LEVEL).shape == (0,)


def _run_tables(tests: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-run BH (fdr per class, fdr_by_type per class x group) and the calls / candidates the runs write."""
    tests = tests.copy()
    tests["fdr"] = np.nan
    tests["fdr_by_type"] = np.nan
    tests["gene_chrom"] = tests["pair"].str.split("__").str[0]
    tests["snp_chrom"] = "chr9"
    for _, idx in tests.groupby(["pair", "factor_set", "tissue", "class"]).indices.items():
        tests.loc[tests.index[idx], "fdr"] = bh_fdr(tests["p_value"].to_numpy()[idx])
    groups = tests["gene_type"].map(gene_type_group)
    for _, idx in tests.groupby([tests["pair"], tests["factor_set"], tests["tissue"], tests["class"],
                                 groups]).indices.items():
        tests.loc[tests.index[idx], "fdr_by_type"] = bh_fdr(tests["p_value"].to_numpy()[idx])
    tests["beta"] = 0.5
    tests["t_stat"] = 3.0
    tests["topics"] = "0,2"
    cols = ["class", "snp", "gene", "beta", "t_stat", "p_value", "fdr", "gene_type", "fdr_by_type", "topics",
            "factor_set", "tissue", "pair", "gene_chrom", "snp_chrom"]
    calls = tests.loc[tests["fdr_by_type"] < LEVEL, cols].reset_index(drop=True)
    cands = tests.loc[tests["p_value"] <= LEVEL, cols].reset_index(drop=True)
    return calls, cands


def test_genome_wide_calls_complete_the_list(rng):
    tests = _all_tests(rng)
    calls, cands = _run_tables(tests)
    out = genome_wide_calls(calls, cands, _n_tests(tests), level=LEVEL)
    validate_table(out, "pipeline_eqtls")
    n = len(calls)
    # the per-run calls first, unchanged, in their order
    pd.testing.assert_frame_equal(out.iloc[:n][calls.columns].reset_index(drop=True), calls)
    assert out["called_run"].iloc[:n].all() and not out["called_run"].iloc[n:].any()
    assert (out["fdr_genome"].iloc[n:] < LEVEL).all() and (out["fdr_by_type"].iloc[n:] >= LEVEL).all()
    # exactly the tests a full-table genome-wide BH calls, each once
    ref = _reference(tests, by_type=True)
    key = ["pair", "factor_set", "tissue", "class", "snp", "gene"]
    expected = set(map(tuple, tests.loc[ref < LEVEL, key].to_numpy()))
    got = set(map(tuple, out.loc[out["fdr_genome"] < LEVEL, key].to_numpy()))
    assert got == expected and not out.duplicated(key).any()
    merged = out.merge(tests.assign(ref=ref)[[*key, "ref"]], on=key)
    sel = merged["ref"] <= LEVEL
    np.testing.assert_allclose(merged.loc[sel, "fdr_genome"], merged.loc[sel, "ref"], rtol=1e-12)
    assert merged.loc[~sel, "fdr_genome"].isna().all()
    # both kinds of disagreement occur in this example
    assert (~out["called_run"]).any() and out.loc[out["called_run"], "fdr_genome"].isna().any()

    counts = _counts_table(out, _n_tests(tests).to_dict("records"), level=LEVEL)
    validate_table(counts, "eqtl_counts")
    by = counts.set_index(["factor_set", "tissue", "class", "gene_type"])
    for (fs, tissue, klass), group in out.groupby(["factor_set", "tissue", "class"]):
        row = by.loc[(fs, tissue, klass, "all")]
        assert row.n_eqtls == int(group["called_run"].sum())
        genome = group[group["fdr_genome"] < LEVEL]
        assert row.n_eqtls_genome == len(genome)
        assert row.n_egenes_genome == genome["gene"].nunique()
    run_only = _counts_table(calls, _n_tests(tests).to_dict("records"))
    pd.testing.assert_frame_equal(counts[run_only.columns], run_only)


def test_genome_fdr_controls_the_pooled_fdr_where_per_run_bh_does_not():
    """Null simulation: 40 runs x 2 gene-type families of 500 tests, half the families with one strong
    true signal, the rest null. Per-family BH pools to an FDR well above q (families without signal
    call a null with probability ~q each); the genome-wide BH keeps the pooled FDR near q * pi0."""
    rng = np.random.default_rng(7)
    n_runs, m = 40, 500
    run_v = run_r = 0
    fdp_genome = []
    for _ in range(40):
        frames, counts = [], []
        for _run in range(n_runs):
            for gtype in ("protein_coding", "lincRNA"):
                p = rng.uniform(size=m)
                true = np.zeros(m, dtype=bool)
                if rng.uniform() < 0.5:
                    true[0], p[0] = True, rng.uniform() * 1e-5
                called = bh_fdr(p) < LEVEL
                run_v += int((called & ~true).sum())
                run_r += int(called.sum())
                keep = p <= LEVEL
                frames.append(pd.DataFrame({"factor_set": "all", "tissue": "T", "class": "trans",
                                            "gene_type": gtype, "p_value": p[keep], "true": true[keep]}))
                counts.append(("all", "T", "trans", gtype, m))
        cands = pd.concat(frames, ignore_index=True)
        n_tests = pd.DataFrame(counts, columns=["factor_set", "tissue", "class", "gene_type", "n_tests"])
        called = genome_wide_fdr(cands.drop(columns="true"), n_tests, level=LEVEL) < LEVEL
        false = int((called & ~cands["true"].to_numpy()).sum())
        fdp_genome.append(false / max(int(called.sum()), 1))
    # measured with this seed: per-run BH pooled 585/2138 = 0.274; genome-wide mean FDP over the 40
    # replicates 0.108 (s.e. 0.007; pooled 190/1743 = 0.109), expected q * pi0 = 0.0995
    assert run_v / run_r > 0.2
    assert np.mean(fdp_genome) < 0.12
