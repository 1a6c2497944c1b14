"""PIL -> QImage at the edge between the engine (PIL images) and the widgets (Qt)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QImage

if TYPE_CHECKING:
    from PIL.Image import Image


def to_qimage(image: Image) -> QImage:
    """A deep copy, so the QImage never points into a buffer Python may free."""
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    data = rgba.tobytes("raw", "RGBA")
    qimage = QImage(data, rgba.width, rgba.height, rgba.width * 4, QImage.Format.Format_RGBA8888)
    return qimage.copy()

