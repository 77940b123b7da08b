"""From topics to eQTLs: the paper's downstream analysis of each chromosome-pair TBLDA run.

- :mod:`~tbeqtl.pipeline.config`: :class:`PipelineConfig`, every choice, TOML in and out;
- :mod:`~tbeqtl.pipeline.holdout`: samples held out of the fit for the eQTL tests;
- :mod:`~tbeqtl.pipeline.factors`: tissue, ancestry, cell-type and covariate association of factors;
- :mod:`~tbeqtl.pipeline.robust`: robust components across runs and robust tissue feature sets;
- :mod:`~tbeqtl.pipeline.covariates`: expression normalisation and eQTL covariates;
- :mod:`~tbeqtl.pipeline.mapping`: factor-restricted and exhaustive eQTL mapping;
- :mod:`~tbeqtl.pipeline.genome_fdr`: the genome-wide BH over all runs at gather time;
- :mod:`~tbeqtl.pipeline.report_tables`: what the report draws from the inputs, written at gather time;
- :mod:`~tbeqtl.pipeline.jobs`: the jobs of a run, one module each (fit, rank, factors, mapping, gather);
- :mod:`~tbeqtl.pipeline.orchestrate`: :func:`run_pipeline`, driving the jobs over chromosome pairs with Dask;
- :mod:`~tbeqtl.pipeline.demo`: the ``tbeqtl demo`` job (simulate, run, enrich, compare, report).
"""

from __future__ import annotations

from .config import PipelineConfig

__all__ = ["PipelineConfig", "run_pipeline"]


def __getattr__(name: str):
    if name == "run_pipeline":
        from .orchestrate import run_pipeline

        return run_pipeline
    raise AttributeError(f"module 'tbeqtl.pipeline' has no attribute {name!r}")
