"""tbeqtl.association.cis.map_nominal: exact OLS statistics, tensorQTL's columns and rules, input order.

References: statsmodels OLS per pair (``cis_cohort.ols``), hand-made genotype and position cases
(af, ma_samples, ma_count, start/end distance, window ends), tensorQTL's column list and dtypes
(``../shared/docs/tensorqtl-semantics.md``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from cis_cohort import imputed, make_cohort, ols, window_ids

from tbeqtl.association import cis_nominal as cis_nominal_module
from tbeqtl.association import map_nominal
from tbeqtl.errors import InputError
from tbeqtl.io.genotypes import FrameGenotypes

WINDOW = 150_000


@pytest.fixture(autouse=True)
def _propagate_tbeqtl_logs(monkeypatch):
    """caplog needs the tbeqtl logger to propagate (a CLI run in another module may have turned it off)."""
    monkeypatch.setattr(logging.getLogger("tbeqtl"), "propagate", True)


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(11, n_variants=1500, n_phenotypes=12, chroms=("chr1", "chr2"), span=1_000_000)


@pytest.fixture(scope="module")
def pairs(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("nominal")
    c = cohort
    files = map_nominal(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        "t",
        c.covariates_df,
        window=WINDOW,
        output_dir=out,
    )
    return files, pd.concat([pd.read_parquet(f) for f in files.values()], ignore_index=True)


def test_files_columns_and_dtypes(pairs, cohort):
    files, df = pairs
    assert sorted(files) == ["chr1", "chr2"]
    assert all(p.name == f"t.cis_qtl_pairs.{c}.parquet" for c, p in files.items())
    assert list(df.columns) == [
        "phenotype_id",
        "variant_id",
        "start_distance",
        "end_distance",
        "af",
        "ma_samples",
        "ma_count",
        "pval_nominal",
        "slope",
        "slope_se",
    ]
    dtypes = df.dtypes.astype(str).to_dict()
    assert dtypes["start_distance"] == dtypes["end_distance"] == "int32"
    assert dtypes["ma_samples"] == dtypes["ma_count"] == "int32"
    assert {dtypes[c] for c in ("af", "pval_nominal", "slope", "slope_se")} == {"float64"}
    # every variant of every window, in position order, once per phenotype
    for pid in cohort.phenotype_df.index:
        got = df.loc[df["phenotype_id"] == pid, "variant_id"].tolist()
        assert got == window_ids(cohort, pid, WINDOW)


def test_statistics_equal_statsmodels_ols(pairs, cohort):
    _, df = pairs
    c = cohort
    samples = c.phenotype_df.columns
    cov = c.covariates_df.loc[samples].to_numpy()
    missing = set(c.genotype_df.index[(c.genotype_df[samples] < 0).any(axis=1)])
    rng = np.random.default_rng(0)
    checked = with_missing = 0
    for pid in c.phenotype_df.index[:4]:
        sub = df[df["phenotype_id"] == pid].set_index("variant_id")
        ids = [v for v in sub.index if v in missing] + list(rng.choice(sub.index, 25, replace=False))
        y = c.phenotype_df.loc[pid, samples].to_numpy()
        for vid in dict.fromkeys(ids):
            g = imputed(c, vid, samples)
            if np.ptp(g) == 0:
                assert sub.loc[vid, ["pval_nominal", "slope", "slope_se"]].isna().all()
                continue
            slope, se, p, _ = ols(y, cov, g)
            row = sub.loc[vid]
            np.testing.assert_allclose(
                [row["slope"], row["slope_se"], row["pval_nominal"]], [slope, se, p], rtol=1e-8
            )
            checked += 1
            with_missing += vid in missing
    assert checked > 80 and with_missing >= 3


def test_monomorphic_variants_are_nan_rows(pairs, cohort):
    _, df = pairs
    samples = cohort.phenotype_df.columns
    g = cohort.genotype_df[samples]
    mono = g.index[(g.max(axis=1) == g.min(axis=1)).to_numpy()]
    rows = df[df["variant_id"].isin(mono)]
    assert len(rows) > 0
    assert rows[["pval_nominal", "slope", "slope_se"]].isna().all().all()
    # all 0 or all 2: no minor allele; all 1 (af = 0.5): every sample counts, ma_count = n
    n = len(samples)
    value = g.loc[rows["variant_id"]].iloc[:, 0].to_numpy()
    np.testing.assert_array_equal(rows["ma_count"], np.where(value == 1, n, 0))
    np.testing.assert_array_equal(rows["af"], value / 2)


def _tiny(genotypes: dict, positions: dict, *, n=40, seed=0, pos_df=None):
    """Hand-made input: one phenotype on chr1 at TSS 1,000,000, the given variants."""
    rng = np.random.default_rng(seed)
    samples = [f"S{i:02d}" for i in range(n)]
    geno = pd.DataFrame(
        [genotypes.get(v, rng.integers(0, 3, n)) for v in positions], index=list(positions), columns=samples
    )
    var = pd.DataFrame({"chrom": "chr1", "pos": list(positions.values())}, index=list(positions))
    pheno = pd.DataFrame([rng.normal(size=n)], index=["G1"], columns=samples)
    if pos_df is None:
        pos_df = pd.DataFrame({"chr": ["chr1"], "pos": [1_000_000]}, index=["G1"])
    return geno, var, pheno, pos_df


def test_window_is_inclusive_at_both_ends_and_distances(tmp_path):
    w = 1000
    positions = {
        "lo_out": 999_999 - w,
        "lo_in": 1_000_000 - w,
        "mid": 1_000_500,
        "hi_in": 1_002_000 + w,
        "hi_out": 1_002_001 + w,
    }
    pos_df = pd.DataFrame({"chr": ["1"], "start": [1_000_000], "end": [1_002_000]}, index=["G1"])
    geno, var, pheno, pos_df = _tiny({}, positions, pos_df=pos_df)
    files = map_nominal(geno, var, pheno, pos_df, "w", window=w, output_dir=tmp_path)
    df = pd.read_parquet(files["chr1"])
    assert df["variant_id"].tolist() == ["lo_in", "mid", "hi_in"]
    assert df["start_distance"].tolist() == [-w, 500, 2000 + w]
    assert df["end_distance"].tolist() == [-2000 - w, -1500, w]
    # single positions (tensorQTL's 'pos'; or start == end everywhere): no end_distance column
    pos_only = pd.DataFrame({"chrom": ["chr1"], "start": [1_000_000], "end": [1_000_000]}, index=["G1"])
    files = map_nominal(geno, var, pheno, pos_only, "p", window=w, output_dir=tmp_path)
    df = pd.read_parquet(files["chr1"])
    assert "end_distance" not in df.columns
    assert df["variant_id"].tolist() == ["lo_in", "mid"]  # 1,002,000 + w is outside [pos - w, pos + w]


def test_af_ma_samples_ma_count_hand_made(tmp_path):
    n = 10
    genotypes = {
        # af = 6/20 <= 0.5: ma_samples = #{g > 0.5} = 4, ma_count = 1+1+2+2 = 6
        "low": [0, 0, 0, 0, 0, 0, 1, 1, 2, 2],
        # af = 15/20 > 0.5: ma_samples = #{g < 1.5} = 5, ma_count = 20 - 15 = 5
        "high": [2, 2, 2, 2, 2, 1, 1, 1, 1, 1],
        # missing calls imputed to the mean 7/8 = 0.875 (> 0.5, counted): sum = 7 + 1.75 = 8.75,
        # af = 8.75/20 = 0.4375; ma_samples = 5 + 2 = 7; ma_count = int(1+1+1+2+2 + 1.75) = 8
        "imputed": [0, 0, 0, 1, 1, 1, 2, 2, -9, -9],
        # imputed to 1.625 (> 0.5 and >= 1.5): sum = 13 + 3.25 = 16.25, af = 0.8125 > 0.5;
        # ma_samples = #{g < 1.5} = 2; ma_count = 20 - int(16.25) = 4
        "imp_high": [2, 2, 2, 2, 2, 2, 1, 0, -9, -9],
    }
    positions = {v: 1_000_000 + i for i, v in enumerate(genotypes)}
    geno, var, pheno, pos_df = _tiny(
        {k: np.array(v, dtype=np.int8) for k, v in genotypes.items()}, positions, n=n
    )
    files = map_nominal(geno.astype(np.int8), var, pheno, pos_df, "a", window=10, output_dir=tmp_path)
    df = pd.read_parquet(files["chr1"]).set_index("variant_id")
    np.testing.assert_allclose(df["af"], [0.3, 0.75, 0.4375, 0.8125])
    assert df["ma_samples"].tolist() == [4, 5, 7, 2]
    assert df["ma_count"].tolist() == [6, 5, 8, 4]


def _shuffled_run(cohort, tmp_path, rng, name):
    c = cohort
    geno = c.genotype_df.sample(frac=1.0, random_state=int(rng.integers(1 << 30)))
    geno = geno[list(rng.permutation(geno.columns))]
    pheno = c.phenotype_df[list(rng.permutation(c.phenotype_df.columns))]
    pheno = pheno.loc[list(rng.permutation(pheno.index))]
    cov = c.covariates_df.loc[list(rng.permutation(c.covariates_df.index))].T  # MatrixEQTL orientation
    return map_nominal(
        FrameGenotypes(geno, c.variant_df.loc[geno.index]),
        None,
        pheno,
        c.phenotype_pos_df,
        name,
        cov,
        window=WINDOW,
        output_dir=tmp_path,
    )


def test_results_do_not_depend_on_input_order(pairs, cohort, tmp_path):
    files, _ = pairs
    again = _shuffled_run(cohort, tmp_path, np.random.default_rng(5), "s")
    for chrom, path in files.items():
        pd.testing.assert_frame_equal(
            pd.read_parquet(again[chrom]), pd.read_parquet(path), check_exact=False, rtol=1e-12, atol=0
        )


def test_row_groups_stream_in_small_pieces(cohort, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    c = cohort
    monkeypatch.setattr(cis_nominal_module, "ROWS_PER_GROUP", 100)
    monkeypatch.setattr(cis_nominal_module, "MAX_UNION", 50)  # one phenotype per product
    files = map_nominal(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        "r",
        c.covariates_df,
        window=WINDOW,
        output_dir=tmp_path,
    )
    ref = map_nominal(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        "q",
        c.covariates_df,
        window=WINDOW,
        output_dir=tmp_path / "ref",
    )
    for chrom, path in files.items():
        assert pq.ParquetFile(path).num_row_groups > 3
        pd.testing.assert_frame_equal(
            pd.read_parquet(path), pd.read_parquet(ref[chrom]), check_exact=False, rtol=1e-12, atol=0
        )
    assert not list(tmp_path.glob(".*.tmp"))  # temporary files renamed or removed


def test_maf_and_mac_thresholds_drop_variants(pairs, cohort, tmp_path):
    _, df = pairs
    c = cohort
    files = map_nominal(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        "m",
        c.covariates_df,
        window=WINDOW,
        output_dir=tmp_path,
        maf_threshold=0.1,
        mac_threshold=60,
    )
    got = pd.concat([pd.read_parquet(f) for f in files.values()], ignore_index=True)
    maf = np.minimum(df["af"], 1 - df["af"])
    expected = df[(maf >= 0.1) & (df["ma_count"] >= 60)]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
    assert len(expected) < len(df)


# ------------------------------------------------------------------------------------------------ bad input
def test_phenotype_sample_without_genotypes(cohort, tmp_path):
    c = cohort
    pheno = c.phenotype_df.rename(columns={c.phenotype_df.columns[3]: "NOBODY"})
    with pytest.raises(InputError, match="without genotypes.*NOBODY"):
        map_nominal(
            c.genotype_df, c.variant_df, pheno, c.phenotype_pos_df, "x", c.covariates_df, output_dir=tmp_path
        )


def test_phenotypes_on_a_chromosome_without_variants_are_skipped_and_counted(cohort, tmp_path, caplog):
    c = cohort
    pos = c.phenotype_pos_df.copy()
    pos.loc[pos.index[:2], "chr"] = "chr7"
    with caplog.at_level(logging.WARNING, logger="tbeqtl"):
        files = map_nominal(
            c.genotype_df,
            c.variant_df,
            c.phenotype_df,
            pos.sort_values(["chr", "start"]),
            "x",
            c.covariates_df,
            window=WINDOW,
            output_dir=tmp_path,
        )
    assert "2 phenotype(s) on chromosomes without variants skipped (chr7)" in caplog.text
    got = pd.concat([pd.read_parquet(f) for f in files.values()])
    assert set(got["phenotype_id"]) == set(c.phenotype_df.index[2:])


def test_unsorted_positions_name_the_rows(cohort, tmp_path):
    c = cohort
    pos = c.phenotype_pos_df.copy()
    a, b = pos.index[1], pos.index[2]
    pos.loc[[a, b], ["start", "end"]] = pos.loc[[b, a], ["start", "end"]].to_numpy()
    with pytest.raises(InputError, match=f"not sorted.*{b}"):
        map_nominal(
            c.genotype_df, c.variant_df, c.phenotype_df, pos, "x", c.covariates_df, output_dir=tmp_path
        )


def test_nan_covariates_are_an_error(cohort, tmp_path):
    c = cohort
    cov = c.covariates_df.copy()
    cov.iloc[5, 2] = np.nan
    with pytest.raises(InputError, match="missing values"):
        map_nominal(
            c.genotype_df, c.variant_df, c.phenotype_df, c.phenotype_pos_df, "x", cov, output_dir=tmp_path
        )


def test_constant_interaction_term_is_an_error(cohort, tmp_path):
    c = cohort
    inter = pd.Series(0.5, index=c.phenotype_df.columns, name="score")
    with pytest.raises(InputError, match="constant"):
        map_nominal(
            c.genotype_df,
            c.variant_df,
            c.phenotype_df,
            c.phenotype_pos_df,
            "x",
            c.covariates_df,
            interaction_df=inter,
            output_dir=tmp_path,
        )


def test_interaction_pairs_equal_statsmodels(cohort, tmp_path):
    import statsmodels.api as sm

    from tbeqtl.association.interaction import interaction_maf_mask

    c = cohort
    samples = c.phenotype_df.columns
    rng = np.random.default_rng(2)
    inter = pd.Series(rng.uniform(size=samples.size), index=samples, name="score")
    files = map_nominal(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        "i",
        c.covariates_df,
        interaction_df=inter,
        window=WINDOW,
        output_dir=tmp_path,
    )
    df = pd.concat([pd.read_parquet(f) for f in files.values()], ignore_index=True)
    stat = ["b_g", "b_g_se", "pval_g", "b_i", "b_i_se", "pval_i", "b_gi", "b_gi_se", "pval_gi"]
    assert list(df.columns[7:]) == stat
    cov = c.covariates_df.loc[samples].to_numpy()
    i = inter.to_numpy()
    for pid in c.phenotype_df.index[:2]:
        sub = df[df["phenotype_id"] == pid].set_index("variant_id")
        ids = window_ids(c, pid, WINDOW)
        g_all = np.vstack([imputed(c, v, samples) for v in ids])
        keep = interaction_maf_mask(g_all, i, threshold=0.05)  # the other engineer's rule (plumbing)
        assert sub.index.tolist() == [v for v, k in zip(ids, keep, strict=True) if k]
        y = c.phenotype_df.loc[pid, samples].to_numpy()
        for vid in rng.choice(sub.index, 8, replace=False):
            g = imputed(c, vid, samples)
            fit = sm.OLS(y, sm.add_constant(np.column_stack([cov, g, i, g * i]))).fit()
            want = np.column_stack([fit.params[-3:], fit.bse[-3:], fit.pvalues[-3:]]).ravel()
            np.testing.assert_allclose(sub.loc[vid, stat].to_numpy(float), want, rtol=1e-7)
