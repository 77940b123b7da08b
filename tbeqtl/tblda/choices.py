"""Option values shared by the estimator and the CLI, importable without torch."""

#: Inference algorithms of :class:`~tbeqtl.tblda.TBLDA`: ``"svi"`` (the published recipe, fast
#: kernels) and ``"cavi"`` (closed-form coordinate ascent with allocation variables; optional).
INFERENCE = ("svi", "cavi")

#: How :class:`~tbeqtl.tblda.TBLDA` reports ``alpha``: ``"marginal"`` (default; the value that
#: maximises the importance-weighted marginal likelihood of the genotypes after the fit, see
#: :mod:`tbeqtl.tblda.marginal`) or ``"elbo"`` (the published point estimate that maximises the ELBO).
ALPHA_METHODS = ("marginal", "elbo")
