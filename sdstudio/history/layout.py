"""Where the history lives on disk, and how its files are named.

<root>/index.db                  SQLite index (a cache: it can be rebuilt from the files)
<root>/images/YYYY-MM-DD/*.png   every image, with its parameters inside
<root>/trash/images/...          deleted images, same relative path, until the trash is emptied
<root>/thumbs/...                small JPEG thumbnails, same relative path
<root>/inputs/<hash>.png         init images and masks of img2img / inpaint, shared by results
"""

from __future__ import annotations

import time
from pathlib import Path, PurePosixPath, PureWindowsPath

INDEX_NAME = "index.db"
IMAGES_DIR = "images"
TRASH_DIR = "trash"
THUMBS_DIR = "thumbs"
INPUTS_DIR = "inputs"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
_MAX_PATH = 4096
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


def contained(base: Path, rel: object, top: str, *, link_ok: bool = False) -> Path | None:
    """`base / rel` when `rel` (read from a file or an old index: trust nothing) is a relative
    path inside the folder `base / top`, also once symbolic links are followed; else None.
    With `link_ok` the last part may be a link leading anywhere: for deleting or renaming,
    which act on the link itself.

    This is what keeps a hostile PNG naming "/etc/passwd" or "../../x" as its init image from
    being indexed, shown or deleted with the trash.
    """
    if not isinstance(rel, str) or not rel or len(rel) > _MAX_PATH or "\0" in rel or "\\" in rel:
        return None
    parts = PurePosixPath(rel).parts
    if (
        PurePosixPath(rel).is_absolute()
        or PureWindowsPath(rel).drive
        or not parts
        or parts[0] != top
        or len(parts) < 2
        or any(p in ("..", ".") for p in parts)
    ):
        return None
    path = base.joinpath(*parts)
    try:
        seen = path.parent.resolve() / path.name if link_ok else path.resolve()
        if not seen.is_relative_to((base / top).resolve()):
            return None  # a link inside the folder pointing out of it
    except (OSError, RuntimeError):  # a link loop
        return None
    return path


def contained_name(base: Path, rel: object, top: str) -> str | None:
    """`rel` in its canonical form ("inputs/x.png") when `contained`, else None."""
    path = contained(base, rel, top)
    return path.relative_to(base).as_posix() if path is not None else None
