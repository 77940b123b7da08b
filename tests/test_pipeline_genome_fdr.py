"""Genome-wide BH over the chromosome-pair runs (``fdr_genome``), from the runs' candidate tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from tbeqtl.association.fdr import bh_fdr
from tbeqtl.association.result import gene_type_group
from tbeqtl.errors import InputError
from tbeqtl.pipeline.genome_fdr import all_tests_fdr, genome_wide_calls, genome_wide_fdr
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


# --------------------------------------------------------------------------- fdr_scope = "all"


def _reference_all(tests: pd.DataFrame) -> np.ndarray:
    """statsmodels' BH on the concatenated full p-value vector of each factor set (every tissue, class,
    gene type and run together)."""
    out = np.full(len(tests), np.nan)
    for _, idx in tests.groupby("factor_set").indices.items():
        out[idx] = multipletests(tests["p_value"].to_numpy()[idx], method="fdr_bh")[1]
    return out


def test_fdr_all_equals_statsmodels_on_all_tests(rng):
    tests = _all_tests(rng)
    ref = _reference_all(tests)
    cand = tests["p_value"].to_numpy() <= LEVEL
    got = all_tests_fdr(tests.loc[cand].reset_index(drop=True), _n_tests(tests), level=LEVEL)
    expected = ref[cand]
    exact = expected <= LEVEL
    assert exact.sum() >= 40 and (~exact).sum() >= 40  # both cases are exercised
    np.testing.assert_allclose(got[exact], expected[exact], rtol=1e-12)
    assert np.isnan(got[~exact]).all()
    assert not ((ref <= LEVEL) & ~cand).any()
    # one BH per factor set, not per family: differs from the per-family pooled values
    genome = genome_wide_fdr(tests.loc[cand], _n_tests(tests), level=LEVEL)
    both = exact & ~np.isnan(genome)
    assert both.sum() >= 10 and not np.allclose(got[both], genome[both])
    # any superset of the candidates gives the same values
    extra = cand | (rng.uniform(size=len(tests)) < 0.3)
    sup = all_tests_fdr(tests.loc[extra], _n_tests(tests), level=LEVEL)
    np.testing.assert_array_equal(sup[cand[extra]], got)


def test_fdr_all_errors():
    cands = pd.DataFrame({"factor_set": "all", "tissue": "T", "class": "cis", "p_value": [0.01, 0.02]})
    counts = pd.DataFrame({"factor_set": "all", "tissue": "T", "class": "cis", "gene_type": ["all"],
                           "n_tests": [1]})
    with pytest.raises(InputError, match="n_tests = 1"):
        all_tests_fdr(cands, counts, level=LEVEL)
    by_group_only = counts.assign(gene_type="protein_coding", n_tests=10)
    with pytest.raises(InputError, match="whole-class test count"):
        all_tests_fdr(cands, by_group_only, level=LEVEL)
    assert all_tests_fdr(cands.iloc[:0], counts, level=LEVEL).shape == (0,)
    with pytest.raises(InputError, match="FDR scope"):
        genome_wide_calls(cands.iloc[:0], cands, counts, level=LEVEL, scope="genome")


def test_genome_wide_calls_with_scope_all_complete_the_list(rng):
    tests = _all_tests(rng)
    calls, cands = _run_tables(tests)
    counts_df = _n_tests(tests)
    family = genome_wide_calls(calls, cands, counts_df, level=LEVEL)
    assert "fdr_all" not in family.columns
    out = genome_wide_calls(calls, cands, counts_df, level=LEVEL, scope="all")
    validate_table(out, "pipeline_eqtls")
    n = len(calls)
    pd.testing.assert_frame_equal(out.iloc[:n][calls.columns].reset_index(drop=True), calls)
    key = ["pair", "factor_set", "tissue", "class", "snp", "gene"]
    ref = _reference_all(tests)
    expected = set(map(tuple, tests.loc[ref < LEVEL, key].to_numpy()))
    assert set(map(tuple, out.loc[out["fdr_all"] < LEVEL, key].to_numpy())) == expected
    assert not out.duplicated(key).any()
    # the rows fdr_genome calls are still there, with the same values as in the family scope
    merged = family.merge(out, on=key, suffixes=("_family", ""), validate="one_to_one")
    assert len(merged) == len(family)
    np.testing.assert_array_equal(merged["fdr_genome_family"], merged["fdr_genome"])
    extra = out.iloc[n:]
    assert ((extra["fdr_all"] < LEVEL) | (extra["fdr_genome"] < LEVEL)).all()
    assert (extra["fdr_all"] < LEVEL).any() and (extra["fdr_all"].isna()).any()  # both kinds occur
    # the counts are the fdr_all calls
    counts = _counts_table(out, counts_df.to_dict("records"), level=LEVEL, scope="all")
    validate_table(counts, "eqtl_counts")
    by = counts.set_index(["factor_set", "tissue", "class", "gene_type"])
    called = out[out["fdr_all"] < LEVEL]
    for (fs, tissue, klass), group in called.groupby(["factor_set", "tissue", "class"]):
        row = by.loc[(fs, tissue, klass, "all")]
        assert row.n_eqtls == len(group) and row.n_egenes == group["gene"].nunique()
        assert row.n_evariants == group["snp"].nunique()
        assert row.n_eqtls_genome == int((out.loc[(out.factor_set == fs) & (out.tissue == tissue)
                                                  & (out["class"] == klass), "fdr_genome"] < LEVEL).sum())
    assert by["n_eqtls"].sum() > 0
    # every call once in the whole-class totals over all tissues (SNP IDs are unique per run here)
    assert by.xs(("all", "all"), level=("tissue", "gene_type"))["n_eqtls"].sum() == len(called)
    with pytest.raises(InputError, match="fdr_scope 'all'"):
        _counts_table(family, counts_df.to_dict("records"), level=LEVEL, scope="all")


def test_fdr_scope_all_end_to_end(tmp_path):
    """A small pipeline gathered with fdr_scope 'family', then again with 'all' in the same folder (no pair
    is rerun): fdr_all is statsmodels' BH on the concatenated p-values of every test of a factor set (all
    tissues, cis and trans, gene types and pairs; output_pvalue 1 writes every test), the list holds
    every test it calls, and the counts are its calls."""
    import json

    from tbeqtl.layout import RunLayout
    from tbeqtl.pipeline import PipelineConfig, run_pipeline
    from tbeqtl.simulate import simulate

    simulate(preset="tiny", seed=1, n_individuals=120, n_samples=420, n_tissues=4, n_genes=80,
             n_snps=200).write(tmp_path / "sim")
    pairs = ["chr1:chr2", "chr2:chr2", "chr2:chr1"]
    config = PipelineConfig.preset("test", data={"path": str(tmp_path / "sim"), "all_pairs": False,
                                                 "pairs": pairs},
                                   mapping={"tissues": ["Whole Blood", "Muscle - Skeletal"],
                                            "output_pvalue": 1.0, "n_permutations": 0,
                                            "factor_sets": ["all", "tissue"]})
    out = tmp_path / "run"
    run_pipeline(config, out_dir=out)
    layout = RunLayout(out)
    family = pd.read_parquet(layout.summary / "eqtls.parquet")
    assert "fdr_all" not in family.columns
    fit_json = layout.pair("chr1", "chr2").fit / "run.json"
    before = fit_json.stat().st_mtime_ns
    all_config = config.replace(mapping={"fdr_scope": "all"})
    status = run_pipeline(all_config, out_dir=out)
    assert fit_json.stat().st_mtime_ns == before and (status["seconds"] == 0).all()  # only gathered again
    assert json.loads(layout.run_json.read_text())["config"]["mapping"]["fdr_scope"] == "all"
    level = config.mapping.fdr
    tests = []
    for pair_name in ("chr1__chr2", "chr2__chr2", "chr2__chr1"):
        for folder in sorted((layout.pair(*pair_name.split("__")).root / "eqtl").glob("*/*")):
            meta = json.loads((folder / "run.json").read_text())
            for klass in ("cis", "trans"):
                table = pd.read_csv(folder / f"{klass}.tsv", sep="\t", dtype={"snp": str, "gene": str})
                assert len(table) == meta["n_tests"][klass]  # every test is written
                if len(table):
                    tests.append(table.assign(**{"pair": pair_name, "factor_set": folder.parent.name,
                                                 "tissue": meta["tissue"], "class": klass}))
    tests = pd.concat(tests, ignore_index=True)
    assert tests["class"].nunique() == 2 and tests["tissue"].nunique() == 2
    assert set(tests["factor_set"]) == {"all", "tissue", "exhaustive"}
    ref = _reference_all(tests)
    key = ["pair", "factor_set", "tissue", "class", "snp", "gene"]
    eqtls = pd.read_parquet(layout.summary / "eqtls.parquet")
    merged = eqtls.merge(tests.assign(ref=ref)[[*key, "ref"]], on=key, how="left", validate="one_to_one")
    assert merged["ref"].notna().all()
    exact = merged["ref"] <= level
    np.testing.assert_allclose(merged.loc[exact, "fdr_all"], merged.loc[exact, "ref"], rtol=1e-10)
    assert merged.loc[~exact, "fdr_all"].isna().all()
    expected = set(map(tuple, tests.loc[ref < level, key].to_numpy()))
    assert set(map(tuple, eqtls.loc[eqtls["fdr_all"] < level, key].to_numpy())) == expected
    assert len(expected) >= 10
    # the family-scope rows and values are unchanged
    both = family.merge(eqtls[[*key, "fdr_genome", "called_run"]], on=key, how="left", suffixes=("", "_2"),
                        validate="one_to_one")
    np.testing.assert_array_equal(both["fdr_genome"], both["fdr_genome_2"])
    np.testing.assert_array_equal(both["called_run"], both["called_run_2"])
    # the counts are the fdr_all calls, per factor set x tissue x class and over all tissues
    counts = pd.read_csv(layout.summary / "eqtl_counts.tsv", sep="\t")
    called = eqtls[eqtls["fdr_all"] < level]
    for (fs, tissue, klass), row in counts[counts.gene_type == "all"].set_index(
            ["factor_set", "tissue", "class"]).iterrows():
        part = called[(called.factor_set == fs) & (called["class"] == klass)
                      & ((called.tissue == tissue) | (tissue == "all"))]
        assert row.n_eqtls == len(part), (fs, tissue, klass)
        assert row.n_egenes == part["gene"].nunique()
    # and back: gathering with 'family' again gives the family-scope table
    run_pipeline(config, out_dir=out)
    pd.testing.assert_frame_equal(pd.read_parquet(layout.summary / "eqtls.parquet"), family)


def test_fdr_scope_is_validated():
    from tbeqtl.pipeline import PipelineConfig

    assert PipelineConfig().mapping.fdr_scope == "family"
    with pytest.raises(InputError, match="mapping.fdr_scope must be one of family, all"):
        PipelineConfig().replace(mapping={"fdr_scope": "genome"})
    with pytest.raises(InputError, match="mapping.fdr_scope must be of type str"):
        PipelineConfig.from_dict({"mapping": {"fdr_scope": 1}})
    assert PipelineConfig.from_dict({"mapping": {"fdr_scope": "all"}}).mapping.fdr_scope == "all"


def test_report_states_the_guarantee_of_the_scope(tmp_path):
    """The report's count caption says per family for 'family' (the default) and one list for 'all'."""
    from tbeqtl.report.load import ReportData
    from tbeqtl.report.sections import _fdr_guarantee

    data = ReportData(run_dir=tmp_path, fdr=0.05)
    family = _fdr_guarantee(data)
    assert "FDR < 0.05 per family" in family and "chromosome pair x factor set x tissue" in family
    assert "not in counts pooled over families" in family and "fdr_genome" not in family
    data.tables["summary"] = pd.DataFrame(columns=["n_eqtls", "n_eqtls_genome"])
    assert "(fdr_genome < 0.05) pool each family over the chromosome pairs" in _fdr_guarantee(data)
    data.run_info = {"config": {"mapping": {"fdr_scope": "all"}}}
    one = _fdr_guarantee(data)
    assert one.startswith("Calls: fdr_all < 0.05, one Benjamini-Hochberg FDR over every test of the factor")
    assert "per family" not in one


@pytest.mark.parametrize("scope", ["family", "all"])
def test_gather_reads_only_candidates_that_can_reach_the_level(tmp_path, rng, scope):
    """The gather's two-pass read (K per family, then the rows under level K / m) gives the same
    fdr_genome / fdr_all for every row at or below the level as BH (statsmodels) over all tests,
    while reading far fewer rows than the candidates."""
    from tbeqtl.layout import RunLayout
    from tbeqtl.pipeline.jobs.gather import _read_candidates

    level, files, tests_rows, full = 0.1, [], [], []
    layout = RunLayout(tmp_path)
    for pair_i, (gchrom, schrom) in enumerate([("chr1", "chr2"), ("chr2", "chr1")]):
        pl = layout.pair(gchrom, schrom)
        for tissue in ("T", "U"):
            m = 4000
            # T: 40 strong signals (few candidates can reach the level); U: 40 % signals at p < 0.005
            # (BH calls nearly every candidate there, so the bound level * K / m is tight)
            n_sig = 40 if tissue == "T" else int(0.4 * m)
            hi = 1e-4 if tissue == "T" else 0.005
            p = np.concatenate([rng.uniform(0, 1, m - n_sig), rng.uniform(0, hi, n_sig)])
            gtypes = rng.choice(["protein_coding", "lincRNA"], size=m)
            df = pd.DataFrame({"class": "trans", "snp": [f"s{pair_i}_{i}" for i in range(m)],
                               "gene": [f"g{i % 50}" for i in range(m)], "beta": 1.0, "t_stat": 1.0,
                               "p_value": p, "fdr": 1.0, "gene_type": gtypes, "topics": ""})
            path = tmp_path / f"{pl.name}_{tissue}.parquet"
            df.loc[df["p_value"] <= level].to_parquet(path)
            files.append((path, pl, gchrom, schrom, "all", tissue))
            full.append(df.assign(pair=pl.name, factor_set="all", tissue=tissue))
            for group in ("protein_coding", "lincRNA"):
                tests_rows.append({"factor_set": "all", "tissue": tissue, "class": "trans",
                                   "gene_type": group, "n_tests": int((gtypes == group).sum())})
            tests_rows.append({"factor_set": "all", "tissue": tissue, "class": "trans", "gene_type": "all",
                               "n_tests": m})
    read = pd.concat(_read_candidates(files, tests_rows, level=level, scope=scope), ignore_index=True)
    everything = pd.concat(full, ignore_index=True)
    in_t, every_t = read["tissue"] == "T", everything["tissue"] == "T"
    if scope == "family":  # with "all" the factor set's bound (U's signals in its K) applies too
        assert in_t.sum() < 0.25 * (everything.loc[every_t, "p_value"] <= level).sum()  # ~ level K / m
    # reference: statsmodels BH per pooled family (tissue x gene-type group, both pairs) over all tests
    for (tissue, group), fam in everything.groupby(["tissue", "gene_type"]):
        fam = fam.assign(q=multipletests(fam["p_value"], method="fdr_bh")[1])
        expected = fam.loc[fam["q"] <= level].set_index(["pair", "snp"])["q"]
        got = genome_wide_fdr(read, pd.DataFrame(tests_rows), level=level)
        got = pd.Series(got, index=pd.MultiIndex.from_frame(read[["pair", "snp"]]))
        got = got[(read["tissue"] == tissue).to_numpy() & (read["gene_type"] == group).to_numpy()].dropna()
        pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False, rtol=1e-12)
    if scope == "all":
        q_all = multipletests(everything["p_value"], method="fdr_bh")[1]
        expected = pd.Series(q_all, index=pd.MultiIndex.from_frame(everything[["pair", "tissue", "snp"]]))
        expected = expected[expected <= level]
        got = pd.Series(all_tests_fdr(read, pd.DataFrame(tests_rows), level=level),
                        index=pd.MultiIndex.from_frame(read[["pair", "tissue", "snp"]])).dropna()
        pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False, rtol=1e-12)
