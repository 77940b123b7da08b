"""Gene identifiers: Ensembl (versioned or not), Entrez and symbols, mapped through a gene table.

Gene sets (GMT files) use one identifier type; user gene lists may use another. Input IDs are
mapped to the gene sets' type through a gene table (``go_human/gene_info.tsv.gz``, a GENCODE
gene table, the GRCh37 Ensembl table, or an :class:`~tbeqtl.data.EQTLData` ``gene_info_df``
with a ``gene_name`` column). An identifier the table does not know is *unknown*: it is
counted and reported, never dropped silently (see ``on_unknown`` in
:func:`~tbeqtl.enrich.go.go_enrichment`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..io.annotation import ENSEMBL_GENE_ID, normalize_gene_id

__all__ = ["GeneIdTable", "gene_id_type", "map_gene_ids", "normalize_gene_id", "read_gene_list"]

logger = logging.getLogger(__name__)

ID_TYPES = ("ensembl", "entrez", "symbol")


def gene_id_type(gene_id: str) -> str:
    """Classify one identifier as ``"ensembl"`` (ENSG..., any version), ``"entrez"`` (digits) or ``"symbol"``.

    Parameters
    ----------
    gene_id
        The identifier.

    Returns
    -------
    str
        Its type.
    """
    if ENSEMBL_GENE_ID.match(gene_id):
        return "ensembl"
    if gene_id.isdigit():
        return "entrez"
    return "symbol"


def read_gene_list(path: str | Path) -> list[str]:
    """Read a gene (or SNP) list: one identifier per line; blank lines and ``#`` comments are skipped.

    Parameters
    ----------
    path
        The file (plain or ``.gz``).

    Returns
    -------
    list of str
        The identifiers, in file order.

    Raises
    ------
    InputError
        If the file is missing or a line holds more than one field.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=str(path))
    opener = __import__("gzip").open if path.suffix == ".gz" else open
    ids: list[str] = []
    bad: list[str] = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if len(text.split()) > 1:
                bad.append(f"line {lineno}")
                continue
            ids.append(text)
    if bad:
        raise InputError("expected one identifier per line", path=str(path), ids=bad)
    return ids


@dataclass(frozen=True)
class GeneIdTable:
    """Equivalences between Ensembl IDs (unversioned), Entrez IDs and symbols.

    Parameters
    ----------
    table_df
        One row per (ensembl, entrez, symbol) equivalence; columns ``ensembl``, ``entrez``,
        ``symbol`` (strings; missing values allowed).
    """

    table_df: pd.DataFrame

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> GeneIdTable:
        """Build from a gene table, recognising its columns.

        Recognised layouts: ``go_human/gene_info.tsv.gz`` (entrez_id, symbol, ensembl_ids as a
        comma-separated list), GENCODE (gene_id, gene_name), Biomart GRCh37 (ensembl_gene_id,
        external_gene_name, entrezgene_id), and an ``EQTLData.gene_info_df`` (Ensembl index,
        gene_name).

        Parameters
        ----------
        df
            The table.

        Returns
        -------
        GeneIdTable
            The equivalences.

        Raises
        ------
        InputError
            If no two identifier columns are recognised.
        """
        ens_names = ("ensembl_ids", "ensembl_gene_id", "gene_id", "ensembl", "gene")
        if not isinstance(df.index, pd.RangeIndex) and not any(
            str(c).lower() in ens_names for c in df.columns
        ):
            df = df.rename_axis("gene_id").reset_index()
        cols = {str(c).lower(): c for c in df.columns}

        def pick(*names: str) -> pd.Series | None:
            for name in names:
                if name in cols:
                    return df[cols[name]]
            return None

        ens = pick(*ens_names)
        sym = pick("symbol", "gene_name", "external_gene_name", "gene_symbol")
        ent = pick("entrez_id", "entrezgene_id", "entrez", "geneid")
        if sum(x is not None for x in (ens, sym, ent)) < 2:
            raise InputError(
                "gene table needs two identifier columns among Ensembl ID, symbol, Entrez ID; found columns",
                ids=list(df.columns),
            )
        n = len(df)

        def clean(s: pd.Series | None) -> pd.Series:
            if s is None:
                return pd.Series([None] * n, dtype=object)
            s = s.astype(object).where(s.notna(), None)
            return s.map(
                lambda v: None if v is None or str(v).strip() in {"", "nan", "NA"} else str(v).strip()
            )

        ent_s = clean(ent).map(lambda v: None if v is None else v.split(".")[0])
        out = pd.DataFrame(
            {"ensembl": clean(ens).to_numpy(), "entrez": ent_s.to_numpy(), "symbol": clean(sym).to_numpy()}
        )
        out["ensembl"] = out["ensembl"].map(
            lambda v: (
                None if v is None else [normalize_gene_id(x) for x in re.split(r"[,;|]", v) if x.strip()]
            )
        )
        out = out.explode("ensembl", ignore_index=True)
        out = out.astype(object).where(out.notna(), None).drop_duplicates(ignore_index=True)
        return cls(out)

    @classmethod
    def read(cls, path: str | Path) -> GeneIdTable:
        """Read a gene table (TSV, optionally gzipped; or parquet) and build the equivalences.

        Parameters
        ----------
        path
            The file.

        Returns
        -------
        GeneIdTable
            The equivalences.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError("gene table not found", path=str(path))
        if path.suffix == ".parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        try:
            return cls.from_frame(df)
        except InputError as exc:
            raise InputError(str(exc), path=str(path)) from None

    def mapping(self, source: str, target: str) -> dict[str, set[str]]:
        """Map identifiers of type ``source`` to the set of equivalent ``target`` identifiers.

        Parameters
        ----------
        source, target
            Identifier types (``"ensembl"``, ``"entrez"``, ``"symbol"``).

        Returns
        -------
        dict
            Source ID -> set of target IDs (symbols are also keyed in upper case).
        """
        sub = self.table_df[[source, target]].dropna().drop_duplicates()
        out: dict[str, set[str]] = {}
        for s, t in zip(sub[source], sub[target], strict=True):
            out.setdefault(s, set()).add(t)
            if source == "symbol":
                out.setdefault(s.upper(), set()).add(t)
        return out

    def known(self, id_type: str) -> set[str]:
        """All identifiers of one type in the table (symbols also in upper case).

        Parameters
        ----------
        id_type
            ``"ensembl"``, ``"entrez"`` or ``"symbol"``.

        Returns
        -------
        set of str
            The identifiers.
        """
        values = set(self.table_df[id_type].dropna())
        if id_type == "symbol":
            values |= {v.upper() for v in values}
        return values


def map_gene_ids(ids: Iterable[str], target: str, *, gene_table: GeneIdTable | None = None) -> pd.DataFrame:
    """Map gene identifiers to identifiers of type ``target`` (the gene sets' type).

    Parameters
    ----------
    ids
        Normalised input identifiers (see :func:`normalize_gene_id`), any mix of types.
    target
        The gene sets' identifier type.
    gene_table
        Equivalences used when an input's type differs from ``target``; when given, inputs of the
        target type that the table does not know are also reported as unknown.

    Returns
    -------
    pandas.DataFrame
        Indexed by input ID: ``id_type``, ``status`` (``"direct"``: same type as the gene sets;
        ``"mapped"``: translated; ``"unmapped"``: in the gene table but without an identifier of
        the target type, so without annotation; ``"unknown"``: not in the gene table) and
        ``mapped`` (tuple of target IDs; empty when not translated).

    Raises
    ------
    InputError
        If inputs need translation and no gene table is given.
    """
    ids = list(ids)
    types = [gene_id_type(i) for i in ids]
    need = sorted({t for t in types if t != target})
    if need and gene_table is None:
        offenders = [i for i, t in zip(ids, types, strict=True) if t != target]
        raise InputError(
            f"gene sets use {target} identifiers but {len(offenders)} inputs are {'/'.join(need)}; "
            "pass a gene table to map them",
            ids=offenders,
        )
    maps = {t: gene_table.mapping(t, target) for t in need} if gene_table is not None else {}
    known_target = gene_table.known(target) if gene_table is not None else None
    known_source = {t: gene_table.known(t) for t in need} if gene_table is not None else {}
    status, mapped = [], []
    for gene, kind in zip(ids, types, strict=True):
        if kind == target:
            hit = known_target is None or gene in known_target or gene.upper() in known_target
            status.append("direct" if hit else "unknown")
            mapped.append((gene,))
            continue
        targets = maps[kind].get(gene) or maps[kind].get(gene.upper()) or set()
        if targets:
            status.append("mapped")
        else:
            known = known_source[kind]
            status.append("unmapped" if gene in known or gene.upper() in known else "unknown")
        mapped.append(tuple(sorted(targets)))
    return pd.DataFrame(
        {"id_type": types, "status": status, "mapped": mapped}, index=pd.Index(ids, name="input")
    )
