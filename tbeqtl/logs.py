"""Logging set-up and progress bars.

Library modules only call ``logging.getLogger(__name__)``; the CLI owns the handlers
(:func:`setup_logging`): stderr plus ``<out>/tbeqtl.log``.
"""

from __future__ import annotations

import logging
import sys
import time
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
    """Wrap a long loop in a progress bar on stderr, or in periodic log lines.

    A bar is drawn only on a terminal: in batch logs (stderr redirected to a file, a job
    scheduler's log) bar redraws are noise, so there the loop reports instead an INFO line
    through the ``tbeqtl`` logger every :data:`LOG_INTERVAL` seconds (items done / total and
    the rate) and one when it ends, if it ran longer than that.

    Parameters
    ----------
    iterable
        The loop's items.
    desc
        What the loop does, shown left of the bar and at the start of each log line.
    total
        Number of items, if ``iterable`` has no ``len``.
    enabled
        Force the bar on or off; by default it is shown when stderr is a terminal. Without
        a bar, periodic log lines are written (at INFO).

    Yields
    ------
    object
        The items of ``iterable``.
    """
    if enabled is None:
        enabled = sys.stderr.isatty()
    if enabled:
        from tqdm.auto import tqdm

        yield from tqdm(iterable, desc=desc, total=total, file=sys.stderr, mininterval=1.0)
        return
    yield from _logged_progress(iterable, desc=desc, total=total)


#: Seconds between two progress log lines when no bar is drawn.
LOG_INTERVAL = 30.0


def _logged_progress(iterable: Iterable[T], *, desc: str, total: int | None) -> Iterator[T]:
    """Yield the items of ``iterable``, logging ``desc: done/total (rate/s)`` every :data:`LOG_INTERVAL` s."""
    log = logging.getLogger("tbeqtl.progress")
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    start = last = time.monotonic()
    done = 0
    for item in iterable:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= LOG_INTERVAL:
            last = now
            log.info("%s: %s (%.3g/s)", desc, _count(done, total), done / (now - start))
    elapsed = time.monotonic() - start
    if elapsed >= LOG_INTERVAL:
        log.info("%s: %s in %.1f s", desc, _count(done, total), elapsed)


def _count(done: int, total: int | None) -> str:
    return f"{done}/{total}" if total else str(done)
