"""Small file operations the store needs: moves that never replace, content-addressed inputs."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sdstudio.fileio import write_atomic

if TYPE_CHECKING:
    from PIL.Image import Image


def move(source: Path, target: Path) -> bool:
    """Move a file (same disk); False when `source` is already gone. FileExistsError when
    `target` exists: a restore never replaces an image saved under the same name meanwhile."""
    if not os.path.lexists(source):
        return False
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "a file of that name is already there", str(target))
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
