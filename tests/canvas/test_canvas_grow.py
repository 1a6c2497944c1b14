"""Growing the canvas for outpainting: the picture, the seam mask, and undo across sizes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from sdstudio.canvas import Brush, Canvas
from sdstudio.canvas.widget import GROW_STEP
from sdstudio.imaging_outpaint import Growth, Infill
from tests.canvas.canvas_helpers import drag_image, send_mouse


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


# ---- growing by dragging the frame ----------------------------------------------------------------


def _framed(canvas: Canvas) -> None:
    """The picture (40x32) at 100%, with room around it for the frame's handles."""
    canvas.resize(400, 300)
    canvas.view.set_view(1.0, QPointF(100, 80))


def test_dragging_the_right_edge_outward_grows_the_canvas_snapped_to_8(canvas, qtbot):
    _framed(canvas)
    old = np.asarray(canvas.image()).copy()
    grown: list = []
    canvas.view.grow_requested.connect(grown.append)
    view = canvas.view
    # 4 px right of the frame's right edge (x = 140), dragged 27 px further: 24 px, snapped.
    send_mouse(view, QEvent.Type.MouseMove, QPointF(144, 96), Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    assert view.cursor().shape() == Qt.CursorShape.SizeHorCursor  # the handle shows itself
    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(144, 96))
    QTest.mouseMove(view, QPoint(160, 97))
    QTest.mouseMove(view, QPoint(171, 99))
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(171, 99))
    assert grown == [Growth(right=24)]
    image, mask = np.asarray(canvas.image()), np.asarray(canvas.mask())
    assert image.shape == (32, 64, 3)
    assert np.array_equal(image[:, :40], old)  # the old pixels, untouched
    assert (mask[:, 40:] == 255).all() and mask[16, 10] == 0  # the new area masked, the old kept
    assert canvas.document.undo_label() == "Grow canvas"
    canvas.document.undo()
    assert canvas.image().size == (40, 32) and np.array_equal(np.asarray(canvas.image()), old)


def test_dragging_the_top_left_corner_grows_both_sides_with_the_chosen_infill(canvas, qtbot, monkeypatch):
    _framed(canvas)
    used: list = []
    original = canvas.document.grow
    monkeypatch.setattr(canvas.document, "grow", lambda growth, infill: (used.append(infill), original(growth, infill)))
    canvas.infill = Infill.NOISE
    old = np.asarray(canvas.image()).copy()
    view = canvas.view
    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(95, 75))
    QTest.mouseMove(view, QPoint(80, 70))
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(79, 59))
    assert canvas.image().size == (40 + 16, 32 + 16) and used == [Infill.NOISE]
    assert np.array_equal(np.asarray(canvas.image())[16:, 16:], old)
    canvas.document.undo()
    assert canvas.image().size == (40, 32)


def test_a_press_inside_the_picture_still_paints_and_an_inward_drag_grows_nothing(canvas, qtbot):
    _framed(canvas)
    view = canvas.view
    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(144, 96))
    QTest.mouseMove(view, QPoint(120, 96))
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(120, 96))
    assert canvas.image().size == (40, 32) and not canvas.document.can_undo()
    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(120, 96))
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(120, 96))
    assert canvas.document.undo_label() == "Paint" and canvas.image().size == (40, 32)


def test_the_grow_menu_chooses_the_infill_of_the_toolbar_growth_too(canvas, monkeypatch):
    used: list = []
    monkeypatch.setattr(canvas.document, "grow", lambda growth, infill: used.append((growth, infill)))
    canvas.actions_by_name["infill_telea"].trigger()
    canvas.actions_by_name["grow_left"].trigger()
    assert used == [(Growth(left=GROW_STEP), Infill.TELEA)]
    assert not canvas.actions_by_name["infill_edge"].isChecked()
