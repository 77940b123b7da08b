"""Numerical draws of the TBLDA generative model (paper, Materials and Methods, equations 1-9).

Every function takes an explicit :class:`numpy.random.Generator` and returns plain arrays;
:mod:`tbeqtl.simulate.core` labels them with IDs. Shapes follow the paper: ``G`` genes, ``L``
samples, ``S`` SNPs, ``N`` individuals, ``K`` topics, ``Q`` ancestral populations.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "draw_ancestry",
    "draw_bulk_design",
    "draw_counts",
    "draw_gene_topics",
    "draw_genotypes",
    "draw_library_sizes",
    "draw_sample_topics",
    "draw_single_cell_design",
    "draw_snp_topics",
    "genotype_probabilities",
    "individual_topics",
    "mask_genotypes",
    "tissue_concentrations",
    "tissue_weights",
]


def tissue_weights(n_tissues: int) -> np.ndarray:
    """Relative tissue sizes: decreasing geometrically, largest / smallest = e^1.5 (about 4.5).

    Parameters
    ----------
    n_tissues
        Number of tissues ``T``.

    Returns
    -------
    numpy.ndarray
        Length-``T`` weights summing to one.
    """
    v = np.exp(-1.5 * np.arange(n_tissues) / max(n_tissues - 1, 1))
    return v / v.sum()


def draw_bulk_design(
    rng: np.random.Generator, *, n_individuals: int, n_samples: int, n_tissues: int
) -> tuple[np.ndarray, np.ndarray]:
    """Assign ``L`` bulk samples to individuals and tissues, GTEx style.

    Each individual gives at most one sample per tissue and at least one sample. Every
    individual first gets one sample from a tissue drawn by tissue size; the remaining
    ``L - N`` (individual, tissue) cells are drawn without replacement with probability
    proportional to ``w_i * v_t``, where ``w_i ~ Gamma(2, 1)`` is the individual's
    participation and ``v_t`` the tissue weight (:func:`tissue_weights`). The number of samples
    per individual therefore varies (1 to ``T``) and so do tissue sizes.

    Parameters
    ----------
    rng
        Random generator.
    n_individuals, n_samples, n_tissues
        ``N``, ``L`` (``N <= L <= N * T``) and ``T``.

    Returns
    -------
    individual_index, tissue_index : numpy.ndarray
        Length-``L`` int64 arrays, sorted by individual then tissue.
    """
    v = tissue_weights(n_tissues)
    w = rng.gamma(2.0, 1.0, size=n_individuals)
    taken = np.zeros((n_individuals, n_tissues), dtype=bool)
    taken[np.arange(n_individuals), rng.choice(n_tissues, size=n_individuals, p=v)] = True
    rest = n_samples - n_individuals
    if rest > 0:
        p = (w[:, None] * v[None, :]).ravel()
        p[taken.ravel()] = 0.0
        extra = rng.choice(p.size, size=rest, replace=False, p=p / p.sum())
        taken.ravel()[extra] = True
    ind, tis = np.nonzero(taken)
    return ind.astype(np.int64), tis.astype(np.int64)


def draw_single_cell_design(
    rng: np.random.Generator, *, n_individuals: int, cells_per_donor: float, n_cell_types: int
) -> tuple[np.ndarray, np.ndarray]:
    """Assign cells to donors and cell types.

    Donor ``i`` gives ``1 + Poisson(cells_per_donor - 1)`` cells; each cell's type is drawn
    from the donor's cell-type composition ``Dirichlet(20 * v)`` (``v`` from
    :func:`tissue_weights`).

    Parameters
    ----------
    rng
        Random generator.
    n_individuals
        Number of donors ``N``.
    cells_per_donor
        Mean number of cells per donor (>= 1).
    n_cell_types
        Number of cell types.

    Returns
    -------
    individual_index, cell_type_index : numpy.ndarray
        Length-``L`` int64 arrays, sorted by donor then cell type.
    """
    v = tissue_weights(n_cell_types)
    n_cells = 1 + rng.poisson(max(cells_per_donor - 1.0, 0.0), size=n_individuals)
    ind = np.repeat(np.arange(n_individuals), n_cells)
    comp = rng.dirichlet(20.0 * v, size=n_individuals)
    cum = np.cumsum(comp, axis=1)
    u = rng.random(ind.size)
    ctype = np.minimum((u[:, None] > cum[ind]).sum(axis=1), n_cell_types - 1)
    order = np.lexsort((ctype, ind))
    return ind[order].astype(np.int64), ctype[order].astype(np.int64)


def draw_library_sizes(rng: np.random.Generator, n_samples: int, *, median: float, sd: float) -> np.ndarray:
    """Draw total read counts ``C_l = round(median * exp(N(0, sd^2)))`` (log-normal), at least 1.

    Parameters
    ----------
    rng
        Random generator.
    n_samples
        ``L``.
    median
        Median library size.
    sd
        Standard deviation of ``log C_l``.

    Returns
    -------
    numpy.ndarray
        int64 library sizes.
    """
    return np.maximum(np.round(median * np.exp(rng.normal(0.0, sd, size=n_samples))), 1).astype(np.int64)


def draw_gene_topics(rng: np.random.Generator, n_genes: int, n_topics: int, *, xi: float) -> np.ndarray:
    """Draw gene topics ``psi_k ~ Dirichlet(xi * 1_G)`` (equation 1).

    Parameters
    ----------
    rng
        Random generator.
    n_genes, n_topics
        ``G`` and ``K``.
    xi
        Symmetric concentration ``xi``.

    Returns
    -------
    numpy.ndarray
        ``Psi``, G x K; each column sums to one.
    """
    return rng.dirichlet(np.full(n_genes, xi), size=n_topics).T.copy()


def tissue_concentrations(
    n_tissues: int,
    n_topics: int,
    *,
    n_tissue_topics: int,
    sigma: float,
    tissue_sigma: float,
    off_tissue_sigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Dirichlet concentration of ``phi_l`` for a sample of each tissue.

    Topics ``0 ... T * n_tissue_topics - 1`` are tissue-specific (topic ``k`` belongs to tissue
    ``k // n_tissue_topics``); the rest are shared. A sample of tissue ``t`` draws
    ``phi_l ~ Dirichlet(sigma_t)`` with ``sigma_tk = tissue_sigma`` on its own tissue's topics,
    ``off_tissue_sigma`` on other tissues' topics and ``sigma`` on shared topics. With
    ``n_tissue_topics = 0`` every sample has the symmetric prior ``Dirichlet(sigma)`` of
    equation 2.

    Parameters
    ----------
    n_tissues, n_topics
        ``T`` and ``K``.
    n_tissue_topics
        Tissue-specific topics per tissue.
    sigma, tissue_sigma, off_tissue_sigma
        Concentrations as above.

    Returns
    -------
    concentration : numpy.ndarray
        T x K concentrations.
    topic_tissue : numpy.ndarray
        Length-``K`` int64: the tissue index of each topic, -1 for shared topics.
    """
    conc = np.full((n_tissues, n_topics), float(sigma))
    topic_tissue = np.full(n_topics, -1, dtype=np.int64)
    if n_tissue_topics > 0:
        n_specific = n_tissues * n_tissue_topics
        topic_tissue[:n_specific] = np.arange(n_specific) // n_tissue_topics
        conc[:, :n_specific] = off_tissue_sigma
        for k in range(n_specific):
            conc[topic_tissue[k], k] = tissue_sigma
    return conc, topic_tissue


def draw_sample_topics(rng: np.random.Generator, concentration: np.ndarray) -> np.ndarray:
    """Draw sample proportions ``phi_l ~ Dirichlet(sigma_l)`` (equation 2), one row per sample.

    Drawn as normalised independent gammas, so each row may have its own concentration.

    Parameters
    ----------
    rng
        Random generator.
    concentration
        L x K concentrations (one row per sample).

    Returns
    -------
    numpy.ndarray
        ``Phi`` as L x K; each row sums to one.
    """
    g = rng.standard_gamma(concentration)
    # A row whose gammas all underflow to zero cannot occur with the shared topics' sigma >= 0.01,
    # but guard anyway by giving it the concentration's mean.
    sums = g.sum(axis=1, keepdims=True)
    bad = sums[:, 0] <= 0
    if bad.any():
        g[bad] = concentration[bad]
        sums = g.sum(axis=1, keepdims=True)
    return g / sums


def individual_topics(phi: np.ndarray, individual_index: np.ndarray, n_individuals: int) -> np.ndarray:
    """Individual proportions ``theta_i`` = mean of ``phi_l`` over individual ``i``'s samples (equation 5).

    Parameters
    ----------
    phi
        L x K sample proportions.
    individual_index
        Individual of each sample (0 ... N-1).
    n_individuals
        ``N``.

    Returns
    -------
    numpy.ndarray
        ``Theta`` as K x N.
    """
    n_topics = phi.shape[1]
    sums = np.zeros((n_individuals, n_topics))
    np.add.at(sums, individual_index, phi)
    counts = np.bincount(individual_index, minlength=n_individuals).astype(float)
    return (sums / counts[:, None]).T.copy()


def draw_snp_topics(
    rng: np.random.Generator, n_snps: int, n_topics: int, *, zeta: float, gamma: float
) -> np.ndarray:
    """Draw SNP topics ``lambda_jk ~ Beta(zeta, gamma)`` (equation 6).

    Parameters
    ----------
    rng
        Random generator.
    n_snps, n_topics
        ``S`` and ``K``.
    zeta, gamma
        Beta shape parameters.

    Returns
    -------
    numpy.ndarray
        ``Lambda`` as S x K.
    """
    return rng.beta(zeta, gamma, size=(n_snps, n_topics))


def draw_ancestry(
    rng: np.random.Generator,
    *,
    n_snps: int,
    n_individuals: int,
    n_ancestry: int,
    fst: float,
    maf_range: tuple[float, float],
    group_weights: np.ndarray,
    admixture_concentration: float,
    own_fraction: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw the private ancestry subspace: allele frequencies ``beta`` and admixture ``tau``.

    ``beta_jq`` follows the Balding-Nichols model around a base frequency
    ``p_j ~ Uniform(maf_range)``: ``beta_jq ~ Beta(p_j (1-F)/F, (1-p_j)(1-F)/F)`` with
    ``F = fst``. Each individual belongs to an ancestry group ``g_i`` (drawn with
    ``group_weights``; group ``q`` is centred on population ``q``) and has admixture
    ``tau_i ~ Dirichlet(c * m_g)`` with ``m_g`` putting ``own_fraction`` on population ``g``
    and the rest evenly on the others, ``c = admixture_concentration``.

    Parameters
    ----------
    rng
        Random generator.
    n_snps, n_individuals, n_ancestry
        ``S``, ``N`` and ``Q``.
    fst
        Balding-Nichols ``F`` (0 < F < 1).
    maf_range
        Range of the base allele frequency.
    group_weights
        Length-``Q`` probabilities of each ancestry group.
    admixture_concentration, own_fraction
        See above.

    Returns
    -------
    beta : numpy.ndarray
        S x Q allele frequencies (of the allele the dosage counts).
    tau : numpy.ndarray
        Q x N admixture proportions (columns sum to one).
    group : numpy.ndarray
        Length-``N`` ancestry group of each individual.
    """
    base = rng.uniform(maf_range[0], maf_range[1], size=n_snps)
    scale = (1.0 - fst) / fst
    beta = rng.beta(
        np.repeat((base * scale)[:, None], n_ancestry, axis=1),
        np.repeat(((1.0 - base) * scale)[:, None], n_ancestry, axis=1),
    )
    beta = np.clip(beta, 1e-4, 1.0 - 1e-4)
    group = rng.choice(n_ancestry, size=n_individuals, p=group_weights)
    if n_ancestry == 1:
        return beta, np.ones((1, n_individuals)), group
    mean = np.full((n_ancestry, n_ancestry), (1.0 - own_fraction) / (n_ancestry - 1))
    np.fill_diagonal(mean, own_fraction)
    g = rng.standard_gamma(admixture_concentration * mean[group])
    tau = (g / g.sum(axis=1, keepdims=True)).T.copy()
    return beta, tau, group


def genotype_probabilities(
    alpha: float, *, beta: np.ndarray, tau: np.ndarray, lam: np.ndarray, theta: np.ndarray
) -> np.ndarray:
    """``rho_ij = alpha * sum_q beta_jq tau_qi + (1 - alpha) * sum_k lambda_jk theta_ki`` (equation 8).

    Parameters
    ----------
    alpha
        Weight of the private ancestry subspace.
    beta, tau
        S x Q and Q x N ancestry matrices.
    lam, theta
        S x K SNP topics and K x N individual proportions.

    Returns
    -------
    numpy.ndarray
        S x N allele probabilities.
    """
    return alpha * (beta @ tau) + (1.0 - alpha) * (lam @ theta)


def draw_genotypes(rng: np.random.Generator, rho: np.ndarray) -> np.ndarray:
    """Draw complete genotypes ``y_ij ~ Binomial(2, rho_ij)`` (equation 9).

    Parameters
    ----------
    rng
        Random generator.
    rho
        S x N allele probabilities.

    Returns
    -------
    numpy.ndarray
        float64 dosages 0, 1 or 2, S x N.
    """
    return rng.binomial(2, rho).astype(np.float64)


def mask_genotypes(rng: np.random.Generator, y: np.ndarray, *, missing_rate: float) -> np.ndarray:
    """Return a copy of ``y`` with each call set to NaN (missing) with probability ``missing_rate``.

    Parameters
    ----------
    rng
        Random generator.
    y
        S x N dosages.
    missing_rate
        Probability that a call is missing, independently per call.

    Returns
    -------
    numpy.ndarray
        The masked copy.
    """
    out = y.copy()
    if missing_rate > 0:
        out[rng.random(y.shape) < missing_rate] = np.nan
    return out


def draw_counts(
    rng: np.random.Generator,
    psi: np.ndarray,
    phi: np.ndarray,
    *,
    library_sizes: np.ndarray,
    log_multiplier: np.ndarray | None = None,
) -> np.ndarray:
    """Draw counts ``x_l ~ Multinomial(C_l, pi_l)`` with ``pi_l = Psi phi_l`` (equations 3-4).

    With ``log_multiplier`` (L x G), the rates are ``pi_lg * exp(m_lg)`` renormalised per
    sample: the multiplicative eQTL and covariate effects of the GTEx-like extras.

    Parameters
    ----------
    rng
        Random generator.
    psi
        G x K gene topics.
    phi
        L x K sample proportions.
    library_sizes
        Length-``L`` totals ``C_l``.
    log_multiplier
        Optional L x G log rate multipliers.

    Returns
    -------
    numpy.ndarray
        int64 counts, G x L.
    """
    pi = phi @ psi.T
    if log_multiplier is not None:
        pi = pi * np.exp(log_multiplier)
    pi /= pi.sum(axis=1, keepdims=True)
    return rng.multinomial(library_sizes, pi).T.astype(np.int64)
