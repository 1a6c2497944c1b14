"""Mouse helpers for canvas tests: real QMouseEvents with buttons held during moves."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QWidget


def send_mouse(widget: QWidget, kind: QEvent.Type, pos: QPointF, button, buttons) -> None:
    global_pos = QPointF(widget.mapToGlobal(pos.toPoint()))
    event = QMouseEvent(kind, QPointF(pos), global_pos, button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def drag(widget: QWidget, points: list[QPointF], button=Qt.MouseButton.LeftButton) -> None:
    """Press at the first widget position, move through the others holding `button`, release."""
    send_mouse(widget, QEvent.Type.MouseButtonPress, points[0], button, button)
    for point in points[1:]:
        send_mouse(widget, QEvent.Type.MouseMove, point, Qt.MouseButton.NoButton, button)
    send_mouse(widget, QEvent.Type.MouseButtonRelease, points[-1], button, Qt.MouseButton.NoButton)


def drag_image(view, image_points: list[tuple[float, float]], button=Qt.MouseButton.LeftButton) -> None:
    """Drag through image positions, mapped to widget positions through the view's transform."""
    transform = view.transform()
    drag(view, [transform.map(QPointF(x, y)) for x, y in image_points], button)
