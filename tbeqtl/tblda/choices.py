"""Option values shared by the estimator and the CLI, importable without torch."""

#: Inference algorithms of :class:`~tbeqtl.tblda.TBLDA`: ``"svi"`` (the published recipe, fast
#: kernels) and ``"cavi"`` (closed-form coordinate ascent with allocation variables; optional).
INFERENCE = ("svi", "cavi")
