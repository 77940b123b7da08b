"""tbeqtl.association.post: q-values vs a hand-written Storey computation, tensorQTL's nominal threshold
and the GTEx significant pairs on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tbeqtl.association import calculate_qvalues, get_significant_pairs
from tbeqtl.errors import InputError


def _cis_table(p_beta, *, seed=0):
    rng = np.random.default_rng(seed)
    m = len(p_beta)
    return pd.DataFrame(
        {
            "pval_nominal": np.asarray(p_beta) / 50,
            "beta_shape1": rng.uniform(0.9, 1.1, m),
            "beta_shape2": rng.uniform(50, 500, m),
            "pval_perm": np.asarray(p_beta) * 1.01,
            "pval_beta": p_beta,
        },
        index=pd.Index([f"G{i:03d}" for i in range(m)], name="phenotype_id"),
    )


def _storey_by_hand(p, lam):
    """pi0 = #{p >= lambda} / (m (1 - lambda)), capped at 1; q = pi0 * min(1, min_{j >= i} p_(j) m / j)."""
    m = len(p)
    pi0 = min(1.0, sum(1 for x in p if x >= lam) / (m * (1 - lam)))
    order = sorted(range(m), key=lambda i: p[i])
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        q[i] = pi0 * min(running, 1.0)
    return q, pi0


def test_qvalues_equal_a_hand_written_storey_at_a_fixed_lambda():
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(size=80), rng.uniform(0, 1e-4, size=20)])
    table = _cis_table(p)
    out = calculate_qvalues(table, qvalue_lambda=0.4)
    assert out is table  # tensorQTL adds the columns in place; returned for chaining
    q, pi0 = _storey_by_hand(list(p), 0.4)
    assert pi0 < 1
    np.testing.assert_allclose(table["qval"], q, rtol=1e-12)


def test_pval_nominal_threshold_hand_made():
    # lambda = 0: pi0 = 1, q = BH: [4e-6, 2e-4, 0.2667, 0.5]; the first two pass at 0.05
    table = _cis_table([1e-6, 1e-4, 0.2, 0.5])
    calculate_qvalues(table, qvalue_lambda=0.0)
    np.testing.assert_allclose(table["qval"], [4e-6, 2e-4, 0.8 / 3, 0.5])
    p_t = (1e-4 + 0.2) / 2
    want = stats.beta.ppf(p_t, table["beta_shape1"], table["beta_shape2"])
    np.testing.assert_allclose(table["pval_nominal_threshold"], want, rtol=1e-12)
    # every phenotype passes: p_t is the largest pval_beta
    table = _cis_table([1e-6, 1e-5])
    calculate_qvalues(table, qvalue_lambda=0.0)
    np.testing.assert_allclose(
        table["pval_nominal_threshold"], stats.beta.ppf(1e-5, table["beta_shape1"], table["beta_shape2"])
    )
    # none passes: NaN thresholds
    table = _cis_table([0.3, 0.6, 0.9])
    calculate_qvalues(table, qvalue_lambda=0.0)
    assert table["pval_nominal_threshold"].isna().all()


def test_failed_beta_fits_get_no_qvalue():
    table = _cis_table([1e-6, np.nan, 0.2, 0.5])
    calculate_qvalues(table, qvalue_lambda=0.0)
    assert np.isnan(table["qval"].iloc[1])
    np.testing.assert_allclose(table["qval"].drop(table.index[1]), [3e-6, 0.3, 0.5])
    with pytest.raises(InputError, match="qvalue_lambda"):
        calculate_qvalues(_cis_table([0.1, 0.2]), qvalue_lambda=1.0)


def _write_pairs(folder, prefix):
    files = {}
    for chrom, genes in (("chr1", ["G000", "G001", "G002"]), ("chr2", ["G003"])):
        rows = []
        for g in genes:
            for k, p in enumerate([1e-9, 1e-5, 1e-3, 0.3]):
                rows.append(
                    {
                        "phenotype_id": g,
                        "variant_id": f"{chrom}_{g}_{k}",
                        "start_distance": k * 100,
                        "af": 0.2,
                        "ma_samples": 10,
                        "ma_count": 12,
                        "pval_nominal": p,
                        "slope": 0.5,
                        "slope_se": 0.1,
                    }
                )
        path = folder / f"{prefix}.cis_qtl_pairs.{chrom}.parquet"
        df = pd.DataFrame(rows).astype(
            {"start_distance": np.int32, "ma_samples": np.int32, "ma_count": np.int32}
        )
        df.to_parquet(path, index=False)
        files[chrom] = path
    return files


def test_significant_pairs_hand_made(tmp_path):
    files = _write_pairs(tmp_path, "t")
    table = _cis_table([1e-6, 1e-4, 0.2, 1e-8])
    table["qval"] = [0.01, 0.04, 0.3, 0.001]
    table["pval_nominal_threshold"] = [2e-5, 2e-3, 0.5, 1e-10]
    want = [("G000", 0), ("G000", 1), ("G001", 0), ("G001", 1), ("G001", 2)]  # chr1 first; G003 nothing
    for given in (files, str(tmp_path / "t"), str(tmp_path / "t.cis_qtl_pairs."), list(files.values())[::-1]):
        got = get_significant_pairs(table, given, fdr=0.05)
        assert [
            (g, int(v.rsplit("_", 1)[1])) for g, v in zip(got["phenotype_id"], got["variant_id"], strict=True)
        ] == want
        assert list(got.columns[-3:]) == ["pval_nominal_threshold", "min_pval_nominal", "pval_beta"]
        np.testing.assert_allclose(got["pval_nominal_threshold"], [2e-5, 2e-5, 2e-3, 2e-3, 2e-3])
        np.testing.assert_allclose(got["min_pval_nominal"], table.loc[got["phenotype_id"], "pval_nominal"])
    with pytest.raises(InputError, match="calculate_qvalues"):
        get_significant_pairs(table.drop(columns="qval"), files)
    with pytest.raises(InputError, match="no nominal pair files"):
        get_significant_pairs(table, str(tmp_path / "absent"))


def test_smoother_pi0_at_or_below_zero_falls_back_to_bh():
    # no p-value above 0.3: pi0(lambda) = 0 beyond it and the smoothing spline ends below 0
    p = np.r_[np.full(15, 1e-8), np.linspace(0.05, 0.3, 5)]
    table = _cis_table(p)
    calculate_qvalues(table)
    q, _ = _storey_by_hand(list(p), 0.0)  # lambda = 0: pi0 = 1, plain BH
    np.testing.assert_allclose(table["qval"], q, rtol=1e-12)
