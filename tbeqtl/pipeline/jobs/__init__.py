"""The jobs of a pipeline run, one module each; :mod:`tbeqtl.pipeline.orchestrate` drives them with Dask.

Per chromosome pair, in order (each records ``done`` in the pair's ``status.json``):

- :mod:`~tbeqtl.pipeline.jobs.fit`: TBLDA on the fit samples of the pair's genes and SNPs;
- :mod:`~tbeqtl.pipeline.jobs.rank`: top-ranked features per topic;
- :mod:`~tbeqtl.pipeline.jobs.factors`: tissue, ancestry, cell-type and covariate association;
- :mod:`~tbeqtl.pipeline.jobs.mapping`: factor-restricted and exhaustive eQTL mapping per tissue.

Per run, after the pairs: :mod:`~tbeqtl.pipeline.jobs.gather` (``summary/``, ``robust/``).
:mod:`~tbeqtl.pipeline.jobs.common` holds the context every pair task receives.
"""
