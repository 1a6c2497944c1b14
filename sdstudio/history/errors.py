"""The one error the history store raises, worded for a person."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from sdstudio.engine.request import ErrorKind

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "permission was denied",
    errno.EPERM: "permission was denied",
    errno.EROFS: "the disk is read-only",
}


class HistoryError(Exception):
    """Saving to or reading from the history failed; str(e) is a message a person understands.

    `kind` is an ErrorKind value (DISK for anything the file system refused).
    """

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.DISK) -> None:
        super().__init__(message)
        self.kind = kind


def disk_error(action: str, where: Path, exc: BaseException) -> HistoryError:
    """Wrap an OSError / sqlite3 error from `action` ("save the image") at `where`."""
    if isinstance(exc, OSError):
        reason = _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
    elif isinstance(exc, sqlite3.Error) and "full" in str(exc).lower():
        reason = "the disk is full"
    else:
        reason = str(exc)
    return HistoryError(
        f"Could not {action} in {where}: {reason}. "
        "Images already in the history are safe; free some space or choose another history folder."
    )
