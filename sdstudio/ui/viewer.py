"""The large image viewer: fit or zoom (wheel, around the pointer), pan by dragging, a caption
(the seed) on the picture, and a full-screen window that shows the same picture."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QApplication, QSizePolicy, QVBoxLayout, QWidget

MIN_SCALE = 1 / 16
MAX_SCALE = 32.0
WHEEL_STEP = 1.25  # zoom factor per wheel notch
PIXELATED_FROM = 4.0  # from 400% on, pixels are drawn as squares for inspection
BACKGROUND = QColor(32, 32, 36)


class ImageViewer(QWidget):
    """Draws one image fitted to the widget (enlarging small previews too) until the person
    zooms; then the wheel zooms around the pointer and a drag pans. A drag on a fitted image
    is handed out as `drag_out` (the image leaves the window as a file)."""

    # The person dragged the picture out while it was fitted (nothing to pan).
    drag_out = Signal()
    # Double-click: show this picture full screen (or leave full screen).
    full_screen_requested = Signal()

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        self._placeholder = placeholder
        self._caption = ""
        self._fitted = True
        self._scale = 1.0
        self._offset = QPointF()
        self._press: QPointF | None = None
        self._panning = False
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 160)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Image")

    # ---- what is shown ----------------------------------------------------------------

    def image(self) -> QImage:
        return self._image

    def set_image(self, image: QImage) -> None:
        """Show `image`; a picture of the same size keeps the zoom and pan (previews, a batch)."""
        same_size = not self._image.isNull() and image.size() == self._image.size()
        self._image = image
        if not same_size:
            self._fitted = True
        self._layout()
        self.update()

    def set_caption(self, text: str) -> None:
        self._caption = text
        self.update()

    def caption(self) -> str:
        return self._caption

    # ---- zoom and pan -----------------------------------------------------------------

    @property
    def scale(self) -> float:
        return self._scale

    @property
    def fitted(self) -> bool:
        return self._fitted

    def fit(self) -> None:
        self._fitted = True
        self._layout()
        self.update()

    def actual_size(self) -> None:
        """100%, centred."""
        self._zoom_to(1.0, QPointF(self.width() / 2, self.height() / 2))
        self._offset = QPointF((self.width() - self._image.width()) / 2, (self.height() - self._image.height()) / 2)
        self.update()

    def zoom_at(self, factor: float, anchor: QPointF) -> None:
        """Zoom by `factor`, keeping the image point under `anchor` (widget position) in place."""
        self._zoom_to(self._scale * factor, anchor)

    def _zoom_to(self, scale: float, anchor: QPointF) -> None:
        if self._image.isNull():
            return
        under = (anchor - self._offset) / self._scale
        self._fitted = False
        self._scale = min(max(scale, MIN_SCALE), MAX_SCALE)
        self._offset = anchor - under * self._scale
        self.update()

    def _layout(self) -> None:
        if not self._fitted or self._image.isNull():
            return
        size = self._image.size()
        self._scale = min(self.width() / size.width(), self.height() / size.height())
        self._offset = QPointF((self.width() - size.width() * self._scale) / 2, (self.height() - size.height() * self._scale) / 2)

    def image_rect(self) -> QRectF:
        """Where the image lies in widget coordinates."""
        return QRectF(self._offset, self._image.size().toSizeF() * self._scale)

    # ---- events -----------------------------------------------------------------------

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._layout()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self._image.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._scale < PIXELATED_FROM)
        painter.drawImage(self.image_rect(), self._image)
        if self._caption:
            self._draw_caption(painter)

    def _draw_caption(self, painter: QPainter) -> None:
        metrics = self.fontMetrics()
        box = metrics.boundingRect(self._caption).adjusted(-6, -3, 6, 3)
        box.moveBottomLeft(self.rect().bottomLeft() + QPointF(8, -8).toPoint())
        painter.fillRect(box, QColor(0, 0, 0, 150))
        painter.setPen(QColor("#ffffff"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self._caption)

    def wheelEvent(self, event: QWheelEvent) -> None:
        notches = event.angleDelta().y() / 120
        if notches:
            self.zoom_at(WHEEL_STEP**notches, event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._press = event.position()
            # A fitted picture has nothing to pan: a left drag takes it out of the window.
            self._panning = event.button() == Qt.MouseButton.MiddleButton or not self._fitted
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._press is None:
            return
        moved = event.position() - self._press
        if self._panning:
            self._offset += moved
            self._press = event.position()
            self.update()
        elif moved.manhattanLength() >= QApplication.startDragDistance() and not self._image.isNull():
            self._press = None
            self.drag_out.emit()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._press = None
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and not self._image.isNull():
            self.full_screen_requested.emit()


class FullScreenViewer(QWidget):
    """The picture alone on the whole screen. Esc or a double-click leaves; Left / Right are
    passed to `step` (the next / previous picture)."""

    def __init__(self, image: QImage, caption: str, step: Callable[[int], None]) -> None:
        super().__init__(None, Qt.WindowType.Window)
        self.setWindowTitle("SD Studio — full screen")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._step = step
        self.viewer = ImageViewer()
        self.viewer.set_image(image)
        self.viewer.set_caption(caption)
        self.viewer.full_screen_requested.connect(self.close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.viewer)

    def show_image(self, image: QImage, caption: str) -> None:
        self.viewer.set_image(image)
        self.viewer.set_caption(caption)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Escape, Qt.Key.Key_F11):
            self.close()
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            self._step(-1 if key == Qt.Key.Key_Left else 1)
        else:
            super().keyPressEvent(event)
