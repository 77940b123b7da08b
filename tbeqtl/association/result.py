"""The result of an association run: kept pairs per pool, test counts per stratum, histograms.

Pools are MatrixEQTL's: ``cis`` and ``trans`` when SNP and gene positions are given (and the
cis threshold is > 0), otherwise a single ``all`` pool. Strata for the per-gene-type FDR are
``<pool>:<type group>`` with the groups ``protein_coding``, ``lincRNA`` (lincRNA and lncRNA) and
``other``; :attr:`AssociationResult.n_tests` holds the number of tests of every pool and stratum,
so that FDR is always computed over complete strata (:func:`recompute_fdr`,
:meth:`AssociationResult.concat`), never per chunk.
"""

from __future__ import annotations

import json
import logging
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path, write_json
from ..errors import InputError
from ..schema import validate_table
from .fdr import DEFAULT_LAMBDAS, bh_fdr, bh_fdr_by_group, pi0_from_counts

__all__ = ["AssociationResult", "PAIR_COLUMNS", "gene_type_group", "recompute_fdr"]

logger = logging.getLogger(__name__)

PAIR_COLUMNS = (
    "snp",
    "gene",
    "beta",
    "t_stat",
    "f_stat",
    "p_value",
    "fdr",
    "gene_type",
    "fdr_by_type",
    "q_value",
)


def gene_type_group(gene_type: object) -> str:
    """Stratum of a gene type for the per-type FDR (the paper: protein-coding and lincRNA separately).

    Parameters
    ----------
    gene_type
        A biotype such as ``protein_coding``, ``lincRNA``, ``lncRNA``.

    Returns
    -------
    str
        ``"protein_coding"``, ``"lincRNA"`` (lincRNA and lncRNA) or ``"other"``.
    """
    text = str(gene_type)
    if text == "protein_coding":
        return "protein_coding"
    if text.lower() in {"lincrna", "lncrna"}:
        return "lincRNA"
    return "other"


def _stat_column(df: pd.DataFrame) -> str:
    return "f_stat" if "f_stat" in df.columns else "t_stat"


def _sorted_codes(ids: pd.Series) -> np.ndarray:
    """Integer codes of IDs (as text) numbered in sorted order: sorting the codes sorts the IDs."""
    return pd.factorize(ids.astype(str).to_numpy(dtype=object), sort=True)[0]


def recompute_fdr(pairs: pd.DataFrame, n_tests: dict, *, pool: str, lambda_counts=None) -> pd.DataFrame:
    """(Re)compute ``fdr``, ``fdr_by_type`` and ``q_value`` of one pool's rows over complete strata.

    Parameters
    ----------
    pairs
        The pool's rows (any order; e.g. several subset runs concatenated).
    n_tests
        Test counts: ``n_tests[pool]`` and, with a ``gene_type`` column, ``n_tests["<pool>:<group>"]``.
    pool
        Pool name (``cis``, ``trans`` or ``all``).
    lambda_counts
        For q-values: the number of the pool's tests with ``p >= lambda`` for qvalue's lambda grid.

    Returns
    -------
    pandas.DataFrame
        A copy sorted by |statistic| descending (MatrixEQTL's order) with the FDR columns.
    """
    df = pairs.copy()
    stat = _stat_column(df)
    key = np.abs(df[stat].to_numpy(float))
    order = np.lexsort((_sorted_codes(df["gene"]), _sorted_codes(df["snp"]), -key))
    df = df.iloc[order].reset_index(drop=True)
    key = key[order]
    if pool not in n_tests:
        raise InputError("no test count for pool", ids=[pool])
    df["fdr"] = bh_fdr(df["p_value"].to_numpy(float), n_tests=n_tests[pool], order_by=key)
    if "gene_type" in df.columns:
        codes, types = pd.factorize(df["gene_type"].to_numpy(dtype=object), use_na_sentinel=False)
        groups = np.array([f"{pool}:{gene_type_group(t)}" for t in types], dtype=object)[codes]
        df["fdr_by_type"] = bh_fdr_by_group(
            df["p_value"].to_numpy(float), groups, n_tests=n_tests, order_by=key
        )
    if lambda_counts is not None:
        pi0 = pi0_from_counts(lambda_counts, n_tests[pool], lambdas=DEFAULT_LAMBDAS)
        df["q_value"] = pi0 * df["fdr"].to_numpy()
    return df


@dataclass
class AssociationResult:
    """Kept SNP-gene pairs per pool plus everything needed to correct them for multiple testing.

    Parameters
    ----------
    pairs
        Pool name -> table (schema ``eqtl_pairs``): ``snp, gene, beta, t_stat|f_stat, p_value,
        fdr[, gene_type, fdr_by_type][, q_value]``, sorted by |statistic| descending.
    n_tests
        Number of tests per pool (``cis``, ``trans`` or ``all``) and per stratum
        (``"<pool>:<type group>"``): the FDR denominators.
    hist
        p-value histogram over every test (schema ``pvalue_hist``: ``pool, bin_lo, bin_hi, count``),
        or None.
    min_pvalues
        Smallest p-value per SNP and per gene in each pool (``pool, kind, id, min_pvalue``), or None.
    params
        Parameters of the run (model, df, thresholds, ...).
    lambda_counts
        Pool -> number of tests with p >= lambda on qvalue's lambda grid (for q-values), or None.
    """

    pairs: dict
    n_tests: dict
    hist: pd.DataFrame | None = None
    min_pvalues: pd.DataFrame | None = None
    params: dict = field(default_factory=dict)
    lambda_counts: dict | None = None

    def _pool(self, name: str) -> pd.DataFrame:
        if name in self.pairs:
            return self.pairs[name]
        stat = "f_stat" if self.params.get("model") == "anova" else "t_stat"
        cols = ["snp", "gene", "beta", stat, "p_value", "fdr"]
        if self.params.get("gene_types"):
            cols += ["gene_type", "fdr_by_type"]
        return pd.DataFrame(
            {c: pd.Series(dtype=object if c in ("snp", "gene", "gene_type") else float) for c in cols}
        )

    @property
    def cis(self) -> pd.DataFrame:
        """The cis pool's rows (empty without a cis split)."""
        return self._pool("cis")

    @property
    def trans(self) -> pd.DataFrame:
        """The trans pool's rows (empty without a cis split: see :attr:`all`)."""
        return self._pool("trans")

    @property
    def all(self) -> pd.DataFrame:
        """Every kept row: the ``all`` pool, or cis and trans rows together (each with its own pool FDR)."""
        if "all" in self.pairs:
            return self.pairs["all"]
        frames = [self.pairs[p].assign(pool=p) for p in ("cis", "trans") if p in self.pairs]
        return pd.concat(frames, ignore_index=True) if frames else self._pool("all")

    @property
    def pools(self) -> list[str]:
        """Pool names of this run."""
        return list(self.pairs)

    @classmethod
    def concat(cls, results: list[AssociationResult]) -> AssociationResult:
        """Combine runs on disjoint SNP/gene subsets of the same strata and recompute FDR over them.

        Test counts, histogram counts and lambda counts are summed; FDR, per-type FDR and
        q-values are recomputed once over the union with the summed counts (never per chunk).
        The runs must share model, covariates, samples and thresholds.

        Parameters
        ----------
        results
            The runs.

        Returns
        -------
        AssociationResult
            The combined result.
        """
        if not results:
            raise InputError("nothing to concatenate")
        first = results[0]
        for other in results[1:]:
            for key in ("model", "df", "pv_cis", "pv_trans", "cis_dist"):
                if other.params.get(key) != first.params.get(key):
                    raise InputError(
                        f"cannot combine runs with different {key}",
                        ids=[first.params.get(key), other.params.get(key)],
                    )
            if list(other.pairs) != list(first.pairs):
                raise InputError("cannot combine runs with different pools", ids=list(other.pairs))
        n_tests: dict = {}
        for res in results:
            for key, val in res.n_tests.items():
                n_tests[key] = n_tests.get(key, 0) + int(val)
        lambda_counts = None
        if all(r.lambda_counts is not None for r in results):
            lambda_counts = {
                p: np.sum([np.asarray(r.lambda_counts[p]) for r in results], axis=0)
                for p in first.lambda_counts
            }
        pairs = {}
        for pool in first.pairs:
            frames = [r.pairs[pool] for r in results if len(r.pairs[pool])]
            table = pd.concat(frames, ignore_index=True) if frames else first.pairs[pool].iloc[:0]
            dup = table.duplicated(["snp", "gene"])
            if dup.any():
                raise InputError(
                    "the same SNP-gene pair appears in several runs (subsets must be disjoint)",
                    ids=(table.loc[dup, "snp"] + ":" + table.loc[dup, "gene"]).tolist(),
                )
            pairs[pool] = recompute_fdr(
                table,
                n_tests,
                pool=pool,
                lambda_counts=None if lambda_counts is None else lambda_counts[pool],
            )
        hist = None
        if all(r.hist is not None for r in results):
            hist = first.hist.copy()
            for other in results[1:]:
                same = len(other.hist) == len(hist) and np.array_equal(
                    other.hist[["bin_lo", "bin_hi"]].to_numpy(), hist[["bin_lo", "bin_hi"]].to_numpy()
                )
                if not same:
                    raise InputError("cannot combine histograms with different bins")
                hist["count"] = hist["count"].to_numpy() + other.hist["count"].to_numpy()
        min_pv = None
        if all(r.min_pvalues is not None for r in results):
            min_pv = (
                pd.concat([r.min_pvalues for r in results])
                .groupby(["pool", "kind", "id"], sort=True, as_index=False)["min_pvalue"]
                .min()
            )
        params = dict(first.params)
        params["n_runs_combined"] = len(results)
        return cls(
            pairs=pairs,
            n_tests=n_tests,
            hist=hist,
            min_pvalues=min_pv,
            params=params,
            lambda_counts=lambda_counts,
        )

    def with_fdr(self) -> AssociationResult:
        """Return a copy with every pool's FDR columns recomputed from :attr:`n_tests`.

        Returns
        -------
        AssociationResult
            The copy.
        """
        pairs = {
            pool: recompute_fdr(
                df,
                self.n_tests,
                pool=pool,
                lambda_counts=None if self.lambda_counts is None else self.lambda_counts[pool],
            )
            for pool, df in self.pairs.items()
        }
        return replace(self, pairs=pairs)

    def write(self, out_dir, *, format: str = "tsv", extra: dict | None = None) -> dict:  # noqa: A002
        """Write ``<pool>.tsv`` (or ``.parquet``), ``hist.tsv``, ``min_pvalues.tsv`` and ``run.json``.

        With a cis split the pools are ``cis`` and ``trans`` (``cis.tsv``, ``trans.tsv``); without
        one, the single pool is written to ``all.tsv``. Missing values (``beta`` of anova) are
        written as empty cells. Every file is written atomically.

        Parameters
        ----------
        out_dir
            Output folder (created).
        format
            ``"tsv"`` or ``"parquet"`` for the pair tables.
        extra
            More entries for ``run.json`` (e.g. input checksums).

        Returns
        -------
        dict
            File kind -> path written.
        """
        if format not in ("tsv", "parquet"):
            raise InputError(f"unknown format {format!r}; use tsv or parquet")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = {}
        for pool, df in self.pairs.items():
            table = validate_table(df, "eqtl_pairs")
            path = out / f"{pool}.{format}"
            with atomic_path(path) as tmp:
                if format == "parquet":
                    table.to_parquet(tmp, index=False)
                else:
                    table.to_csv(tmp, sep="\t", index=False, na_rep="")
            written[pool] = path
        if self.hist is not None:
            path = out / "hist.tsv"
            with atomic_path(path) as tmp:
                validate_table(self.hist, "pvalue_hist").to_csv(tmp, sep="\t", index=False)
            written["hist"] = path
        if self.min_pvalues is not None:
            path = out / "min_pvalues.tsv"
            with atomic_path(path) as tmp:
                validate_table(self.min_pvalues, "min_pvalues").to_csv(tmp, sep="\t", index=False)
            written["min_pvalues"] = path
        meta = self.metadata()
        if extra:
            meta.update(extra)
        meta["files"] = {k: v.name for k, v in written.items()}
        write_json(json.loads(json.dumps(meta, default=_jsonable)), out / "run.json")
        written["run_json"] = out / "run.json"
        return written

    def metadata(self) -> dict:
        """Parameters, test counts per stratum and versions, as written to ``run.json``.

        Returns
        -------
        dict
            The metadata.
        """
        import scipy

        from .. import __version__

        meta = {
            "tool": "tbeqtl map",
            "params": self.params,
            "pools": list(self.pairs),
            "n_tests": {k: int(v) for k, v in self.n_tests.items()},
            "n_rows": {k: len(v) for k, v in self.pairs.items()},
            "versions": {
                "tbeqtl": __version__,
                "python": platform.python_version(),
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "pandas": pd.__version__,
            },
        }
        if self.lambda_counts is not None:
            meta["lambda_counts"] = {k: np.asarray(v).tolist() for k, v in self.lambda_counts.items()}
        return meta


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
