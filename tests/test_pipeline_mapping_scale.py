"""The pipeline's fast eQTL-stage paths against slow references written here with plain pandas/numpy.

Factor-set restriction (topic bit masks, codes for sorting, the null's keys), the factor blocks'
union, the exhaustive mapping's order, and the chunked TSV / arrow parquet writers give exactly what
the straightforward computation gives: same rows, same order (ties in p broken by SNP then gene
ID), same numbers, same bytes.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

from tbeqtl.atomic import write_rows_tsv, write_table
from tbeqtl.pipeline import mapping as mp
from tbeqtl.pipeline.jobs import mapping as jm
from tbeqtl.schema import validate_table


def _group(gene_type) -> str:
    """The per-type FDR strata of the paper, written out independently."""
    if gene_type == "protein_coding":
        return "protein_coding"
    return "lincRNA" if str(gene_type).lower() in ("lincrna", "lncrna") else "other"


def _bh(p) -> np.ndarray:
    return multipletests(np.asarray(p, dtype=float), method="fdr_bh")[1] if len(p) else np.empty(0)


def _bh_kept(p, threshold: float) -> np.ndarray:
    """MatrixEQTL's FDR of the rows it outputs (p <= threshold): BH with m = all tests, the running
    minimum taken over the output rows only; NaN for the others. Equals statsmodels' BH at threshold 1.
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.size, np.nan)
    kept = np.flatnonzero(p <= threshold)
    order = kept[np.argsort(p[kept], kind="stable")]
    ranked = p[order] * p.size / np.arange(1, order.size + 1)
    out[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    if threshold >= 1:
        np.testing.assert_allclose(out, _bh(p), rtol=1e-12)
    return out


def _tests_table(rng, n_pairs=400):
    """Unsorted tests with tied p-values, several topics per pair (some >= 64), shared and own lists."""
    snps = [f"rs{v}" for v in rng.choice(10_000, 40, replace=False)]
    genes = [f"ENSG{v:05d}.{v % 7}" for v in rng.choice(99_999, 25, replace=False)]
    pairs = rng.choice(len(snps) * len(genes), n_pairs, replace=False)
    shared = [[0], [0, 3], [3, 70], [1, 2, 130]]
    topics = [shared[i % 4] if i % 3 else sorted(set(rng.choice([0, 1, 2, 3, 64, 70, 130], 2).tolist()))
              for i in range(n_pairs)]
    types = np.array(["protein_coding", "lincRNA", "lncRNA", "snoRNA"], dtype=object)
    tests = pd.DataFrame({
        "snp": np.array(snps, dtype=object)[pairs // len(genes)],
        "gene": np.array(genes, dtype=object)[pairs % len(genes)],
        "beta": rng.standard_normal(n_pairs),
        "t_stat": rng.standard_normal(n_pairs),
        "p_value": rng.choice([1e-9, 1e-4, 0.003, 0.02, 0.5, 1.0], n_pairs),  # many ties
        "class": np.where(rng.random(n_pairs) < 0.3, "cis", "trans").astype(object),
        "topics": topics,
        "gene_type": types[pairs % len(genes) % 4],
    })
    null = pd.concat([tests.sample(frac=0.7, random_state=1)[["snp", "gene", "class"]].assign(
        p_value=rng.random(int(round(0.7 * n_pairs))), permutation=b) for b in range(2)], ignore_index=True)
    stray = pd.DataFrame({"snp": ["rs_absent", snps[0]], "gene": [genes[0], "ENSG_absent"], "class": "trans",
                          "p_value": [1e-12, 1e-12], "permutation": 0})
    return tests, pd.concat([null, stray], ignore_index=True)


def _reference_restrict(tests: pd.DataFrame, null: pd.DataFrame, topics: list[int]):
    """The factor set with Python sets, per-row loops and statsmodels' BH."""
    chosen = set(topics)
    rows = [i for i, ts in enumerate(tests["topics"]) if chosen & set(ts)]
    sel = tests.iloc[rows].copy()
    sel["topics"] = [[t for t in ts if t in chosen] for ts in sel["topics"]]
    sel["fdr"] = np.nan
    sel["fdr_by_type"] = np.nan
    n_tests, p_by, null_by = {}, {}, {}
    keys = {(s, g) for s, g in zip(sel["snp"], sel["gene"], strict=True)}
    for klass in ("cis", "trans"):
        in_class = (sel["class"] == klass).to_numpy()
        n_tests[klass] = int(in_class.sum())
        if in_class.any():
            p_by[klass] = sel.loc[in_class, "p_value"].to_numpy()
            sel.loc[in_class, "fdr"] = _bh(p_by[klass])
            null_by[klass] = np.array([p for s, g, c, p in zip(null["snp"], null["gene"], null["class"],
                                                               null["p_value"], strict=True)
                                       if c == klass and (s, g) in keys])
        groups = np.array([f"{klass}:{_group(t)}" for t in sel["gene_type"]])
        for group in sorted(set(groups[in_class])):
            in_group = in_class & (groups == group)
            n_tests[group] = int(in_group.sum())
            sel.loc[in_group, "fdr_by_type"] = _bh(sel.loc[in_group, "p_value"])
    order = sorted(range(len(sel)), key=lambda i: (sel["p_value"].iloc[i], sel["snp"].iloc[i],
                                                   sel["gene"].iloc[i]))
    return sel.iloc[order].reset_index(drop=True), n_tests, p_by, null_by


@pytest.mark.parametrize("topics", [[0, 2], [70], [3, 64, 130], [5], [], [0, 1, 2, 3, 64, 70, 130]])
def test_restrict_matches_slow_reference(rng, topics):
    tests, null = _tests_table(rng)
    assert tests["p_value"].duplicated().sum() > 300  # ties decide the order by SNP, then gene
    got = mp.restrict_to_factor_set(tests, null, topics)
    ref, n_tests, p_by, null_by = _reference_restrict(tests, null, topics)
    assert got.n_tests == n_tests and list(got.n_tests) == list(n_tests)  # run.json keeps this order
    assert got.topics == sorted(topics)
    assert list(got.tests_df.columns) == list(ref.columns)
    pd.testing.assert_frame_equal(got.tests_df.drop(columns=["fdr", "fdr_by_type"]),
                                  ref.drop(columns=["fdr", "fdr_by_type"]), check_exact=True)
    for col in ("fdr", "fdr_by_type"):
        np.testing.assert_allclose(got.tests_df[col], ref[col], rtol=1e-12)
    pd.testing.assert_frame_equal(got.qq_df, mp.qq_table(p_by, null_by, max_points=mp.QQ_MAX_POINTS,
                                                         keep_top=mp.QQ_KEEP_TOP))
    assert got.hist_df["count"].sum() == sum(len(p) for p in p_by.values())
    pd.testing.assert_frame_equal(got.hist_df, mp.pvalue_histogram(p_by))


def test_iter_factor_sets_equals_one_set_at_a_time(rng):
    tests, null = _tests_table(rng)
    sets = [[0], [3, 70], [], [1, 130]]
    for topics, result in zip(sets, mp.iter_factor_sets(tests, null, sets), strict=True):
        one = mp.restrict_to_factor_set(tests, null, topics)
        pd.testing.assert_frame_equal(result.tests_df, one.tests_df, check_exact=True)
        assert result.n_tests == one.n_tests
        pd.testing.assert_frame_equal(result.qq_df, one.qq_df)


def _inputs(rng, *, n=50):
    """SNPs on two chromosomes (cis and trans pairs), duplicated SNP rows (tied p-values), gene types."""
    samples = [f"s{i}" for i in range(n)]
    geno = rng.binomial(2, 0.35, size=(14, n)).astype(float)
    geno[7], geno[11] = geno[2], geno[5]  # same genotypes under other IDs: the same p for every gene
    snps = [f"rs{v}" for v in (905, 12, 300, 41, 77, 5, 610, 88, 23, 999, 402, 64, 150, 3)]
    genes = ["gB", "gA", "gD", "gC", "gF", "gE", "gH", "gG"]
    expr = rng.standard_normal((len(genes), n))
    expr[0] += 0.9 * geno[0]
    expr[3] += 0.7 * geno[2]
    covs = pd.DataFrame(rng.standard_normal((2, n)), index=["c1", "c2"], columns=samples)
    snp_pos = pd.DataFrame({"chrom": ["chr1"] * 7 + ["chr2"] * 7, "pos": np.arange(14) * 3_000_000 + 10},
                           index=snps)
    gene_pos = pd.DataFrame({"chrom": ["chr1"] * 4 + ["chr2"] * 4, "start": np.arange(8) * 5_000_000 + 1_000,
                             "end": np.arange(8) * 5_000_000 + 3_000}, index=genes)
    types = pd.Series(["protein_coding", "lincRNA", "lncRNA", "misc_RNA"] * 2, index=genes)
    return mp.TissueInputs("T", pd.DataFrame(geno, index=snps, columns=samples),
                           pd.DataFrame(expr, index=genes, columns=samples), covs, snp_pos, gene_pos, types)


def _ols(inputs: mp.TissueInputs, snp: str, gene: str):
    x = sm.add_constant(np.column_stack([inputs.genotype_df.loc[snp], inputs.covariates_df.T]))
    fit = sm.OLS(inputs.expression_df.loc[gene].to_numpy(), x).fit()
    return fit.params[1], fit.pvalues[1]


def test_factor_blocks_union_matches_slow_reference(rng):
    inputs = _inputs(rng)
    blocks = {0: (pd.Index(["rs905", "rs300", "rs88"]), pd.Index(["gB", "gC", "gE"])),
              3: (pd.Index(["rs300", "rs5"]), pd.Index(["gC", "gH"])),
              64: (pd.Index(["rs300", "rs88", "rs3"]), pd.Index(["gC", "gA"])),
              130: (pd.Index(["rs610"]), pd.Index(["gG"]))}
    tests, null = mp.map_factor_blocks(inputs, blocks, n_permutations=1, seed=2)
    proposers: dict = {}
    for topic, (snps, genes) in blocks.items():
        for s in snps:
            for g in genes:
                proposers.setdefault((s, g), set()).add(topic)
    expected = sorted(proposers)
    assert list(zip(tests["snp"], tests["gene"], strict=True)) == expected
    assert [list(ts) for ts in tests["topics"]] == [sorted(proposers[k]) for k in expected]
    assert tests.loc[(tests.snp == "rs300") & (tests.gene == "gC"), "topics"].iloc[0] == [0, 3, 64]
    assert list(tests["gene_type"]) == [inputs.gene_types_s[g] for _, g in expected]
    for row in tests.itertuples():
        beta, p = _ols(inputs, row.snp, row.gene)
        assert row.beta == pytest.approx(beta, rel=1e-8) and row.p_value == pytest.approx(p, rel=1e-6)
    assert list(zip(null["snp"], null["gene"], strict=True)) == expected  # one permutation, same pairs
    assert list(null.columns) == ["snp", "gene", "class", "p_value", "permutation"]


@pytest.mark.parametrize("output_pvalue", [1.0, 0.3])
def test_exhaustive_matches_slow_reference(rng, output_pvalue):
    inputs = _inputs(rng)
    got = mp.exhaustive_mapping(inputs, output_pvalue=output_pvalue).tests_df
    ref = []
    snp_chrom, gene_chrom = inputs.snp_pos_df["chrom"], inputs.gene_pos_df["chrom"]
    for snp in inputs.genotype_df.index:
        for gene in inputs.expression_df.index:
            beta, p = _ols(inputs, snp, gene)
            near = (snp_chrom[snp] == gene_chrom[gene]
                    and inputs.gene_pos_df.loc[gene, "start"] - 1e6 <= inputs.snp_pos_df.loc[snp, "pos"]
                    <= inputs.gene_pos_df.loc[gene, "end"] + 1e6)
            ref.append((snp, gene, beta, p, "cis" if near else "trans", inputs.gene_types_s[gene]))
    ref = pd.DataFrame(ref, columns=["snp", "gene", "beta", "p_value", "class", "gene_type"])
    ref["fdr"], ref["fdr_by_type"] = np.nan, np.nan
    for sel in ref.groupby("class").groups.values():
        ref.loc[sel, "fdr"] = _bh_kept(ref.loc[sel, "p_value"], output_pvalue)
        groups = ref.loc[sel, "gene_type"].map(_group)
        for _, sub in groups.groupby(groups).groups.items():
            ref.loc[sub, "fdr_by_type"] = _bh_kept(ref.loc[sub, "p_value"], output_pvalue)
    ref = ref[ref["p_value"] <= output_pvalue]
    assert list(got.columns) == ["snp", "gene", "beta", "t_stat", "p_value", "fdr", "gene_type",
                                 "fdr_by_type", "class", "topics"]
    assert len(got) == len(ref) and all(ts == [] for ts in got["topics"])
    # sorted by (p, snp, gene) with the code's own p-values; duplicated SNPs give exact ties
    keys = list(zip(got["p_value"], got["snp"], got["gene"], strict=True))
    assert keys == sorted(keys)
    assert got["p_value"].duplicated().any()
    merged = got.merge(ref, on=["snp", "gene"], suffixes=("", "_ref"), validate="1:1")
    assert len(merged) == len(ref)
    assert (merged["class"] == merged["class_ref"]).all()
    assert (merged["gene_type"] == merged["gene_type_ref"]).all()
    for col, rel in (("beta", 1e-8), ("p_value", 1e-6), ("fdr", 1e-6), ("fdr_by_type", 1e-6)):
        np.testing.assert_allclose(merged[col], merged[f"{col}_ref"], rtol=rel)


def _pandas_tsv(table: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    table.to_csv(buffer, sep="\t", index=False, na_rep="NA")
    return buffer.getvalue().encode()


def test_tsv_writer_bytes_equal_pandas(rng, tmp_path):
    n = 2_500
    values = np.concatenate([[0.0, -0.0, 1.0, 1e-5, 1e-4, 1e16, 1e-300, 5e-324, np.inf, np.nan, 0.1 + 0.2],
                             rng.standard_normal(n - 11) * 10.0 ** rng.integers(-30, 30, n - 11)])
    table = pd.DataFrame({"snp": [f"rs{i}" for i in range(n)],
                          "gene": rng.choice(["gA", "gB"], n).astype(object),
                          "beta": values, "p_value": rng.random(n) ** 6,
                          "gene_type": np.where(rng.random(n) < 0.1, None, "protein_coding").astype(object)})
    rows = np.flatnonzero(rng.random(n) < 0.8)[::-1]  # any order, written as given
    cols = ["snp", "gene", "beta", "p_value", "gene_type"]
    write_rows_tsv(table, rows, tmp_path / "fast.tsv", columns=cols, chunk_rows=333)
    assert (tmp_path / "fast.tsv").read_bytes() == _pandas_tsv(table.iloc[rows][cols])
    write_rows_tsv(table, rows[:0], tmp_path / "empty.tsv", columns=cols)
    assert (tmp_path / "empty.tsv").read_bytes() == _pandas_tsv(table.iloc[:0][cols])
    table.loc[rows[3], "gene"] = "needs\tquotes"  # pandas quotes it: the writer hands over to pandas
    write_rows_tsv(table, rows, tmp_path / "quoted.tsv", columns=cols)
    assert (tmp_path / "quoted.tsv").read_bytes() == _pandas_tsv(table.iloc[rows][cols])


def _old_write_factor_set_tsv(result: mp.FactorSetResult, klass: str, output_pvalue: float) -> bytes:
    tests = result.tests_df
    rows = tests.loc[(tests["class"] == klass) & (tests["p_value"] <= output_pvalue)]
    cols = [c for c in ("snp", "gene", "beta", "t_stat", "p_value", "fdr", "gene_type", "fdr_by_type")
            if c in rows.columns]
    return _pandas_tsv(validate_table(rows[cols].reset_index(drop=True), "eqtl_pairs"))


def _old_candidates(result: mp.FactorSetResult, level: float) -> pd.DataFrame:
    tests = result.tests_df
    rows = tests.loc[(tests["p_value"] <= level).to_numpy()].copy()
    rows["topics"] = [",".join(str(t) for t in ts) for ts in rows["topics"]]
    cols = [c for c in ("class", "snp", "gene", "beta", "t_stat", "p_value", "fdr", "gene_type",
                        "fdr_by_type", "topics") if c in rows.columns]
    return validate_table(rows[cols].reset_index(drop=True), "pipeline_candidates")


@pytest.mark.parametrize("kind", ["factor_set", "exhaustive", "empty"])
def test_written_files_equal_the_pandas_writers(rng, tmp_path, kind):
    inputs = _inputs(rng)
    if kind == "exhaustive":
        result = mp.exhaustive_mapping(inputs)
    else:
        tests, null = mp.map_factor_blocks(inputs, {0: (pd.Index(["rs905", "rs300"]), pd.Index(["gB", "gC"])),
                                                    1: (pd.Index(["rs300", "rs5"]), pd.Index(["gC", "gA"]))})
        result = mp.restrict_to_factor_set(tests, null, [0, 1] if kind == "factor_set" else [7])
    mp.write_factor_set(result, tmp_path, output_pvalue=0.6)
    for klass in ("cis", "trans"):
        assert (tmp_path / f"{klass}.tsv").read_bytes() == _old_write_factor_set_tsv(result, klass, 0.6)
    write_table(_old_candidates(result, 0.7), tmp_path / "old.parquet")
    jm._write_candidates(result, 0.7, tmp_path / "new.parquet", topics=kind != "exhaustive")
    old, new = pq.read_table(tmp_path / "old.parquet"), pq.read_table(tmp_path / "new.parquet")
    assert new.equals(old) and new.schema.metadata == old.schema.metadata
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "new.parquet"),
                                  pd.read_parquet(tmp_path / "old.parquet"), check_exact=True)
    if kind == "factor_set":
        assert set(pd.read_parquet(tmp_path / "new.parquet")["topics"]) >= {"0,1"}


def test_topic_texts_shared_and_own_lists():
    shared = [2, 64]
    topics = pd.Series([shared, [1], shared, [], [1]], dtype=object)
    assert jm._topic_texts(topics).tolist() == ["2,64", "1", "2,64", "", "1"]
    assert jm._topic_texts(topics.iloc[:0]).tolist() == []


def test_engine_rows_ordered_by_stat_then_ids_with_ties(rng):
    """recompute_fdr's order (MatrixEQTL's: |t| descending, ties by SNP then gene ID as text)."""
    from tbeqtl.association.result import recompute_fdr

    n = 300
    t = rng.choice([-4.0, 4.0, 2.5, -1.0, 0.3], n)  # |t| ties, with both signs
    pairs = pd.DataFrame({"snp": [f"rs{v}" for v in rng.integers(0, 40, n)],  # "rs10" < "rs9" as text
                          "gene": rng.choice(["gB", "gA", "g10", "g9"], n).astype(object),
                          "beta": t / 10, "t_stat": t, "p_value": 2 * (1 - np.tanh(np.abs(t))) / 2,
                          "gene_type": rng.choice(["protein_coding", "lncRNA", None], n).astype(object)})
    strata = {"trans": 1000, "trans:protein_coding": 400, "trans:lincRNA": 300, "trans:other": 300}
    got = recompute_fdr(pairs, strata, pool="trans")
    order = sorted(range(n), key=lambda i: (-abs(t[i]), pairs["snp"][i], pairs["gene"][i]))
    assert list(got["snp"]) == [pairs["snp"][i] for i in order]
    assert list(got["gene"]) == [pairs["gene"][i] for i in order]
    for group, types in (("protein_coding", ["protein_coding"]), ("lincRNA", ["lncRNA"]), ("other", [None])):
        sel = got["gene_type"].isin(types) if types != [None] else got["gene_type"].isna()
        p = got.loc[sel, "p_value"].to_numpy()
        ranked = np.sort(p) * strata[f"trans:{group}"] / np.arange(1, p.size + 1)
        expected = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
        np.testing.assert_allclose(np.sort(got.loc[sel, "fdr_by_type"].to_numpy()), expected, rtol=1e-12)
