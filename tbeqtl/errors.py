"""Exception types raised by tbeqtl.

Every error caused by user input is an :class:`InputError` (a ``ValueError``) whose
message names the offending file, row or IDs, so that a user never has to read a
traceback from deep inside numpy or pandas to find what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["InputError", "MissingDependencyError", "TbeqtlError", "format_ids"]


class TbeqtlError(Exception):
    """Base class of every error raised on purpose by tbeqtl."""


class InputError(TbeqtlError, ValueError):
    """Invalid user input: a file, a table or an argument.

    Parameters
    ----------
    message
        What is wrong, in words a user understands.
    path
        The offending file, if any; it is prefixed to the message.
    ids
        The offending IDs (samples, genes, SNPs, rows); the first few are appended
        to the message and all are kept in :attr:`ids`.
    """

    def __init__(self, message: str, *, path: str | None = None, ids: Iterable[object] | None = None):
        self.path = None if path is None else str(path)
        self.ids = [] if ids is None else list(ids)
        text = message
        if self.ids:
            text = f"{text}: {format_ids(self.ids)}"
        if self.path is not None:
            text = f"{self.path}: {text}"
        super().__init__(text)


class MissingDependencyError(TbeqtlError, RuntimeError):
    """An optional external program or package is not installed; the message says how to install it."""


def format_ids(ids: Iterable[object], *, limit: int = 10) -> str:
    """Format IDs for an error message: the first ``limit`` of them and how many more.

    Parameters
    ----------
    ids
        The IDs to show.
    limit
        How many to show before ``... and N more``.

    Returns
    -------
    str
        For example ``"S1, S2, S3 ... and 12 more (15 in total)"``.
    """
    ids = [str(i) for i in ids]
    shown = ", ".join(ids[:limit])
    if len(ids) > limit:
        shown += f" ... and {len(ids) - limit} more ({len(ids)} in total)"
    return shown
