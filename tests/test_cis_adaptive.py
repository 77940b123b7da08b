"""``map_cis(..., nperm="adaptive")`` and ``tbeqtl cis --permutations adaptive``.

The statistics of every row are tested elsewhere (test_cis_permutations.py against statsmodels and a
float64 loop); here: the stopping rule on a hand-computed table, the eGene calls against the fixed
10,000 permutations, and that every row is the row of a fixed-count run on a prefix of the one
permutation set (1,000 for settled phenotypes, all 10,000 for the others).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from cis_cohort import make_cohort

from tbeqtl.association.cis import ADAPTIVE_FIRST, ADAPTIVE_MAX, _unsettled, map_cis, map_independent
from tbeqtl.association.post import calculate_qvalues
from tbeqtl.cli import main
from tbeqtl.errors import InputError
from tbeqtl.io import write_expression_bed
from tbeqtl.io.pgen import write_pgen

WINDOW = 200_000
FDR = 0.05


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(
        0, n=200, n_variants=2500, n_phenotypes=40, effect=0.25
    )  # weak: p-values near the threshold


def _map(c, nperm):
    return map_cis(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        c.covariates_df,
        nperm=nperm,
        seed=1,
        window=WINDOW,
    )


@pytest.fixture(scope="module")
def runs(cohort):
    return {n: _map(cohort, n) for n in ("adaptive", ADAPTIVE_MAX, ADAPTIVE_FIRST)}


def _egenes(table):
    q = calculate_qvalues(table.copy(), fdr=FDR)["qval"]
    return set(table.index[q <= FDR])


def test_unsettled_rule_on_a_hand_computed_table():
    """BH (lambda = 0 gives pi0 = 1) on 7 p-values: q = 7 p / rank (increasing here).

    q = 7e-8, 0.007, 0.0117, 0.0193, 0.042, 0.07, 0.9: p_t = (0.03 + 0.06) / 2 = 0.045; with
    se(x) = sqrt(x (1 - x) / 1000), se(p_t) = 0.00656: 0.03 (se 0.00539, 3 (se + se_t) = 0.0359 >= 0.015)
    and 0.06 (se 0.00751, 0.0422 >= 0.015) are near it, 0.011 (se 0.00330, 0.0296 < 0.034) is not; the
    failed beta fit (NaN) is rerun.
    """
    p = [1e-8, 0.002, 0.005, 0.011, 0.03, 0.06, 0.9, np.nan]
    ids = [f"g{i}" for i in range(len(p))]
    table = pd.DataFrame(
        {"pval_beta": p, "pval_perm": 0.5, "beta_shape1": 1.0, "beta_shape2": 100.0},
        index=pd.Index(ids, name="phenotype_id"),
    )
    assert list(_unsettled(table, fdr=FDR, qvalue_lambda=0.0)) == ["g4", "g5", "g7"]
    # no eGene (p_t = 0): rerun when p <= 3 se(p), i.e. p <= 0.0089
    table["pval_beta"] = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    assert list(_unsettled(table, fdr=FDR, qvalue_lambda=0.0)) == []
    table["pval_beta"] = [0.008, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]  # q = 0.064: no eGene; 3 se = 0.00845
    assert list(_unsettled(table, fdr=FDR, qvalue_lambda=0.0)) == ["g0"]


def test_adaptive_reaches_the_egene_calls_of_10000_permutations(runs):
    adaptive, full = runs["adaptive"], runs[ADAPTIVE_MAX]
    ea, ef = _egenes(adaptive), _egenes(full)
    jaccard = len(ea & ef) / len(ea | ef)
    logging.getLogger(__name__).info(
        "adaptive vs 10,000: Jaccard %.4f (%d / %d eGenes)", jaccard, len(ea), len(ef)
    )
    assert ef and jaccard >= 0.97
    assert list(adaptive.index) == list(full.index)


def test_adaptive_rows_are_fixed_count_rows_on_a_prefix_of_one_permutation_set(runs):
    adaptive = runs["adaptive"]
    counts = pd.Series(adaptive.attrs["nperm"])
    assert list(counts.index) == list(adaptive.index)
    assert set(counts) == {ADAPTIVE_FIRST, ADAPTIVE_MAX}  # both kinds occur on this cohort
    rerun = counts.index[counts == ADAPTIVE_MAX]
    settled = counts.index[counts == ADAPTIVE_FIRST]
    # rerun phenotypes: exactly the fixed-10,000 rows; settled: the rows on its first 1,000 permutations
    pd.testing.assert_frame_equal(adaptive.loc[rerun], runs[ADAPTIVE_MAX].loc[rerun], check_exact=True)
    pd.testing.assert_frame_equal(adaptive.loc[settled], runs[ADAPTIVE_FIRST].loc[settled], check_exact=True)


def test_invalid_nperm_strings_are_rejected(cohort):
    with pytest.raises(InputError, match="adaptive"):
        _map(cohort, "fast")
    c = cohort
    cis = calculate_qvalues(_map(c, ADAPTIVE_FIRST))
    with pytest.raises(InputError, match="adaptive"):
        map_independent(
            c.genotype_df,
            c.variant_df,
            cis,
            c.phenotype_df,
            c.phenotype_pos_df,
            c.covariates_df,
            nperm="adaptive",
        )


@pytest.fixture(scope="module")
def files(cohort, tmp_path_factory):
    root = tmp_path_factory.mktemp("adaptive_cli")
    c = make_cohort(3, n=120, n_variants=600, n_phenotypes=12, span=1_500_000)
    write_pgen(c.genotype_df, c.variant_df.assign(ref="A", alt="G"), root / "geno")
    write_expression_bed(
        c.phenotype_df, c.phenotype_pos_df.rename(columns={"chr": "chrom"}), root / "e.bed.gz"
    )
    c.covariates_df.T.to_csv(root / "cov.txt", sep="\t")
    return root, c


def _cli(root, out, mode, permutations):
    args = ["cis", "--mode", mode, "--genotypes", root / "geno", "--phenotypes", root / "e.bed.gz"]
    args += ["--covariates", root / "cov.txt", "--out", out, "--permutations", permutations, "--seed", "1"]
    return main([*map(str, args), "--window", "200000", "--log-level", "WARNING"])


def test_cli_adaptive_writes_the_map_cis_adaptive_table(files, tmp_path):
    root, c = files
    assert _cli(root, tmp_path, "permutations", "adaptive") == 0
    got = pd.read_csv(tmp_path / "tbeqtl.cis_qtl.txt.gz", sep="\t", index_col=0)
    ref = map_cis(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        c.covariates_df,
        nperm="adaptive",
        seed=1,
        window=WINDOW,
    )
    ref = calculate_qvalues(ref)
    assert list(got.index) == list(ref.index)
    np.testing.assert_allclose(got["pval_beta"], ref["pval_beta"], rtol=1e-5)  # 6 digits in the file
    np.testing.assert_allclose(got["qval"], ref["qval"], rtol=1e-5)
    counts = json.loads((tmp_path / "run.json").read_text())["runs"]["cis_permutations"]["counts"]
    assert counts["phenotypes_at_10000_permutations"] == sum(
        v == ADAPTIVE_MAX for v in ref.attrs["nperm"].values()
    )


def test_cli_adaptive_is_refused_outside_permutations_mode(files, tmp_path):
    root, _ = files
    assert _cli(root, tmp_path, "nominal", "adaptive") == 2
    with pytest.raises(SystemExit):
        _cli(root, tmp_path, "permutations", "many")


@pytest.mark.slow
def test_geuvadis_adaptive_reaches_the_egene_calls_of_10000_permutations(shared_data):
    """GEUVADIS-shaped chr18 (445 samples, 301 phenotypes): Jaccard >= 0.97 at q <= 0.05, rerun rows exact."""
    from tbeqtl.io.expression_bed import read_expression_bed
    from tbeqtl.io.genotypes import open_genotypes

    folder = shared_data / "geuvadis_chr18" / "synthetic"
    if not folder.exists():
        pytest.skip("GEUVADIS-shaped synthetic cohort not present")
    src = open_genotypes(str(folder / "SYNTH_GEUV.445_samples.chr18"))
    expr, pos = read_expression_bed(str(folder / "SYNTH_GEUV.445_samples.expression.bed.gz"), chrom="chr18")
    cov = pd.read_csv(folder / "SYNTH_GEUV.445_samples.covariates.txt", sep="\t", index_col=0).T
    adaptive = map_cis(src, None, expr, pos, cov, nperm="adaptive", seed=1)
    full = map_cis(src, None, expr, pos, cov, nperm=ADAPTIVE_MAX, seed=1)
    ea, ef = _egenes(adaptive), _egenes(full)
    assert len(ea & ef) / len(ea | ef) >= 0.97
    counts = pd.Series(adaptive.attrs["nperm"])
    rerun = counts.index[counts == ADAPTIVE_MAX]
    pd.testing.assert_frame_equal(adaptive.loc[rerun], full.loc[rerun], check_exact=True)
