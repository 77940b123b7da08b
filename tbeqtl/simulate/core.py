"""Simulate GTEx-like telescoping data sets from the TBLDA generative model, with planted truth.

:func:`simulate` draws a data set from the model of the paper (Materials and Methods,
equations 1-9) and returns a :class:`Simulation` holding the data (an
:class:`~tbeqtl.data.EQTLData`) and the planted truth (:class:`SimulationTruth`):

1. ``psi_k ~ Dirichlet(xi)`` over ``G`` genes (equation 1). The default ``xi = 0.3`` is
   sparse-ish: the top 20% of genes of a topic carry about three quarters of its mass, so topics
   are well separated; set ``gene_concentration=1`` for the fitting prior.
2. ``phi_l ~ Dirichlet(sigma_l)`` per sample (equation 2). With ``n_tissue_topics = 0``,
   ``sigma_l = sigma`` for every sample (the symmetric prior); otherwise each tissue has
   ``n_tissue_topics`` topics that load mainly on its samples (concentration
   ``tissue_sigma`` on the own tissue's topics, ``off_tissue_sigma`` on other tissues' topics,
   ``sigma`` on the shared topics), recorded in ``truth.topic_tissue_s``.
3. ``x_l ~ Multinomial(C_l, Psi phi_l)`` (equations 3-4) with log-normal library sizes ``C_l``.
4. ``theta_i`` = mean of ``phi_l`` over individual ``i``'s samples (equation 5).
5. ``lambda_jk ~ Beta(zeta, gamma)`` (equation 6).
6. Private ancestry subspace: ``Q`` populations with Balding-Nichols allele frequencies
   ``beta`` (S x Q) and admixture ``tau`` (Q x N, Dirichlet around each individual's ancestry
   group, recorded in ``data.individual_info_df["ancestry"]``); ``alpha`` fixed (the model's
   ``alpha ~ Uniform(delta, mu)``, equation 7, is set to the given value).
7. ``rho_ij = alpha * sum_q beta_jq tau_qi + (1 - alpha) * sum_k lambda_jk theta_ki`` and
   ``y_ij ~ Binomial(2, rho_ij)`` (equations 8-9).

GTEx-like extras (on unless disabled with ``n_cis=0, n_trans=0, covariate_effects=False``;
with those three settings, and the opt-in ``individual_sigma`` and ``expression_noise_sd`` left
at 0, the data are exactly draws of equations 1-9):

- planted cis-eQTLs (SNP within ``cis_window`` bp of the gene's TSS) and trans-eQTLs (SNP on
  another chromosome, chosen among a topic's top-scoring SNPs, target among the same topic's
  top genes), multiplicative on the gene's rate: ``exp(effect * (y_ij - mean_j))`` for every
  sample of individual ``i`` (see :mod:`tbeqtl.simulate.effects`);
- sex (individual level, GTEx ``SEX`` coding 1 = male, 2 = female) and expression
  ``platform`` (sample level, 0/1) effects on a fraction of genes; ``pcr`` (individual level,
  0/1) is a null covariate;
- per-sample cell-type enrichment scores (``n_cell_type_topics`` of the shared topics are
  "cell types"; ``sample_info_df["celltype_<name>"] = phi_lk * exp(N(0, noise^2))``, as
  xCell-style scores that track the topic within every tissue; recorded in
  ``truth.cell_type_topic_s``);
- optional missing genotypes (``missing_rate``);
- optional biological noise (``expression_noise_sd``, default 0): an independent
  ``N(0, sd^2)`` log-rate multiplier per sample and gene, which makes counts overdispersed
  relative to the multinomial and planted eQTLs harder to detect. Without it the multinomial
  noise at hundreds of reads per gene is small: pooled over the 600 ``demo`` samples, the
  log-CPM slope of a planted eQTL matches its effect with r = 0.998; per tissue on about 30
  held-out samples detection is partial;
- optional individual-level topic preferences (``individual_sigma``, default 0): the samples
  of one individual share shared-topic proportions.

Always present: several tissues with GTEx ``SMTSD`` names and different sizes (at most one
sample per tissue per individual, so individuals have 1 to ``T`` samples), GTEx-style IDs,
``protein_coding``/``lincRNA`` genes and SNPs on ``chr1 ... chrN`` (GRCh38 lengths) with
ref/alt alleles. The single-cell variant (``preset="single_cell"`` or ``cells_per_donor=``)
draws many cells per donor with a cell type in the ``tissue`` column.

Associations beyond the planted eQTLs: in the TBLDA model itself, a SNP whose ``lambda_jk``
departs from its mean shifts its allele probability with ``theta_ki`` (equation 8), and a
topic-``k`` gene's expression follows ``phi_lk``, which ``theta_ki`` averages. So a topic's
top SNPs and top genes are weakly associated even with no planted eQTL (measured on the
``demo`` preset without extras, per-tissue tests on held-out samples: the rate of trans
p-values below 1e-4 is about 1.3x the uniform rate, below 1e-5 about 1.7x; with
``alpha=1`` it is at or under 1x). An FDR check that counts every discovery outside
``truth.eqtls_df`` as false is therefore slightly pessimistic; ``zeta = gamma = 5`` (less
variable ``lambda``) removes most of the excess at the cost of weaker SNP topics.

Randomness: one :class:`numpy.random.SeedSequence` from ``seed`` is split into independent
streams per component, so switching an extra on or off does not change the other draws.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import EQTLData
from ..errors import InputError, format_ids
from . import draw
from .effects import (
    choose_cis_eqtls,
    choose_trans_eqtls,
    draw_covariate_effects,
    eqtl_log_multiplier,
)
from .genome import (
    CELL_TYPE_NAMES,
    TISSUE_NAMES,
    draw_gene_info,
    draw_individual_ids,
    draw_sample_ids,
    draw_snp_info,
)

__all__ = ["PRESETS", "Simulation", "SimulationParams", "SimulationTruth", "resolve_params", "simulate"]

logger = logging.getLogger(__name__)

#: Cell types whose per-sample enrichment scores track shared topics (GTEx xCell names).
CELL_TYPE_SCORE_NAMES = (
    "Fibroblasts",
    "Adipocytes",
    "Neutrophils",
    "Keratinocytes",
    "Myocytes",
    "Epithelial_cells",
    "Endothelial_cells",
    "Macrophages",
)

#: Ancestry group labels (group ``q`` is centred on population ``q``).
ANCESTRY_LABELS = ("EUR", "AFR", "EAS", "AMR", "SAS")


@dataclass(frozen=True)
class SimulationParams:
    """Every knob of the simulator, with the paper's symbol where there is one.

    Attributes
    ----------
    n_genes, n_individuals, n_samples, n_snps, n_topics, n_ancestry
        ``G``, ``N``, ``L``, ``S``, ``K``, ``Q``. ``n_samples`` is ignored in the single-cell
        variant (the number of cells follows from ``cells_per_donor``).
    alpha
        Weight of the private ancestry subspace in ``rho`` (equation 8).
    n_tissues
        Number of tissues (cell types in the single-cell variant), ``T``.
    n_tissue_topics
        Tissue-specific topics per tissue (0: all topics shared).
    n_chromosomes
        Genes and SNPs are placed on ``chr1 ... chrN``.
    gene_concentration
        ``xi`` of ``psi_k ~ Dirichlet(xi)``.
    sigma, tissue_sigma, off_tissue_sigma
        Concentrations of ``phi_l`` on shared topics, own-tissue topics and other tissues' topics.
    individual_sigma
        GTEx-like extra, 0 (off) by default: each individual draws a preference
        ``u_i ~ Dirichlet(1)`` over the shared topics and every sample of that individual adds
        ``individual_sigma * K_shared * u_i`` to its shared-topic concentrations. The samples of one
        individual then share topic proportions (as real tissues of one person do) and ``theta_i``
        varies more between individuals. Raise ``tissue_sigma`` with it to keep tissue topics
        dominant. Measured on ``demo`` (seed 0, CAVI fit with the true ancestry): matched SNP-topic
        Pearson r about 0.45 by default; 0.47 with ``individual_sigma=2, tissue_sigma=10``; about 0.6
        with ``individual_sigma=5, tissue_sigma=20, zeta=gamma=0.3``. SNP topics are limited by the
        number of individuals ``N`` (each ``lambda_jk`` is learned from ``N`` genotypes).
    zeta, gamma
        ``lambda_jk ~ Beta(zeta, gamma)``.
    library_size_median, library_size_sd
        Log-normal library sizes ``C_l``: median and sd of ``log C_l``. ``None`` median means
        500 reads per gene (bulk) or 5 per gene (single cell).
    fst, maf_range
        Balding-Nichols ``F`` and the range of base allele frequencies of ``beta``.
    ancestry_group_weights
        Probabilities of the ancestry groups (length ``Q``); ``None`` means ``0.6, 0.3, 0.1``
        for ``Q = 3`` and decreasing weights in general.
    admixture_concentration, own_ancestry_fraction
        ``tau_i ~ Dirichlet(c * m_g)``, ``m_g`` with ``own_ancestry_fraction`` on the group's population.
    n_cis, n_trans
        Planted cis- and trans-eQTLs.
    cis_effect, trans_effect
        Ranges of ``|effect|`` (log fold change per allele); signs are random.
    cis_window
        Maximum SNP-TSS distance of a planted cis-eQTL (bp).
    trans_top_fraction
        Trans SNPs and genes are drawn from this top fraction of their topic's features.
    eqtl_min_maf
        Minimum MAF of a planted eQTL SNP.
    covariate_effects
        Whether sex and platform change expression.
    covariate_gene_fraction, sex_effect, platform_effect
        Fraction of genes affected by each covariate and the range of ``|effect|``.
    lincrna_fraction
        Fraction of ``lincRNA`` genes.
    n_cell_type_topics, cell_type_score_noise
        Number of shared topics that get a per-sample cell-type enrichment score, and the
        standard deviation of the score's log-normal noise.
    missing_rate
        Probability of a missing genotype call.
    expression_noise_sd
        Standard deviation of an independent normal log-rate multiplier per sample and gene
        (biological overdispersion); 0 keeps the multinomial of equation 4.
    cells_per_donor
        Single-cell variant when set: mean cells per donor.
    """

    n_genes: int = 200
    n_individuals: int = 100
    n_samples: int = 300
    n_snps: int = 500
    n_topics: int = 10
    n_ancestry: int = 3
    alpha: float = 0.3
    n_tissues: int = 5
    n_tissue_topics: int = 1
    n_chromosomes: int = 2
    gene_concentration: float = 0.3
    sigma: float = 1.0
    individual_sigma: float = 0.0
    tissue_sigma: float = 4.0
    off_tissue_sigma: float = 0.05
    zeta: float = 1.0
    gamma: float = 1.0
    library_size_median: float | None = None
    library_size_sd: float = 0.35
    fst: float = 0.1
    maf_range: tuple[float, float] = (0.05, 0.5)
    ancestry_group_weights: tuple[float, ...] | None = None
    admixture_concentration: float = 10.0
    own_ancestry_fraction: float = 0.9
    n_cis: int = 20
    n_trans: int = 10
    cis_effect: tuple[float, float] = (0.3, 0.8)
    trans_effect: tuple[float, float] = (0.3, 0.6)
    cis_window: float = 1e6
    trans_top_fraction: float = 0.1
    eqtl_min_maf: float = 0.05
    covariate_effects: bool = True
    covariate_gene_fraction: float = 0.1
    sex_effect: tuple[float, float] = (0.3, 1.0)
    platform_effect: tuple[float, float] = (0.2, 0.6)
    lincrna_fraction: float = 0.25
    n_cell_type_topics: int = 2
    cell_type_score_noise: float = 0.5
    missing_rate: float = 0.0
    expression_noise_sd: float = 0.0
    cells_per_donor: float | None = None

    @property
    def single_cell(self) -> bool:
        """Whether this is the single-cell variant."""
        return self.cells_per_donor is not None

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as a JSON-friendly dict."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


#: Named presets: overrides of :class:`SimulationParams`.
PRESETS: dict[str, dict[str, Any]] = {
    # Test fixtures: every GTEx-like extra, < 1 s.
    "tiny": dict(
        n_genes=60,
        n_individuals=24,
        n_samples=72,
        n_snps=150,
        n_topics=6,
        n_ancestry=2,
        n_tissues=4,
        n_tissue_topics=1,
        n_chromosomes=2,
        n_cis=6,
        n_trans=4,
        trans_effect=(0.4, 0.8),
    ),
    # The TBLDA test size: a pure draw of equations 1-9 (symmetric sigma, no extras).
    "small": dict(
        n_genes=200,
        n_individuals=100,
        n_samples=300,
        n_snps=500,
        n_topics=10,
        n_ancestry=3,
        n_tissues=5,
        n_tissue_topics=0,
        n_chromosomes=2,
        n_cis=0,
        n_trans=0,
        covariate_effects=False,
        n_cell_type_topics=0,
    ),
    # The whole pipeline in a few minutes on 2 cores: 3 chromosomes, 6 tissues.
    "demo": dict(
        n_genes=600,
        n_individuals=150,
        n_samples=600,
        n_snps=1500,
        n_topics=12,
        n_ancestry=3,
        n_tissues=6,
        n_tissue_topics=1,
        n_chromosomes=3,
        n_cis=60,
        n_trans=30,
    ),
    # GTEx chromosome scale (about chr12 in the paper): 2 chromosomes so that trans pairs exist.
    "chromosome": dict(
        n_genes=1000,
        n_individuals=800,
        n_samples=5000,
        n_snps=10000,
        n_topics=20,
        n_ancestry=3,
        n_tissues=10,
        n_tissue_topics=1,
        n_chromosomes=2,
        n_cis=200,
        n_trans=100,
    ),
    # Single cell: many cells per donor, cell types as "tissues".
    "single_cell": dict(
        n_genes=300,
        n_individuals=20,
        n_snps=600,
        n_topics=8,
        n_ancestry=2,
        n_tissues=4,
        n_tissue_topics=1,
        n_chromosomes=2,
        n_cis=10,
        n_trans=5,
        cells_per_donor=100.0,
        n_cell_type_topics=0,
        library_size_sd=0.5,
        trans_effect=(0.4, 0.8),
    ),
}


def _tupled(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _check_params(p: SimulationParams) -> None:
    positive = ("n_genes", "n_individuals", "n_snps", "n_topics", "n_ancestry", "n_tissues", "n_chromosomes")
    bad = [f"{name}={getattr(p, name)}" for name in positive if int(getattr(p, name)) < 1]
    bad += [
        f"{name}={getattr(p, name)}"
        for name in ("n_cis", "n_trans", "n_tissue_topics")
        if int(getattr(p, name)) < 0
    ]
    if bad:
        raise InputError(
            "simulation sizes must be positive (counts of eQTLs and tissue topics >= 0)", ids=bad
        )
    if not 0.0 <= p.alpha <= 1.0:
        raise InputError(f"alpha must be in [0, 1], got {p.alpha}")
    if p.n_chromosomes > 22:
        raise InputError(f"n_chromosomes must be at most 22, got {p.n_chromosomes}")
    if not p.single_cell:
        if p.n_samples < p.n_individuals:
            raise InputError(
                f"n_samples ({p.n_samples}) must be at least n_individuals ({p.n_individuals}): "
                "every individual has a sample"
            )
        if p.n_samples > p.n_individuals * p.n_tissues:
            raise InputError(
                f"n_samples ({p.n_samples}) exceeds n_individuals x n_tissues "
                f"({p.n_individuals * p.n_tissues}): at most one sample per tissue per "
                "individual"
            )
    elif p.cells_per_donor < 1:
        raise InputError(f"cells_per_donor must be at least 1, got {p.cells_per_donor}")
    names = CELL_TYPE_NAMES if p.single_cell else TISSUE_NAMES
    if p.n_tissues > len(names):
        raise InputError(f"n_tissues must be at most {len(names)}, got {p.n_tissues}")
    if p.n_tissues * p.n_tissue_topics >= p.n_topics and p.n_tissue_topics > 0:
        raise InputError(
            f"n_topics ({p.n_topics}) must exceed n_tissues x n_tissue_topics "
            f"({p.n_tissues * p.n_tissue_topics}) so that shared topics exist"
        )
    if max(p.n_chromosomes, 1) > min(p.n_genes, p.n_snps):
        raise InputError("need at least one gene and one SNP per chromosome")
    if not 0.0 < p.fst < 1.0:
        raise InputError(f"fst must be in (0, 1), got {p.fst}")
    n_shared = p.n_topics - p.n_tissues * p.n_tissue_topics
    if not 0 <= p.n_cell_type_topics <= min(n_shared, len(CELL_TYPE_SCORE_NAMES)):
        raise InputError(
            f"n_cell_type_topics must be between 0 and the number of shared topics "
            f"({min(n_shared, len(CELL_TYPE_SCORE_NAMES))}), got {p.n_cell_type_topics}"
        )
    if p.individual_sigma < 0:
        raise InputError(f"individual_sigma must be >= 0, got {p.individual_sigma}")
    if p.expression_noise_sd < 0:
        raise InputError(f"expression_noise_sd must be >= 0, got {p.expression_noise_sd}")
    if not 0.0 <= p.missing_rate < 1.0:
        raise InputError(f"missing_rate must be in [0, 1), got {p.missing_rate}")
    if p.ancestry_group_weights is not None and len(p.ancestry_group_weights) != p.n_ancestry:
        raise InputError(
            f"ancestry_group_weights needs {p.n_ancestry} values, got {len(p.ancestry_group_weights)}"
        )
    for name in (
        "gene_concentration",
        "sigma",
        "tissue_sigma",
        "off_tissue_sigma",
        "zeta",
        "gamma",
        "admixture_concentration",
    ):
        if not getattr(p, name) > 0:
            raise InputError(f"{name} must be positive, got {getattr(p, name)}")


def resolve_params(preset: str = "small", **overrides: Any) -> SimulationParams:
    """Return the parameters of ``preset`` with ``overrides`` applied and checked.

    Parameters
    ----------
    preset
        A key of :data:`PRESETS`.
    **overrides
        Fields of :class:`SimulationParams`.

    Returns
    -------
    SimulationParams
        The checked parameters.

    Raises
    ------
    InputError
        Unknown preset or parameter names, or inconsistent values.
    """
    if preset not in PRESETS:
        raise InputError("unknown simulation preset", ids=[preset])
    known = {f.name for f in dataclasses.fields(SimulationParams)}
    unknown = [k for k in overrides if k not in known]
    if unknown:
        raise InputError(f"unknown simulation parameters (known: {', '.join(sorted(known))})", ids=unknown)
    values = {**PRESETS[preset], **{k: _tupled(v) for k, v in overrides.items()}}
    if overrides.get("cells_per_donor") is not None and "n_samples" in overrides:
        raise InputError("give either n_samples (bulk) or cells_per_donor (single cell), not both")
    params = SimulationParams(**values)
    _check_params(params)
    return params


@dataclass(frozen=True, eq=False)
class SimulationTruth:
    """The planted truth of a simulated data set, labelled by IDs.

    Topics are labelled ``0 ... K-1`` (int column labels, axis name ``topic``, as the fitted
    :class:`~tbeqtl.tblda.TBLDA` tables); ancestral populations ``ancestry_0 ... ancestry_{Q-1}``
    (axis name ``ancestry``, as :mod:`tbeqtl.tblda.ancestry`), so ``(ancestry_beta_df,
    ancestry_tau_df)`` can be passed as ``TBLDA.fit(..., ancestry=...)``. Population ``q`` is the
    centre of ancestry group ``ANCESTRY_LABELS[q]`` (``EUR``, ``AFR``, ``EAS``, ...).

    Attributes
    ----------
    gene_topics_df : pandas.DataFrame
        Genes x K, ``psi`` (each column sums to one over the drawn genes).
    sample_topics_df : pandas.DataFrame
        Samples x K, ``phi``.
    individual_topics_df : pandas.DataFrame
        Individuals x K, ``theta`` (equation 5).
    snp_topics_df : pandas.DataFrame
        SNPs x K, ``lambda``.
    alpha : float
        Weight of the private ancestry subspace.
    ancestry_beta_df : pandas.DataFrame
        SNPs x Q allele frequencies ``beta`` (of the allele the dosage counts: ``alt``).
    ancestry_tau_df : pandas.DataFrame
        Individuals x Q admixture ``tau`` (transposed), rows sum to one.
    eqtls_df : pandas.DataFrame
        Planted eQTLs: ``snp``, ``gene``, ``kind`` (``cis``/``trans``), ``effect`` (log fold
        change of the gene's rate per ``alt`` allele), ``topic`` (the topic a trans-eQTL was drawn
        from; -1 for cis), ``distance`` (SNP position - TSS for cis, NaN for trans).
    topic_tissue_s : pandas.Series
        Topic -> tissue name of tissue-specific topics, ``""`` for shared topics.
    library_size_s : pandas.Series
        Sample -> ``C_l``.
    cell_type_topic_s : pandas.Series
        Cell type -> the shared topic its score ``sample_info_df["celltype_<cell type>"]`` tracks.
    covariate_effects_df : pandas.DataFrame
        Genes x (``sex``, ``platform``) log fold changes (``sex``: female vs male;
        ``platform``: 1 vs 0); all zero when covariate effects are off.
    params : dict
        The generating parameters, the seed and the preset.
    """

    gene_topics_df: pd.DataFrame
    sample_topics_df: pd.DataFrame
    individual_topics_df: pd.DataFrame
    snp_topics_df: pd.DataFrame
    alpha: float
    ancestry_beta_df: pd.DataFrame
    ancestry_tau_df: pd.DataFrame
    eqtls_df: pd.DataFrame
    topic_tissue_s: pd.Series
    library_size_s: pd.Series
    cell_type_topic_s: pd.Series
    covariate_effects_df: pd.DataFrame
    params: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Simulation:
    """A simulated data set and its planted truth.

    Attributes
    ----------
    data : EQTLData
        The observed data.
    truth : SimulationTruth
        The planted truth.
    """

    data: EQTLData
    truth: SimulationTruth

    def write(self, out_dir: str | Path, *, overwrite: bool = False) -> Path:
        """Write the data in real formats plus ``truth/``, atomically as a whole.

        See :func:`tbeqtl.simulate.write.write_simulation`.

        Parameters
        ----------
        out_dir
            Destination folder.
        overwrite
            Replace data set files already in ``out_dir``.

        Returns
        -------
        pathlib.Path
            ``out_dir``.
        """
        from .write import write_simulation

        return write_simulation(self, out_dir, overwrite=overwrite)

    def __repr__(self) -> str:
        eq = self.truth.eqtls_df
        n_cis = int((eq["kind"] == "cis").sum())
        params = self.truth.params
        return (
            f"Simulation(preset={params.get('preset')!r}, seed={params.get('seed')}, "
            f"alpha={self.truth.alpha}, {n_cis} cis + {len(eq) - n_cis} trans eQTLs)\n{self.data!r}"
        )


_STREAMS = (
    "genome",
    "ids",
    "design",
    "ancestry",
    "gene_topics",
    "sample_topics",
    "snp_topics",
    "genotypes",
    "missing",
    "eqtls",
    "covariates",
    "library",
    "counts",
    "noise",
    "cell_types",
    "individual_topics",
)


def simulate(*, preset: str = "small", seed: int = 0, **overrides: Any) -> Simulation:
    """Draw a telescoping data set from the TBLDA generative model with GTEx-like extras.

    Parameters
    ----------
    preset
        ``"tiny"`` (test fixtures, every extra, < 1 s), ``"small"`` (the TBLDA test size, a pure
        draw of equations 1-9: G=200, N=100, L=300, S=500, K=10, Q=3, alpha=0.3), ``"demo"``
        (the whole pipeline in minutes), ``"chromosome"`` (about 1,000 genes x 5,000 samples,
        10,000 SNPs x 800 individuals) or ``"single_cell"``. See :data:`PRESETS`.
    seed
        Seed of every random draw; the result depends on nothing else.
    **overrides
        Fields of :class:`SimulationParams`, e.g. ``n_genes=500, n_cis=0, n_trans=0,
        covariate_effects=False``.

    Returns
    -------
    Simulation
        ``.data`` (:class:`~tbeqtl.data.EQTLData`) and ``.truth`` (:class:`SimulationTruth`).

    Raises
    ------
    InputError
        Unknown preset or parameters, or inconsistent sizes.

    Examples
    --------
    >>> sim = simulate(preset="tiny", seed=1)
    >>> sim.data.counts_df.shape
    (60, 72)
    """
    params = resolve_params(preset, **overrides)
    started = time.perf_counter()
    children = np.random.SeedSequence(int(seed)).spawn(len(_STREAMS))
    rng = {name: np.random.default_rng(child) for name, child in zip(_STREAMS, children, strict=True)}
    layout = _draw_layout(params, rng)
    model = _draw_model(params, rng, layout)
    covariates = _draw_covariates(params, rng, layout)
    cis, trans = _choose_eqtls(params, rng, layout, model)
    counts, library_sizes = _draw_expression(params, rng, layout, model, covariates, cis=cis, trans=trans)
    sim = _assemble(
        params,
        rng,
        layout,
        model,
        covariates,
        counts=counts,
        library_sizes=library_sizes,
        cis=cis,
        trans=trans,
        record={"preset": preset, "seed": int(seed)},
    )
    logger.info(
        "simulated %s (preset %s, seed %d) in %.2f s",
        repr(sim.data).splitlines()[0],
        preset,
        seed,
        time.perf_counter() - started,
    )
    return sim


@dataclass(frozen=True, eq=False)
class _Layout:
    """Features, individuals, samples and tissues of one draw (arrays in draw order)."""

    gene_info_df: pd.DataFrame
    snp_info_df: pd.DataFrame
    individual_index: np.ndarray  # individual of each sample
    tissue_index: np.ndarray  # tissue of each sample
    tissue_names: np.ndarray
    individuals: pd.Index
    samples: pd.Index


@dataclass(frozen=True, eq=False)
class _Model:
    """The TBLDA draws (paper symbols)."""

    beta: np.ndarray  # S x Q
    tau: np.ndarray  # Q x N
    group: np.ndarray  # ancestry group of each individual
    psi: np.ndarray  # G x K
    topic_tissue: np.ndarray  # tissue index of each topic, -1 shared
    phi: np.ndarray  # L x K
    theta: np.ndarray  # K x N
    lam: np.ndarray  # S x K
    y_complete: np.ndarray  # S x N dosages before masking
    y: np.ndarray  # S x N dosages with NaN for missing


@dataclass(frozen=True, eq=False)
class _Covariates:
    sex: np.ndarray  # per individual, 1 male / 2 female
    pcr: np.ndarray  # per individual, 0/1, no effect
    platform: np.ndarray  # per sample, 0/1
    sex_effect: np.ndarray  # per gene
    platform_effect: np.ndarray  # per gene


def _draw_layout(p: SimulationParams, rng: dict[str, np.random.Generator]) -> _Layout:
    gene_info_df = draw_gene_info(
        rng["genome"], p.n_genes, n_chromosomes=p.n_chromosomes, lincrna_fraction=p.lincrna_fraction
    )
    snp_info_df = draw_snp_info(rng["genome"], p.n_snps, n_chromosomes=p.n_chromosomes)
    if p.single_cell:
        ind_idx, tis_idx = draw.draw_single_cell_design(
            rng["design"],
            n_individuals=p.n_individuals,
            cells_per_donor=p.cells_per_donor,
            n_cell_types=p.n_tissues,
        )
        tissue_names = np.array(CELL_TYPE_NAMES[: p.n_tissues], dtype=object)
    else:
        ind_idx, tis_idx = draw.draw_bulk_design(
            rng["design"], n_individuals=p.n_individuals, n_samples=p.n_samples, n_tissues=p.n_tissues
        )
        tissue_names = np.array(TISSUE_NAMES[: p.n_tissues], dtype=object)
    individuals = pd.Index(
        draw_individual_ids(rng["ids"], p.n_individuals, single_cell=p.single_cell), name="individual"
    )
    samples = pd.Index(
        draw_sample_ids(rng["ids"], list(individuals[ind_idx]), tis_idx, single_cell=p.single_cell),
        name="sample",
    )
    return _Layout(gene_info_df, snp_info_df, ind_idx, tis_idx, tissue_names, individuals, samples)


def _draw_model(p: SimulationParams, rng: dict[str, np.random.Generator], layout: _Layout) -> _Model:
    """Equations 1, 2 and 5-9 (the private ancestry subspace, the topics and the genotypes)."""
    weights = (
        np.asarray(p.ancestry_group_weights, dtype=float)
        if p.ancestry_group_weights is not None
        else _default_group_weights(p.n_ancestry)
    )
    beta, tau, group = draw.draw_ancestry(
        rng["ancestry"],
        n_snps=p.n_snps,
        n_individuals=p.n_individuals,
        n_ancestry=p.n_ancestry,
        fst=p.fst,
        maf_range=p.maf_range,
        group_weights=weights / weights.sum(),
        admixture_concentration=p.admixture_concentration,
        own_fraction=p.own_ancestry_fraction,
    )
    psi = draw.draw_gene_topics(rng["gene_topics"], p.n_genes, p.n_topics, xi=p.gene_concentration)
    conc, topic_tissue = draw.tissue_concentrations(
        p.n_tissues,
        p.n_topics,
        n_tissue_topics=p.n_tissue_topics,
        sigma=p.sigma,
        tissue_sigma=p.tissue_sigma,
        off_tissue_sigma=p.off_tissue_sigma,
    )
    sample_conc = conc[layout.tissue_index]
    if p.individual_sigma > 0:
        # individual-level preference over the shared topics, shared by all of an individual's samples
        shared = np.flatnonzero(topic_tissue < 0)
        pref = rng["individual_topics"].dirichlet(np.ones(shared.size), size=p.n_individuals)
        sample_conc = sample_conc.copy()
        sample_conc[:, shared] += p.individual_sigma * shared.size * pref[layout.individual_index]
    phi = draw.draw_sample_topics(rng["sample_topics"], sample_conc)
    theta = draw.individual_topics(phi, layout.individual_index, p.n_individuals)
    lam = draw.draw_snp_topics(rng["snp_topics"], p.n_snps, p.n_topics, zeta=p.zeta, gamma=p.gamma)
    rho = draw.genotype_probabilities(p.alpha, beta=beta, tau=tau, lam=lam, theta=theta)
    y_complete = draw.draw_genotypes(rng["genotypes"], rho)
    y = draw.mask_genotypes(rng["missing"], y_complete, missing_rate=p.missing_rate)
    return _Model(beta, tau, group, psi, topic_tissue, phi, theta, lam, y_complete, y)


def _draw_covariates(
    p: SimulationParams, rng: dict[str, np.random.Generator], layout: _Layout
) -> _Covariates:
    crng = rng["covariates"]
    # GTEx SEX coding: 1 male, 2 female
    sex = np.where(crng.random(p.n_individuals) < 0.66, 1, 2).astype(np.int64)
    pcr = (crng.random(p.n_individuals) < 0.3).astype(np.int64)
    platform = (crng.random(layout.samples.size) < 0.3).astype(np.int64)
    if p.covariate_effects:
        sex_eff = draw_covariate_effects(
            crng, p.n_genes, fraction=p.covariate_gene_fraction, effect_range=p.sex_effect
        )
        plat_eff = draw_covariate_effects(
            crng, p.n_genes, fraction=p.covariate_gene_fraction, effect_range=p.platform_effect
        )
    else:
        sex_eff = np.zeros(p.n_genes)
        plat_eff = np.zeros(p.n_genes)
    return _Covariates(sex, pcr, platform, sex_eff, plat_eff)


def _choose_eqtls(
    p: SimulationParams, rng: dict[str, np.random.Generator], layout: _Layout, model: _Model
) -> tuple[list[tuple[int, int, float]], list[tuple[int, int, float, int]]]:
    coded_maf = model.y_complete.mean(axis=1) / 2.0
    maf = np.minimum(coded_maf, 1.0 - coded_maf)
    used_genes: set[int] = set()
    cis = choose_cis_eqtls(
        rng["eqtls"],
        p.n_cis,
        gene_info_df=layout.gene_info_df,
        snp_info_df=layout.snp_info_df,
        maf=maf,
        window=p.cis_window,
        effect_range=p.cis_effect,
        min_maf=p.eqtl_min_maf,
        used_genes=used_genes,
    )
    trans = choose_trans_eqtls(
        rng["eqtls"],
        p.n_trans,
        psi=model.psi,
        lam=model.lam,
        coded_maf=coded_maf,
        maf=maf,
        gene_chrom=layout.gene_info_df["chrom"].to_numpy(),
        snp_chrom=layout.snp_info_df["chrom"].to_numpy(),
        top_fraction=p.trans_top_fraction,
        effect_range=p.trans_effect,
        min_maf=p.eqtl_min_maf,
        used_genes=used_genes,
        used_snps={j for j, _, _ in cis},
    )
    return cis, trans


def _draw_expression(
    p: SimulationParams,
    rng: dict[str, np.random.Generator],
    layout: _Layout,
    model: _Model,
    covariates: _Covariates,
    *,
    cis: list,
    trans: list,
) -> tuple[np.ndarray, np.ndarray]:
    """Equations 3-4 with the multiplicative extras; returns (G x L counts, library sizes)."""
    ind_idx = layout.individual_index
    log_mult = None
    if cis or trans or p.covariate_effects or p.expression_noise_sd > 0:
        planted = [*cis, *((j, g, e) for j, g, e, _ in trans)]
        log_mult = eqtl_log_multiplier(model.y_complete, ind_idx, n_genes=p.n_genes, eqtls=planted)
        female = (covariates.sex == 2).astype(float)
        log_mult += np.outer((female - female.mean())[ind_idx], covariates.sex_effect)
        platform = covariates.platform
        log_mult += np.outer(platform - platform.mean(), covariates.platform_effect)
        if p.expression_noise_sd > 0:
            log_mult += rng["noise"].normal(0.0, p.expression_noise_sd, size=log_mult.shape)
    median = p.library_size_median
    if median is None:
        median = (5.0 if p.single_cell else 500.0) * p.n_genes
    lib = draw.draw_library_sizes(rng["library"], layout.samples.size, median=median, sd=p.library_size_sd)
    counts = draw.draw_counts(rng["counts"], model.psi, model.phi, library_sizes=lib, log_multiplier=log_mult)
    return counts, lib


def _assemble(
    p: SimulationParams,
    rng: dict[str, np.random.Generator],
    layout: _Layout,
    model: _Model,
    covariates: _Covariates,
    *,
    counts: np.ndarray,
    library_sizes: np.ndarray,
    cis: list,
    trans: list,
    record: dict[str, Any],
) -> Simulation:
    """Label everything by ID, build the EQTLData and the truth tables."""
    genes, snps = layout.gene_info_df.index, layout.snp_info_df.index
    individuals, samples = layout.individuals, layout.samples
    topics = pd.RangeIndex(p.n_topics, name="topic")
    counts_df = pd.DataFrame(counts, index=genes, columns=samples)
    genotype_df = pd.DataFrame(model.y, index=snps, columns=individuals)
    sample_map_s = pd.Series(individuals[layout.individual_index], index=samples, name="individual")
    sample_info_df = pd.DataFrame(
        {"tissue": layout.tissue_names[layout.tissue_index], "platform": covariates.platform}, index=samples
    )
    if p.single_cell:
        sample_info_df["cell_type"] = sample_info_df["tissue"]
    shared_topics = np.flatnonzero(model.topic_tissue < 0)
    cell_types = pd.Index(CELL_TYPE_SCORE_NAMES[: p.n_cell_type_topics], name="cell_type")
    cell_type_topic_s = pd.Series(
        shared_topics[: p.n_cell_type_topics], index=cell_types, name="topic", dtype=np.int64
    )
    for name, k in cell_type_topic_s.items():
        noise = rng["cell_types"].normal(0.0, p.cell_type_score_noise, size=samples.size)
        sample_info_df[f"celltype_{name}"] = model.phi[:, k] * np.exp(noise)
    labels = np.array(
        [ANCESTRY_LABELS[q] if q < len(ANCESTRY_LABELS) else f"POP{q + 1}" for q in range(p.n_ancestry)],
        dtype=object,
    )
    individual_info_df = pd.DataFrame(
        {"sex": covariates.sex, "pcr": covariates.pcr, "ancestry": labels[model.group]}, index=individuals
    )
    data = EQTLData.from_frames(
        counts_df,
        genotype_df,
        sample_map_s,
        sample_info_df=sample_info_df,
        individual_info_df=individual_info_df,
        gene_info_df=layout.gene_info_df,
        snp_info_df=layout.snp_info_df,
    )
    dropped_genes = genes.difference(data.genes, sort=False)
    dropped_snps = snps.difference(data.snps, sort=False)
    if len(dropped_genes) or len(dropped_snps):
        logger.warning(
            "simulated data lost %d all-zero genes and %d monomorphic SNPs (%s); the truth "
            "tables are restricted to the kept features",
            len(dropped_genes),
            len(dropped_snps),
            format_ids([*dropped_genes, *dropped_snps]),
        )

    eqtls_df = _eqtl_table(layout, cis=cis, trans=trans)
    kept = eqtls_df["snp"].isin(data.snps) & eqtls_df["gene"].isin(data.genes)
    eqtls_df = eqtls_df[kept].reset_index(drop=True)
    anc_columns = pd.Index([f"ancestry_{q}" for q in range(p.n_ancestry)], name="ancestry")
    tissue_of_topic = np.where(
        model.topic_tissue >= 0, layout.tissue_names[np.maximum(model.topic_tissue, 0)], ""
    )
    effects_df = pd.DataFrame(
        {"sex": covariates.sex_effect, "platform": covariates.platform_effect}, index=genes
    )
    truth = SimulationTruth(
        gene_topics_df=pd.DataFrame(model.psi, index=genes, columns=topics).loc[data.genes],
        sample_topics_df=pd.DataFrame(model.phi, index=samples, columns=topics),
        individual_topics_df=pd.DataFrame(model.theta.T, index=individuals, columns=topics),
        snp_topics_df=pd.DataFrame(model.lam, index=snps, columns=topics).loc[data.snps],
        alpha=float(p.alpha),
        ancestry_beta_df=pd.DataFrame(model.beta, index=snps, columns=anc_columns).loc[data.snps],
        ancestry_tau_df=pd.DataFrame(model.tau.T, index=individuals, columns=anc_columns),
        eqtls_df=eqtls_df,
        topic_tissue_s=pd.Series(tissue_of_topic, index=topics, name="tissue", dtype=object),
        library_size_s=pd.Series(library_sizes, index=samples, name="library_size"),
        cell_type_topic_s=cell_type_topic_s,
        covariate_effects_df=effects_df.loc[data.genes],
        params={**record, **p.to_dict(), "n_samples": int(samples.size)},
    )
    return Simulation(data=data, truth=truth)


def _eqtl_table(layout: _Layout, *, cis: list, trans: list) -> pd.DataFrame:
    genes, snps = layout.gene_info_df.index, layout.snp_info_df.index
    rows = [(snps[j], genes[g], "cis", e, -1) for j, g, e in cis]
    rows += [(snps[j], genes[g], "trans", e, k) for j, g, e, k in trans]
    eqtls_df = pd.DataFrame(rows, columns=["snp", "gene", "kind", "effect", "topic"])
    eqtls_df = eqtls_df.astype(
        {"snp": object, "gene": object, "kind": object, "effect": float, "topic": np.int64}
    )
    info = layout.gene_info_df
    tss_s = pd.Series(np.where(info["strand"] == "+", info["start"], info["end"]), index=genes)
    distance = (
        layout.snp_info_df["pos"].reindex(eqtls_df["snp"]).to_numpy()
        - tss_s.reindex(eqtls_df["gene"]).to_numpy()
    )
    eqtls_df["distance"] = np.where(eqtls_df["kind"] == "cis", distance, np.nan)
    return eqtls_df


def _default_group_weights(n_ancestry: int) -> np.ndarray:
    if n_ancestry == 3:
        return np.array([0.6, 0.3, 0.1])
    w = 0.5 ** np.arange(n_ancestry)
    return w / w.sum()
