"""Write a simulated data set and its planted truth, atomically as a whole.

Layout of ``write_simulation(sim, out_dir)``::

    <data set files>                  tbeqtl.io.write_dataset: counts.gct.gz, counts.tsv.gz,
                                      sample_attributes.tsv, subject_attributes.tsv, sample_map.tsv,
                                      genotypes.bed/.bim/.fam, genotypes.dosage.tsv.gz, genes.bed
    truth/params.json                 alpha, seed, preset, every generating parameter, sizes
    truth/gene_topics.tsv             genes x K, psi (column ``gene``, then topics 0 ... K-1)
    truth/sample_topics.tsv           samples x K, phi
    truth/individual_topics.tsv       individuals x K, theta
    truth/snp_topics.tsv              SNPs x K, lambda
    truth/ancestry_beta.tsv           SNPs x Q allele frequencies beta (of the alt allele)
    truth/ancestry_tau.tsv            individuals x Q admixture tau
    truth/eqtls.tsv                   planted eQTLs: snp, gene, kind, effect, topic, distance
    truth/topic_tissue.tsv            topic, tissue ("" for shared topics)
    truth/library_sizes.tsv           sample, library_size (C_l)
    truth/cell_type_topics.tsv        cell_type, topic: the shared topic that each per-sample
                                      score ``celltype_<cell type>`` tracks
    truth/covariate_effects.tsv       gene, sex, platform (log fold changes)
    truth/terastructure/beta.txt      terastructure style: ``index<TAB>b_1 ... b_Q<TAB>``, SNP order
    truth/terastructure/theta.txt     terastructure style: ``index<TAB>t_1 ... t_Q<TAB>``, individual order
    truth/admixture/genotypes.<Q>.P   ADMIXTURE style: S rows of Q space-separated frequencies
    truth/admixture/genotypes.<Q>.Q   ADMIXTURE style: N rows of Q space-separated proportions
    truth/gtex/<Tissue>.v8.signif_variant_gene_pairs.txt.gz
                                      the planted cis-eQTLs in GTEx v8 format, with statistics
                                      observed in that tissue (see :func:`gtex_pairs`)
    truth/gtex/trans_eqtls.txt.gz     the planted trans-eQTLs, GTEx-style trans table (tissue_id,
                                      variant_id, gene_id, maf, pval, slope, slope_se)
    cells.h5ad                        single-cell variant only: AnnData, cells x genes counts (sparse),
                                      .obs ``donor``, ``cell_type``, ``platform``; .var gene annotation
    simulation.json                   written last: preset, seed, tbeqtl version, file list

Rows of the ancestry text files follow the SNP / individual order of the genotype files
(``genotypes.bim`` / ``genotypes.fam`` and the dosage TSV). Everything is first written into a
temporary sibling folder; it is then renamed onto ``out_dir`` (or, when ``out_dir`` exists,
its entries are moved in one by one with ``simulation.json`` last), so an interrupted write
never leaves a half-written data set under ``out_dir``.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

from .. import __version__
from ..atomic import atomic_path, atomic_write, make_temp_dir, write_json, write_table
from ..errors import InputError

if TYPE_CHECKING:
    from .core import Simulation, SimulationTruth

__all__ = [
    "GTEX_PAIR_COLUMNS",
    "MANIFEST",
    "gtex_pairs",
    "gtex_tissue_file_name",
    "gtex_trans_pairs",
    "planted_pair_statistics",
    "write_cells_h5ad",
    "write_simulation",
    "write_truth",
]

logger = logging.getLogger(__name__)

#: Written last; its presence marks a complete simulated data set.
MANIFEST = "simulation.json"

#: Columns of the GTEx v8 ``signif_variant_gene_pairs`` files written under ``truth/gtex/``.
GTEX_PAIR_COLUMNS = [
    "variant_id",
    "gene_id",
    "tss_distance",
    "ma_samples",
    "ma_count",
    "maf",
    "pval_nominal",
    "slope",
    "slope_se",
]

#: Files that may already be in ``out_dir`` without ``overwrite`` (the CLI's log).
_ALLOWED_EXISTING = {"tbeqtl.log"}


def gtex_tissue_file_name(tissue: str) -> str:
    """Return the GTEx file-name form of a tissue name.

    ``"Skin - Sun Exposed (Lower leg)"`` becomes ``Skin_Sun_Exposed_Lower_leg``.

    Parameters
    ----------
    tissue
        GTEx ``SMTSD`` tissue name.

    Returns
    -------
    str
        The name used in GTEx v8 file names.
    """
    text = re.sub(r"[()]", "", tissue).replace(" - ", "_")
    return re.sub(r"\s+", "_", text.strip())


def _float_text(values: np.ndarray) -> list[str]:
    return [repr(float(v)) for v in values]


def _exact_floats(df: pd.DataFrame) -> pd.DataFrame:
    """Format float columns as shortest round-trip text (``repr``), so TSVs reload bit-exactly."""
    out = df.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            values = out[column].to_numpy()
            out[column] = np.array(["NA" if np.isnan(v) else repr(float(v)) for v in values], dtype=object)
    return out


def _write_ancestry_text(values: np.ndarray, path: Path, *, style: str) -> None:
    with atomic_write(path) as handle:
        for i, row in enumerate(values):
            if style == "terastructure":
                handle.write(f"{i}\t" + "\t".join(_float_text(row)) + "\t\n")
            else:
                handle.write(" ".join(f"{v:.6f}" for v in row) + "\n")


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Regress ``y`` on ``x`` with an intercept; return the slope, its standard error and two-sided p."""
    n = x.size
    xc, yc = x - x.mean(), y - y.mean()
    sxx = xc @ xc
    slope = (xc @ yc) / sxx
    sse = max(yc @ yc - slope * (xc @ yc), 0.0)
    se = np.sqrt(sse / (n - 2) / sxx)
    pval = 2.0 * float(special.stdtr(n - 2, -abs(slope / se))) if se > 0 else 0.0
    return float(slope), float(se), float(pval)


def planted_pair_statistics(sim: Simulation, *, kind: str, min_samples: int = 10) -> pd.DataFrame:
    """Compute the observed association statistics of the planted eQTLs of one kind, per tissue.

    For each tissue, counts are summed per individual (the identity for bulk data, where an
    individual has at most one sample per tissue; a pseudo-bulk for cells), normalised to
    ``log(CPM + 1)``, and each planted pair is tested by OLS of expression on the dosage over
    the tissue's individuals with a called genotype.

    Parameters
    ----------
    sim
        The simulation.
    kind
        ``"cis"`` or ``"trans"``.
    min_samples
        Tissues with fewer individuals are skipped.

    Returns
    -------
    pandas.DataFrame
        Columns ``tissue``, ``variant_id``, ``gene_id``, ``tss_distance`` (NaN for trans),
        ``ma_samples``, ``ma_count``, ``maf``, ``pval_nominal``, ``slope``, ``slope_se``.
    """
    data, eq = sim.data, sim.truth.eqtls_df
    pairs = eq[eq["kind"] == kind]
    columns = ["tissue", *GTEX_PAIR_COLUMNS]
    if pairs.empty or "tissue" not in data.sample_info_df.columns:
        return pd.DataFrame(columns=columns)
    counts = data.counts_df.to_numpy()
    lib = counts.sum(axis=0).astype(float)
    genes = pd.Index(pairs["gene"].unique())
    sub = counts[data.genes.get_indexer(genes)].astype(float)
    tissue = data.sample_info_df["tissue"].reindex(data.samples).to_numpy()
    donor = data.sample_map_s.reindex(data.samples).to_numpy()
    rows = []
    for name in pd.unique(tissue):
        cols = np.flatnonzero(tissue == name)
        donors, code = np.unique(donor[cols], return_inverse=True)
        if len(donors) < min_samples:
            continue
        pseudo = np.zeros((len(genes), len(donors)))
        np.add.at(pseudo.T, code, sub[:, cols].T)
        pseudo_lib = np.bincount(code, weights=lib[cols], minlength=len(donors))
        expr = np.log(pseudo / np.maximum(pseudo_lib, 1.0)[None, :] * 1e6 + 1.0)
        dosages = data.genotype_df.loc[pairs["snp"], donors].to_numpy(dtype=float)
        for i, (snp, gene, distance) in enumerate(
            zip(pairs["snp"], pairs["gene"], pairs["distance"], strict=True)
        ):
            ok = ~np.isnan(dosages[i])
            x, y = dosages[i][ok], expr[genes.get_loc(gene)][ok]
            if ok.sum() < 3 or np.ptp(x) == 0:
                continue
            slope, slope_se, pval = _ols(x, y)
            alt_freq = x.mean() / 2.0
            minor = 2.0 - x if alt_freq > 0.5 else x
            rows.append(
                (
                    str(name),
                    snp,
                    gene,
                    distance,
                    int((minor > 0).sum()),
                    int(minor.sum()),
                    float(min(alt_freq, 1.0 - alt_freq)),
                    pval,
                    slope,
                    slope_se,
                )
            )
    return pd.DataFrame(rows, columns=columns)


def gtex_pairs(sim: Simulation, *, min_samples: int = 10) -> dict[str, pd.DataFrame]:
    """Tabulate the planted cis-eQTLs in GTEx v8 ``signif_variant_gene_pairs`` format, one table per tissue.

    Statistics are those of :func:`planted_pair_statistics` (``slope``, ``slope_se`` and the
    two-sided t-test ``pval_nominal`` of log-CPM on dosage in that tissue). Rows are the planted
    truth, not thresholded; GTEx's permutation columns (``pval_nominal_threshold``,
    ``min_pval_nominal``, ``pval_beta``) are not produced.

    Parameters
    ----------
    sim
        The simulation.
    min_samples
        Tissues with fewer individuals are skipped.

    Returns
    -------
    dict of str to pandas.DataFrame
        Tissue name -> table with columns ``variant_id``, ``gene_id``, ``tss_distance``,
        ``ma_samples``, ``ma_count``, ``maf``, ``pval_nominal``, ``slope``, ``slope_se``.
    """
    stats_df = planted_pair_statistics(sim, kind="cis", min_samples=min_samples)
    stats_df["tss_distance"] = stats_df["tss_distance"].astype(np.int64)
    return {
        str(tissue): group.drop(columns="tissue").reset_index(drop=True)
        for tissue, group in stats_df.groupby("tissue", sort=False)
    }


def gtex_trans_pairs(sim: Simulation, *, min_samples: int = 10) -> pd.DataFrame:
    """Tabulate the planted trans-eQTLs as a GTEx-style trans table (all tissues in one table).

    Parameters
    ----------
    sim
        The simulation.
    min_samples
        Tissues with fewer individuals are skipped.

    Returns
    -------
    pandas.DataFrame
        Columns ``tissue_id`` (GTEx file-name form, e.g. ``Whole_Blood``), ``variant_id``,
        ``gene_id``, ``maf``, ``pval``, ``slope``, ``slope_se``; statistics as in
        :func:`planted_pair_statistics`.
    """
    df = planted_pair_statistics(sim, kind="trans", min_samples=min_samples)
    return pd.DataFrame(
        {
            "tissue_id": [gtex_tissue_file_name(t) for t in df["tissue"]],
            "variant_id": df["variant_id"],
            "gene_id": df["gene_id"],
            "maf": df["maf"],
            "pval": df["pval_nominal"],
            "slope": df["slope"],
            "slope_se": df["slope_se"],
        }
    )


def _write_gzip_tsv(df: pd.DataFrame, path: Path) -> None:
    text = df.to_csv(sep="\t", index=False, na_rep="NA").encode()
    # no file name and mtime 0 in the gzip header: byte-identical reruns
    with atomic_write(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(text)


def write_truth(truth: SimulationTruth, out_dir: str | Path, *, sim: Simulation | None = None) -> Path:
    """Write the planted truth tables (TSV), ``params.json`` and the ancestry text formats.

    Parameters
    ----------
    truth
        The planted truth.
    out_dir
        The ``truth/`` folder (created).
    sim
        The whole simulation; needed for the per-tissue GTEx-format eQTL files.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "gene_topics.tsv": truth.gene_topics_df,
        "sample_topics.tsv": truth.sample_topics_df,
        "individual_topics.tsv": truth.individual_topics_df,
        "snp_topics.tsv": truth.snp_topics_df,
        "ancestry_beta.tsv": truth.ancestry_beta_df,
        "ancestry_tau.tsv": truth.ancestry_tau_df,
        "covariate_effects.tsv": truth.covariate_effects_df,
    }
    for name, df in tables.items():
        write_table(_exact_floats(df), out / name, index=True)
    write_table(_exact_floats(truth.eqtls_df), out / "eqtls.tsv")
    write_table(truth.topic_tissue_s.rename_axis("topic").reset_index(), out / "topic_tissue.tsv")
    write_table(truth.library_size_s.rename_axis("sample").reset_index(), out / "library_sizes.tsv")
    write_table(truth.cell_type_topic_s.rename_axis("cell_type").reset_index(), out / "cell_type_topics.tsv")
    n_anc = truth.ancestry_beta_df.shape[1]
    _write_ancestry_text(
        truth.ancestry_beta_df.to_numpy(), out / "terastructure" / "beta.txt", style="terastructure"
    )
    _write_ancestry_text(
        truth.ancestry_tau_df.to_numpy(), out / "terastructure" / "theta.txt", style="terastructure"
    )
    _write_ancestry_text(
        truth.ancestry_beta_df.to_numpy(), out / "admixture" / f"genotypes.{n_anc}.P", style="admixture"
    )
    _write_ancestry_text(
        truth.ancestry_tau_df.to_numpy(), out / "admixture" / f"genotypes.{n_anc}.Q", style="admixture"
    )
    if sim is not None:
        for tissue, df in gtex_pairs(sim).items():
            name = f"{gtex_tissue_file_name(tissue)}.v8.signif_variant_gene_pairs.txt.gz"
            _write_gzip_tsv(df, out / "gtex" / name)
        trans = gtex_trans_pairs(sim)
        if len(trans):
            _write_gzip_tsv(trans, out / "gtex" / "trans_eqtls.txt.gz")
    write_json({"alpha": truth.alpha, **truth.params}, out / "params.json")
    return out


def write_cells_h5ad(sim: Simulation, path: str | Path) -> Path:
    """Write the counts as an AnnData ``.h5ad`` file (cells x genes), as single-cell data come.

    ``.X`` holds the raw counts as a sparse CSR int64 matrix; ``.obs`` (indexed by cell ID) has
    ``donor`` (the individual, for :func:`tbeqtl.io.read_h5ad` ``donor_column="donor"``) and
    the other sample attributes (``cell_type``, ``platform``); ``.var`` is the gene annotation.

    Parameters
    ----------
    sim
        The simulation.
    path
        Destination file (written atomically).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import anndata
    from scipy import sparse

    data = sim.data
    obs = data.sample_info_df.drop(columns=["tissue"], errors="ignore").copy()
    obs.insert(0, "donor", data.sample_map_s.reindex(data.samples).to_numpy())
    obs.index = pd.Index(data.samples.astype(str), name=None)
    var = data.gene_info_df.copy()
    var.index = pd.Index(data.genes.astype(str), name=None)
    matrix = sparse.csr_matrix(data.counts_df.to_numpy().T.astype(np.int64))
    adata = anndata.AnnData(X=matrix, obs=obs, var=var)
    path = Path(path)
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp)
    return path


def _existing_entries(out: Path) -> list[str]:
    if not out.exists():
        return []
    if not out.is_dir():
        raise InputError("output path exists and is not a folder", path=str(out))
    return sorted(p.name for p in out.iterdir() if p.name not in _ALLOWED_EXISTING)


def write_simulation(sim: Simulation, out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Write a simulated data set (real formats via :func:`tbeqtl.io.write_dataset`) plus ``truth/``.

    Parameters
    ----------
    sim
        The simulation.
    out_dir
        Destination folder. It may already exist if it is empty (or holds only ``tbeqtl.log``).
    overwrite
        Replace files already in ``out_dir`` (other files there are left alone).

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    InputError
        ``out_dir`` holds files and ``overwrite`` is false, or is not a folder.
    """
    from ..io import write_dataset

    out = Path(out_dir)
    existing = _existing_entries(out)
    if existing and not overwrite:
        raise InputError(
            "output folder is not empty (pass overwrite=True / --overwrite to replace the data set)",
            path=str(out),
            ids=existing,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out.parent, prefix=f".{out.name}.")  # 0777 less the umask, as mkdir gives
    try:
        write_dataset(sim.data, tmp)
        if sim.truth.params.get("cells_per_donor") is not None:
            write_cells_h5ad(sim, tmp / "cells.h5ad")
        write_truth(sim.truth, tmp / "truth", sim=sim)
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        write_json(
            {
                "preset": sim.truth.params.get("preset"),
                "seed": sim.truth.params.get("seed"),
                "tbeqtl_version": __version__,
                "files": files,
            },
            tmp / MANIFEST,
        )
        if not out.exists():
            os.rename(tmp, out)
        else:
            _move_into(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    logger.info("wrote simulated data set and truth to %s", out)
    return out


def _move_into(src: Path, dest: Path) -> None:
    """Move ``src``'s entries into the existing ``dest``, the manifest last; folders are swapped whole."""
    stale = dest / MANIFEST
    if stale.exists():
        stale.unlink()  # the set is incomplete until the new manifest lands
    entries = sorted((p for p in src.iterdir() if p.name != MANIFEST), key=lambda p: p.name)
    for entry in [*entries, src / MANIFEST]:
        target = dest / entry.name
        if entry.is_dir():
            trash = None
            if target.exists():
                trash = make_temp_dir(dest, prefix=f".{entry.name}.", suffix=".old")
                os.rename(target, trash / entry.name)
            os.rename(entry, target)
            if trash is not None:
                shutil.rmtree(trash)
        else:
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
