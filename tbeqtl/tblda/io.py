"""Saving, loading and writing the outputs of a fitted TBLDA model, in open formats.

A saved model is a folder with

- ``tensors.pt``: a plain ``torch.save`` of a dict of float64 tensors (read back with
  ``weights_only=True``): the variational parameters ``gene_concentration`` (G x K,
  ``xi_q``), ``sample_concentration`` (L x K, ``sigma_q``), ``snp_beta_a`` and
  ``snp_beta_b`` (S x K, ``zeta_q``, ``gamma_q``), the ancestry subspace
  ``ancestry_beta`` (S x Q) and ``ancestry_tau`` (N x Q), ``snp_maf``, ``gene_mean_count``
  and the ELBO trace ``elbo``;
- ``model.json``: the format name and version, the estimator's parameters, ``alpha``, the
  row IDs of every tensor (genes, samples with their individuals, SNPs, individuals), the
  stop reason, steps and fit time.

:func:`write_outputs` writes what ``tbeqtl fit --out DIR`` promises: ``gene_topics.tsv``,
``sample_topics.tsv``, ``snp_topics.tsv``, ``individual_topics.tsv`` (ID column then one
column per topic ``0 .. K-1``, posterior means), ``elbo.tsv`` (``step``, ``elbo``,
``statistic``), ``run.json`` and the saved model in ``model/``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..atomic import atomic_path, write_json, write_table
from ..errors import InputError

if TYPE_CHECKING:
    from .estimator import TBLDA

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load_model", "read_topic_table", "save_model", "write_outputs"]

logger = logging.getLogger(__name__)

FORMAT_NAME = "tbeqtl-tblda"
FORMAT_VERSION = 1


def save_model(model: TBLDA, path: str | Path) -> Path:
    """Save a fitted model as ``tensors.pt`` + ``model.json`` (atomic writes).

    Parameters
    ----------
    model
        A fitted :class:`~tbeqtl.tblda.TBLDA`.
    path
        Folder to write (created if needed).

    Returns
    -------
    pathlib.Path
        The folder.
    """
    if not hasattr(model, "gene_concentration_"):
        raise InputError("the model is not fitted; call fit() first")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    def t(df) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(np.asarray(df, dtype=np.float64)))

    tensors = {
        "gene_concentration": t(model.gene_concentration_),
        "sample_concentration": t(model.sample_concentration_),
        "snp_beta_a": t(model.snp_beta_a_),
        "snp_beta_b": t(model.snp_beta_b_),
        "ancestry_beta": t(model.ancestry_beta_),
        "ancestry_tau": t(model.ancestry_tau_),
        "snp_maf": t(model.snp_maf_),
        "gene_mean_count": t(model.gene_mean_count_),
        "elbo": t(model.elbo_),
        "convergence": t(model.convergence_.to_numpy(dtype=np.float64).reshape(-1, 2)),
    }
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "tbeqtl_version": __version__,
        "params": model.get_params(),
        "alpha": model.alpha_,
        "alpha_elbo": model.alpha_elbo_,
        "alpha_curve": _curve_record(model.alpha_curve_),
        "n_iter": model.n_iter_,
        "stop_reason": model.stop_reason_,
        "average_window": int(model.average_window) if model.inference == "svi" else 0,
        "fit_seconds": model.fit_seconds_,
        "genes": [str(g) for g in model.gene_concentration_.index],
        "samples": [str(s) for s in model.sample_concentration_.index],
        "sample_individuals": [str(i) for i in model.sample_map_.reindex(model.sample_concentration_.index)],
        "snps": [str(s) for s in model.snp_beta_a_.index],
        "individuals": [str(i) for i in model.individual_topics_.index],
        "ancestry_columns": [str(c) for c in model.ancestry_beta_.columns],
    }
    with atomic_path(path / "tensors.pt") as tmp:
        torch.save(tensors, tmp)
    write_json(meta, path / "model.json")
    logger.info("saved TBLDA model to %s", path)
    return path


def load_model(path: str | Path) -> TBLDA:
    """Load a model saved by :func:`save_model`.

    Parameters
    ----------
    path
        The model folder (or a ``tbeqtl fit`` output folder containing ``model/``).

    Returns
    -------
    TBLDA
        The fitted model; its topics equal the saved ones exactly.

    Raises
    ------
    InputError
        Not a saved TBLDA model, or an unsupported format version.
    """
    from .estimator import TBLDA

    path = Path(path)
    if not (path / "model.json").exists() and (path / "model" / "model.json").exists():
        path = path / "model"
    try:
        meta = json.loads((path / "model.json").read_text(encoding="utf-8"))
        tensors = torch.load(path / "tensors.pt", map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"not a saved TBLDA model ({exc})", path=str(path)) from None
    if meta.get("format") != FORMAT_NAME or int(meta.get("format_version", -1)) > FORMAT_VERSION:
        raise InputError(f"unsupported model format {meta.get('format')!r} "
                         f"version {meta.get('format_version')}", path=str(path))
    model = TBLDA(**meta["params"])
    topics = pd.RangeIndex(int(meta["params"]["n_topics"]), name="topic")
    genes = pd.Index(meta["genes"], name="gene")
    samples = pd.Index(meta["samples"], name="sample")
    snps = pd.Index(meta["snps"], name="snp")
    individuals = pd.Index(meta["individuals"], name="individual")
    ancestry_cols = pd.Index(meta["ancestry_columns"], name="ancestry")

    def frame(name, index, columns):
        return pd.DataFrame(tensors[name].numpy(), index=index, columns=columns)

    model._set_posterior(
        gene_concentration=frame("gene_concentration", genes, topics),
        sample_concentration=frame("sample_concentration", samples, topics),
        snp_beta_a=frame("snp_beta_a", snps, topics),
        snp_beta_b=frame("snp_beta_b", snps, topics),
        alpha=meta["alpha"],
        sample_map=pd.Series(meta["sample_individuals"], index=samples, name="individual"),
        individuals=individuals,
    )
    model.ancestry_beta_ = frame("ancestry_beta", snps, ancestry_cols)
    model.ancestry_tau_ = frame("ancestry_tau", individuals, ancestry_cols)
    model.snp_maf_ = pd.Series(tensors["snp_maf"].numpy(), index=snps, name="coded_maf")
    model.gene_mean_count_ = pd.Series(tensors["gene_mean_count"].numpy(), index=genes, name="mean_count")
    model.elbo_ = tensors["elbo"].numpy()
    conv = tensors["convergence"].numpy().reshape(-1, 2)
    model.convergence_ = pd.DataFrame({"step": conv[:, 0].astype(np.int64), "statistic": conv[:, 1]})
    model.alpha_elbo_ = float(meta.get("alpha_elbo", meta["alpha"]))
    model.alpha_curve_ = _curve_frame(meta.get("alpha_curve"))
    model.n_iter_ = int(meta["n_iter"])
    model.stop_reason_ = str(meta["stop_reason"])
    model.fit_seconds_ = float(meta["fit_seconds"])
    return model


def _curve_record(curve: pd.DataFrame | None) -> dict | None:
    if curve is None:
        return None
    return {"alpha": curve["alpha"].tolist(), "log_marginal": curve["log_marginal"].tolist(),
            "attrs": {k: float(v) for k, v in curve.attrs.items()}}


def _curve_frame(record: dict | None) -> pd.DataFrame | None:
    if record is None:
        return None
    curve = pd.DataFrame({"alpha": record["alpha"], "log_marginal": record["log_marginal"]}, dtype=np.float64)
    curve.attrs.update(record.get("attrs", {}))
    return curve


def _topic_frame(df: pd.DataFrame, id_name: str) -> pd.DataFrame:
    out = df.copy()
    out.columns = [str(c) for c in out.columns]
    out.index = out.index.rename(id_name)
    return out.reset_index()


def write_outputs(model: TBLDA, out_dir: str | Path, *, extra: dict | None = None) -> None:
    """Write the topic tables, ``elbo.tsv``, ``run.json`` and ``model/`` into ``out_dir``.

    Parameters
    ----------
    model
        A fitted model.
    out_dir
        Output folder.
    extra
        Additional entries for ``run.json`` (e.g. input file names).
    """
    out_dir = Path(out_dir)
    write_table(_topic_frame(model.gene_topics_, "gene"), out_dir / "gene_topics.tsv")
    write_table(_topic_frame(model.sample_topics_, "sample"), out_dir / "sample_topics.tsv")
    write_table(_topic_frame(model.snp_topics_, "snp"), out_dir / "snp_topics.tsv")
    write_table(_topic_frame(model.individual_topics_, "individual"), out_dir / "individual_topics.tsv")
    stats = model.convergence_.set_index("step")["statistic"]
    steps = np.arange(1, len(model.elbo_) + 1)
    elbo_df = pd.DataFrame({"step": steps, "elbo": model.elbo_,
                            "statistic": stats.reindex(steps).to_numpy(dtype=np.float64)})
    write_table(elbo_df, out_dir / "elbo.tsv")
    save_model(model, out_dir / "model")
    run = {
        "tool": "tbeqtl fit",
        "tbeqtl_version": __version__,
        "alpha": model.alpha_,
        "alpha_method": model.alpha_method,
        "alpha_elbo": model.alpha_elbo_,
        "alpha_ess_median": None if model.alpha_curve_ is None else model.alpha_curve_.attrs["ess_median"],
        "n_steps": model.n_iter_,
        "fit_seconds": model.fit_seconds_,
        "final_elbo": float(model.elbo_[-1]) if len(model.elbo_) else None,
        "stop_reason": model.stop_reason_,
        "average_window": int(model.average_window) if model.inference == "svi" else 0,
        "n_topics": int(model.n_topics),
        "n_genes": len(model.gene_topics_),
        "n_samples": len(model.sample_topics_),
        "n_snps": len(model.snp_topics_),
        "n_individuals": len(model.individual_topics_),
        "params": model.get_params(),
    }
    if extra:
        run.update(extra)
    write_json(run, out_dir / "run.json")
    logger.info("wrote TBLDA outputs to %s", out_dir)


def read_topic_table(path: str | Path) -> pd.DataFrame:
    """Read a topic table written by :func:`write_outputs` (IDs x topics, int topic columns).

    Parameters
    ----------
    path
        ``gene_topics.tsv``, ``sample_topics.tsv``, ``snp_topics.tsv`` or ``individual_topics.tsv``.

    Returns
    -------
    pandas.DataFrame
        Indexed by the ID column, columns ``0 .. K-1`` (named ``topic``).
    """
    df = pd.read_csv(path, sep="\t", index_col=0, dtype={0: str})
    df.columns = pd.Index([int(c) for c in df.columns], name="topic")
    return df
