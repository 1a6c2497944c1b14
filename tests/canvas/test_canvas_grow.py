"""Growing the canvas for outpainting: the picture, the seam mask, and undo across sizes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF

from sdstudio.canvas import Brush, Canvas
from sdstudio.canvas.widget import GROW_STEP
from sdstudio.imaging_outpaint import Growth
from tests.canvas.canvas_helpers import drag_image


@pytest.fixture
def canvas(qtbot):
    widget = Canvas()
    qtbot.addWidget(widget)
    widget.resize(300, 200)
    picture = np.random.default_rng(4).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    widget.set_image(Image.fromarray(picture))
    widget.view.set_view(1.0, QPointF(0, 0))
    widget.view.set_brush(Brush(size=5, hardness=1.0))
    return widget


def state(canvas: Canvas) -> tuple[bytes, bytes, tuple[int, int]]:
    return canvas.image().tobytes(), canvas.mask().tobytes(), canvas.image().size


def test_growing_keeps_the_picture_and_masks_the_new_area_and_the_painted_mask(canvas):
    drag_image(canvas.view, [(5, 5), (6, 5)])
    old_image, old_mask = np.asarray(canvas.image()), np.asarray(canvas.mask())
    canvas.grow(Growth(left=8, bottom=4))
    image, mask = np.asarray(canvas.image()), np.asarray(canvas.mask())
    assert image.shape == (36, 48, 3)
    assert np.array_equal(image[:32, 8:], old_image)
    assert (mask[:, :8] == 255).all() and (mask[32:] == 255).all()
    assert (mask[:32, 8:][old_mask == 255] == 255).all()  # the painted mask moved with the picture
    assert mask[10, 30] == 0  # far from the seam and unpainted: kept


def test_undo_and_redo_cover_the_growth_and_the_edits_on_either_side(canvas):
    drag_image(canvas.view, [(5, 5), (6, 5)])
    before = state(canvas)
    canvas.grow(Growth(right=16))
    grown = state(canvas)
    canvas.document.invert_mask()
    assert canvas.document.undo_label() == "Invert mask"
    canvas.document.undo()
    assert state(canvas) == grown
    assert canvas.document.undo_label() == "Grow canvas"
    canvas.document.undo()
    assert state(canvas) == before
    assert canvas.document.undo_label() == "Paint"
    canvas.document.redo()
    assert state(canvas) == grown
    canvas.document.redo()  # the invert, on the grown canvas
    assert canvas.document.undo_label() == "Invert mask" and not canvas.document.can_redo()


def test_an_edit_after_undoing_a_growth_forgets_it(canvas):
    canvas.grow(Growth(top=8))
    canvas.document.undo()
    canvas.document.fill_mask()
    assert not canvas.document.can_redo()
    assert canvas.image().size == (40, 32)


def test_the_toolbar_grows_by_a_step_and_refuses_past_the_largest_side(canvas, qtbot):
    canvas.actions_by_name["grow_right"].trigger()
    assert canvas.image().size == (40 + GROW_STEP, 32)
    assert canvas.actions_by_name["undo"].text() == "Undo Grow canvas"
    with qtbot.waitSignal(canvas.error) as blocker:
        canvas.grow(Growth(right=5000))
    assert "largest side" in blocker.args[0]
    assert canvas.image().size == (40 + GROW_STEP, 32)
