"""Getting a picture onto the canvas: files, dropped/pasted data, with errors a person understands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from PySide6.QtCore import QMimeData
from PySide6.QtGui import QImage

OPEN_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif);;All files (*)"


class ImageLoadError(Exception):
    """A picture could not be read; str(e) says why, in words a person understands."""


def read_image(path: str | Path) -> Image.Image:
    """Read an image file as RGB: EXIF rotation applied, 16-bit and transparent images normalised."""
    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            picture = ImageOps.exif_transpose(opened)
    except FileNotFoundError as exc:
        raise ImageLoadError(f"{path.name}: the file does not exist.") from exc
    except IsADirectoryError as exc:
        raise ImageLoadError(f"{path.name} is a folder, not an image.") from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"{path.name} is not an image SD Studio can read.") from exc
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"{path.name} is too large to open safely.") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageLoadError(f"{path.name} could not be read; it may be damaged ({exc}).") from exc
    return to_rgb(picture)


def to_rgb(picture: Image.Image) -> Image.Image:
    """Any PIL mode as RGB: 16/32-bit gray scaled down, transparency flattened onto white."""
    if picture.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(picture, dtype=np.float64)
        top = 65535.0 if picture.mode.startswith("I;16") or values.max() > 255 else 255.0
        picture = Image.fromarray((np.clip(values / top, 0, 1) * 255 + 0.5).astype(np.uint8), "L")
    elif picture.mode == "F":
        values = np.asarray(picture, dtype=np.float64)
        picture = Image.fromarray((np.clip(values, 0, 1) * 255 + 0.5).astype(np.uint8), "L")
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return picture.convert("RGB")


def local_image_path(mime: QMimeData) -> Path | None:
    """The first local file among dropped/pasted URLs, if any."""
    for url in mime.urls() if mime.hasUrls() else ():
        if url.isLocalFile():
            return Path(url.toLocalFile())
    return None


def picture_from_mime(mime: QMimeData) -> Image.Image | QImage:
    """The picture carried by a drop or the clipboard: a local file first, else image data."""
    path = local_image_path(mime)
    if path is not None:
        return read_image(path)
    if mime.hasImage():
        image = QImage(mime.imageData())
        if not image.isNull():
            return image
    raise ImageLoadError("There is no image here to put on the canvas (copy an image or an image file).")
