"""Logging set-up and progress bars.

Library modules only call ``logging.getLogger(__name__)``; the CLI owns the handlers
(:func:`setup_logging`): stderr plus ``<out>/tbeqtl.log``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

__all__ = ["progress", "setup_logging"]

T = TypeVar("T")

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(*, level: str | int = "INFO", log_file: str | Path | None = None) -> None:
    """Configure the ``tbeqtl`` logger to write to stderr and optionally to a file.

    Parameters
    ----------
    level
        Logging level name or number.
    log_file
        If given, also append the log to this file (its folder is created).
    """
    logger = logging.getLogger("tbeqtl")
    logger.setLevel(level if isinstance(level, int) else level.upper())
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    logger.addHandler(stream)
    if log_file is not None:
        log_file = Path(log_file)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter(_FORMAT))
        logger.addHandler(handler)
    # Not propagated: some dependencies call logging.basicConfig, which would print every line twice.
    # Tests that use caplog after calling the CLI re-enable propagation themselves.
    logger.propagate = False


def progress(
    iterable: Iterable[T], *, desc: str, total: int | None = None, enabled: bool | None = None
) -> Iterator[T]:
    """Wrap a long loop in a progress bar on stderr.

    Parameters
    ----------
    iterable
        The loop's items.
    desc
        What the loop does, shown left of the bar.
    total
        Number of items, if ``iterable`` has no ``len``.
    enabled
        Force the bar on or off; by default it is shown when stderr is a terminal
        or the ``tbeqtl`` logger is at INFO or lower.

    Yields
    ------
    object
        The items of ``iterable``.
    """
    from tqdm.auto import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty() or logging.getLogger("tbeqtl").isEnabledFor(logging.INFO)
    yield from tqdm(iterable, desc=desc, total=total, disable=not enabled, file=sys.stderr, mininterval=1.0)
