"""The one error the history store raises, worded for a person."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from sdstudio.engine.events import ErrorKind

_FREE_SPACE = "free some space or choose another history folder"
_OTHER_FOLDER = "choose another history folder"

# errno -> (what is wrong, what the person can do)
_OS_REASONS = {
    errno.ENOSPC: ("the disk is full", _FREE_SPACE),
    errno.EDQUOT: ("your disk quota is used up", _FREE_SPACE),
    errno.EACCES: ("permission was denied", "check who may write there, or " + _OTHER_FOLDER),
    errno.EPERM: ("the system did not permit it", "check who may write there, or " + _OTHER_FOLDER),
    errno.EROFS: ("the disk is read-only", _OTHER_FOLDER),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", _OTHER_FOLDER),
    errno.EISDIR: ("a folder is where a file should be", "move that folder away"),
    errno.ENOENT: ("a file or folder is missing", "try again"),
    errno.EEXIST: ("a file of that name is already there", "try again"),
    errno.EIO: ("the disk reported a read or write error", "check the disk"),
}

# SQLite primary result codes (sqlite3.Error.sqlite_errorcode & 0xFF) -> (reason, remedy)
_SQLITE_REASONS = {
    3: ("permission was denied", "check who may write there, or " + _OTHER_FOLDER),  # PERM
    5: ("another program is using the history index", "close it and try again"),  # BUSY
    6: ("another program is using the history index", "close it and try again"),  # LOCKED
    8: ("the history index cannot be written", "check who may write there, or " + _OTHER_FOLDER),
    10: ("the disk reported a read or write error", "check the disk"),  # IOERR
    11: ("the history index is damaged", "restart the studio to rebuild it"),  # CORRUPT
    13: ("the disk is full", _FREE_SPACE),  # FULL
    14: ("the history index cannot be opened", "check who may write there, or " + _OTHER_FOLDER),
    26: ("the history index is damaged", "restart the studio to rebuild it"),  # NOTADB
}

# Errors raised without a code (by hand or by an older sqlite3 module) say it in words.
_SQLITE_WORDS = (("full", 13), ("locked", 5), ("busy", 5), ("readonly", 8), ("read-only", 8))


class HistoryError(Exception):
    """Saving to or reading from the history failed; str(e) is a message a person understands.

    `kind` is an ErrorKind value (DISK for anything the file system refused).
    """

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.DISK) -> None:
        super().__init__(message)
        self.kind = kind


def disk_error(action: str, where: Path, exc: BaseException) -> HistoryError:
    """Wrap an OSError / sqlite3 error from `action` ("save the image") at `where`: what went
    wrong and what to do, "free some space" only when the disk really is full."""
    reason, remedy = _reason(exc)
    return HistoryError(
        f"Could not {action} in {where}: {reason}. "
        f"Images already in the history are safe; {remedy}."
    )


def _reason(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, OSError):
        known = _OS_REASONS.get(exc.errno or 0)
        return known or (exc.strerror or str(exc) or type(exc).__name__, "try again")
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None:
            text = str(exc).lower()
            code = next((c for word, c in _SQLITE_WORDS if word in text), None)
        known = _SQLITE_REASONS.get(code & 0xFF) if code is not None else None
        return known or (str(exc), "try again")
    return str(exc) or type(exc).__name__, "try again"
