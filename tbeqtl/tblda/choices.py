"""Option values and defaults shared by the estimator, the pipeline config and the CLI.

Importable without torch. Each default is written here once; the others import it.
"""

#: Inference algorithms of :class:`~tbeqtl.tblda.TBLDA`: ``"svi"`` (the published recipe, fast
#: kernels) and ``"cavi"`` (closed-form coordinate ascent with allocation variables; optional).
INFERENCE = ("svi", "cavi")

#: How :class:`~tbeqtl.tblda.TBLDA` reports ``alpha``: ``"marginal"`` (default; the value that
#: maximises the importance-weighted marginal likelihood of the genotypes after the fit, see
#: :mod:`tbeqtl.tblda.marginal`) or ``"elbo"`` (the published point estimate that maximises the ELBO).
ALPHA_METHODS = ("marginal", "elbo")

#: Default maximum SVI steps (or CAVI iterations) of :class:`~tbeqtl.tblda.TBLDA`, the pipeline's
#: ``[fit] max_steps`` and ``tbeqtl fit --max-steps``: the published recipe's 65,100 (Gewirtz,
#: Townes & Engelhardt 2022). A fit stops earlier when the ELBO converges.
MAX_STEPS = 65_100

#: Default Adam learning rate (the published recipe's), shared likewise.
LEARNING_RATE = 0.05
