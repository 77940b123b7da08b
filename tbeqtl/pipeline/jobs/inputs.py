"""The driver's inputs job: the prepared folder a run reads, and the small tables every pair shares.

:func:`prepared_folder` resolves ``data.path`` / an in-memory data set / the raw inputs of ``[data]``
into a prepared folder (:mod:`tbeqtl.pipeline.prepared`); :func:`genotype_pcs`,
:func:`ancestry_files` and :func:`tissue_covariates` read it chromosome by chromosome, so the
driver never holds all counts or all genotypes at once.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from ...data import EQTLData
from ...errors import InputError
from .. import covariates as cov
from ..config import PipelineConfig
from .common import _heldout_by_tissue

__all__ = ["ancestry_files", "genotype_pcs", "prepared_folder", "tissue_covariates"]

logger = logging.getLogger(__name__)

_RAW = ("counts", "sample_attributes", "subject_attributes", "genotypes", "genes")
_RAW_OPTIONAL = ("cell_types", "covariates")


def _data_fingerprint(data: EQTLData) -> str:
    """Return a sha256 of an in-memory data set's values and labels (order included)."""
    digest = hashlib.sha256()
    for frame in (
        data.counts_df,
        data.genotype_df,
        data.sample_map_s.to_frame(),
        data.sample_info_df,
        data.individual_info_df,
        data.gene_info_df,
        data.snp_info_df,
    ):
        digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
        digest.update("|".join(map(str, frame.columns)).encode())
    return digest.hexdigest()


def _manifest_source(path: Path) -> Any:
    from ..prepared import PreparedData, is_prepared

    if not is_prepared(path):
        return None
    return PreparedData.open(path).manifest.get("params", {}).get("run_source")


def _config_ancestry(config: PipelineConfig, ids: pd.Index, individuals: pd.Index):
    """Read the ``data.ancestry_*`` files as ``(beta_df, tau_df)``, checked against the data, or None."""
    if bool(config.data.ancestry_beta) != bool(config.data.ancestry_tau):
        raise InputError("give both data.ancestry_beta and data.ancestry_tau, or neither")
    if not config.data.ancestry_beta:
        return None
    beta_path, tau_path = _ancestry_paths(config)
    beta_df, tau_df = (pd.read_csv(p, sep="\t", index_col=0) for p in (beta_path, tau_path))
    beta_df.index, tau_df.index = beta_df.index.astype(str), tau_df.index.astype(str)
    missing = ids.difference(beta_df.index, sort=False)
    if len(missing):
        raise InputError("SNPs missing from data.ancestry_beta", ids=missing)
    missing = individuals.difference(tau_df.index, sort=False)
    if len(missing):
        raise InputError("individuals missing from data.ancestry_tau", ids=missing)
    return beta_df, tau_df


def _ancestry_paths(config: PipelineConfig) -> tuple[Path, Path]:
    base = Path(config.data.path) if config.data.path else Path(".")
    out = []
    for name in (config.data.ancestry_beta, config.data.ancestry_tau):
        path = Path(name) if Path(name).is_absolute() else base / name
        if not path.exists():
            raise InputError("ancestry file not found", path=str(path))
        out.append(path)
    return out[0], out[1]


def _partition_settings(config: PipelineConfig, source: str) -> dict[str, Any]:
    return {
        "source": source,
        "genotype_pcs": config.covariates.genotype_pcs,
        "n_ancestry": config.fit.n_ancestry,
        "seed": config.fit.seed,
        "ancestry_snps": int(config.prepare.get("ancestry_snps", 40_000)),
        "ancestry_files": [config.data.ancestry_beta, config.data.ancestry_tau],
    }


def _partition(config: PipelineConfig, data: EQTLData, out: Path, *, source: str) -> Path:
    """Write an EQTLData into ``out`` as a prepared folder (``RUN/data/``), replacing an older one."""
    from ..prepared import write_prepared

    settings = _partition_settings(config, source)
    if out.exists():
        if (out.parent / "pairs").is_dir() and any((out.parent / "pairs").iterdir()):
            raise InputError(
                f"{out.parent} holds pairs run on another data set; give a new output folder", path=str(out)
            )
        shutil.rmtree(out)
    ancestry = _config_ancestry(config, data.snps, data.individuals)
    logger.info("partitioning the data set by chromosome into %s", out)
    return Path(
        write_prepared(
            data,
            out,
            genotype_pcs=config.covariates.genotype_pcs,
            ancestry=ancestry,
            n_ancestry=None if ancestry is not None else config.fit.n_ancestry,
            ancestry_snps=settings["ancestry_snps"],
            seed=config.fit.seed,
            params={"run_source": settings},
        )
    )


def _prepare_raw(config: PipelineConfig, out: Path) -> Path:
    from ...prepare import prepare
    from ...prepare.options import PrepareOptions

    dc = config.data
    missing = [f"data.{k}" for k in _RAW if not getattr(dc, k)]
    if missing:
        raise InputError(
            "no data: set data.path (a prepared or data set folder) or all raw inputs", ids=missing
        )
    inputs = {k: getattr(dc, k) for k in (*_RAW, *_RAW_OPTIONAL) if getattr(dc, k)}
    for key, value in inputs.items():
        if not Path(value).exists() and not any(Path(value).parent.glob(Path(value).name + ".*")):
            raise InputError(f"data.{key} not found", path=value)
    from ..prepared import is_prepared

    if is_prepared(out):
        from ..prepared import PreparedData

        manifest = PreparedData.open(out).manifest
        if manifest.get("params", {}).get("run_source") == {"inputs": inputs, "prepare": config.prepare}:
            logger.info("reusing the prepared inputs in %s", out)
            return out
        if (out.parent / "pairs").is_dir() and any((out.parent / "pairs").iterdir()):
            raise InputError(
                f"{out.parent} holds pairs run on other inputs; give a new output folder", path=str(out)
            )
        shutil.rmtree(out)
    options = PrepareOptions(**config.prepare)
    ancestry = {}
    if dc.ancestry_beta or dc.ancestry_tau:
        beta, tau = _ancestry_paths(config)
        ancestry = {"ancestry_beta": str(beta), "ancestry_tau": str(tau)}
    logger.info("preparing the raw inputs into %s", out)
    path = prepare(
        counts=dc.counts,
        sample_attributes=dc.sample_attributes,
        subject_attributes=dc.subject_attributes,
        genotypes=dc.genotypes,
        genes=dc.genes,
        cell_types=dc.cell_types or None,
        covariates=dc.covariates or None,
        out=out,
        options=options,
        **ancestry,
    )
    _stamp_source(Path(path), {"inputs": inputs, "prepare": config.prepare})
    return Path(path)


def _stamp_source(path: Path, source: dict[str, Any]) -> None:
    """Record in the manifest what the run prepared the folder from (to reuse it on a rerun)."""
    import json

    from ...atomic import write_json

    manifest = json.loads((path / "manifest.json").read_text())
    manifest.setdefault("params", {})["run_source"] = source
    write_json(manifest, path / "manifest.json")


def prepared_folder(config: PipelineConfig, run_dir: Path, data: EQTLData | None) -> tuple[Path, bool]:
    """Return the prepared folder a run reads, writing it into ``RUN/data/`` when needed.

    Parameters
    ----------
    config
        ``data.path`` (a prepared folder, used in place, or a data set folder) or the raw inputs
        of ``[data]`` with the ``[prepare]`` options.
    run_dir
        The run folder.
    data
        An in-memory data set (takes precedence over ``data.path``).

    Returns
    -------
    path : pathlib.Path
        The prepared folder.
    in_place : bool
        Whether it is the user's folder (``data.path``) rather than one written by the run.
    """
    from ..prepared import is_prepared

    out = run_dir / "data"
    path = config.data.path
    if data is None and path and is_prepared(path):
        return Path(path), True
    if data is None and not path:
        return _prepare_raw(config, out), False
    if data is not None:
        source = "memory:" + _data_fingerprint(data)
    else:
        listing = "".join(f"{name}:{digest}" for name, digest in sorted(folder_checksums(path).items()))
        source = f"folder:{Path(path).name}:{hashlib.sha256(listing.encode()).hexdigest()}"
    if _manifest_source(out) == _partition_settings(config, source):
        logger.info("reusing the partitioned data set in %s", out)
        return out, False
    if data is None:
        from ...io import read_dataset

        data = read_dataset(path)
    return _partition(config, data, out, source=source), False


def folder_checksums(path: str | Path) -> dict[str, str]:
    """Return the sha256 of every file under a data set folder (or of one file), by relative name.

    Cached per process while no file's size or modification time changes (the run hashes the folder
    twice: to know whether ``RUN/data/`` is still its partition, and for ``run.json``).
    """
    root = Path(path)
    if not str(path) or not root.exists():
        return {}
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    stamp = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return dict(_checksums(str(root), stamp))


@functools.lru_cache(maxsize=8)
def _checksums(root: str, stamp: tuple) -> tuple[tuple[str, str], ...]:
    from ...io._common import sha256_file

    base = Path(root)
    return tuple(
        (Path(f).name if base.is_file() else str(Path(f).relative_to(base)), sha256_file(f))
        for f, _, _ in stamp
    )


def input_checksums(config: PipelineConfig, data_dir: Path, *, in_place: bool) -> dict[str, str]:
    """Return the checksums ``run.json`` records as the run's inputs.

    The files of a data set folder (``data.path``), the raw inputs ``tbeqtl prepare`` recorded in
    the manifest of ``RUN/data/``; nothing more for a prepared folder used in place (its
    ``manifest.json`` lists its files and inputs) or an in-memory data set without a folder.
    """
    if in_place:
        return {}
    if config.data.path:
        return folder_checksums(config.data.path)
    import json

    manifest = json.loads((Path(data_dir) / "manifest.json").read_text())
    return {str(k): str(v) for k, v in manifest.get("inputs", {}).items()}


def genotype_pcs(config: PipelineConfig, prepared) -> pd.DataFrame:
    """Return the first ``covariates.genotype_pcs`` genotype PCs of the prepared folder (individuals x k)."""
    k = int(config.covariates.genotype_pcs)
    pcs_df = prepared.genotype_pcs_df
    params = prepared.manifest.get("params", {})
    made = int(params.get("genotype_pcs", params.get("genotype_pcs_requested", pcs_df.shape[1])))
    if made < k:
        raise InputError(
            f"the prepared folder has {made} genotype PCs but covariates.genotype_pcs asks "
            f"for {k}: prepare it again with more, or lower covariates.genotype_pcs",
            ids=[made],
        )
    return pcs_df.iloc[:, :k]


def ancestry_files(
    config: PipelineConfig, prepared, data_dir: Path, *, in_place: bool, run_dir: Path
) -> tuple[str, str]:
    """Return the paths of the ancestry subspace the pairs read (beta of all SNPs, tau of all individuals).

    ``data.ancestry_*`` files when the prepared folder is used in place and they are given (else
    they are already in the folder the run wrote), then the prepared folder's own, else one
    estimated once into ``RUN/ancestry/`` (:func:`_estimated_ancestry`).
    """
    if in_place and (config.data.ancestry_beta or config.data.ancestry_tau):
        _config_ancestry_ids_only(config, prepared)
        beta, tau = _ancestry_paths(config)
        return str(beta), str(tau)
    beta, tau = data_dir / "ancestry_beta.parquet", data_dir / "ancestry_tau.tsv"
    if beta.is_file() and tau.is_file():
        return str(beta), str(tau)
    return _estimated_ancestry(config, prepared, run_dir)


def _estimated_ancestry(config: PipelineConfig, prepared, run_dir: Path) -> tuple[str, str]:
    """Estimate the ancestry subspace once, streamed over the SNP partitions, into ``RUN/ancestry/``.

    terastructure-style: EM on a seeded random subset of at most ``prepare.ancestry_snps`` SNPs, then
    ``beta`` of every SNP given ``tau`` (:func:`tbeqtl.tblda.ancestry.estimate_ancestry_subset`);
    reused by a rerun with the same settings.
    """
    import json

    from ...atomic import write_json, write_table
    from ...tblda.ancestry import estimate_ancestry_subset

    folder = run_dir / "ancestry"
    beta, tau = folder / "ancestry_beta.parquet", folder / "ancestry_tau.tsv"
    settings_path = folder / "settings.json"
    settings = {
        "n_ancestry": config.fit.n_ancestry,
        "seed": config.fit.seed,
        "max_snps": int(config.prepare.get("ancestry_snps", 40_000)),
        "data": prepared.manifest.get("files", {}),
    }
    if settings_path.is_file() and beta.is_file() and tau.is_file():
        if json.loads(settings_path.read_text()) == settings:
            return str(beta), str(tau)
    logger.info(
        "estimating the ancestry subspace (Q=%d) from at most %d SNPs, streamed by chromosome",
        settings["n_ancestry"],
        settings["max_snps"],
    )

    def chunks():
        return (prepared.load_genotypes(chrom) for chrom in prepared.snp_chromosomes)

    beta_df, tau_df = estimate_ancestry_subset(
        chunks, n_ancestry=settings["n_ancestry"], max_snps=settings["max_snps"], seed=settings["seed"]
    )
    beta_df.columns, tau_df.columns = beta_df.columns.astype(str), tau_df.columns.astype(str)
    settings_path.unlink(missing_ok=True)
    write_table(beta_df.rename_axis("snp"), beta, index=True)
    write_table(tau_df.rename_axis("individual"), tau, index=True)
    write_json(settings, settings_path)  # last: the pair of files is complete
    return str(beta), str(tau)


def _config_ancestry_ids_only(config: PipelineConfig, prepared) -> None:
    if bool(config.data.ancestry_beta) != bool(config.data.ancestry_tau):
        raise InputError("give both data.ancestry_beta and data.ancestry_tau, or neither")
    beta, tau = _ancestry_paths(config)
    for path, ids, what in (
        (beta, prepared.snp_info_df.index, "SNPs"),
        (tau, prepared.individual_info_df.index, "individuals"),
    ):
        have = pd.Index(pd.read_csv(path, sep="\t", usecols=[0]).iloc[:, 0].astype(str))
        missing = pd.Index(ids).difference(have, sort=False)
        if len(missing):
            raise InputError(f"{what} missing from the ancestry file", path=str(path), ids=missing)


def tissue_covariates(
    config: PipelineConfig,
    prepared,
    *,
    design_df: pd.DataFrame,
    known_df: pd.DataFrame,
    geno_pcs_df: pd.DataFrame,
    tissues: list[str],
) -> dict[str, pd.DataFrame | str]:
    """Covariates of every mapped tissue's held-out samples, with hidden factors from all genes.

    The counts are read one gene chromosome at a time and only the held-out samples kept (counts
    per million from the library sizes, so the values equal those of the whole table). The same
    computation as :func:`tbeqtl.pipeline.mapping.prepare_tissue_inputs` without given
    covariates, done once instead of in every pair.

    Returns
    -------
    dict
        Tissue -> covariates x samples, or the message of the :class:`InputError` raised for it
        (the pairs mapping the tissue fail with it).
    """
    by_tissue = _heldout_by_tissue(prepared, design_df, config.data.tissue_column)
    wanted = {t: by_tissue.get(t, pd.Index([])) for t in tissues}
    held = pd.Index(sorted({s for samples in wanted.values() for s in samples}))
    if not len(held):
        return {t: "no held-out samples" for t in tissues}
    chroms = list(prepared.gene_chromosomes)
    if prepared.manifest.get("unplaced", {}).get("genes"):
        chroms.append("unplaced")
    parts = [
        cov.counts_per_million(prepared.load_counts(chrom)[held], library_size_s=prepared.library_size_s)
        for chrom in chroms
    ]
    cpm_df = pd.concat(parts)
    cpm_df = cpm_df.loc[prepared.gene_info_df.index] if len(prepared.gene_info_df.columns) else cpm_df
    out: dict[str, pd.DataFrame | str] = {}
    from threadpoolctl import threadpool_limits

    # the pairs' BLAS thread count: the SVD of the hidden factors then gives the same bits as in a pair
    with threadpool_limits(max(1, int(config.run.threads_per_worker))):
        for tissue, samples in wanted.items():
            out[tissue] = _one_tissue(config, prepared, tissue, samples, cpm_df, known_df, geno_pcs_df)
    return out


def _one_tissue(
    config: PipelineConfig,
    prepared,
    tissue: str,
    samples: pd.Index,
    cpm_df: pd.DataFrame,
    known_df: pd.DataFrame,
    geno_pcs_df: pd.DataFrame,
) -> pd.DataFrame | str:
    cc = config.covariates
    try:
        return cov.tissue_covariates(
            samples,
            tissue=tissue,
            expression_df=cov.inverse_normal_transform(cpm_df[samples]),
            known_df=known_df,
            geno_pcs_df=geno_pcs_df,
            sample_map_s=prepared.sample_map_s,
            n_hidden=cc.n_hidden,
            hidden=cc.hidden,
            hidden_max_fraction=cc.hidden_max_fraction,
            seed=config.holdout.seed,
        )
    except InputError as exc:
        return str(exc)
