"""Getting a picture onto the canvas: files, dropped/pasted data, with errors a person understands."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from PySide6.QtCore import QMimeData
from PySide6.QtGui import QImage

from sdstudio.imaging import to_rgb

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
    try:
        return to_rgb(picture)
    except ValueError as exc:
        raise ImageLoadError(f"{path.name}: {exc}") from exc


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
