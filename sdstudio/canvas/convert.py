"""QImage <-> PIL at the canvas edge, and numpy views of QImage pixels (no torch)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter

# The canvas keeps its layers in these two formats: RGB32 draws fastest on every
# platform, Alpha8 is one byte per pixel that the view can tint without a conversion.
IMAGE_FORMAT = QImage.Format.Format_RGB32
MASK_FORMAT = QImage.Format.Format_Alpha8


def pixels(image: QImage) -> np.ndarray:
    """A writable (height, width) uint8 view of a one-byte-per-pixel QImage, sharing its memory.

    Taking the view detaches the QImage if it is shared, so hold no other copies of it.
    """
    rows = np.frombuffer(image.bits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width()]


def pixels_readonly(image: QImage) -> np.ndarray:
    """Like `pixels`, but through constBits: never detaches, must not be written."""
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width()]


def to_qimage(picture: Image.Image) -> QImage:
    """Any PIL image as a QImage (alpha kept), for the widgets and the canvas alike."""
    if picture.mode == "RGB":
        data, layout = picture.tobytes(), QImage.Format.Format_RGB888
    else:
        picture = picture if picture.mode == "RGBA" else picture.convert("RGBA")
        data, layout = picture.tobytes("raw", "RGBA"), QImage.Format.Format_RGBA8888
    wrapped = QImage(data, picture.width, picture.height, len(data) // picture.height, layout)
    # A deep copy, so the QImage never points into a buffer Python may free.
    return wrapped.copy()


def pil_to_qimage(picture: Image.Image) -> QImage:
    """An RGB PIL image (any mode is converted) as a canvas image layer in IMAGE_FORMAT."""
    return to_qimage(picture if picture.mode == "RGB" else picture.convert("RGB")).convertToFormat(IMAGE_FORMAT)


def qimage_to_layer(image: QImage) -> QImage:
    """Any QImage as a canvas image layer in IMAGE_FORMAT; transparency is flattened onto white."""
    if not image.hasAlphaChannel():
        return image.convertToFormat(IMAGE_FORMAT)
    layer = QImage(image.size(), IMAGE_FORMAT)
    layer.fill(Qt.GlobalColor.white)
    painter = QPainter(layer)
    painter.drawImage(0, 0, image)
    painter.end()
    return layer


def qimage_to_pil_rgb(image: QImage) -> Image.Image:
    """A PIL RGB copy of a QImage (alpha, if any, is dropped)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    return Image.frombuffer(
        "RGB", (rgb.width(), rgb.height()), bytes(rgb.constBits()), "raw", "RGB", rgb.bytesPerLine(), 1
    )


def mask_to_pil(mask: QImage) -> Image.Image:
    """A PIL "L" copy of a one-byte mask layer (255 = repaint)."""
    return Image.fromarray(np.array(pixels_readonly(mask)), "L")


def pil_to_mask(picture: Image.Image) -> QImage:
    """A PIL mask (L, 1, RGB, RGBA...; white or opaque = repaint) as a MASK_FORMAT layer."""
    if picture.mode in ("RGBA", "LA", "PA") and picture.getextrema()[-1][0] < 255:
        gray = picture.getchannel("A")  # a transparent-background mask: alpha says where
    else:
        gray = picture.convert("L")
    return array_to_mask(np.asarray(gray, np.uint8))


def qimage_to_mask(image: QImage) -> QImage:
    """Any QImage as a MASK_FORMAT layer: its alpha if it has transparency, else its gray level."""
    if image.format() == MASK_FORMAT:
        return image.copy()
    if image.hasAlphaChannel():
        alpha = image.convertToFormat(QImage.Format.Format_Alpha8)
        if pixels_readonly(alpha).min() < 255:
            return alpha
    gray = image.convertToFormat(QImage.Format.Format_Grayscale8)
    return array_to_mask(np.array(pixels_readonly(gray)))


def array_to_mask(values: np.ndarray) -> QImage:
    """A (height, width) uint8 array as a new MASK_FORMAT QImage owning its memory."""
    height, width = values.shape
    mask = QImage(width, height, MASK_FORMAT)
    pixels(mask)[:] = values
    return mask
