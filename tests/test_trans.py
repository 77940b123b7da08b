"""tensorQTL-style trans mapping: every kept pair against statsmodels OLS, the kept set against a
direct float64 loop, tensorQTL's MAF/MAC rules and filter_cis on hand-made cases, streaming in
blocks, and independence from sample order, extra individuals and block size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from tbeqtl.association.trans import filter_cis, map_trans, minor_allele_count, r_threshold
from tbeqtl.errors import InputError
from tbeqtl.io.genotypes import FrameGenotypes


@pytest.fixture
def cohort(rng):
    """60 samples (3 extra genotyped individuals), 3 covariates, 2 chromosomes, planted trans effects."""
    n, n_extra, v, p = 60, 3, 40, 25
    samples = [f"S{i:03d}" for i in rng.permutation(n)]
    individuals = samples + [f"X{i}" for i in range(n_extra)]
    freq = rng.uniform(0.03, 0.5, v)
    geno = rng.binomial(2, freq[:, None], (v, n + n_extra)).astype(np.int8)
    geno[rng.random(geno.shape) < 0.02] = -9  # missing calls
    variant_ids = [f"rs{j}" for j in range(v)]
    genotype_df = pd.DataFrame(geno, index=variant_ids, columns=individuals)
    variant_df = pd.DataFrame(
        {"chrom": ["1"] * 25 + ["chr2"] * 15, "pos": np.r_[np.arange(25) * 1000 + 500, np.arange(15) * 7]},
        index=variant_ids,
    )
    cov = pd.DataFrame(rng.standard_normal((n, 3)), index=samples, columns=["c1", "c2", "c3"])
    g = geno[:, :n].astype(float)
    g[g < 0] = np.nan
    g = np.where(np.isnan(g), np.nanmean(g, axis=1, keepdims=True), g)
    pheno = rng.standard_normal((p, n)) + 0.5 * cov["c1"].to_numpy()
    for j, gene in [(0, 0), (0, 1), (5, 2), (30, 3), (31, 3)]:
        pheno[gene] += 0.9 * (g[j] - g[j].mean())
    phenotype_df = pd.DataFrame(pheno, index=[f"G{i}" for i in range(p)], columns=samples)
    return {"genotype_df": genotype_df, "variant_df": variant_df, "phenotype_df": phenotype_df, "cov": cov}


def _imputed(genotype_df, samples):
    g = genotype_df[samples].to_numpy().astype(float)
    g[g < 0] = np.nan
    return np.where(np.isnan(g), np.nanmean(g, axis=1, keepdims=True), g)


def _ols(y, cov, g_row):
    x = np.column_stack([np.ones(y.size), cov, g_row])
    fit = sm.OLS(y, x).fit()
    return fit.params[-1], fit.bse[-1], fit.pvalues[-1]


def _reference(c, *, threshold, maf):
    """Direct loop: every (variant, phenotype) pair by statsmodels OLS, the pairs with p <= threshold."""
    samples = list(c["phenotype_df"].columns)
    g = _imputed(c["genotype_df"], samples)
    cov = c["cov"].loc[samples].to_numpy()
    rows = []
    for j, vid in enumerate(c["genotype_df"].index):
        af = g[j].sum() / (2 * len(samples))
        if min(af, 1 - af) < maf or np.all(g[j] == g[j][0]):
            continue
        for pid, y in c["phenotype_df"].iterrows():
            b, se, p = _ols(y.to_numpy(), cov, g[j])
            if p <= threshold:
                rows.append((vid, pid, p, b, se, af))
    return pd.DataFrame(rows, columns=["variant_id", "phenotype_id", "pval", "b", "b_se", "af"])


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_kept_pairs_equal_direct_ols_loop(cohort, precision):
    c = cohort
    out = map_trans(
        c["genotype_df"],
        c["phenotype_df"],
        c["cov"],
        variant_df=c["variant_df"],
        pval_threshold=0.01,
        maf_threshold=0.05,
        precision=precision,
    )
    ref = _reference(c, threshold=0.01, maf=0.05)
    assert len(ref) >= 8  # planted effects and some chance pairs
    assert list(out.columns) == ["variant_id", "phenotype_id", "pval", "b", "b_se", "af"]
    assert out[["pval", "b", "b_se", "af"]].dtypes.eq(np.float64).all()
    key = ["variant_id", "phenotype_id"]
    pd.testing.assert_frame_equal(out[key].reset_index(drop=True), ref[key])
    for col in ("pval", "b", "b_se", "af"):
        np.testing.assert_allclose(out[col], ref[col], rtol=1e-8, atol=0, err_msg=col)
    n_variants = out.attrs["n_variants"]
    assert out.attrs["n_tests"] == n_variants * 25 and out.attrs["n_phenotypes"] == 25
    assert out.attrs["dof"] == 60 - 2 - 3
    assert out.attrs["n_variants_read"] == 40
    assert n_variants + out.attrs["n_dropped_maf"] + out.attrs["n_dropped_monomorphic"] == 40


def test_float32_screen_gives_the_float64_result(cohort):
    c = cohort
    kw = dict(variant_df=c["variant_df"], pval_threshold=0.2, maf_threshold=0.0)
    a = map_trans(c["genotype_df"], c["phenotype_df"], c["cov"], precision="float32", **kw)
    b = map_trans(c["genotype_df"], c["phenotype_df"], c["cov"], precision="float64", **kw)
    assert len(a) > 100
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-13)


def test_threshold_one_keeps_every_test(cohort):
    c = cohort
    out = map_trans(c["genotype_df"], c["phenotype_df"], c["cov"], pval_threshold=1.0, maf_threshold=0)
    assert len(out) == out.attrs["n_tests"]
    assert out.attrs["n_variants"] == 40 - out.attrs["n_dropped_monomorphic"]


def test_r_threshold_inverts_the_t_test():
    from scipy import stats

    for p, dof in [(1e-5, 417), (0.05, 10), (1e-30, 300)]:
        r = r_threshold(p, dof)
        t = r * np.sqrt(dof / (1 - r * r))
        np.testing.assert_allclose(2 * stats.t.sf(t, dof), p, rtol=1e-9)


def test_result_does_not_depend_on_sample_order_extra_individuals_or_block_size(cohort, rng):
    c = cohort
    kw = dict(pval_threshold=0.05, maf_threshold=0.05)
    base = map_trans(c["genotype_df"], c["phenotype_df"], c["cov"], variant_df=c["variant_df"], **kw)
    shuffled = c["genotype_df"].iloc[:, rng.permutation(c["genotype_df"].shape[1])]
    shuffled = shuffled.assign(EXTRA1=1, EXTRA2=0)  # two more individuals, not analysed
    cov_t = c["cov"].T  # covariates x samples: aligned by ID
    pheno = c["phenotype_df"].iloc[:, rng.permutation(60)]
    for batch in (1, 7, 10_000):
        out = map_trans(shuffled, pheno, cov_t, variant_df=c["variant_df"], batch_size=batch, **kw)
        pd.testing.assert_frame_equal(out, base, check_exact=False, rtol=1e-12)
        assert out.attrs == base.attrs
    # without variant_df: one pseudo-chromosome, the same pairs
    out = map_trans(c["genotype_df"], c["phenotype_df"], c["cov"], batch_size=7, **kw)
    pd.testing.assert_frame_equal(out, base, check_exact=False, rtol=1e-12)


class RecordingSource(FrameGenotypes):
    """A genotype source that records every block it is asked for."""

    def __init__(self, *args):
        super().__init__(*args)
        self.requests = []

    def read_chrom(self, chrom, *, samples, start=0, stop=None):
        self.requests.append((chrom, start, stop, len(samples)))
        return super().read_chrom(chrom, samples=samples, start=start, stop=stop)


def test_genotypes_are_read_in_blocks(cohort):
    c = cohort
    source = RecordingSource(c["genotype_df"], c["variant_df"])
    out = map_trans(source, c["phenotype_df"], c["cov"], batch_size=7, pval_threshold=0.05)
    expected = [("chr1", a, min(a + 7, 25), 60) for a in range(0, 25, 7)]
    expected += [("chr2", a, min(a + 7, 15), 60) for a in range(0, 15, 7)]
    assert source.requests == expected  # only the analysed individuals, 7 variants at a time
    ref = map_trans(
        c["genotype_df"], c["phenotype_df"], c["cov"], variant_df=c["variant_df"], pval_threshold=0.05
    )
    pd.testing.assert_frame_equal(out, ref, check_exact=False, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# tensorQTL's MAF and MAC rules, hand-made (40 samples, no covariates)
# --------------------------------------------------------------------------------------------
def _hand_cohort(rows: dict[str, list[float]]):
    n = 40
    samples = [f"s{i:02d}" for i in range(n)]
    genotype_df = pd.DataFrame(
        [np.asarray(v, float) for v in rows.values()], index=list(rows), columns=samples
    )
    y = np.random.default_rng(3).standard_normal((1, n))
    return genotype_df, pd.DataFrame(y, index=["G"], columns=samples)


def _dosages(alt: dict[int, float], base: float = 0.0, n: int = 40) -> list[float]:
    out = [base] * n
    for i, v in alt.items():
        out[i] = v
    return out


def test_maf_filter_on_imputed_frequencies():
    rows = {
        "af4": _dosages({0: 2, 1: 2}),  # 4 of 80 alleles: af 0.05 (kept at 0.05)
        "af3": _dosages({0: 2, 1: 1}),  # 3/80 = 0.0375 (dropped)
        "af76": _dosages({0: 0, 1: 0}, base=2.0),  # af 76/80 = 0.95, MAF 0.05 (kept)
        "missing": _dosages({0: 2, 1: 1, 2: np.nan}),  # imputed: 3/39 per sample -> af 3/78 (dropped)
        "missing2": _dosages({0: 2, 1: 2, 2: np.nan, 3: np.nan}),  # af = (4 + 2*4/38)/80 = 0.0526 (kept)
        "mono": _dosages({}, base=1.0),  # MAF 0.5 but monomorphic (dropped)
    }
    genotype_df, pheno = _hand_cohort(rows)
    out = map_trans(genotype_df, pheno, pval_threshold=1.0, maf_threshold=0.05)
    assert out["variant_id"].tolist() == ["af4", "af76", "missing2"]
    np.testing.assert_allclose(out["af"], [0.05, 0.95, (4 + 8 / 38) / 80], rtol=1e-14)
    assert out.attrs["n_dropped_maf"] == 2 and out.attrs["n_dropped_monomorphic"] == 1
    assert out.attrs["n_variants"] == 3 and out.attrs["n_tests"] == 3 and out.attrs["dof"] == 38
    # MAF filter off: af3 and missing come back, the monomorphic variant never
    out0 = map_trans(genotype_df, pheno, pval_threshold=1.0, maf_threshold=0)
    assert out0["variant_id"].tolist() == ["af4", "af3", "af76", "missing", "missing2"]


def test_mac_filter_uses_tensorqtl_ma_count():
    rows = {
        "mac3": _dosages({0: 2, 1: 1}),  # ma_count 3
        "mac4_high": _dosages({0: 0, 1: 0}, base=2.0),  # af > 0.5: 80 - 76 = 4
        "frac": _dosages({0: 2, 1: 1, 2: 0.6, 3: 0.4}),  # 0.6 counts (> 0.5), 0.4 not: int(3.6) = 3
        "frac2": _dosages({0: 2, 1: 1, 2: 0.6, 3: 0.6}),  # int(4.2) = 4
    }
    genotype_df, pheno = _hand_cohort(rows)
    g = genotype_df.to_numpy()
    assert minor_allele_count(g).tolist() == [3, 4, 3, 4]
    out = map_trans(genotype_df, pheno, pval_threshold=1.0, maf_threshold=0, mac_threshold=4)
    assert out["variant_id"].tolist() == ["mac4_high", "frac2"]
    assert out.attrs["n_dropped_mac"] == 2


# --------------------------------------------------------------------------------------------
# filter_cis
# --------------------------------------------------------------------------------------------
def test_filter_cis_window_is_inclusive_at_both_ends():
    variant_df = pd.DataFrame(
        {"chrom": ["chr1"] * 4 + ["2", "chr1"], "pos": [899, 900, 2100, 2101, 1500, 1500]},
        index=["v899", "v900", "v2100", "v2101", "other_chrom", "inside"],
    )
    pairs = pd.DataFrame({"variant_id": list(variant_df.index), "phenotype_id": "G"})
    pairs.attrs["n_tests"] = 6
    # start/end form: start - 100 <= pos <= end + 100 is cis
    pos_se = pd.DataFrame({"chr": ["1"], "start": [1000], "end": [2000]}, index=["G"])
    out = filter_cis(pairs, pos_se, variant_df, window=100)
    assert out["variant_id"].tolist() == ["v899", "v2101", "other_chrom"]
    assert out.attrs["n_tests"] == 6
    # tensorQTL's one-position form (chr/pos) and the chrom/start/end spelling
    pos_p = pd.DataFrame({"chr": ["chr1"], "pos": [1000]}, index=["G"])
    out = filter_cis(pairs, pos_p, variant_df, window=100)
    assert out["variant_id"].tolist() == ["v899", "v2100", "v2101", "other_chrom", "inside"]
    pos_c = pd.DataFrame({"chrom": ["chr1"], "start": [1000], "end": [2000]}, index=["G"])
    assert filter_cis(pairs, pos_c, variant_df, window=0)["variant_id"].tolist() == [
        "v899",
        "v900",
        "v2100",
        "v2101",
        "other_chrom",
    ]


def test_filter_cis_names_missing_positions():
    variant_df = pd.DataFrame({"chrom": ["chr1"], "pos": [5]}, index=["v"])
    pairs = pd.DataFrame({"variant_id": ["v", "w"], "phenotype_id": ["G", "G"]})
    pos = pd.DataFrame({"chr": ["chr1"], "pos": [10]}, index=["G"])
    with pytest.raises(InputError, match="variants of the pairs without positions: w"):
        filter_cis(pairs, pos, variant_df)
    with pytest.raises(InputError, match="phenotypes of the pairs without positions: H"):
        filter_cis(pd.DataFrame({"variant_id": ["v"], "phenotype_id": ["H"]}), pos, variant_df)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
def test_nan_covariates_are_an_error(cohort):
    c = cohort
    cov = c["cov"].copy()
    cov.iloc[4, 1] = np.nan
    with pytest.raises(InputError, match=f"missing values.*c2.*{cov.index[4]}"):
        map_trans(c["genotype_df"], c["phenotype_df"], cov)


def test_other_bad_input(cohort):
    c = cohort
    with pytest.raises(InputError, match="interaction term.*constant.*c9"):
        map_trans(
            c["genotype_df"], c["phenotype_df"], c["cov"], interaction_s=c["cov"]["c1"].rename("c9") * 0
        )
    with pytest.raises(InputError, match="linear combinations of the covariates.*c1"):
        map_trans(c["genotype_df"], c["phenotype_df"], c["cov"], interaction_s=c["cov"]["c1"] * 2 + 1)
    with pytest.raises(InputError, match="without genotypes.*S0"):
        map_trans(c["genotype_df"].drop(columns=c["phenotype_df"].columns[:2]), c["phenotype_df"], c["cov"])
    with pytest.raises(InputError, match="pval_threshold"):
        map_trans(c["genotype_df"], c["phenotype_df"], c["cov"], pval_threshold=0)


def test_phenotypes_with_missing_values_are_skipped_and_counted(cohort):
    c = cohort
    pheno = c["phenotype_df"].copy()
    pheno.iloc[3, 5] = np.nan
    out = map_trans(c["genotype_df"], pheno, c["cov"], pval_threshold=0.05)
    assert "G3" not in set(out["phenotype_id"])
    assert out.attrs["n_phenotypes"] == 24 and out.attrs["n_tests"] == 24 * out.attrs["n_variants"]
    full = map_trans(c["genotype_df"], c["phenotype_df"], c["cov"], pval_threshold=0.05)
    pd.testing.assert_frame_equal(
        out, full[full["phenotype_id"] != "G3"].reset_index(drop=True), check_exact=False, rtol=1e-12
    )


# --------------------------------------------------------------------------------------------
# trans with interaction terms
# --------------------------------------------------------------------------------------------
def _interaction_reference(c, terms: pd.DataFrame, *, threshold, maf):
    """Direct loop: statsmodels OLS of y ~ 1 + C + g + terms + g:terms for every pair; tensorQTL's
    interaction MAF rule (stable median split per term) written out; keep min p(g:term) <= threshold."""
    samples = sorted(c["phenotype_df"].columns)
    g = _imputed(c["genotype_df"], samples)
    cov = c["cov"].loc[samples].to_numpy()
    t = terms.loc[samples].to_numpy()
    n, m = t.shape
    halves = [np.argsort(t[:, j], kind="stable") for j in range(m)]
    rows = []
    for j, vid in enumerate(c["genotype_df"].index):
        if np.all(g[j] == g[j][0]):
            continue
        mafs = [
            min(f, 1 - f)
            for h in halves
            for part in (h[: n // 2], h[n // 2 :])
            for f in [g[j, part].mean() / 2]
        ]
        if min(mafs) < maf - 1e-7:
            continue
        x = np.column_stack([np.ones(n), cov, g[j], t, g[j][:, None] * t])
        k = cov.shape[1]
        for pid, y in c["phenotype_df"][samples].iterrows():
            fit = sm.OLS(y.to_numpy(), x).fit()
            idx = [k + 1] + [i for s in range(m) for i in (k + 2 + s, k + 2 + m + s)]
            stats_ = np.column_stack([fit.params[idx], fit.bse[idx], fit.pvalues[idx]]).ravel()
            if min(fit.pvalues[k + 2 + m :]) <= threshold:
                rows.append((vid, pid, *stats_, g[j].mean() / 2))
    return rows


@pytest.mark.parametrize("m", [1, 2])
def test_interaction_pairs_equal_direct_ols_loop(cohort, rng, m):
    c = cohort
    samples = c["phenotype_df"].columns
    terms = pd.DataFrame(rng.uniform(0, 1, (60, m)), index=samples, columns=["cellA", "cellB"][:m])
    pheno = c["phenotype_df"].copy()
    g = _imputed(c["genotype_df"], list(samples))
    common = np.argsort(-np.minimum(g.mean(axis=1), 2 - g.mean(axis=1)))[:3]  # three common variants
    for j, gene in zip(common, [4, 5, 6], strict=True):
        pheno.iloc[gene] += 2.0 * (g[j] - g[j].mean()) * (terms["cellA"].to_numpy() - 0.5)
    c = {**c, "phenotype_df": pheno}
    inter = terms["cellA"] if m == 1 else terms
    out = map_trans(
        c["genotype_df"], pheno, c["cov"], interaction_s=inter, pval_threshold=0.01, maf_threshold=0.1
    )
    ref = _interaction_reference(c, terms, threshold=0.01, maf=0.1)
    assert len(ref) >= 3
    from tbeqtl.association.interaction import interaction_columns

    cols = ["variant_id", "phenotype_id", *interaction_columns(list(terms.columns)), "af"]
    ref = pd.DataFrame(ref, columns=cols)
    assert list(out.columns) == cols
    pd.testing.assert_frame_equal(out[cols[:2]], ref[cols[:2]])
    np.testing.assert_allclose(out[cols[2:]].to_numpy(float), ref[cols[2:]].to_numpy(float), rtol=1e-8)
    assert out.attrs["dof"] == 60 - 2 - 3 - 2 * m
    assert out.attrs["n_tests"] == out.attrs["n_variants"] * 25
    # the same pairs from shuffled samples and one-variant blocks
    shuffled = c["genotype_df"].iloc[:, rng.permutation(c["genotype_df"].shape[1])]
    again = map_trans(
        shuffled, pheno, c["cov"], interaction_s=inter, pval_threshold=0.01, maf_threshold=0.1, batch_size=1
    )
    pd.testing.assert_frame_equal(again, out, check_exact=False, rtol=1e-10)


# --------------------------------------------------------------------------------------------
# GEUVADIS-shaped chr18 (slow)
# --------------------------------------------------------------------------------------------
class PgenSource:
    """A minimal PLINK 2 genotype source on pgenlib (ALT dosages, -9 -> NaN), for the slow test."""

    def __init__(self, prefix: Path):
        import pgenlib

        self._pgenlib = pgenlib
        self.path = bytes(str(prefix) + ".pgen", "utf8")
        psam = pd.read_csv(f"{prefix}.psam", sep="\t")
        self.samples = pd.Index(psam.iloc[:, 0].astype(str))
        pvar = pd.read_csv(f"{prefix}.pvar", sep="\t", usecols=[0, 1, 2], dtype={0: str})
        pvar.columns = ["chrom", "pos", "variant_id"]
        self.variant_df = pvar.set_index("variant_id")
        self.chromosomes = list(pd.unique(self.variant_df["chrom"]))

    def read_chrom(self, chrom, *, samples, start=0, stop=None):
        rows = np.flatnonzero(self.variant_df["chrom"].to_numpy() == chrom)
        first, last = rows[start], rows[(stop or len(rows)) - 1] + 1
        cols = self.samples.get_indexer(list(samples))
        order = np.argsort(cols)
        reader = self._pgenlib.PgenReader(self.path, sample_subset=cols[order].astype(np.uint32))
        buf = np.empty((last - first, cols.size), dtype=np.int8)
        reader.read_range(first, last, buf)
        reader.close()
        out = np.empty(buf.shape, dtype=np.float32)
        out[:, order] = buf
        out[out < 0] = np.nan
        return out


@pytest.mark.slow
def test_geuvadis_chr18_against_ols(shared_data):
    base = shared_data / "geuvadis_chr18" / "synthetic"
    source = PgenSource(base / "SYNTH_GEUV.445_samples.chr18")
    bed = pd.read_csv(base / "SYNTH_GEUV.445_samples.expression.bed.gz", sep="\t", index_col=3)
    phenotype_df = bed.iloc[:, 3:]
    cov = pd.read_csv(base / "SYNTH_GEUV.445_samples.covariates.txt", sep="\t", index_col=0)  # cov x samples
    out = map_trans(source, phenotype_df, cov, pval_threshold=1e-5, maf_threshold=0.05)
    assert out.attrs["n_phenotypes"] == 5000 and out.attrs["dof"] == 445 - 2 - 26
    assert out.attrs["n_variants_read"] == 367_759
    assert out.attrs["n_tests"] == out.attrs["n_variants"] * 5000
    assert len(out) > 25  # the planted trans hubs at least
    rng = np.random.default_rng(18)
    samples = sorted(phenotype_df.columns)
    c = cov[samples].T.to_numpy()
    vids = set(out["variant_id"].sample(20, random_state=1)) | set(out.nsmallest(5, "pval")["variant_id"])
    check = out[out["variant_id"].isin(vids)]
    check = check.iloc[rng.choice(len(check), size=min(len(check), 60), replace=False)]
    pos = source.variant_df.index.get_indexer(check["variant_id"])
    for (_, row), i in zip(check.iterrows(), pos, strict=True):
        g = source.read_chrom("chr18", samples=samples, start=i, stop=i + 1)[0].astype(float)
        g[np.isnan(g)] = np.nanmean(g)
        b, se, p = _ols(phenotype_df.loc[row["phenotype_id"], samples].to_numpy(), c, g)
        np.testing.assert_allclose([row["b"], row["b_se"], row["pval"]], [b, se, p], rtol=1e-8)
        np.testing.assert_allclose(row["af"], g.mean() / 2, rtol=1e-12)
    # the kept set over 300 random variants x all phenotypes equals a direct vectorised float64 test
    chosen = np.sort(rng.choice(len(source.variant_df), size=300, replace=False))
    design = np.column_stack([np.ones(len(samples)), c])
    y = phenotype_df[samples].to_numpy().T
    y_res = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    expected = set()
    for i in chosen:
        g = source.read_chrom("chr18", samples=samples, start=i, stop=i + 1)[0].astype(float)
        g[np.isnan(g)] = np.nanmean(g)
        af = g.mean() / 2
        if min(af, 1 - af) < 0.05 or np.all(g == g[0]):
            continue
        g_res = g - design @ np.linalg.lstsq(design, g, rcond=None)[0]
        b = g_res @ y_res / (g_res @ g_res)
        rss = ((y_res - np.outer(g_res, b)) ** 2).sum(axis=0)
        t = b / np.sqrt(rss / 417 / (g_res @ g_res))
        from scipy import stats

        p = 2 * stats.t.sf(np.abs(t), 417)
        vid = source.variant_df.index[i]
        expected |= {(vid, pid) for pid in phenotype_df.index[p <= 1e-5]}
    chosen_ids = set(source.variant_df.index[chosen])
    got = {(v, p) for v, p in zip(out["variant_id"], out["phenotype_id"], strict=True) if v in chosen_ids}
    assert got == expected
