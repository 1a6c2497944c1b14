"""Writing files so that a crash, a full disk or a second process never leaves a broken one.

Every file the app writes goes through here (images, thumbnails, settings). Standard library
only: the engine, the history and the settings all use it.

A write goes to a temp file in the target's folder, created with O_EXCL and mode 0666 so the
umask gives the usual permissions (tempfile.mkstemp would give 0600), is flushed and fsynced,
then renamed into place; the folder is fsynced too where the system allows it, so the new name
survives a power cut as well as the content.
"""

from __future__ import annotations

import errno
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

TEMP_SUFFIX = ".tmp"
# A temp file whose process is unknown (no pid in its name, or a system where liveness cannot
# be asked) is left alone this long, so a save still running in another process is not broken.
STALE_AFTER_S = 3600.0

_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
# Errors meaning "this file system has no hard links", where publish falls back to O_EXCL.
_NO_LINKS = {errno.EPERM, errno.EINVAL, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}


def create_exclusive(path: Path, mode: int = 0o666) -> IO[bytes]:
    """Open a new file at `path` for writing; FileExistsError when anything is there already
    (also when another process created it a moment ago). `mode` minus the umask."""
    return os.fdopen(os.open(path, _NEW_FILE_FLAGS, mode), "wb")


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], None], mode: int = 0o666) -> Path:
    """Replace (or create) `path` with what `write` writes; never a half file under that name.
    `mode` 0o600 keeps a secret from other users from the first byte on."""
    path = Path(path)
    tmp = _write_temp(path, write, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def write_new(
    path: str | os.PathLike,
    write: Callable[[IO[bytes]], None],
    taken: Callable[[Path], bool] | None = None,
) -> Path:
    """Write a new file at `path`, or at path-2, path-3… when that name exists (or `taken`
    says so); never replaces a file, even one another process creates at the same moment.
    Returns the name used."""
    path = Path(path)
    tmp = _write_temp(path, write)
    try:
        for n in range(1, 1_000_000):
            candidate = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
            if (taken is not None and taken(candidate)) or os.path.lexists(candidate):
                continue
            if _publish(tmp, candidate):
                _sync_folder(path.parent)
                return candidate
        raise FileExistsError(errno.EEXIST, "no free file name", str(path))
    finally:
        tmp.unlink(missing_ok=True)


def stale_temp_files(folder: Path) -> list[Path]:
    """Temp files left by a process that was killed while writing (under `folder`, recursively,
    not through links); a temp file of a process still running is not stale."""
    if not folder.is_dir():
        return []
    now = time.time()
    stale = []
    # os.walk does not enter linked folders: a link to elsewhere never gets anything deleted.
    for parent, _dirs, names in os.walk(folder):
        for name in names:
            if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
                continue
            tmp = Path(parent, name)
            try:
                old = now - tmp.lstat().st_mtime > STALE_AFTER_S
            except OSError:
                continue
            if old or _writer_gone(name):
                stale.append(tmp)
    return stale


def _write_temp(path: Path, write: Callable[[IO[bytes]], None], mode: int = 0o666) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        # The pid tells a later run whether the writer is still alive (see stale_temp_files).
        tmp = path.with_name(f".{path.stem}-{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            f = create_exclusive(tmp, mode)
            break
        except FileExistsError:
            continue
    try:
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _publish(tmp: Path, target: Path) -> bool:
    """Give the finished temp file the name `target` unless it exists; False when it does.

    A hard link fails atomically when the name is taken, like O_EXCL, and never shows a half
    file. Without hard links (FAT, some network shares) the name is claimed with O_EXCL and the
    content renamed over the empty claim.
    """
    try:
        os.link(tmp, target)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
    try:
        create_exclusive(target).close()
    except FileExistsError:
        return False
    os.replace(tmp, target)
    return True


def _writer_gone(name: str) -> bool:
    """True when a temp file name ".<stem>-<pid>-<hex>.tmp" names a process that has ended."""
    parts = name[: -len(TEMP_SUFFIX)].rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or os.name != "posix":
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists (POSIX)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, but belongs to another user
    return False


def _sync_folder(folder: Path) -> None:
    """fsync a folder so a rename in it is durable; not possible on Windows, skipped there."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename itself is still atomic
    finally:
        os.close(fd)
