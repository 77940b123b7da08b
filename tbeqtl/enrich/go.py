"""GO biological-process over-representation of gene sets (the paper's Table S1 analysis).

The paper's rules: every biological-process term with at least three genes in the analysis
background is tested; the background is the analysis feature set (the genes the model saw),
not the genome; the test is Fisher's exact test (hypergeometric upper tail); terms are called
at Benjamini-Hochberg FDR < 0.1.

Relation to ``gseapy``: ``gseapy.enrich(gene_list, gene_sets=dict, background=list)`` runs the
same hypergeometric test offline and its p-values equal ours (checked in the tests and, on
request, at run time with ``check_gseapy=True``). Its other reported columns are defined
differently, so the reported columns come from :mod:`tbeqtl.enrich.fisher`:

- gseapy's odds ratio adds 0.5 to every cell (Haldane-Anscombe); ours is the sample odds ratio
  of the 2x2 table, as ``scipy.stats.fisher_exact`` reports it.
- gseapy drops terms with no overlapping gene before the BH step, so its FDR is taken over a
  family that depends on the query; ours is taken over every tested term (>= ``min_size``
  background genes), as the paper defines the tested family.
- gseapy silently drops query genes outside the background and identifiers it cannot match;
  here those are errors or are reported with counts.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import InputError, MissingDependencyError
from ..schema import validate_table
from .feature_sets import as_id_index, check_subset, named_sets
from .fisher import bh_fdr, fisher_enrichment
from .gene_ids import GeneIdTable, gene_id_type, map_gene_ids, normalize_gene_id

__all__ = ["GeneSetLibrary", "go_enrichment", "read_gmt", "read_go_terms"]

logger = logging.getLogger(__name__)

ON_UNKNOWN = ("keep", "drop", "error")


@dataclass(frozen=True)
class GeneSetLibrary:
    """A library of named gene sets (e.g. GO BP terms), in one identifier type.

    Stored as a sparse gene x term incidence matrix; build it with :meth:`from_dict` or
    :func:`read_gmt`.

    Parameters
    ----------
    genes
        Library gene IDs, normalised (Ensembl versions stripped); the matrix rows.
    terms
        Term names, sorted; the matrix columns.
    matrix
        ``scipy.sparse.csr_matrix`` (genes x terms), 1 where the gene is annotated to the term.
    descriptions_s
        Term -> description (e.g. the GO term name).
    id_type
        ``"ensembl"``, ``"entrez"`` or ``"symbol"``: the type of most genes.
    source
        Where the library came from (file name or ``"dict"``).
    """

    genes: pd.Index
    terms: pd.Index
    matrix: sparse.csr_matrix
    descriptions_s: pd.Series
    id_type: str
    source: str = "dict"

    @classmethod
    def from_dict(
        cls,
        sets: Mapping[str, Collection[str]],
        *,
        descriptions: Mapping[str, str] | None = None,
        source: str = "dict",
    ) -> GeneSetLibrary:
        """Build a library from a mapping term -> genes.

        Parameters
        ----------
        sets
            Term -> gene identifiers.
        descriptions
            Term -> description (default: the term itself).
        source
            Label of the library.

        Returns
        -------
        GeneSetLibrary
            The library.
        """
        if not sets:
            raise InputError("the gene-set library is empty")
        terms = pd.Index(sorted({str(t) for t in sets}))
        term_pos = {t: i for i, t in enumerate(terms)}
        vocab: dict[str, int] = {}
        gene_codes: list[int] = []
        term_codes: list[int] = []
        for term, members in sets.items():
            if isinstance(members, str):
                raise InputError(f"gene set {term!r} must be a collection of gene IDs, not a string")
            codes = [vocab.setdefault(str(g), len(vocab)) for g in members]
            gene_codes.extend(codes)
            term_codes.extend([term_pos[str(term)]] * len(codes))
        if not gene_codes:
            raise InputError("every gene set of the library is empty")
        raw = list(vocab)
        normalised = [normalize_gene_id(g) for g in raw]
        genes, remap = np.unique(np.asarray(normalised, dtype=object), return_inverse=True)
        rows = remap.reshape(-1)[np.asarray(gene_codes, dtype=np.int64)]
        matrix = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.int32), (rows, np.asarray(term_codes, dtype=np.int64))),
            shape=(len(genes), len(terms)),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1
        sample = genes[:: max(1, len(genes) // 2000)]
        id_type = pd.Series([gene_id_type(g) for g in sample]).value_counts().idxmax()
        desc = {t: t for t in terms}
        if descriptions:
            desc.update({str(k): str(v) for k, v in descriptions.items() if str(k) in term_pos})
        return cls(pd.Index(genes), terms, matrix, pd.Series(desc, name="description"), id_type, source)

    def restrict(self, terms: Collection[str]) -> GeneSetLibrary:
        """Limit the library to some terms (e.g. the biological-process terms of a GO release).

        Parameters
        ----------
        terms
            Terms to keep; terms absent from the library are ignored.

        Returns
        -------
        GeneSetLibrary
            A new library.

        Raises
        ------
        InputError
            If no term of the library is kept.
        """
        keep = self.terms.intersection(pd.Index([str(t) for t in terms])).sort_values()
        if len(keep) == 0:
            raise InputError("none of the library's terms is kept", ids=list(terms)[:10])
        cols = self.terms.get_indexer(keep)
        return GeneSetLibrary(
            self.genes,
            keep,
            self.matrix[:, cols].tocsr(),
            self.descriptions_s.reindex(keep),
            self.id_type,
            self.source,
        )

    def members(self, term: str) -> list[str]:
        """Genes annotated to one term.

        Parameters
        ----------
        term
            The term name (e.g. ``"GO:0006096"``).

        Returns
        -------
        list of str
            Its genes, sorted.
        """
        j = self.terms.get_loc(term)
        col = self.matrix[:, j].tocoo()
        return sorted(self.genes[col.row])


def read_gmt(path: str | Path) -> GeneSetLibrary:
    """Read a GMT file (``term<TAB>description<TAB>gene...``, optionally gzipped).

    Parameters
    ----------
    path
        The GMT file, e.g. ``go_human/go_bp_propagated.ensembl.gmt.gz``.

    Returns
    -------
    GeneSetLibrary
        The library.

    Raises
    ------
    InputError
        If the file is missing, empty, or a line has fewer than three fields.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("gene-set file not found", path=str(path))
    opener = gzip.open if path.suffix == ".gz" else open
    sets: dict[str, list[str]] = {}
    descriptions: dict[str, str] = {}
    bad: list[str] = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            fields = line.rstrip("\n\r").split("\t")
            if len(fields) == 1 and not fields[0].strip():
                continue
            if len(fields) < 3:
                bad.append(f"line {lineno}")
                continue
            sets.setdefault(fields[0], []).extend(g for g in fields[2:] if g)
            descriptions[fields[0]] = fields[1]
    if bad:
        raise InputError(
            "GMT lines need a term, a description and at least one gene", path=str(path), ids=bad
        )
    if not sets:
        raise InputError("GMT file holds no gene sets", path=str(path))
    return GeneSetLibrary.from_dict(sets, descriptions=descriptions, source=path.name)


def read_go_terms(path: str | Path, *, ontology: str = "BP") -> pd.Index:
    """GO term IDs of one ontology from a GO term table (``go_human/go_terms.tsv.gz``: go_id, ontology, term).

    Parameters
    ----------
    path
        The table.
    ontology
        ``"BP"`` (biological process, the paper's choice), ``"MF"`` or ``"CC"``.

    Returns
    -------
    pandas.Index
        The term IDs, sorted.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("GO term table not found", path=str(path))
    df = pd.read_csv(path, sep="\t", dtype=str)
    if not {"go_id", "ontology"} <= set(df.columns):
        raise InputError(
            "GO term table needs go_id and ontology columns; found", path=str(path), ids=list(df.columns)
        )
    return pd.Index(sorted(df.loc[df["ontology"] == ontology, "go_id"]))


def _as_library(gene_sets: GeneSetLibrary | Mapping[str, Collection[str]] | str | Path) -> GeneSetLibrary:
    if isinstance(gene_sets, GeneSetLibrary):
        return gene_sets
    if isinstance(gene_sets, Mapping):
        return GeneSetLibrary.from_dict(gene_sets)
    return read_gmt(gene_sets)


def _resolve_ids(
    background: pd.Index, library: GeneSetLibrary, gene_table: GeneIdTable | None, on_unknown: str
) -> tuple[pd.DataFrame, pd.Index, pd.DataFrame]:
    """Map background genes to library IDs; apply the unknown-ID policy; return (long map, kept, map)."""
    map_df = map_gene_ids(background, library.id_type, gene_table=gene_table)
    unknown = map_df.index[map_df["status"] == "unknown"]
    counts = map_df["status"].value_counts().to_dict()
    logger.info(
        "gene IDs vs %s (%s IDs): %s",
        library.source,
        library.id_type,
        ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
    )
    if len(unknown):
        message = (
            f"{len(unknown)} of {len(map_df)} background gene IDs are unknown to the gene table "
            f"(policy on_unknown={on_unknown!r})"
        )
        if on_unknown == "error":
            raise InputError(message, ids=unknown)
        logger.warning("%s: %s", message, ", ".join(map(str, unknown[:10])))
    kept = map_df.index if on_unknown == "keep" else map_df.index[map_df["status"] != "unknown"]
    long_df = map_df.loc[kept, ["mapped"]].explode("mapped").dropna()
    return long_df.rename(columns={"mapped": "lib_gene"}).reset_index(), kept, map_df


def go_enrichment(
    genes: Collection[str] | Mapping[str, Collection[str]],
    background: Collection[str],
    gene_sets: GeneSetLibrary | Mapping[str, Collection[str]] | str | Path,
    *,
    gene_table: GeneIdTable | pd.DataFrame | str | Path | None = None,
    min_size: int = 3,
    max_size: int | None = None,
    on_unknown: str = "keep",
    annotated_only: bool = False,
    check_gseapy: bool = False,
) -> pd.DataFrame:
    """Over-representation of GO terms (or any gene sets) in one or several gene sets.

    Parameters
    ----------
    genes
        The gene set (e.g. a robust tissue gene set), or a mapping name -> gene set.
        Ensembl IDs (versioned or not), Entrez IDs or symbols.
    background
        The analysis feature set (every gene the model or test saw); must contain every set.
        Same identifier type(s) as ``genes``.
    gene_sets
        A :class:`GeneSetLibrary`, a mapping term -> genes, or a GMT path
        (``go_bp_propagated.{ensembl,entrez,symbol}.gmt.gz``).
    gene_table
        Gene table used to map identifiers of another type than the gene sets'
        (:class:`~tbeqtl.enrich.gene_ids.GeneIdTable`, a DataFrame or a path).
    min_size
        Test terms with at least this many background genes (paper: 3).
    max_size
        Optionally skip terms with more background genes than this.
    on_unknown
        Background IDs the gene table does not know: ``"keep"`` (default; they stay in the
        background and the set as genes without annotation, and are reported with counts in the
        log and in ``result.attrs["ids"]``), ``"drop"`` (removed, reported likewise) or ``"error"``.
    annotated_only
        Restrict the background (and sets) to genes annotated to at least one library term
        (the clusterProfiler convention) instead of the whole analysis feature set.
    check_gseapy
        Also run ``gseapy.enrich`` offline and raise ``RuntimeError`` if its p-values differ from ours.
        gseapy is an optional dependency (``pip install "tbeqtl[gsea]"``).

    Returns
    -------
    pandas.DataFrame
        Table ``go_enrichment`` (see :mod:`tbeqtl.schema`), one row per (set, tested term), sorted by
        set then p-value (ties: larger odds ratio first, then term): ``set`` (only when a mapping
        was given), ``term``, ``overlap`` (a), ``set_size`` (K: term genes in the background),
        ``odds_ratio``, ``p_value`` (one-sided Fisher), ``fdr`` (BH over the set's tested terms),
        ``description``, ``genes`` (overlapping input IDs). ``attrs`` holds ``n_set`` per set,
        ``n_background`` and the ID report (``ids``: counts and examples of unknown IDs).

    Raises
    ------
    InputError
        Empty sets or background, sets not inside the background, identifiers that cannot be
        mapped without a gene table, unknown identifiers with ``on_unknown="error"``.
    MissingDependencyError
        ``check_gseapy=True`` and gseapy is not installed (checked before any work is done).

    Examples
    --------
    >>> lib = {"T1": ["a", "b", "c", "d"], "T2": ["e", "f", "g"]}
    >>> bg = list("abcdefghijklmnop")
    >>> res = go_enrichment(["a", "b", "c", "h"], bg, lib)
    >>> res[["term", "overlap", "set_size"]].values.tolist()
    [['T1', 3, 4], ['T2', 0, 3]]
    """
    if on_unknown not in ON_UNKNOWN:
        raise InputError(f"on_unknown must be one of {ON_UNKNOWN}, got {on_unknown!r}")
    if check_gseapy:
        _import_gseapy()
    if min_size < 1 or (max_size is not None and max_size < min_size):
        raise InputError(f"need 1 <= min_size <= max_size, got {min_size}, {max_size}")
    sets = named_sets(genes)
    library = _as_library(gene_sets)
    if gene_table is not None and not isinstance(gene_table, GeneIdTable):
        gene_table = (
            GeneIdTable.from_frame(gene_table)
            if isinstance(gene_table, pd.DataFrame)
            else GeneIdTable.read(gene_table)
        )
    bg = as_id_index(background, what="background", normalize=normalize_gene_id)
    set_ids = {
        name: as_id_index(ids, what=f"gene set {name!r}", normalize=normalize_gene_id)
        for name, ids in sets.items()
    }
    for name, ids in set_ids.items():
        check_subset(ids, bg, what=f"gene set {name!r}")

    long_df, kept, map_df = _resolve_ids(bg, library, gene_table, on_unknown)
    # background gene x term incidence A = M G, through the identifiers shared with the library:
    # M maps background genes to library genes, G is the library's gene x term incidence
    lib_genes, terms, lib_matrix = library.genes, library.terms, library.matrix
    kept_pos = pd.Series(np.arange(len(kept)), index=kept)
    lib_codes = lib_genes.get_indexer(long_df["lib_gene"])
    ok = lib_codes >= 0
    rows = kept_pos.reindex(long_df["input"].to_numpy()[ok]).to_numpy()
    to_lib = sparse.csr_matrix(
        (np.ones(int(ok.sum()), dtype=np.int32), (rows, lib_codes[ok])), shape=(len(kept), len(lib_genes))
    )
    incidence = (to_lib @ lib_matrix).tocsr()
    incidence.data[:] = 1  # a gene counts once per term, whichever of its library IDs is annotated
    if annotated_only:
        annotated = np.flatnonzero(incidence.getnnz(axis=1) > 0)
        kept, incidence = kept[annotated], incidence[annotated]
        kept_pos = pd.Series(np.arange(len(kept)), index=kept)
    term_sizes = np.asarray(incidence.sum(axis=0)).ravel()
    keep_terms = term_sizes >= min_size
    if max_size is not None:
        keep_terms &= term_sizes <= max_size
    cols = np.flatnonzero(keep_terms)
    tested_terms, tested_sizes = terms[cols], term_sizes[cols].astype(np.int64)
    incidence = incidence[:, cols].tocsr()
    logger.info(
        "%d of %d terms have >= %d genes in the %d-gene background; tested",
        len(cols),
        len(terms),
        min_size,
        len(kept),
    )
    descriptions = library.descriptions_s.reindex(tested_terms).fillna("").to_numpy()

    frames, attrs = [], {"ids": {}, "n_set": {}, "n_background": int(len(kept))}
    attrs["ids"] = {
        "n_background_input": int(len(bg)),
        "n_background_used": int(len(kept)),
        "n_unknown": int((map_df["status"] == "unknown").sum()),
        "n_unmapped": int((map_df["status"] == "unmapped").sum()),
        "unknown_examples": [str(g) for g in map_df.index[map_df["status"] == "unknown"][:20]],
        "n_with_tested_annotation": int((incidence.getnnz(axis=1) > 0).sum()),
        "on_unknown": on_unknown,
    }
    for name, ids in set_ids.items():
        ids_used = ids.intersection(kept)
        if len(ids_used) == 0:
            raise InputError(
                f"gene set {name!r} has no gene left after the unknown-ID policy (on_unknown={on_unknown!r})",
                ids=ids,
            )
        attrs["n_set"][name] = int(len(ids_used))
        set_rows = kept_pos[ids_used].to_numpy()
        sub = incidence[set_rows].tocsc()
        overlap = np.diff(sub.indptr).astype(np.int64)
        genes_col = np.full(len(cols), "", dtype=object)
        set_names = np.asarray(ids_used, dtype=object)
        for j in np.flatnonzero(overlap):
            genes_col[j] = ",".join(sorted(set_names[sub.indices[sub.indptr[j] : sub.indptr[j + 1]]]))
        orr, p = fisher_enrichment(overlap, tested_sizes, len(ids_used), background_size=len(kept))
        df = pd.DataFrame(
            {
                "set": name,
                "term": tested_terms.astype(str),
                "overlap": overlap,
                "set_size": tested_sizes,
                "odds_ratio": orr,
                "p_value": p,
                "fdr": bh_fdr(p),
                "description": descriptions,
                "genes": genes_col,
            }
        )
        n_sig = int((df["fdr"] < 0.1).sum())
        logger.info(
            "set %r: %d genes, %d terms tested, %d at BH FDR < 0.1", name, len(ids_used), len(df), n_sig
        )
        if check_gseapy:
            _check_with_gseapy(df, ids_used, kept, incidence.tocsc(), tested_terms)
        # ties (e.g. p-values that underflow to 0) are broken by the larger odds ratio, then the term
        frames.append(
            df.sort_values(
                ["p_value", "odds_ratio", "term"],
                ascending=[True, False, True],
                kind="stable",
                na_position="last",
            )
        )
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not isinstance(genes, Mapping):
        out = out.drop(columns="set")
    out = validate_table(out, "go_enrichment")
    out.attrs.update(attrs)
    return out


def _import_gseapy():
    """Import gseapy, the optional cross-check's dependency, or say how to install it."""
    try:
        import gseapy
    except ImportError as exc:
        raise MissingDependencyError(
            f"the gseapy cross-check (check_gseapy=True, --check-gseapy) needs gseapy ({exc}); install it "
            'with `pip install "tbeqtl[gsea]"` or `pip install gseapy`, or run without the check') from exc
    return gseapy


def _check_with_gseapy(
    df: pd.DataFrame, ids_used: pd.Index, kept: pd.Index, incidence: sparse.csc_matrix, terms: pd.Index
) -> None:
    """Run gseapy's offline enrichment on the same tables and compare p-values."""
    gseapy = _import_gseapy()

    names = np.asarray(kept, dtype=object)
    sets = {
        str(t): list(names[incidence.indices[incidence.indptr[j] : incidence.indptr[j + 1]]])
        for j, t in enumerate(terms)
    }
    if not sets:
        return
    enr = gseapy.enrich(
        gene_list=list(ids_used),
        gene_sets=sets,
        background=list(kept),
        outdir=None,
        no_plot=True,
        verbose=False,
    )
    res = getattr(enr, "res2d", None)
    if res is None or len(res) == 0:
        if (df["overlap"] > 0).any():
            raise RuntimeError("gseapy returned no terms although some terms overlap the set")
        return
    theirs = res.set_index("Term")["P-value"].astype(float)
    ours = df.set_index("term")["p_value"].reindex(theirs.index)
    if ours.isna().any() or not np.allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-9, atol=1e-300):
        worst = (ours - theirs).abs().sort_values(ascending=False).index[:5]
        raise RuntimeError(f"gseapy p-values differ from the Fisher kernel for terms {list(worst)}")
    logger.info("gseapy offline p-values agree with the Fisher kernel on %d terms", len(theirs))
