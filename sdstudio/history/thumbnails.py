"""Small JPEG thumbnails for the gallery grid, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sdstudio.fileio import write_atomic

if TYPE_CHECKING:
    from PIL.Image import Image

THUMBNAIL_SIZE = 256
# A foreign file may declare 13000x13000 in a few hundred KB; decoding it would take 500 MB.
# Larger than any upscaled render (an 8K image is 33 M pixels), such a file gets no thumbnail.
MAX_SOURCE_PIXELS = 50_000_000


def save_thumbnail(image: Image, path: Path, size: int = THUMBNAIL_SIZE) -> Path:
    """Write a JPEG at most `size` px on its longest side to `path` (temp file + rename)."""
    from PIL import Image as PILImage

    thumb = image.copy()
    thumb.thumbnail((size, size), PILImage.Resampling.LANCZOS)
    if thumb.mode != "RGB":
        thumb = thumb.convert("RGB")
    return write_atomic(path, lambda f: thumb.save(f, format="JPEG", quality=85))


def thumbnail_from_file(source: Path, path: Path, size: int = THUMBNAIL_SIZE) -> Path | None:
    """Make the thumbnail of an image file; None when the file is not a readable image."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(source) as im:
            im.draft("RGB", (size, size))  # JPEG sources decode at reduced size
            if im.width * im.height > MAX_SOURCE_PIXELS:
                return None
            return save_thumbnail(im, path, size)
    except Exception:  # noqa: BLE001 - Pillow raises many kinds on a malformed foreign file
        return None
