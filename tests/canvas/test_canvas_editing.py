"""Undo/redo restore exact bytes; clear/invert/fill; loading pictures and errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication

from sdstudio.canvas import Brush, Canvas
from tests.canvas.canvas_helpers import drag_image


@pytest.fixture
def canvas(qtbot):
    widget = Canvas()
    qtbot.addWidget(widget)
    widget.resize(300, 200)
    widget.set_image(Image.new("RGB", (40, 32), (200, 10, 10)))
    widget.view.set_view(1.0, QPointF(0, 0))
    widget.view.set_brush(Brush(size=7, hardness=0.5))
    return widget


def mask_bytes(canvas: Canvas) -> bytes:
    return canvas.mask().tobytes()


def test_undo_redo_restore_exact_bytes(canvas):
    states = [mask_bytes(canvas)]
    for points in ([(5, 5), (30, 20)], [(10, 25), (35, 3)], [(4, 28)]):
        drag_image(canvas.view, points)
        states.append(mask_bytes(canvas))
    canvas.view.set_eraser(True)
    drag_image(canvas.view, [(0, 16), (40, 16)])
    states.append(mask_bytes(canvas))
    assert len(set(states)) == len(states)
    for expected in reversed(states[:-1]):
        canvas.actions_by_name["undo"].trigger()
        assert mask_bytes(canvas) == expected
    assert not canvas.document.can_undo()
    for expected in states[1:]:
        canvas.actions_by_name["redo"].trigger()
        assert mask_bytes(canvas) == expected
    assert not canvas.document.can_redo()


def test_clear_invert_fill_are_undoable(canvas):
    drag_image(canvas.view, [(8, 8), (20, 8)])
    painted = np.asarray(canvas.mask()).copy()
    canvas.actions_by_name["invert"].trigger()
    np.testing.assert_array_equal(np.asarray(canvas.mask()), 255 - painted)
    canvas.actions_by_name["clear"].trigger()
    assert np.asarray(canvas.mask()).max() == 0
    canvas.actions_by_name["fill"].trigger()
    assert np.asarray(canvas.mask()).min() == 255
    canvas.document.undo()
    assert np.asarray(canvas.mask()).max() == 0
    canvas.document.undo()
    np.testing.assert_array_equal(np.asarray(canvas.mask()), 255 - painted)
    canvas.document.undo()
    np.testing.assert_array_equal(np.asarray(canvas.mask()), painted)
    assert canvas.actions_by_name["redo"].isEnabled()


def test_undo_keeps_only_the_changed_rectangle(qtbot):
    widget = Canvas()
    qtbot.addWidget(widget)
    widget.set_image(Image.new("RGB", (1024, 1024)))
    widget.view.set_view(1.0, QPointF(0, 0))
    widget.view.set_brush(Brush(size=9))
    for k in range(20):
        drag_image(widget.view, [(100 + k * 30, 100), (100 + k * 30, 300)])
    # 20 strokes of about 9x200 px each: far below one copy of the 1 MB mask.
    assert widget.document.undo_byte_count() < 64 * 1024


def test_send_back_keeps_mask_and_history(canvas):
    drag_image(canvas.view, [(8, 8), (20, 8)])
    painted = mask_bytes(canvas)
    canvas.set_image(Image.new("RGB", (40, 32), (0, 255, 0)))
    assert mask_bytes(canvas) == painted
    assert canvas.image().getpixel((0, 0)) == (0, 255, 0)
    assert canvas.document.can_undo()


def test_set_mask_resizes_to_the_image(canvas):
    canvas.set_mask(Image.new("L", (20, 16), 255))
    assert canvas.mask().size == (40, 32)
    assert np.asarray(canvas.mask()).min() == 255


def test_open_file_of_any_size(canvas, qtbot, tmp_path):
    path = tmp_path / "odd.png"
    Image.new("RGBA", (33, 20), (0, 0, 255, 255)).save(path)
    with qtbot.waitSignal(canvas.image_changed):
        assert canvas.open_file(path)
    assert canvas.image().size == canvas.mask().size == (33, 20)
    assert canvas.image().getpixel((3, 3)) == (0, 0, 255)
    assert np.asarray(canvas.mask()).max() == 0


def test_corrupt_file_reports_error_and_keeps_canvas(canvas, qtbot, tmp_path):
    drag_image(canvas.view, [(8, 8), (20, 8)])
    image, mask = canvas.image().tobytes(), mask_bytes(canvas)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with qtbot.waitSignal(canvas.error) as blocker:
        assert not canvas.open_file(broken)
    assert "broken.png" in blocker.args[0]
    assert canvas.image().tobytes() == image and mask_bytes(canvas) == mask
    with qtbot.waitSignal(canvas.error):
        assert not canvas.open_file(tmp_path / "missing.png")


def test_paste_and_drop_image(canvas, tmp_path):
    picture = QImage(24, 16, QImage.Format.Format_RGB32)
    picture.fill(0x00FF00)
    QGuiApplication.clipboard().setImage(picture)
    assert canvas.paste()
    assert canvas.image().size == (24, 16)
    path = tmp_path / "dropped.jpg"
    Image.new("RGB", (48, 40), (250, 250, 0)).save(path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    press = (Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, *press)
    QApplication.sendEvent(canvas, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(canvas, QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, *press))
    assert canvas.image().size == (48, 40)


def test_sixteen_bit_image_is_normalised(canvas, tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 32768, 65535, 1000]] * 4, np.uint16)).save(path)  # a real 16-bit PNG
    assert canvas.open_file(path)
    # Scaled, not clipped: clipping would make every value above 255 white.
    assert [canvas.image().getpixel((x, 0))[0] for x in range(4)] == [0, 128, 255, 4]


def test_undo_stack_drops_oldest_edits_beyond_its_budget():
    from PySide6.QtCore import QRect

    from sdstudio.canvas.undo import UndoStack

    stack = UndoStack(budget_bytes=3000)
    rng = np.random.default_rng(1)
    mask = np.zeros((64, 64), np.uint8)
    for _ in range(10):  # incompressible 32x32 rectangles, about 1 KiB each
        stack.push(QRect(0, 0, 32, 32), rng.integers(0, 256, (32, 32), np.uint8), "Paint")
    assert stack.byte_count() <= 3000
    undone = 0
    while stack.undo(mask) is not None:
        undone += 1
    assert 1 <= undone < 10
