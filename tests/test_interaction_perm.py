"""map_cis_interaction (interaction permutations) and ``tbeqtl cis --mode permutations --interaction``.

References, none sharing code with tbeqtl:

- the observed top variant and its b/se/p: statsmodels OLS of the full model
  ``y ~ 1 + C + g + i_1..i_m + g:i_1..g:i_m`` for every variant of the window (the tested set
  rebuilt here from tensorQTL's interaction MAF rule written in numpy);
- the permutation maxima: a loop over the variants refitting the full model by ``numpy.linalg.lstsq``
  on each permuted residual of ``y`` on ``[1, C, i]`` (the permutations drawn here with
  ``numpy.random.default_rng(seed).permutation`` over the samples sorted by ID, the documented rule);
- the beta approximation: ``scipy.stats.beta.fit`` of the permutation p-values at ``true_df``;
- q-values: a direct Storey computation at a fixed lambda per term;
- calibration: simulated phenotypes with strong genotype main effects and no interaction give
  uniform ``pval_beta`` (Kolmogorov-Smirnov); a planted interaction gives small ones.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from cis_cohort import imputed, make_cohort, window_ids
from scipy import stats

from tbeqtl.association import interaction_perm
from tbeqtl.association.interaction_perm import interaction_qvalues, map_cis_interaction
from tbeqtl.cli import main
from tbeqtl.errors import InputError
from tbeqtl.io import write_expression_bed
from tbeqtl.io.pgen import write_pgen

WINDOW = 60_000
NPERM = 200
SEED = 5
TERMS = ["age", "score"]


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(
        4, n=150, n_variants=500, n_phenotypes=6, chroms=("chr1", "chr2"), span=600_000, extra_individuals=5
    )


@pytest.fixture(scope="module")
def terms(cohort):
    rng = np.random.default_rng(17)
    samples = cohort.phenotype_df.columns
    return pd.DataFrame(
        {"age": rng.normal(50, 10, size=len(samples)), "score": rng.gamma(2.0, size=len(samples))},
        index=samples,
    )


def _run(c, terms, **kw):
    return map_cis_interaction(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        c.covariates_df,
        terms,
        nperm=NPERM,
        seed=SEED,
        window=WINDOW,
        keep_null=True,
        **kw,
    )


@pytest.fixture(scope="module")
def table2(cohort, terms):
    return _run(cohort, terms)


@pytest.fixture(scope="module")
def table1(cohort, terms):
    return _run(cohort, terms[["age"]])


def _tested(c, pid, samples, terms: np.ndarray):
    """Window variants passing tensorQTL's interaction MAF rule (threshold 0.05 in each half)."""
    ids = window_ids(c, pid, WINDOW)
    g = np.vstack([imputed(c, v, samples) for v in ids])
    keep = np.ptp(g, axis=1) > 0
    n = len(samples)
    for t in terms.T:
        order = np.argsort(t, kind="stable")
        for half in (order[: n // 2], order[n // 2 :]):
            af = g[:, half].sum(axis=1) / (2 * half.size)
            keep &= np.minimum(af, 1 - af) >= 0.05 - 1e-7
    return [ids[k] for k in np.flatnonzero(keep)], g[keep]


def _data(c, terms, pid):
    samples = sorted(c.phenotype_df.columns)
    y = c.phenotype_df.loc[pid, samples].to_numpy(float)
    return samples, y, c.covariates_df.loc[samples].to_numpy(), terms.loc[samples].to_numpy()


def _full_design(cov, g, terms):
    return sm.add_constant(np.column_stack([cov, g, terms, g[:, None] * terms]), has_constant="add")


@pytest.mark.parametrize("n_terms", [1, 2])
def test_top_variant_and_statistics_equal_statsmodels(cohort, terms, table1, table2, n_terms):
    table = table1 if n_terms == 1 else table2
    names = TERMS[:n_terms]
    assert list(table.columns) == [
        *"num_var beta_shape1 beta_shape2 true_df pval_true_df variant_id start_distance af".split(),
        *"ma_samples ma_count interaction b_g b_g_se pval_g b_i b_i_se pval_i b_gi b_gi_se pval_gi".split(),
        "pval_perm",
        "pval_beta",
    ]
    assert len(table) == n_terms * cohort.phenotype_df.shape[0]
    k = cohort.covariates_df.shape[1]
    for pid in cohort.phenotype_df.index:
        samples, y, cov, term_values = _data(cohort, terms[names], pid)
        ids, g = _tested(cohort, pid, samples, term_values)
        fits = [sm.OLS(y, _full_design(cov, gv, term_values)).fit() for gv in g]
        assert fits[0].df_resid == len(samples) - 2 - k - 2 * n_terms
        rows = table.loc[[pid]]
        assert list(rows["interaction"]) == names
        for j in range(n_terms):
            gi = 2 + k + n_terms + j  # const, covariates, g, terms, products
            t2 = np.array([f.tvalues[gi] ** 2 for f in fits])
            best = int(np.argmax(t2))
            row = rows.iloc[j]
            assert row["num_var"] == len(ids)
            assert row["variant_id"] == ids[best]
            f = fits[best]
            want = []
            for col in (1 + k, 2 + k + j, gi):  # g, the term, its product
                want += [f.params[col], f.bse[col], f.pvalues[col]]
            got = row[["b_g", "b_g_se", "pval_g", "b_i", "b_i_se", "pval_i", "b_gi", "b_gi_se", "pval_gi"]]
            np.testing.assert_allclose(got.to_numpy(float), want, rtol=1e-8)


def _reference_maxima(y, cov, term_values, g, perms):
    """max over variants of t(g:i_j)^2 refitted by lstsq on each permuted residual; (m, P)."""
    n, m = y.size, term_values.shape[1]
    base = np.column_stack([np.ones(n), cov, term_values])
    e = y - base @ np.linalg.lstsq(base, y, rcond=None)[0]
    ep = e[perms].T  # n x P
    out = np.full((m, len(perms)), -np.inf)
    for gv in g:
        x = np.column_stack([np.ones(n), cov, gv, term_values, gv[:, None] * term_values])
        coef = np.linalg.lstsq(x, ep, rcond=None)[0]
        s2 = ((ep - x @ coef) ** 2).sum(axis=0) / (n - x.shape[1])
        diag = np.diag(np.linalg.inv(x.T @ x))
        for j in range(m):
            col = x.shape[1] - m + j
            out[j] = np.maximum(out[j], coef[col] ** 2 / (s2 * diag[col]))
    return out


def _perms(n):
    rng = np.random.default_rng(SEED)
    return np.array([rng.permutation(n) for _ in range(NPERM)])


def _check_maxima(cohort, terms, table, names, pids):
    for pid in pids:
        samples, y, cov, term_values = _data(cohort, terms[names], pid)
        _, g = _tested(cohort, pid, samples, term_values)
        ref = _reference_maxima(y, cov, term_values, g, _perms(len(samples)))
        for j, name in enumerate(names):
            np.testing.assert_allclose(table.attrs["t2_perm"][(pid, name)], ref[j], rtol=1e-9)


@pytest.mark.parametrize("n_terms", [1, 2])
def test_permutation_maxima_equal_a_refitting_loop(cohort, terms, table1, table2, n_terms):
    table = table1 if n_terms == 1 else table2
    _check_maxima(cohort, terms, table, TERMS[:n_terms], cohort.phenotype_df.index[[0, 3, 5]])  # both chroms


def test_explicit_residual_path_gives_the_same_maxima(cohort, terms, monkeypatch):
    """Every (variant, permutation) through the explicit-residual recomputation (rss threshold 2)."""
    monkeypatch.setattr(interaction_perm, "RSS_EXACT", 2.0)
    c = cohort
    pids = list(c.phenotype_df.index[:2])
    sub = make_subset(c, pids)
    table = _run(sub, terms)
    _check_maxima(c, terms, table, TERMS, pids)


def make_subset(c, pids):
    from dataclasses import replace

    return replace(c, phenotype_df=c.phenotype_df.loc[pids], phenotype_pos_df=c.phenotype_pos_df.loc[pids])


def test_beta_approximation_equals_scipy_beta_fit(cohort, table2):
    """pval_beta = Beta_cdf(pval_true_df) with scipy's MLE of the permutation p-values at true_df.

    The maxima are the ones checked against the refitting loop above; ``t^2`` is turned into the
    two-sided t p-value with ``true_df`` degrees of freedom through ``r^2 = t^2 / (t^2 + dof)``.
    """
    dof = 150 - 2 - cohort.covariates_df.shape[1] - 2 * len(TERMS)
    for pid, row in table2.iterrows():
        t2 = table2.attrs["t2_perm"][(pid, row["interaction"])]
        r2 = t2 / (t2 + dof)
        df_true = row["true_df"]
        p = 2 * stats.t.sf(np.sqrt(df_true * r2 / (1 - r2)), df_true)
        mean, var = p.mean(), p.var()
        assert mean * (mean * (1 - mean) / var - 1) == pytest.approx(1.0, abs=1e-6)
        a, b, *_ = stats.beta.fit(p, floc=0, fscale=1)
        np.testing.assert_allclose([row["beta_shape1"], row["beta_shape2"]], [a, b], rtol=1e-7)
        t2_top = (row["b_gi"] / row["b_gi_se"]) ** 2
        r2_top = t2_top / (t2_top + dof)
        p_true = 2 * stats.t.sf(np.sqrt(df_true * r2_top / (1 - r2_top)), df_true)
        np.testing.assert_allclose(row["pval_true_df"], p_true, rtol=1e-9)
        np.testing.assert_allclose(row["pval_beta"], stats.beta.cdf(p_true, a, b), rtol=1e-6)
        assert row["pval_perm"] == (np.sum(t2 >= t2_top) + 1) / (NPERM + 1)


def test_results_do_not_depend_on_input_order(cohort, terms, table2):
    c = cohort
    rng = np.random.default_rng(9)
    geno = c.genotype_df.sample(frac=1.0, random_state=3)
    geno = geno[list(rng.permutation(geno.columns))]
    pheno = c.phenotype_df[list(rng.permutation(c.phenotype_df.columns))]
    pheno = pheno.loc[list(rng.permutation(pheno.index))]
    again = map_cis_interaction(
        geno,
        c.variant_df.loc[list(rng.permutation(c.variant_df.index))],
        pheno,
        c.phenotype_pos_df,
        c.covariates_df.sample(frac=1.0, random_state=4),
        terms.sample(frac=1.0, random_state=5),
        nperm=NPERM,
        seed=SEED,
        window=WINDOW,
    )
    pd.testing.assert_frame_equal(again, table2, check_exact=True)


def test_constant_or_missing_interaction_term_is_an_error(cohort, terms):
    c = cohort
    bad = terms.assign(score=3.0)
    with pytest.raises(InputError, match="constant") as err:
        map_cis_interaction(
            c.genotype_df, c.variant_df, c.phenotype_df, c.phenotype_pos_df, c.covariates_df, bad, nperm=20
        )
    assert "score" in str(err.value)
    with pytest.raises(InputError, match="interaction_df"):
        map_cis_interaction(c.genotype_df, c.variant_df, c.phenotype_df, c.phenotype_pos_df, nperm=20)


# --------------------------------------------------------------------------------------------- calibration
def _simulated(seed: int, *, n_phen: int, gi_effect: float, n: int = 200, n_var: int = 25):
    """Phenotypes 1 Mb apart, each with its own variants (LD), a strong main eQTL, a term main effect."""
    rng = np.random.default_rng(seed)
    samples = [f"S{i:04d}" for i in range(n)]
    cov = rng.normal(size=(n, 3))
    term = rng.normal(size=n)
    geno, vids, vpos, phen, pos, causal = [], [], [], [], [], []
    for k in range(n_phen):
        tss = 1_000_000 * (k + 1)
        prev = None
        for v in range(n_var):
            g = rng.binomial(2, rng.uniform(0.15, 0.5), size=n).astype(np.int8)
            if prev is not None:
                g = np.where(rng.uniform(size=n) < 0.7, prev, g)
            prev = g
            geno.append(g)
            vids.append(f"v{k}_{v}")
            vpos.append(tss - 40_000 + 3_000 * v)
        gc = geno[-n_var + int(rng.integers(n_var))].astype(float)
        causal.append(gc)
        gc = (gc - gc.mean()) / gc.std()
        y = cov @ rng.normal(size=3) + 0.5 * term + 1.0 * gc + gi_effect * gc * term + rng.normal(size=n)
        phen.append(y)
        pos.append((f"G{k:04d}", "chr1", tss))
    inputs = (
        pd.DataFrame(np.vstack(geno), index=vids, columns=samples),
        pd.DataFrame({"chrom": "chr1", "pos": np.array(vpos, dtype=np.int64)}, index=vids),
        pd.DataFrame(np.vstack(phen), index=[p[0] for p in pos], columns=samples),
        pd.DataFrame(pos, columns=["phenotype_id", "chr", "pos"]).set_index("phenotype_id"),
        pd.DataFrame(cov, index=samples, columns=["c1", "c2", "c3"]),
        pd.DataFrame({"i": term}, index=samples),
    )
    return inputs, causal


def _main_effect_p(inputs, causal) -> np.ndarray:
    """p-value of each phenotype's causal variant in y ~ 1 + C + g (statsmodels)."""
    _, _, pheno, _, cov, _ = inputs
    x = cov.to_numpy()
    return np.array(
        [
            sm.OLS(y, sm.add_constant(np.column_stack([x, g]))).fit().pvalues[-1]
            for y, g in zip(pheno.to_numpy(), causal, strict=True)
        ]
    )


def test_null_pval_beta_is_uniform_with_strong_main_effects():
    """No interaction, a main eQTL explaining ~40% of the phenotype: pval_beta ~ U(0, 1) over 200."""
    inputs, causal = _simulated(31, n_phen=200, gi_effect=0.0)
    assert (_main_effect_p(inputs, causal) < 1e-6).mean() > 0.95  # the main effects are strong
    table = map_cis_interaction(*inputs, nperm=300, seed=2, window=50_000)
    assert len(table) == 200
    assert (table["num_var"] > 5).all()
    assert stats.kstest(table["pval_beta"], "uniform").pvalue > 0.01


def test_planted_interaction_gives_small_pval_beta():
    table = map_cis_interaction(
        *_simulated(32, n_phen=20, gi_effect=0.6)[0], nperm=300, seed=2, window=50_000
    )
    assert (table["pval_beta"] < 1e-3).all()
    assert (table["pval_beta"] <= table["pval_perm"] * 1.5).all()


# --------------------------------------------------------------------------------------------- CLI
def _storey(p: np.ndarray, lam: float) -> np.ndarray:
    m = p.size
    pi0 = min(1.0, np.sum(p >= lam) / (m * (1 - lam)))
    order = np.argsort(p)
    q = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(q[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(pi0 * q, 1.0)
    return out


@pytest.fixture(scope="module")
def files(cohort, terms, tmp_path_factory):
    root = tmp_path_factory.mktemp("inter")
    write_pgen(cohort.genotype_df.iloc[:, ::-1], cohort.variant_df.assign(ref="A", alt="G"), root / "geno")
    pos = cohort.phenotype_pos_df.rename(columns={"chr": "chrom"})
    write_expression_bed(cohort.phenotype_df, pos, root / "expr.bed.gz")
    cohort.covariates_df.T.to_csv(root / "cov.txt", sep="\t")
    terms.rename_axis("sample_id").to_csv(root / "inter.tsv", sep="\t")
    terms.assign(score=1.0).rename_axis("sample_id").to_csv(root / "constant.tsv", sep="\t")
    return root


def _cli(files, out, inter, *extra, mode="permutations"):
    args = ["cis", "--mode", mode, "--genotypes", files / "geno", "--phenotypes", files / "expr.bed.gz"]
    args += ["--covariates", files / "cov.txt", "--interaction", files / inter, "--out", out]
    args += ["--permutations", NPERM, "--seed", SEED, "--window", WINDOW, *extra]
    return main([*map(str, args), "--log-level", "WARNING"])


def test_cli_writes_the_interaction_table_with_qvalues_per_term(files, table2, tmp_path):
    assert _cli(files, tmp_path, "inter.tsv", "--qvalue-lambda", "0.5", "--fdr", "0.2") == 0
    got = pd.read_csv(tmp_path / "tbeqtl.cis_qtl_interaction.txt.gz", sep="\t", index_col=0)
    assert list(got.columns) == [*table2.columns, "qval", "pval_nominal_threshold"]
    want = interaction_qvalues(table2, fdr=0.2, qvalue_lambda=0.5)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-5, check_dtype=False)
    for name in TERMS:
        part = got[got["interaction"] == name]
        np.testing.assert_allclose(part["qval"], _storey(part["pval_beta"].to_numpy(), 0.5), rtol=1e-5)


def test_cli_refuses_a_constant_term_and_independent_mode(files, tmp_path):
    assert _cli(files, tmp_path / "a", "constant.tsv") == 2
    assert "score" in (tmp_path / "a" / "tbeqtl.log").read_text()
    assert _cli(files, tmp_path / "b", "inter.tsv", mode="independent") == 2
    assert "--interaction" in (tmp_path / "b" / "tbeqtl.log").read_text()


# --------------------------------------------------------------------------------------------- GEUVADIS
GEUVADIS_SCRIPT = """
import json, resource, sys
import pandas as pd
from tbeqtl.association.interaction_perm import interaction_qvalues, map_cis_interaction
from tbeqtl.io.expression_bed import read_expression_bed
from tbeqtl.io.genotypes import open_genotypes

data, out = sys.argv[1], sys.argv[2]
prefix = f"{data}/SYNTH_GEUV.445_samples."
expr, pos = read_expression_bed(prefix + "expression.bed.gz", chrom="chr18")
cov = pd.read_csv(prefix + "covariates.txt", sep="\\t", index_col=0).T
inter = pd.read_csv(prefix + "interaction.txt", sep="\\t", index_col=0)
table = map_cis_interaction(open_genotypes(prefix + "chr18"), None, expr, pos, cov, inter, nperm=500, seed=1)
interaction_qvalues(table, qvalue_lambda=0.5).to_parquet(out)
print(json.dumps({"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


@pytest.mark.slow
def test_geuvadis_chr18_interaction_permutations(shared_data, tmp_path):
    """301 chr18 phenotypes (30 with a planted genotype x interaction effect), 500 permutations:
    peak memory under 2 GB, interaction eGenes found, the top rows of three phenotypes equal to
    statsmodels OLS of the full model, and the bulk of pval_beta (> 0.1) uniform."""
    import subprocess
    import sys

    folder = shared_data / "geuvadis_chr18" / "synthetic"
    if not (folder / "SYNTH_GEUV.445_samples.chr18.pgen").is_file():
        pytest.skip("GEUVADIS-shaped synthetic cohort not present")
    out = tmp_path / "inter.parquet"
    proc = subprocess.run(
        [sys.executable, "-c", GEUVADIS_SCRIPT, str(folder), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["maxrss_mb"] < 2048
    table = pd.read_parquet(out)
    assert len(table) == 301 and (table["num_var"] > 1000).all()
    assert 10 <= (table["qval"] <= 0.05).sum() <= 40
    bulk = table["pval_beta"][table["pval_beta"] > 0.1]
    assert stats.kstest(bulk, "uniform", args=(0.1, 0.9)).pvalue > 0.01
    from tbeqtl.io.expression_bed import read_expression_bed
    from tbeqtl.io.genotypes import open_genotypes

    src = open_genotypes(folder / "SYNTH_GEUV.445_samples.chr18")
    expr, _ = read_expression_bed(folder / "SYNTH_GEUV.445_samples.expression.bed.gz", chrom="chr18")
    cov = pd.read_csv(folder / "SYNTH_GEUV.445_samples.covariates.txt", sep="\t", index_col=0).T
    inter = pd.read_csv(folder / "SYNTH_GEUV.445_samples.interaction.txt", sep="\t", index_col=0)
    samples = sorted(expr.columns)
    rows = {v: i for i, v in enumerate(src.variant_df.index[src.variant_df["chrom"] == "chr18"])}
    for pid, row in table.sort_values("pval_beta").iloc[:3].iterrows():
        k = rows[row["variant_id"]]
        g = src.read_chrom("chr18", samples=samples, start=k, stop=k + 1)[0].astype(float)
        g[np.isnan(g)] = np.nanmean(g)
        term = inter.loc[samples].to_numpy()
        fit = sm.OLS(
            expr.loc[pid, samples].to_numpy(), _full_design(cov.loc[samples].to_numpy(), g, term)
        ).fit()
        want = [fit.params[-1], fit.bse[-1], fit.pvalues[-1], fit.params[-2], fit.bse[-2], fit.pvalues[-2]]
        got = row[["b_gi", "b_gi_se", "pval_gi", "b_i", "b_i_se", "pval_i"]].to_numpy(float)
        np.testing.assert_allclose(got, want, rtol=1e-8)


def test_qvalues_and_nominal_thresholds_are_computed_within_each_term():
    """Hand-made two-term table: q-values (Storey at lambda 0.5) and tensorQTL's threshold per term."""
    rng = np.random.default_rng(3)
    p = {"a": np.concatenate([rng.uniform(0, 1e-3, 8), rng.uniform(size=32)]), "b": rng.uniform(size=40)}
    shapes = {"a": (1.1, 300.0), "b": (0.9, 250.0)}
    table = pd.concat(
        pd.DataFrame(
            {
                "interaction": name,
                "pval_beta": p[name],
                "pval_perm": p[name],
                "beta_shape1": shapes[name][0],
                "beta_shape2": shapes[name][1],
            },
            index=pd.Index([f"G{i}" for i in range(40)], name="phenotype_id"),
        )
        for name in ("a", "b")
    ).iloc[rng.permutation(80)]
    got = interaction_qvalues(table, fdr=0.05, qvalue_lambda=0.5)
    assert list(got.index) == list(table.index)
    for name in ("a", "b"):
        part = got[got["interaction"] == name]
        q = _storey(part["pval_beta"].to_numpy(), 0.5)
        np.testing.assert_allclose(part["qval"], q, rtol=1e-12)
        passing, failing = part["pval_beta"][q <= 0.05], part["pval_beta"][q > 0.05]
        if len(passing):
            p_t = (passing.max() + failing.min()) / 2
            np.testing.assert_allclose(
                part["pval_nominal_threshold"], stats.beta.ppf(p_t, *shapes[name]), rtol=1e-12
            )
        else:
            assert part["pval_nominal_threshold"].isna().all()
    assert (got.loc[got["interaction"] == "a", "qval"] <= 0.05).sum() >= 8
    assert got.loc[got["interaction"] == "b", "pval_nominal_threshold"].isna().all()
