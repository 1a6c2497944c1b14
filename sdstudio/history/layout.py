"""Where the history lives on disk, and how its files are named.

<root>/index.db                  SQLite index (a cache: it can be rebuilt from the files)
<root>/images/YYYY-MM-DD/*.png   every image, with its parameters inside
<root>/trash/images/...          deleted images, same relative path, until the trash is emptied
<root>/thumbs/...                small JPEG thumbnails, same relative path
<root>/inputs/<hash>.png         init images and masks of img2img / inpaint, shared by results
"""

from __future__ import annotations

import time
from pathlib import Path, PurePosixPath

INDEX_NAME = "index.db"
IMAGES_DIR = "images"
TRASH_DIR = "trash"
THUMBS_DIR = "thumbs"
INPUTS_DIR = "inputs"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
THUMBNAIL_SUFFIX = ".jpg"


def default_root() -> Path:
    """platformdirs' user data dir for "sdstudio", plus "history"."""
    from platformdirs import user_data_path

    return user_data_path("sdstudio", appauthor=False) / "history"


def image_name(created: float, seed: int | None) -> str:
    """The relative path of a new image: images/<day>/<HHMMSS>-<seed>.png (local time)."""
    t = time.localtime(created)
    stem = time.strftime("%H%M%S", t) + (f"-{seed}" if seed is not None else "")
    return str(PurePosixPath(IMAGES_DIR, time.strftime("%Y-%m-%d", t), stem + ".png"))


def trash_path(root: Path, file: str) -> Path:
    return root / TRASH_DIR / file


def thumbnail_name(file: str) -> str:
    rel = PurePosixPath(file)
    return str(PurePosixPath(THUMBS_DIR, *rel.parts[1:]).with_suffix(THUMBNAIL_SUFFIX))
