"""Local, seeded randomness: never the global numpy or torch RNG."""

from __future__ import annotations

import numpy as np

__all__ = ["as_generator", "torch_generator"]


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` for ``seed``.

    Parameters
    ----------
    seed
        An integer seed, an existing generator (returned as is) or ``None`` (fresh entropy).

    Returns
    -------
    numpy.random.Generator
        The generator.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def torch_generator(seed: int, *, device: str = "cpu"):
    """Return a seeded :class:`torch.Generator` on ``device``.

    Parameters
    ----------
    seed
        Integer seed.
    device
        Torch device name.

    Returns
    -------
    torch.Generator
        The generator.
    """
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen
