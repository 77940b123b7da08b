"""Benjamini-Hochberg FDR over the chromosome-pair runs, computed at gather time.

What BH guarantees here. BH at level ``q`` bounds the expected false discovery proportion
(FDP = false calls / calls, 0 without calls) of *the family of tests it is applied to*, for
independent or positively dependent tests; a list pooled over several families has no such bound.
tbeqtl makes exactly these claims (``mapping.fdr_scope``):

- ``"family"`` (the default, the paper's design). Each run (chromosome pair) calls eQTLs with BH
  per factor set x tissue x class (cis/trans) x gene-type group of that run (``fdr_by_type``;
  ``fdr`` per class when gene types are unknown): each such family's expected FDP is at most
  ``q``. The pooled list over many families is not bounded by ``q``: with many families holding
  few true signals its FDR exceeds ``q`` (see ``tests/test_pipeline_power.py``). The column
  ``fdr_genome`` is BH over the union of a family's tests across every gathered run, per factor
  set x tissue x class x gene-type group pooled over the chromosome pairs: the bound then holds
  per such pooled family.
- ``"all"``: ``fdr_all`` is one BH over every test of a factor set's list: all tissues, classes,
  gene types and chromosome pairs together, ``m`` = every test run for that factor set (summed
  ``n_tests`` of run.json). ``fdr_all < q`` is then one list with one guarantee, expected FDP at
  most ``q``. Factor sets are separate lists (``tissue`` and ``general`` are subsets of ``all``,
  ``exhaustive`` is the comparison over every pair), so each gets its own BH; pooling them would
  count one test several times.

Exactness from candidates. A run keeps, besides its calls, every test with ``p <= q`` (the
config's FDR level; ``eqtl/<set>/<tissue>/candidates.parquet``) and records ``m`` of each family
in ``run.json`` (``n_tests``). With ``m`` the summed test count of the pool over the runs and
the candidates ranked by p, the candidates occupy ranks ``1..k`` of the full ranking (every omitted
test has ``p > q``), and every omitted test's BH term ``m p / j`` exceeds ``q`` (``j <= m``). So
the BH-adjusted value computed from the candidates with the full ``m`` equals the full-table value
whenever it is at most ``q``, and the full value exceeds ``q`` whenever the candidates' value does.
Values above ``q`` are reported as NaN: the full value then lies in ``(q, computed]`` and is not
known exactly. The same argument holds for ``fdr_genome`` and ``fdr_all``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["FAMILY_COLUMNS", "FDR_SCOPES", "all_tests_fdr", "genome_wide_calls", "genome_wide_fdr"]

logger = logging.getLogger(__name__)

#: columns that name a genome-wide BH family (``gene_type`` is the gene-type group, or ``"all"``)
FAMILY_COLUMNS = ["factor_set", "tissue", "class", "gene_type"]

#: values of ``mapping.fdr_scope``: BH per family (``fdr_genome`` pooled over pairs) or one BH per list
FDR_SCOPES = ("family", "all")

_KEY = ["pair", "factor_set", "tissue", "class", "snp", "gene"]


def _family_type(candidates_df: pd.DataFrame, *, by_type: bool) -> np.ndarray:
    from ..association.result import gene_type_group

    if not by_type:
        return np.full(len(candidates_df), "all", dtype=object)
    return np.array([gene_type_group(t) for t in candidates_df["gene_type"]], dtype=object)


def genome_wide_fdr(candidates_df: pd.DataFrame, n_tests_df: pd.DataFrame, *, level: float,
                    by_type: bool | None = None) -> np.ndarray:
    """BH FDR of candidate tests over their families pooled across runs, exact up to ``level``.

    Parameters
    ----------
    candidates_df
        Candidate tests of every run: ``factor_set``, ``tissue``, ``class``, ``p_value`` and, for
        per-gene-type families, ``gene_type`` (a biotype; grouped with
        :func:`tbeqtl.association.result.gene_type_group`). It must hold *every* test of each
        family with ``p_value <= level`` (more tests are allowed: any superset gives the same
        result).
    n_tests_df
        Test counts: ``factor_set``, ``tissue``, ``class``, ``gene_type`` (a gene-type group, or
        ``"all"`` for the whole class) and ``n_tests``, one row per run and family (summed here).
    level
        The FDR level ``q`` up to which values are exact.
    by_type
        Families per class x gene-type group (True) or per class (False). Default: True when
        ``candidates_df`` has a ``gene_type`` column.

    Returns
    -------
    numpy.ndarray
        ``fdr_genome`` of each candidate row (input order): the BH-adjusted p-value over the
        family's ``m`` tests, ``m`` = the summed ``n_tests``; NaN where it exceeds ``level``
        (not called genome-wide; the exact value is then only known to lie above ``level``).

    Raises
    ------
    InputError
        A family of ``candidates_df`` without a test count, or with fewer tests than candidates.

    Examples
    --------
    >>> cands = pd.DataFrame({"factor_set": "all", "tissue": "T", "class": "trans",
    ...                       "p_value": [0.001, 0.004, 0.09]})
    >>> counts = pd.DataFrame({"factor_set": "all", "tissue": "T", "class": "trans",
    ...                        "gene_type": "all", "n_tests": [8, 12]})  # two runs, m = 20
    >>> genome_wide_fdr(cands, counts, level=0.1).round(3).tolist()
    [0.02, 0.04, nan]
    """
    from ..association.fdr import bh_fdr

    if by_type is None:
        by_type = "gene_type" in candidates_df.columns
    out = np.full(len(candidates_df), np.nan)
    if not len(candidates_df):
        return out
    families = pd.DataFrame({
        "factor_set": candidates_df["factor_set"].astype(str).to_numpy(),
        "tissue": candidates_df["tissue"].astype(str).to_numpy(),
        "class": candidates_df["class"].astype(str).to_numpy(),
        "gene_type": _family_type(candidates_df, by_type=by_type),
    })
    counts = n_tests_df.astype({c: str for c in FAMILY_COLUMNS}).groupby(FAMILY_COLUMNS)["n_tests"].sum()
    p = candidates_df["p_value"].to_numpy(dtype=float)
    for key, idx in families.groupby(FAMILY_COLUMNS, sort=True).indices.items():
        if key not in counts.index:
            raise InputError("no test count for a genome-wide FDR family", ids=["/".join(key)])
        m = int(counts.loc[key])
        if m < len(idx):
            raise InputError(f"family has {len(idx)} candidate tests but n_tests = {m}", ids=["/".join(key)])
        adjusted = bh_fdr(p[idx], n_tests=m)
        out[idx] = np.where(adjusted <= level, adjusted, np.nan)
    return out


def all_tests_fdr(candidates_df: pd.DataFrame, n_tests_df: pd.DataFrame, *, level: float) -> np.ndarray:
    """One BH per factor set over every test of its list, exact up to ``level`` (``fdr_all``).

    Parameters
    ----------
    candidates_df
        Candidate tests of every run: ``factor_set`` and ``p_value``. It must hold *every* test of
        each factor set with ``p_value <= level`` (any superset gives the same result).
    n_tests_df
        Test counts: ``factor_set``, ``tissue``, ``class``, ``gene_type`` and ``n_tests``, one row
        per run and family as for :func:`genome_wide_fdr`; ``m`` of a factor set is the sum of its
        whole-class rows (``gene_type == "all"``: every cis and trans test of every tissue and run).
    level
        The FDR level ``q`` up to which values are exact.

    Returns
    -------
    numpy.ndarray
        ``fdr_all`` of each candidate row (input order): the BH-adjusted p-value over all ``m``
        tests of the row's factor set; NaN where it exceeds ``level``.

    Raises
    ------
    InputError
        A factor set of ``candidates_df`` without whole-class test counts, or with fewer tests
        than candidates.

    Examples
    --------
    >>> cands = pd.DataFrame({"factor_set": "all", "tissue": ["T", "U", "T"], "class": "trans",
    ...                       "p_value": [0.001, 0.004, 0.09]})
    >>> counts = pd.DataFrame({"factor_set": "all", "tissue": ["T", "U"], "class": "trans",
    ...                        "gene_type": "all", "n_tests": [8, 12]})  # one list, m = 20
    >>> all_tests_fdr(cands, counts, level=0.1).round(3).tolist()
    [0.02, 0.04, nan]
    """
    from ..association.fdr import bh_fdr

    out = np.full(len(candidates_df), np.nan)
    if not len(candidates_df):
        return out
    whole = n_tests_df.loc[n_tests_df["gene_type"].astype(str).to_numpy() == "all"]
    counts = whole.groupby(whole["factor_set"].astype(str))["n_tests"].sum()
    p = candidates_df["p_value"].to_numpy(dtype=float)
    sets = candidates_df["factor_set"].astype(str).to_numpy()
    for factor_set in sorted(set(sets)):
        idx = np.flatnonzero(sets == factor_set)
        if factor_set not in counts.index:
            raise InputError("no whole-class test count (n_tests of cis/trans) for the FDR over all tests of "
                             "a factor set", ids=[factor_set])
        m = int(counts.loc[factor_set])
        if m < len(idx):
            raise InputError(f"factor set has {len(idx)} candidate tests but n_tests = {m}", ids=[factor_set])
        adjusted = bh_fdr(p[idx], n_tests=m)
        out[idx] = np.where(adjusted <= level, adjusted, np.nan)
    return out


def genome_wide_calls(calls_df: pd.DataFrame, candidates_df: pd.DataFrame, n_tests_df: pd.DataFrame, *,
                      level: float, by_type: bool | None = None, scope: str = "family") -> pd.DataFrame:
    """Per-run calls plus the genome-wide FDR, completed with candidates called only genome-wide.

    Parameters
    ----------
    calls_df
        Per-run calls (schema ``pipeline_eqtls`` with ``pair``), gathered over the runs.
    candidates_df
        Per-run candidates (every test with ``p_value <= level``; schema ``pipeline_candidates``)
        with ``pair``, ``gene_chrom``, ``snp_chrom``, ``factor_set`` and ``tissue``, over the same
        runs.
    n_tests_df
        Test counts per run and family, see :func:`genome_wide_fdr`.
    level
        The FDR level ``q``.
    by_type
        See :func:`genome_wide_fdr`.
    scope
        ``"family"``, or ``"all"`` to add ``fdr_all`` (:func:`all_tests_fdr`, one BH per factor set
        over every test).

    Returns
    -------
    pandas.DataFrame
        ``calls_df`` (same rows, order and columns) with ``fdr_genome`` (NaN: above ``level``),
        ``fdr_all`` when ``scope`` is ``"all"``, and ``called_run`` (True), followed by the
        candidates with ``fdr_genome < level`` (or ``fdr_all < level``) that are not per-run calls
        (``called_run`` False; their ``fdr``/``fdr_by_type`` are the run's values, at or above
        ``level``).

    Raises
    ------
    InputError
        An unknown ``scope``, duplicate candidates, or the errors of :func:`genome_wide_fdr` and
        :func:`all_tests_fdr`.
    """
    if scope not in FDR_SCOPES:
        raise InputError(f"FDR scope must be one of {', '.join(FDR_SCOPES)}", ids=[str(scope)])
    cands = candidates_df.reset_index(drop=True).copy()
    cands["fdr_genome"] = genome_wide_fdr(cands, n_tests_df, level=level, by_type=by_type)
    columns = ["fdr_genome"]
    if scope == "all":
        cands["fdr_all"] = all_tests_fdr(cands, n_tests_df, level=level)
        columns.append("fdr_all")
    calls = calls_df.reset_index(drop=True).copy()
    lookup = cands.set_index(_KEY)[columns]
    if lookup.index.has_duplicates:
        raise InputError("duplicate candidate tests (pair, factor set, tissue, class, SNP, gene)")
    keys = pd.MultiIndex.from_frame(calls[_KEY].astype({"pair": str})) if len(calls) else None
    if keys is not None:
        missing = ~keys.isin(lookup.index)
        if missing.any():  # cannot happen for tables the pipeline wrote (a call has p <= its FDR)
            logger.warning("%d per-run calls are not among the candidates (%s left NaN): %s",
                           int(missing.sum()), " and ".join(columns),
                           ", ".join("/".join(map(str, k)) for k in keys[missing][:5]))
        found = lookup.reindex(keys)
        for column in columns:
            calls[column] = found[column].to_numpy(dtype=float)
    else:
        for column in columns:
            calls[column] = pd.Series(dtype=float)
    calls["called_run"] = True
    called_keys = pd.MultiIndex.from_frame(calls[_KEY]) if len(calls) else pd.MultiIndex.from_tuples(
        [], names=_KEY)
    called_pooled = np.logical_or.reduce([(cands[c] < level).to_numpy() for c in columns])
    extra = cands.loc[called_pooled & ~pd.MultiIndex.from_frame(cands[_KEY]).isin(called_keys)].copy()
    extra["called_run"] = False
    extra = extra[[c for c in calls.columns if c in extra.columns]]
    if not len(extra):
        return calls
    if not len(calls):
        return extra.reset_index(drop=True)
    return pd.concat([calls, extra], ignore_index=True)
