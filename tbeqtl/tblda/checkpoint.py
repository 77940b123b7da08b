"""Periodic, atomic checkpoints of a TBLDA fit, so that a killed run resumes bit for bit.

A checkpoint is one file, ``<checkpoint_dir>/checkpoint.pt`` (a plain ``torch.save`` of a
dict of tensors, numbers and strings; loaded with ``weights_only=True``), holding

- ``step``: steps completed,
- ``params``: the unconstrained variational parameters,
- ``optimizer``: the Adam state (moments and step counts),
- ``average``: the running average of the iterates (:mod:`tbeqtl.tblda.averaging`),
- ``rng_cpu`` / ``rng_cuda``: the torch random-number-generator states *after* ``step``,
- ``losses``: the loss of every step so far (float64), ``statistics``: the stopping-rule
  statistic at every check so far (step, value),
- ``elapsed``: wall-clock seconds of fitting so far,
- ``fingerprint``: a JSON string of the settings and data shape and IDs that must match on
  resume,
- ``done``: the stop reason once the fit has finished (``""`` while running).

It is written through :func:`tbeqtl.atomic.atomic_path`: a run killed while saving leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_path
from ..errors import InputError

__all__ = ["CHECKPOINT_NAME", "load_checkpoint", "save_checkpoint"]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(state: dict[str, Any], checkpoint_dir: str | Path) -> Path:
    """Atomically write a checkpoint.

    Parameters
    ----------
    state
        The dict described in the module docstring.
    checkpoint_dir
        Folder to write ``checkpoint.pt`` into (created if needed).

    Returns
    -------
    pathlib.Path
        The checkpoint file.
    """
    path = Path(checkpoint_dir) / CHECKPOINT_NAME
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    logger.debug("checkpoint at step %d written to %s", state["step"], path)
    return path


def load_checkpoint(checkpoint_dir: str | Path, *, fingerprint: str) -> dict[str, Any] | None:
    """Read the checkpoint of a run, checking that it belongs to the same fit.

    Parameters
    ----------
    checkpoint_dir
        Folder holding ``checkpoint.pt``.
    fingerprint
        The JSON fingerprint of the fit being resumed.

    Returns
    -------
    dict or None
        The state, or ``None`` when there is no checkpoint yet.

    Raises
    ------
    InputError
        The checkpoint is unreadable or was written by a fit with other settings or data.
    """
    path = Path(checkpoint_dir) / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is an input problem
        raise InputError(f"cannot read checkpoint: {exc}", path=str(path)) from None
    if state.get("fingerprint") != fingerprint:
        old = json.loads(state.get("fingerprint", "{}"))
        new = json.loads(fingerprint)
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise InputError("checkpoint belongs to a fit with different settings or data; differing keys",
                         path=str(path), ids=diff)
    return state
