"""Small file operations the store needs: atomic writes, moves, content-addressed inputs."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write through a temp file in the same folder, then rename: never a half file at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def move(source: Path, target: Path) -> bool:
    """Move a file (same disk); False when `source` is already gone."""
    if not source.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    return True


def save_input(image: Image, folder: Path) -> Path:
    """Keep an init image or mask as <folder>/<content hash>.png; the same pixels are kept once."""
    digest = hashlib.sha1(f"{image.mode}{image.size}".encode())
    digest.update(image.tobytes())
    path = folder / f"{digest.hexdigest()[:20]}.png"
    if not path.exists():
        write_atomic(path, lambda f: image.save(f, format="PNG"))
    return path


def stale_temp_files(folder: Path) -> list[Path]:
    """Temp files a killed process left behind (".name-xxxx.tmp")."""
    if not folder.is_dir():
        return []
    return [p for p in folder.rglob(".*.tmp") if p.is_file()]
