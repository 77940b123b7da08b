"""Inputs of the cis functions: position formats, sample maps, chromosome order, progress reporting."""

from __future__ import annotations

import io
import logging

import numpy as np
import pandas as pd
import pytest
from cis_cohort import make_cohort

from tbeqtl import logs
from tbeqtl.association import map_cis
from tbeqtl.association.cis_inputs import chrom_sort_key, phenotype_positions
from tbeqtl.errors import InputError

WINDOW = 100_000


@pytest.fixture(autouse=True)
def _propagate_tbeqtl_logs(monkeypatch):
    """caplog needs the tbeqtl logger to propagate (a CLI run in another module may have turned it off)."""
    monkeypatch.setattr(logging.getLogger("tbeqtl"), "propagate", True)


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(
        41, n=120, n_variants=600, n_phenotypes=8, chroms=("chr2", "chr10"), span=600_000, extra_individuals=5
    )


@pytest.fixture(scope="module")
def reference(cohort):
    c = cohort
    return map_cis(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        c.covariates_df,
        nperm=50,
        window=WINDOW,
    )


def test_position_formats_give_the_same_result(cohort, reference):
    c = cohort
    tensorqtl = c.phenotype_pos_df  # chr, start, end (1-based)
    tbeqtl_reader = tensorqtl.rename(columns={"chr": "chrom"}).assign(chrom=lambda d: d["chrom"].str[3:])
    for pos_df in (tbeqtl_reader,):
        got = map_cis(
            c.genotype_df, c.variant_df, c.phenotype_df, pos_df, c.covariates_df, nperm=50, window=WINDOW
        )
        pd.testing.assert_frame_equal(got, reference)
    # a single position ('pos', as tensorQTL's BED reader gives for start + 1 == end)
    tss = tensorqtl.drop(columns="end").rename(columns={"start": "pos"})
    got = map_cis(c.genotype_df, c.variant_df, c.phenotype_df, tss, c.covariates_df, nperm=50, window=WINDOW)
    assert (got["start_distance"] == got["end_distance"]).all()
    positions, has_end = phenotype_positions(tss, c.phenotype_df.index)
    assert not has_end and (positions["start"] == positions["end"]).all()
    with pytest.raises(InputError, match="without a position"):
        phenotype_positions(tensorqtl.iloc[1:], c.phenotype_df.index)
    with pytest.raises(InputError, match="'chr' or 'chrom'"):
        phenotype_positions(tensorqtl.drop(columns="chr"), c.phenotype_df.index)


def test_chromosomes_in_natural_order(reference, cohort):
    assert sorted(["chr10", "chrX", "chr2", "chrM", "chr1", "GL000"], key=chrom_sort_key) == [
        "chr1",
        "chr2",
        "chr10",
        "chrX",
        "chrM",
        "GL000",
    ]
    chrom = cohort.phenotype_pos_df.loc[reference.index, "chr"].tolist()
    assert chrom == sorted(chrom, key=chrom_sort_key)


def test_sample_map_to_genotype_individuals(cohort, reference):
    c = cohort
    renamed = {s: f"tissue-{s}" for s in c.phenotype_df.columns}
    pheno = c.phenotype_df.rename(columns=renamed)
    cov = c.covariates_df.rename(index=renamed)
    sample_map = pd.Series({v: k for k, v in renamed.items()})
    got = map_cis(
        c.genotype_df,
        c.variant_df,
        pheno,
        c.phenotype_pos_df,
        cov,
        nperm=50,
        window=WINDOW,
        sample_map=sample_map,
    )
    # the permutations follow the sorted phenotype sample IDs, which the renaming keeps in the same order
    pd.testing.assert_frame_equal(got, reference)


def test_progress_logs_periodically_without_a_terminal(monkeypatch, caplog):
    monkeypatch.setattr(logs, "LOG_INTERVAL", 0.0)
    err = io.StringIO()
    monkeypatch.setattr(logs.sys, "stderr", err)
    with caplog.at_level(logging.INFO, logger="tbeqtl"):
        assert list(logs.progress(range(3), desc="phenotypes")) == [0, 1, 2]
    assert "phenotypes: 1/3" in caplog.text and "phenotypes: 3/3" in caplog.text
    assert err.getvalue() == ""  # no bar redraws in a log file
    caplog.clear()
    assert list(logs.progress(range(3), desc="bar", enabled=True)) == [0, 1, 2]
    assert "bar" in err.getvalue() and "bar:" not in caplog.text


def test_progress_bar_on_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    err = Tty()
    monkeypatch.setattr(logs.sys, "stderr", err)
    assert list(logs.progress(np.arange(2), desc="tty")) == [0, 1]
    assert "tty" in err.getvalue()
