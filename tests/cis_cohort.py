"""A small GEUVADIS-like cohort for the cis tests, and float64 reference implementations.

The cohort: individuals with genotypes (int8 ALT counts, -9 missing, some monomorphic variants,
LD between neighbours), more individuals in the genotype table than in the expression, covariates
(samples x covariates, tensorQTL's orientation), phenotypes with planted cis effects, positions as
tensorQTL's ``read_phenotype_bed`` gives them.

The references do not share code with tbeqtl: statsmodels OLS per pair, and a plain numpy
float64 loop for the permutation maxima.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm


@dataclass
class Cohort:
    genotype_df: pd.DataFrame  # variants x individuals, int8, -9 missing
    variant_df: pd.DataFrame  # chrom, pos
    phenotype_df: pd.DataFrame  # phenotypes x samples
    phenotype_pos_df: pd.DataFrame  # chr, start, end (1-based) or chr, pos
    covariates_df: pd.DataFrame  # samples x covariates
    causal: dict  # phenotype -> list of causal variant IDs


def make_cohort(
    seed: int = 0,
    *,
    n: int = 445,
    n_variants: int = 2000,
    n_phenotypes: int = 24,
    n_covariates: int = 6,
    chroms: tuple[str, ...] = ("chr1",),
    span: int = 2_000_000,
    extra_individuals: int = 15,
    intervals: bool = True,
    effect: float = 0.6,
) -> Cohort:
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(10_000, 99_999), size=n + extra_individuals, replace=False)
    individuals = np.array([f"NA{i:05d}" for i in ids])
    samples = individuals[:n]
    g_rows, v_ids, v_chrom, v_pos = [], [], [], []
    per_chrom = n_variants // len(chroms)
    for c in chroms:
        pos = np.sort(rng.choice(np.arange(1, span), size=per_chrom, replace=False))
        prev = None
        for k, p in enumerate(pos):
            af = rng.uniform(0.03, 0.6)
            g = rng.binomial(2, af, size=individuals.size).astype(np.int8)
            if prev is not None and rng.uniform() < 0.5:  # LD with the previous variant
                copy = rng.uniform(size=individuals.size) < 0.9
                g = np.where(copy, prev, g)
            if k % 97 == 5:
                g[:] = rng.integers(0, 3)  # monomorphic
            prev = g.copy()
            if rng.uniform() < 0.05:  # missing calls
                miss = rng.uniform(size=individuals.size) < rng.uniform(0.005, 0.04)
                g[miss] = -9
            g_rows.append(g)
            v_ids.append(f"{c}_{p}_A_G_b38")
            v_chrom.append(c)
            v_pos.append(p)
    genotype_df = pd.DataFrame(np.vstack(g_rows), index=v_ids, columns=individuals)
    variant_df = pd.DataFrame({"chrom": v_chrom, "pos": np.array(v_pos, dtype=np.int64)}, index=v_ids)
    cov = rng.normal(size=(n, n_covariates))
    cov[:, 0] = rng.integers(1, 3, size=n)  # a sex-like covariate
    covariates_df = pd.DataFrame(cov, index=samples, columns=[f"PC{i + 1}" for i in range(n_covariates)])
    phen, pos_rows, causal = [], [], {}
    per_c = n_phenotypes // len(chroms)
    for c in chroms:
        tss = np.sort(rng.choice(np.arange(50_000, span - 50_000), size=per_c, replace=False))
        vsel = np.flatnonzero(np.array(v_chrom) == c)
        for t in tss:
            pid = f"ENSG{len(phen):05d}"
            y = cov @ rng.normal(scale=0.3, size=n_covariates) + rng.normal(size=n)
            near = vsel[np.abs(np.array(v_pos)[vsel] - t) < 150_000]
            causal[pid] = []
            if near.size and rng.uniform() < 0.7:
                for v in rng.choice(near, size=min(int(rng.integers(1, 3)), near.size), replace=False):
                    g = genotype_df.iloc[v, :n].to_numpy(float)
                    g[g < 0] = np.nanmean(np.where(g < 0, np.nan, g))
                    if np.ptp(g) > 0:
                        y = y + effect * (g - g.mean()) / g.std()
                        causal[pid].append(v_ids[v])
            phen.append(pd.Series(y, index=samples, name=pid))
            length = int(rng.integers(1_000, 40_000))
            pos_rows.append((pid, c, t, t + length if intervals else t))
    phenotype_df = pd.DataFrame(phen)
    pos_df = pd.DataFrame(pos_rows, columns=["phenotype_id", "chr", "start", "end"]).set_index("phenotype_id")
    if not intervals:
        pos_df = pos_df.rename(columns={"start": "pos"}).drop(columns="end")
    return Cohort(genotype_df, variant_df, phenotype_df, pos_df, covariates_df, causal)


def imputed(cohort: Cohort, variant_id: str, samples) -> np.ndarray:
    """Mean-imputed dosages of one variant over ``samples``."""
    g = cohort.genotype_df.loc[variant_id, list(samples)].to_numpy(float)
    g[g < 0] = np.nan
    g[np.isnan(g)] = np.nanmean(g) if np.isfinite(g).any() else 0.0
    return g


def ols(y: np.ndarray, covariates: np.ndarray, g: np.ndarray, extra: list[np.ndarray] = ()):
    """statsmodels OLS y ~ 1 + covariates + extra + g: (slope, se, p, df)."""
    design = sm.add_constant(np.column_stack([covariates, *extra, g]), has_constant="add")
    fit = sm.OLS(y, design).fit()
    return fit.params[-1], fit.bse[-1], fit.pvalues[-1], fit.df_resid


def window_ids(cohort: Cohort, pid: str, window: int) -> list[str]:
    """Variant IDs in the cis window of ``pid``, sorted by position then ID."""
    pos = cohort.phenotype_pos_df.loc[pid]
    start = pos["start"] if "start" in pos else pos["pos"]
    end = pos["end"] if "end" in pos else pos["pos"]
    v = cohort.variant_df[(cohort.variant_df["chrom"] == pos["chr"])]
    v = v[(v["pos"] >= start - window) & (v["pos"] <= end + window)]
    return list(v.assign(vid=v.index).sort_values(["pos", "vid"]).index)


def r2_perm_reference(y, covariates, genotypes, perms) -> np.ndarray:
    """max_v r^2(g_v, perm_j(y)) with every vector residualised on [1, C] by lstsq, in float64."""
    design = np.column_stack([np.ones(y.size), covariates])

    def resid(m):
        beta, *_ = np.linalg.lstsq(design, m.T, rcond=None)
        return m - (design @ beta).T

    g = resid(np.asarray(genotypes, float))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    yp = resid(y[perms])
    yp /= np.linalg.norm(yp, axis=1, keepdims=True)
    out = np.empty(len(perms))
    for j in range(len(perms)):
        out[j] = np.max((g @ yp[j]) ** 2)
    return out
