"""The canvas document: an image layer and a mask layer (255 = repaint), with undoable mask edits.

No widget lives here: the view draws a document and turns mouse input into strokes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, QPointF, QRect, QSize, Signal
from PySide6.QtGui import QImage

from sdstudio.canvas.brush import Brush, stamp
from sdstudio.canvas.convert import (
    mask_to_pil,
    pil_to_mask,
    pil_to_qimage,
    pixels,
    qimage_to_layer,
    qimage_to_mask,
    qimage_to_pil_rgb,
)
from sdstudio.canvas.undo import UndoStack
from sdstudio.imaging_outpaint import Growth, Infill, grow, outpaint_mask

GROW_LABEL = "Grow canvas"


def _region(values: np.ndarray, rect: QRect) -> np.ndarray:
    return values[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1]


def _bounds(changed: np.ndarray) -> QRect:
    """The bounding rect of the True pixels of a boolean array (empty if none)."""
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    if rows.size == 0:
        return QRect()
    return QRect(int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))


@dataclass
class _Canvas:
    """A whole canvas set aside by a growth (or its undo), with the undo history of its size."""

    image: QImage
    mask: QImage
    undo: UndoStack


class CanvasDocument(QObject):
    """An RGB image and a same-sized one-byte mask; mask edits go through an UndoStack."""

    changed = Signal(QRect)
    """Carries the image-space rect whose pixels (image or mask) changed; fires after every edit."""

    replaced = Signal(QSize)
    """Carries the image size; fires whenever a new image is put on the canvas."""

    history_changed = Signal()
    """Fires when undo or redo becomes possible or impossible (or their labels change)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        self._mask = QImage()
        self._values = np.zeros((0, 0), np.uint8)  # the mask's pixels, a view of self._mask
        # The mask as of the last recorded edit: a stroke's "before" pixels are read from
        # here at its end, so painting never copies anything per mouse event.
        self._settled = np.zeros((0, 0), np.uint8)
        self._undo = UndoStack()
        # Mask edits are rectangles of one size; a growth changes the size, so each growth
        # sets the smaller canvas aside with its own history, and undoing it brings both back.
        self._before_growth: list[_Canvas] = []
        self._undone_growth: list[_Canvas] = []  # for redo
        self._stroke_rect: QRect | None = None
        self._stroke_last = QPointF()
        self._stroke_brush = Brush()
        self._stroke_erase = False

    # ---- layers ---------------------------------------------------------------------------

    def has_image(self) -> bool:
        return not self._image.isNull()

    def has_mask(self) -> bool:
        return self.has_image() and bool(self._values.any())

    def size(self) -> QSize:
        return self._image.size()

    def image_layer(self) -> QImage:
        """The image layer, for drawing (do not modify it)."""
        return self._image

    def mask_layer(self) -> QImage:
        """The mask layer in MASK_FORMAT, for drawing (do not modify it)."""
        return self._mask

    def image(self) -> Image.Image | None:
        """A PIL RGB copy of the image layer, or None when the canvas is empty."""
        return qimage_to_pil_rgb(self._image) if self.has_image() else None

    def mask(self) -> Image.Image | None:
        """A PIL "L" copy of the mask (255 = repaint), the image's size; None when empty."""
        return mask_to_pil(self._mask) if self.has_image() else None

    def set_image(self, picture: Image.Image | QImage, keep_mask: bool = True) -> None:
        """Put a new image on the canvas. With `keep_mask` the mask and its undo history stay
        (the mask is stretched if the size differs); otherwise the mask starts empty."""
        image = pil_to_qimage(picture) if isinstance(picture, Image.Image) else qimage_to_layer(picture)
        if image.isNull():
            raise ValueError("The image is empty.")
        size = (image.width(), image.height())
        if not keep_mask or not self.has_image():
            self._adopt_mask(pil_to_mask(Image.new("L", size, 0)))
        elif image.size() != self._image.size():
            self._adopt_mask(pil_to_mask(mask_to_pil(self._mask).resize(size, Image.Resampling.BILINEAR)))
        self._stroke_rect = None
        self._image = image
        self.replaced.emit(image.size())
        self.changed.emit(QRect(0, 0, image.width(), image.height()))

    def set_mask(self, picture: Image.Image | QImage) -> None:
        """Replace the mask (white or opaque = repaint), resized to the image; undoable."""
        if not self.has_image():
            raise ValueError("Put an image on the canvas before setting a mask.")
        mask = pil_to_mask(picture) if isinstance(picture, Image.Image) else qimage_to_mask(picture)
        if mask.size() != self._mask.size():
            size = (self._mask.width(), self._mask.height())
            mask = pil_to_mask(mask_to_pil(mask).resize(size, Image.Resampling.BILINEAR))
        new = pixels(mask).copy()
        self._edit_whole(lambda _: new, "Set mask")

    def _adopt_mask(self, mask: QImage) -> None:
        self._mask = mask
        self._values = pixels(mask)
        self._settled = self._values.copy()
        self._undo.clear()  # recorded rectangles belong to the old mask
        self._before_growth.clear()
        self._undone_growth.clear()
        self.history_changed.emit()

    # ---- growing (outpainting) ------------------------------------------------------------

    def grow(self, growth: Growth, infill: Infill = Infill.EDGE) -> None:
        """Enlarge the canvas by `growth`: the new area is filled by `infill` and added to the
        mask with a feathered seam (the mask painted so far is kept); undoable. Raises
        ValueError past the largest side."""
        if not self.has_image() or self.is_stroking() or growth.is_empty():
            return
        old = self.image()
        grown = grow(old, growth, infill)
        mask = np.asarray(outpaint_mask(old.size, growth)).copy()
        kept = mask[growth.top : growth.top + old.height, growth.left : growth.left + old.width]
        np.maximum(kept, self._values, out=kept)
        self._before_growth.append(self._set_aside())
        self._undone_growth.clear()
        self._bring_back(_Canvas(pil_to_qimage(grown), pil_to_mask(Image.fromarray(mask)), UndoStack()))

    def _set_aside(self) -> _Canvas:
        return _Canvas(self._image, self._mask, self._undo)

    def _bring_back(self, canvas: _Canvas) -> None:
        self._image, self._mask, self._undo = canvas.image, canvas.mask, canvas.undo
        self._values = pixels(self._mask)
        self._settled = self._values.copy()
        self.replaced.emit(self._image.size())
        self.changed.emit(QRect(0, 0, self._image.width(), self._image.height()))
        self.history_changed.emit()

    # ---- strokes --------------------------------------------------------------------------

    def begin_stroke(self, pos: QPointF, brush: Brush, erase: bool = False) -> None:
        """Start a stroke at image position `pos` (pixel (x, y) spans x..x+1) and paint a dab there."""
        if not self.has_image():
            return
        self._stroke_rect = QRect()
        self._stroke_last = QPointF(pos)
        self._stroke_brush = brush
        self._stroke_erase = erase
        self.stroke_to(pos)

    def stroke_to(self, pos: QPointF) -> None:
        """Continue the stroke with a segment from the previous position to `pos`."""
        if self._stroke_rect is None:
            return
        rect = stamp(self._values, self._stroke_last, pos, self._stroke_brush, self._stroke_erase)
        self._stroke_last = QPointF(pos)
        if not rect.isEmpty():
            self._stroke_rect = self._stroke_rect.united(rect)
            self.changed.emit(rect)

    def end_stroke(self) -> None:
        """Finish the stroke and record it for undo (only its bounding rect is kept)."""
        rect, self._stroke_rect = self._stroke_rect, None
        if rect is None or rect.isEmpty():
            return
        label = "Erase" if self._stroke_erase else "Paint"
        self._record(rect, label)

    def is_stroking(self) -> bool:
        return self._stroke_rect is not None

    # ---- whole-mask edits -----------------------------------------------------------------

    def clear_mask(self) -> None:
        """Nothing to repaint: mask all 0."""
        self._edit_whole(lambda values: np.zeros_like(values), "Clear mask")

    def fill_mask(self) -> None:
        """Repaint everything: mask all 255."""
        self._edit_whole(lambda values: np.full_like(values, 255), "Fill mask")

    def invert_mask(self) -> None:
        """Swap what is repainted and what is kept."""
        self._edit_whole(lambda values: 255 - values, "Invert mask")

    def _edit_whole(self, make, label: str) -> None:
        if not self.has_image() or self.is_stroking():
            return
        new = make(self._values)
        rect = _bounds(new != self._values)
        if rect.isEmpty():
            return
        _region(self._values, rect)[:] = _region(new, rect)
        self._record(rect, label)
        self.changed.emit(rect)

    def _record(self, rect: QRect, label: str) -> None:
        settled = _region(self._settled, rect)
        self._undo.push(rect, settled, label)
        self._undone_growth.clear()  # a new edit forgets the redo branch, growths included
        settled[:] = _region(self._values, rect)
        self.history_changed.emit()

    # ---- undo -----------------------------------------------------------------------------

    def undo(self) -> None:
        """Undo the latest stroke, mask edit or growth, restoring its pixels exactly."""
        if self.is_stroking():
            return
        if self._undo.can_undo():
            self._after_swap(self._undo.undo(self._values))
        elif self._before_growth:
            self._undone_growth.append(self._set_aside())
            self._bring_back(self._before_growth.pop())

    def redo(self) -> None:
        """Redo the latest undone stroke, mask edit or growth."""
        if self.is_stroking():
            return
        if self._undo.can_redo():
            self._after_swap(self._undo.redo(self._values))
        elif self._undone_growth:
            self._before_growth.append(self._set_aside())
            self._bring_back(self._undone_growth.pop())

    def _after_swap(self, rect: QRect | None) -> None:
        if rect is None:
            return
        _region(self._settled, rect)[:] = _region(self._values, rect)
        self.history_changed.emit()
        self.changed.emit(rect)

    def can_undo(self) -> bool:
        return self._undo.can_undo() or bool(self._before_growth)

    def can_redo(self) -> bool:
        return self._undo.can_redo() or bool(self._undone_growth)

    def undo_label(self) -> str:
        return self._undo.undo_label() or (GROW_LABEL if self._before_growth else "")

    def redo_label(self) -> str:
        return self._undo.redo_label() or (GROW_LABEL if self._undone_growth else "")

    def undo_byte_count(self) -> int:
        """Bytes the undo history holds for pixels (for the benchmark and a memory readout)."""
        aside = self._before_growth + self._undone_growth
        return self._undo.byte_count() + sum(
            c.undo.byte_count() + c.image.sizeInBytes() + c.mask.sizeInBytes() for c in aside
        )

