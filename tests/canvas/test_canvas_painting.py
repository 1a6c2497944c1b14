"""Painting with the mouse lands exactly on the pixels under the cursor, at any zoom and pan."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QWheelEvent
from PySide6.QtWidgets import QApplication

from sdstudio.canvas import Brush, Canvas
from tests.canvas.canvas_helpers import drag_image


@pytest.fixture
def canvas(qtbot):
    widget = Canvas()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_image(Image.new("RGB", (64, 48), (90, 120, 150)))
    widget.view.set_brush(Brush(size=3, hardness=1.0))
    return widget


def mask_array(canvas: Canvas) -> np.ndarray:
    return np.asarray(canvas.mask())


def expected_line(y: int, x0: int, x1: int, shape=(48, 64)) -> np.ndarray:
    """A 3 px hard brush dragged along row y from pixel x0 to x1 (through pixel centres):
    each dab covers the 3x3 block around its pixel, so the line is one pixel wider all round."""
    want = np.zeros(shape, np.uint8)
    want[y - 1 : y + 2, x0 - 1 : x1 + 2] = 255
    return want


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_drag_paints_exactly_under_the_cursor(canvas, scale):
    canvas.view.set_view(scale, QPointF(7, 5))
    drag_image(canvas.view, [(10.5, 20.5), (18.5, 20.5), (30.5, 20.5)])
    np.testing.assert_array_equal(mask_array(canvas), expected_line(20, 10, 30))


def test_painting_after_panning_and_wheel_zoom(canvas, qtbot):
    view = canvas.view
    view.actual_size()
    view.zoom_at(2.5, QPointF(123, 77))
    view.pan_by(QPointF(-31, 17))
    drag_image(view, [(40.5, 12.5), (50.5, 12.5)])
    np.testing.assert_array_equal(mask_array(canvas), expected_line(12, 40, 50))


def test_middle_button_drag_pans_without_painting(canvas):
    view = canvas.view
    view.actual_size()
    before = view.image_to_widget(QPointF(0, 0))
    drag_image(view, [(10, 10), (20, 15)], button=Qt.MouseButton.MiddleButton)
    after = view.image_to_widget(QPointF(0, 0))
    assert (after - before) == QPointF(10, 5)
    assert mask_array(canvas).max() == 0


def test_fast_drag_leaves_no_gaps(canvas):
    canvas.view.set_view(1.0, QPointF(0, 0))
    drag_image(canvas.view, [(2.5, 2.5), (60.5, 44.5)])  # one long jump between two events
    mask = mask_array(canvas)
    for x in range(3, 60):
        y = 2.5 + (x + 0.5 - 2.5) * 42 / 58
        assert mask[int(y), x] == 255, (x, y)


def test_eraser_and_right_button_remove_paint(canvas):
    view = canvas.view
    view.set_view(1.0, QPointF(0, 0))
    drag_image(view, [(10.5, 20.5), (30.5, 20.5)])
    drag_image(view, [(10.5, 20.5), (15.5, 20.5)], button=Qt.MouseButton.RightButton)
    view.set_eraser(True)
    drag_image(view, [(25.5, 20.5), (30.5, 20.5)])
    want = expected_line(20, 10, 30)
    want[:, 8:17] = 0  # the right button erased pixels 9..16 (3 px eraser from 10 to 15)
    want[:, 24:32] = 0  # the eraser tool erased pixels 24..31
    np.testing.assert_array_equal(mask_array(canvas), want)
    assert canvas.actions_by_name["eraser"].isChecked()


def test_soft_brush_makes_intermediate_values(canvas):
    canvas.view.set_view(1.0, QPointF(0, 0))
    canvas.view.set_brush(Brush(size=21, hardness=0.2))
    drag_image(canvas.view, [(32, 24)])
    mask = mask_array(canvas)
    assert mask[23, 31] == 255  # the centre is full strength
    row = mask[23, 31:43]
    assert np.all(np.diff(row.astype(int)) <= 0)  # falls off towards the edge
    assert ((row > 0) & (row < 255)).sum() >= 4
    assert mask[23, 43] == 0


def test_mask_matches_image_size_and_mode(canvas):
    assert canvas.mask().size == canvas.image().size == (64, 48)
    assert canvas.mask().mode == "L" and canvas.image().mode == "RGB"


def test_brush_size_keys_and_mask_toggle(canvas, qtbot):
    canvas.view.setFocus()
    canvas.view.set_brush(Brush(size=40))
    qtbot.keyClick(canvas.view, Qt.Key.Key_BracketRight)
    assert canvas.brush.size > 40
    qtbot.keyClick(canvas.view, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(canvas.view, Qt.Key.Key_BracketLeft)
    assert canvas.brush.size < 40
    qtbot.keyClick(canvas.view, Qt.Key.Key_H)
    assert not canvas.view.mask_visible
    qtbot.keyClick(canvas.view, Qt.Key.Key_E)
    assert canvas.view.eraser


def test_space_drag_pans_and_wheel_zooms_around_the_cursor(canvas, qtbot):
    view = canvas.view
    view.actual_size()
    view.setFocus()
    qtbot.keyPress(view, Qt.Key.Key_Space)
    before = view.image_to_widget(QPointF(0, 0))
    drag_image(view, [(10, 10), (14, 12)])
    qtbot.keyRelease(view, Qt.Key.Key_Space)
    assert view.image_to_widget(QPointF(0, 0)) - before == QPointF(4, 2)
    assert mask_array(canvas).max() == 0

    anchor = view.image_to_widget(QPointF(20, 30))
    wheel = QWheelEvent(
        anchor, QPointF(view.mapToGlobal(anchor.toPoint())), QPoint(0, 0), QPoint(0, 240),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
    )
    QApplication.sendEvent(view, wheel)
    assert view.scale == pytest.approx(1.25**2)
    assert view.widget_to_image(anchor) == QPointF(20, 30)  # the point under the cursor stays


def test_pasting_without_an_image_reports_an_error(canvas, qtbot):
    QGuiApplication.clipboard().setText("just words")
    with qtbot.waitSignal(canvas.error) as blocker:
        assert not canvas.paste()
    assert "no image" in blocker.args[0]
    assert canvas.image().size == (64, 48)
