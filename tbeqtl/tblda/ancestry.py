r"""The private genotype ancestry subspace of TBLDA: ``beta`` (S x Q) and ``tau`` (Q x N).

In equation 8 of the paper, ``rho_ij = alpha * sum_q beta_jq tau_qi + (1 - alpha) * ...``:
``beta_jq`` is the frequency, in ancestral population ``q``, of the allele that ``y`` counts,
and ``tau_qi`` is individual ``i``'s admixture proportion. Both are fixed before the fit.
Here ``beta`` is held as a SNPs x Q DataFrame (``beta_df``) and ``tau`` transposed, as an
individuals x Q DataFrame (``tau_df``), both labelled by ID.

Sources:

- terastructure or ADMIXTURE output, read by :mod:`tbeqtl.io.ancestry`
  (:func:`read_terastructure_beta`, :func:`read_terastructure_theta`, :func:`read_admixture_p`,
  :func:`read_admixture_q`; re-exported here);
- :func:`estimate_ancestry`: when none is given, an internal estimate from the genotypes by
  EM for the ADMIXTURE/STRUCTURE likelihood ``y_ij ~ Binomial(2, sum_q P_jq Q_qi)``
  (Tang et al. 2005, "frappe"; Alexander et al. 2009), with Q chosen by the user;
- :func:`estimate_ancestry_subset`: the same EM on a seeded random subset of SNPs (the paper ran
  terastructure with ``-rfreq 40,222`` on 202,111 SNPs), then ``beta`` of every SNP given that
  ``tau``, streamed over SNP chunks.

:func:`check_ancestry` checks ranges, alignment and allele coding against the genotypes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io.ancestry import (
    read_admixture_p,
    read_admixture_q,
    read_ancestry_matrix,
    read_terastructure_beta,
    read_terastructure_theta,
)
from ..rng import as_generator

__all__ = [
    "ancestry_term",
    "check_ancestry",
    "estimate_ancestry",
    "estimate_ancestry_subset",
    "read_admixture_p",
    "read_admixture_q",
    "read_ancestry_matrix",
    "read_terastructure_beta",
    "read_terastructure_theta",
]

logger = logging.getLogger(__name__)


def check_ancestry(
    beta_df: pd.DataFrame, tau_df: pd.DataFrame, genotype_df: pd.DataFrame, *, flip: str = "error"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check ``beta`` and ``tau`` against the genotypes and align them by ID.

    Checks: every SNP and individual of the genotypes is present; the same number Q of
    ancestral populations in both; frequencies in [0, 1]; admixture proportions in [0, 1]
    with rows summing to 1 (within 1e-3; rows are renormalised); and the allele coding:
    the implied allele frequency ``mean_i (beta tau)_ji`` must be closer to the observed
    ``mean_i y_ij / 2`` than its complement is (the mean absolute difference to the
    complement must not be below half of that to the observed frequencies).

    Parameters
    ----------
    beta_df
        SNPs x Q allele frequencies ``beta``.
    tau_df
        Individuals x Q admixture proportions ``tau`` (transposed).
    genotype_df
        SNPs x individuals dosages (NaN = missing).
    flip
        What to do when ``beta`` counts the other allele: ``"error"`` (default) or ``"flip"``
        (use ``1 - beta``, logged).

    Returns
    -------
    tuple of pandas.DataFrame
        ``(beta_df, tau_df)`` reindexed to the genotypes' SNPs and individuals.

    Raises
    ------
    InputError
        Missing IDs, shape mismatch, out-of-range values or the other allele's frequencies.
    """
    beta_df = beta_df.copy()
    tau_df = tau_df.copy()
    beta_df.index = beta_df.index.astype(str)
    tau_df.index = tau_df.index.astype(str)
    if beta_df.shape[1] != tau_df.shape[1]:
        raise InputError(f"ancestry beta has {beta_df.shape[1]} populations but tau has {tau_df.shape[1]}")
    missing = genotype_df.index.difference(beta_df.index, sort=False)
    if len(missing):
        raise InputError("SNPs of the genotypes have no ancestry allele frequencies (beta)", ids=missing)
    missing = genotype_df.columns.difference(tau_df.index, sort=False)
    if len(missing):
        raise InputError("individuals of the genotypes have no admixture proportions (tau)", ids=missing)
    beta_df = beta_df.loc[genotype_df.index]
    tau_df = tau_df.loc[genotype_df.columns]
    beta = beta_df.to_numpy(dtype=np.float64)
    tau = tau_df.to_numpy(dtype=np.float64)
    bad = ~np.all((beta >= 0) & (beta <= 1), axis=1)
    if bad.any():
        raise InputError("ancestry allele frequencies (beta) outside [0, 1] for SNPs", ids=beta_df.index[bad])
    sums = tau.sum(axis=1)
    bad = ~np.all((tau >= 0) & (tau <= 1), axis=1) | (np.abs(sums - 1) > 1e-3)
    if bad.any():
        raise InputError(
            "admixture proportions (tau) outside [0, 1] or not summing to 1 for individuals",
            ids=tau_df.index[bad],
        )
    tau_df = tau_df.div(sums, axis=0)
    implied = (beta @ tau.T).mean(axis=1)
    observed = np.nanmean(genotype_df.to_numpy(dtype=np.float64), axis=1) / 2
    same = np.nanmean(np.abs(implied - observed))
    other = np.nanmean(np.abs(1 - implied - observed))
    if other < 0.5 * same:  # clearly closer to the complement (ambiguous when frequencies sit near 0.5)
        message = (
            f"ancestry allele frequencies (beta) look like those of the other allele (mean "
            f"|difference| to observed frequencies {same:.3f}, to their complement {other:.3f})"
        )
        if flip != "flip":
            raise InputError(message + "; recode the genotypes or pass flip='flip'")
        logger.warning("%s; using 1 - beta", message)
        beta_df = 1 - beta_df
    return beta_df, tau_df


def ancestry_term(beta_df: pd.DataFrame, tau_df: pd.DataFrame) -> np.ndarray:
    """Compute the fixed ancestry term ``A_ij = sum_q beta_jq tau_qi`` (S x N, float64).

    Parameters
    ----------
    beta_df
        SNPs x Q frequencies.
    tau_df
        Individuals x Q proportions.

    Returns
    -------
    numpy.ndarray
        ``beta @ tau.T``.
    """
    return beta_df.to_numpy(dtype=np.float64) @ tau_df.to_numpy(dtype=np.float64).T


def estimate_ancestry(
    genotype_df: pd.DataFrame,
    *,
    n_ancestry: int,
    max_iter: int = 300,
    tol: float = 1e-6,
    seed: int | np.random.Generator | None = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Estimate ``beta`` and ``tau`` from the genotypes by EM for the admixture likelihood.

    The model is ADMIXTURE's: ``y_ij ~ Binomial(2, sum_q P_jq Q_qi)`` with allele frequencies
    ``P`` (the paper's ``beta``) and admixture proportions ``Q`` (the paper's ``tau``). Each
    EM step allocates the ``y_ij`` counted and ``2 - y_ij`` other alleles to populations in
    proportion to ``P_jq Q_qi`` and ``(1 - P_jq) Q_qi``, then sets ``Q_qi`` to i's share of
    alleles from ``q`` and ``P_jq`` to the counted share of SNP j's alleles from ``q``; the
    likelihood never decreases. Missing genotypes are left out. Initial values are drawn
    with ``seed`` in ID-sorted order, so the result does not depend on input order.

    Parameters
    ----------
    genotype_df
        SNPs x individuals dosages in [0, 2] (NaN = missing).
    n_ancestry
        Number of ancestral populations Q (chosen by the user, as for ADMIXTURE's K).
    max_iter
        Maximum EM iterations.
    tol
        Stop when the relative log-likelihood gain of an iteration is below this.
    seed
        Seed of the initial values.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(beta_df, tau_df)``: SNPs x Q frequencies and individuals x Q proportions.

    Raises
    ------
    InputError
        ``n_ancestry < 1``.
    """
    if n_ancestry < 1:
        raise InputError(f"the number of ancestral populations must be >= 1, got {n_ancestry}")
    rng = as_generator(seed)
    snp_order = np.argsort(genotype_df.index.to_numpy(dtype=str), kind="stable")
    ind_order = np.argsort(genotype_df.columns.to_numpy(dtype=str), kind="stable")
    y = genotype_df.to_numpy(dtype=np.float64)[np.ix_(snp_order, ind_order)]
    mask = ~np.isnan(y)
    alt = np.where(mask, y, 0.0)
    ref = np.where(mask, 2.0 - y, 0.0)
    n_snps, n_ind = y.shape
    freq = np.clip(rng.uniform(0.2, 0.8, size=(n_snps, n_ancestry)), 1e-6, 1 - 1e-6)
    prop = rng.dirichlet(np.ones(n_ancestry), size=n_ind).T  # Q x N
    eps = 1e-9
    previous = -np.inf
    iteration = 0
    for iteration in range(max_iter):  # noqa: B007 - reported below
        rho = np.clip(freq @ prop, eps, 1 - eps)
        loglik = float((alt * np.log(rho)).sum() + (ref * np.log1p(-rho)).sum())
        if np.isfinite(previous) and abs(loglik - previous) <= tol * abs(previous):
            break
        previous = loglik
        r_alt = alt / rho
        r_ref = ref / (1 - rho)
        a_prop = prop * (freq.T @ r_alt)
        b_prop = prop * ((1 - freq).T @ r_ref)
        a_freq = freq * (r_alt @ prop.T)
        b_freq = (1 - freq) * (r_ref @ prop.T)
        total = a_prop + b_prop
        prop = total / np.maximum(total.sum(axis=0, keepdims=True), eps)
        freq = np.clip(a_freq / np.maximum(a_freq + b_freq, eps), 1e-6, 1 - 1e-6)
    logger.info("ancestry EM (Q=%d): %d iterations, log likelihood %.6g", n_ancestry, iteration + 1, loglik)
    columns = pd.Index([f"ancestry_{q}" for q in range(n_ancestry)], name="ancestry")
    beta = np.empty_like(freq)
    beta[snp_order] = freq
    tau = np.empty((n_ind, n_ancestry))
    tau[ind_order] = prop.T
    beta_df = pd.DataFrame(beta, index=pd.Index(genotype_df.index, name="snp"), columns=columns)
    tau_df = pd.DataFrame(tau, index=pd.Index(genotype_df.columns, name="individual"), columns=columns)
    return beta_df, tau_df


_EPS = 1e-9
_FREQ_MIN = 1e-6
_BLOCK_ROWS = 256  # rows of the per-SNP EM at a time: its arrays stay in cache


def _ancestry_columns(n_ancestry: int) -> pd.Index:
    return pd.Index([f"ancestry_{q}" for q in range(n_ancestry)], name="ancestry")


def _subset_keys(snps: pd.Index, seed: int) -> np.ndarray:
    """Seeded 64-bit hash of every SNP ID: a uniform random key that depends on the ID only."""
    key = hashlib.blake2b(f"tbeqtl ancestry SNP subset, seed {seed}".encode(), digest_size=32).digest()
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(str(snp).encode(), digest_size=8, key=key).digest(), "little")
            for snp in snps
        ),
        dtype=np.uint64,
        count=len(snps),
    )


def _smallest(keys: np.ndarray, snps: pd.Index, n: int) -> np.ndarray:
    """Positions of the ``n`` smallest keys (ties broken by SNP ID), in that order."""
    return np.lexsort((snps.to_numpy(dtype=str), keys))[:n]


def _checked_chunks(chunks: Iterable[pd.DataFrame], individuals: pd.Index | None) -> Iterator[pd.DataFrame]:
    """Chunks aligned to one set of individuals, dosages in [0, 2], SNP IDs unique over all chunks."""
    seen: set = set()
    for chunk in chunks:
        if individuals is None:
            individuals = chunk.columns
            if individuals.has_duplicates:
                raise InputError(
                    "genotype chunk has duplicate individuals", ids=individuals[individuals.duplicated()]
                )
        if not chunk.columns.equals(individuals):
            if (
                len(chunk.columns) != len(individuals)
                or chunk.columns.has_duplicates
                or not chunk.columns.isin(individuals).all()
            ):
                raise InputError(
                    "genotype chunks differ in their individuals (columns)",
                    ids=chunk.columns.symmetric_difference(individuals, sort=False),
                )
            chunk = chunk[individuals]
        again = np.fromiter((snp in seen for snp in chunk.index), dtype=bool, count=len(chunk))
        duplicated = chunk.index[chunk.index.duplicated() | again]
        if len(duplicated):
            raise InputError("SNP IDs occur more than once in the genotype chunks", ids=duplicated.unique())
        seen.update(chunk.index)
        values = chunk.to_numpy(dtype=np.float64)
        bad = ((values < 0) | (values > 2)).any(axis=1)
        if bad.any():
            raise InputError("genotype dosages outside [0, 2] for SNPs", ids=chunk.index[bad])
        yield chunk


def _draw_subset(chunks: Iterable[pd.DataFrame], *, max_snps: int, seed: int) -> tuple[pd.DataFrame, int]:
    """Pass 1: the ``max_snps`` SNPs of smallest seeded key, kept with a bounded buffer; and the SNP count."""
    pieces: list[pd.DataFrame] = []
    key_pieces: list[np.ndarray] = []
    n_total = n_buffered = 0
    threshold = np.iinfo(np.uint64).max
    individuals = None
    for chunk in _checked_chunks(chunks, None):
        individuals = chunk.columns if individuals is None else individuals
        n_total += len(chunk)
        keys = _subset_keys(chunk.index, seed)
        take = keys <= threshold
        pieces.append(chunk[take])
        key_pieces.append(keys[take])
        n_buffered += int(take.sum())
        if n_buffered > 2 * max_snps:
            pieces, key_pieces, threshold = _compact(pieces, key_pieces, max_snps)
            n_buffered = len(pieces[0])
    if individuals is None:
        raise InputError("no genotype chunks to estimate ancestry from")
    pieces, _, _ = _compact(pieces, key_pieces, max_snps)
    return pieces[0], n_total


def _compact(
    pieces: list[pd.DataFrame], key_pieces: list[np.ndarray], max_snps: int
) -> tuple[list[pd.DataFrame], list[np.ndarray], np.uint64]:
    """Keep the ``max_snps`` smallest keys of the buffer; return it as one piece and its largest key."""
    frame = pd.concat(pieces)
    keys = np.concatenate(key_pieces)
    keep = _smallest(keys, frame.index, max_snps)
    threshold = keys[keep[-1]] if len(keep) == max_snps else np.iinfo(np.uint64).max
    return [frame.iloc[np.sort(keep)]], [keys[np.sort(keep)]], threshold


def _beta_given_tau(y: np.ndarray, prop: np.ndarray, *, max_iter: int, tol: float) -> np.ndarray:
    """Per-SNP EM for ``beta_j`` (rows, Q) with ``tau`` fixed (``prop``, Q x N), in cache-sized row blocks."""
    blocks = [
        _beta_block(y[start : start + _BLOCK_ROWS], prop, max_iter=max_iter, tol=tol)
        for start in range(0, len(y), _BLOCK_ROWS)
    ]
    return np.concatenate(blocks) if blocks else np.empty((0, prop.shape[0]))


def _beta_block(y: np.ndarray, prop: np.ndarray, *, max_iter: int, tol: float) -> np.ndarray:
    """Per-SNP EM for ``beta_j`` (rows, Q) with ``tau`` fixed (``prop``, Q x N); rows of ``y`` independent.

    Starts from the tau-weighted allele frequencies (one EM step from equal frequencies) and stops
    a SNP when its log-likelihood gain is <= ``tol`` x |previous|, as :func:`estimate_ancestry`
    does for the whole likelihood. Every sum runs within a row (einsum, no BLAS blocking), so a
    SNP's result does not depend on the other rows of the chunk.
    """
    mask = ~np.isnan(y)
    alt = np.where(mask, y, 0.0)
    ref = np.where(mask, 2.0 - y, 0.0)
    a_freq, b_freq = np.einsum("in,qn->iq", alt, prop), np.einsum("in,qn->iq", ref, prop)
    freq = np.clip(a_freq / np.maximum(a_freq + b_freq, _EPS), _FREQ_MIN, 1 - _FREQ_MIN)
    previous = np.full(len(y), -np.inf)
    active, f = np.arange(len(y)), freq.copy()
    for _ in range(max_iter):
        rho = np.clip(np.einsum("iq,qn->in", f, prop), _EPS, 1 - _EPS)
        loglik = np.einsum("in,in->i", alt, np.log(rho)) + np.einsum("in,in->i", ref, np.log1p(-rho))
        last = previous[active]
        go = ~(np.isfinite(last) & (np.abs(loglik - last) <= tol * np.abs(last)))
        previous[active] = loglik
        if not go.all():  # drop converged SNPs
            active, f, rho, alt, ref = active[go], f[go], rho[go], alt[go], ref[go]
            if not len(active):
                break
        a_freq = f * np.einsum("in,qn->iq", alt / rho, prop)
        b_freq = (1 - f) * np.einsum("in,qn->iq", ref / (1 - rho), prop)
        f = np.clip(a_freq / np.maximum(a_freq + b_freq, _EPS), _FREQ_MIN, 1 - _FREQ_MIN)
        freq[active] = f
    return freq


def estimate_ancestry_subset(
    chunks: Callable[[], Iterable[pd.DataFrame]],
    *,
    n_ancestry: int,
    max_snps: int = 40_000,
    seed: int = 0,
    max_iter: int = 300,
    tol: float = 1e-6,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Estimate ``tau`` by EM on a random subset of SNPs, then ``beta`` of every SNP, streamed.

    Pass 1 reads the chunks and keeps the at most ``max_snps`` SNPs whose seeded 64-bit hash of
    the SNP ID is smallest: a uniform random subset that depends only on the IDs and ``seed``, not
    on chunk order or size (memory: at most ``2 max_snps`` SNPs at a time). :func:`estimate_ancestry`
    runs on that subset and gives the admixture proportions ``tau`` (individuals x Q) and the
    allele frequencies ``beta`` (SNPs x Q) of the subset's SNPs. Pass 2 reads the chunks again
    and, with ``tau`` fixed, fits ``beta_j`` of every other SNP by maximum likelihood under
    ``y_ij ~ Binomial(2, sum_q beta_jq tau_qi)`` (missing genotypes left out): the EM's
    ``beta`` step alone, per SNP, vectorised over the chunk; each SNP stops when its
    log-likelihood gain is at most ``tol`` times its log-likelihood. That log-likelihood is
    concave in ``beta_j``, so this is its maximum in ``[1e-6, 1 - 1e-6]^Q``. When every SNP is in
    the subset the result is exactly ``estimate_ancestry(all SNPs, seed=seed)``.

    The paper ran terastructure with ``-rfreq 40,222`` on its 202,111 SNPs; terastructure's
    stochastic variational inference samples SNPs and ``-rfreq`` sets how many it samples between
    convergence checks. A fixed random subset of about that size plays the same role of fitting
    ``tau`` from a fraction of the SNPs, at a fraction of the cost.

    Parameters
    ----------
    chunks
        Called twice (two passes); each call returns the same SNPs x individuals dosage chunks
        in [0, 2] (NaN = missing), each with the same individuals (the first chunk's column order
        is kept), SNP IDs unique over all chunks.
    n_ancestry
        Number of ancestral populations Q.
    max_snps
        Largest number of SNPs the EM for ``tau`` uses (paper: 40,222 of 202,111).
    seed
        Seed of the SNP subset and of the EM's initial values.
    max_iter, tol
        EM iterations and relative log-likelihood tolerance, of both passes
        (see :func:`estimate_ancestry`).

    Returns
    -------
    tuple of pandas.DataFrame
        ``(beta_df, tau_df)``: every SNP (in chunk order) x Q frequencies ``beta``, and
        individuals x Q proportions ``tau``, labelled as by :func:`estimate_ancestry`.

    Raises
    ------
    InputError
        ``max_snps < 1``, ``n_ancestry < 1``, no chunk, chunks with different individuals,
        duplicate SNP IDs, dosages outside [0, 2], or a second pass with other SNPs.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InputError(f"the ancestry subset seed must be an integer, got {seed!r}")
    if max_snps < 1:
        raise InputError(f"the number of SNPs for the ancestry EM must be >= 1, got {max_snps}")
    subset_df, n_total = _draw_subset(chunks(), max_snps=max_snps, seed=int(seed))
    logger.info(
        "ancestry EM (Q=%d) on a random subset of %d of %d SNPs (max_snps=%d, seed=%d)",
        n_ancestry,
        len(subset_df),
        n_total,
        max_snps,
        seed,
    )
    subset_beta_df, tau_df = estimate_ancestry(
        subset_df, n_ancestry=n_ancestry, max_iter=max_iter, tol=tol, seed=int(seed)
    )
    beta_df = _stream_beta(chunks(), subset_beta_df, tau_df, n_total=n_total, max_iter=max_iter, tol=tol)
    return beta_df, tau_df


def _stream_beta(
    chunks: Iterable[pd.DataFrame],
    subset_beta_df: pd.DataFrame,
    tau_df: pd.DataFrame,
    *,
    n_total: int,
    max_iter: int,
    tol: float,
) -> pd.DataFrame:
    """Pass 2: ``beta`` of every SNP given ``tau``; the subset's SNPs keep the EM's ``beta``."""
    order = np.argsort(tau_df.index.to_numpy(dtype=str), kind="stable")
    prop = tau_df.to_numpy(dtype=np.float64)[order].T  # Q x N, individuals in ID order
    parts = []
    n_seen = n_in_subset = 0
    for chunk in _checked_chunks(chunks, tau_df.index):
        n_seen += len(chunk)
        beta = np.empty((len(chunk), prop.shape[0]))
        in_subset = chunk.index.isin(subset_beta_df.index)
        n_in_subset += int(in_subset.sum())
        beta[in_subset] = subset_beta_df.loc[chunk.index[in_subset]].to_numpy()
        y = chunk.to_numpy(dtype=np.float64)[~in_subset][:, order]
        if len(y):
            beta[~in_subset] = _beta_given_tau(y, prop, max_iter=max_iter, tol=tol)
        parts.append(pd.DataFrame(beta, index=chunk.index, columns=tau_df.columns))
    if n_seen != n_total or n_in_subset != len(subset_beta_df):
        raise InputError(
            f"the genotype chunks changed between passes ({n_total} SNPs in the first, "
            f"{n_seen} in the second)"
        )
    beta_df = pd.concat(parts)
    beta_df.index.name = "snp"
    logger.info("ancestry beta given tau for %d SNPs outside the EM subset", n_total - n_in_subset)
    return beta_df
