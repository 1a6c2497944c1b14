"""The canvas view: draws the image with a tinted mask overlay, zooms and pans, and paints strokes.

Image coordinates map to widget coordinates as `widget = image * scale + offset`; a pixel
(x, y) covers image positions x..x+1, so the pixel under the cursor is floor(widget_to_image).
Only the changed part of the widget is redrawn after a stroke segment, and the overlay is
built at screen resolution for the exposed area only, so cost does not grow with image size.

Just outside the picture's frame, dragging an edge or a corner outward asks for the canvas to
grow on that side (`grow_requested`, in steps of GROW_SNAP image pixels), the grown frame
drawn dashed meanwhile.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from sdstudio.canvas.brush import Brush
from sdstudio.canvas.document import CanvasDocument
from sdstudio.imaging_outpaint import Growth

MIN_SCALE = 1 / 32
MAX_SCALE = 32.0
WHEEL_STEP = 1.25  # zoom factor per wheel notch
BACKGROUND = QColor(40, 40, 44)
DEFAULT_TINT = QColor(255, 40, 90)
HANDLE = 10  # screen pixels outside the frame where a drag grows the canvas
GROW_SNAP = 8  # a dragged growth is a multiple of this (SD sizes are)
# Which sides a frame handle moves (left, top, right, bottom) -> its cursor.
_HANDLE_CURSORS = {
    (True, False, False, False): Qt.CursorShape.SizeHorCursor,
    (False, False, True, False): Qt.CursorShape.SizeHorCursor,
    (False, True, False, False): Qt.CursorShape.SizeVerCursor,
    (False, False, False, True): Qt.CursorShape.SizeVerCursor,
    (True, True, False, False): Qt.CursorShape.SizeFDiagCursor,
    (False, False, True, True): Qt.CursorShape.SizeFDiagCursor,
    (False, True, True, False): Qt.CursorShape.SizeBDiagCursor,
    (True, False, False, True): Qt.CursorShape.SizeBDiagCursor,
}


class CanvasView(QWidget):
    """Shows a CanvasDocument and turns mouse input into mask strokes."""

    zoom_changed = Signal(float)
    """Carries the new scale (1.0 = 100%); fires on every zoom, fit or 100%."""

    brush_changed = Signal(object)
    """Carries the new Brush; fires when its size or hardness changes."""

    eraser_changed = Signal(bool)
    """Carries True when the left button now erases; fires when the eraser is toggled."""

    mask_visible_changed = Signal(bool)
    """Carries whether the mask overlay is shown; fires when it is shown or hidden."""

    grow_requested = Signal(object)
    """Carries a Growth; fires when a frame edge or corner was dragged outward and let go."""

    def __init__(self, document: CanvasDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.brush = Brush()
        self.eraser = False
        self.mask_visible = True
        self.mask_opacity = 0.5
        self.tint = QColor(DEFAULT_TINT)
        self._scale = 1.0
        self._offset = QPointF(0, 0)
        self._auto_fit = True  # refit on resize until the person zooms or pans
        self._pan_from: QPointF | None = None
        self._stroke_button = Qt.MouseButton.NoButton
        self._space_held = False
        self._hover: QPointF | None = None
        self._shown_size = QSize()
        self._frame_drag: tuple[tuple[bool, bool, bool, bool], QPointF] | None = None  # sides, press
        self._growth = Growth()  # what the frame drag would add now
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setMinimumSize(200, 150)
        document.changed.connect(self._on_document_changed)
        document.replaced.connect(self._on_replaced)

    # ---- geometry -------------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        return QSize(640, 640)

    @property
    def scale(self) -> float:
        return self._scale

    def transform(self) -> QTransform:
        """Image -> widget coordinates."""
        return QTransform(self._scale, 0, 0, self._scale, self._offset.x(), self._offset.y())

    def widget_to_image(self, pos: QPointF) -> QPointF:
        return (QPointF(pos) - self._offset) / self._scale

    def image_to_widget(self, pos: QPointF) -> QPointF:
        return QPointF(pos) * self._scale + self._offset

    def set_view(self, scale: float, offset: QPointF) -> None:
        """Set zoom and the widget position of the image's top-left corner directly."""
        self._scale = min(max(scale, MIN_SCALE), MAX_SCALE)
        self._offset = QPointF(offset)
        self.update()
        self.zoom_changed.emit(self._scale)

    def zoom_at(self, scale: float, anchor: QPointF) -> None:
        """Zoom to `scale`, keeping the image point under widget position `anchor` in place."""
        self._auto_fit = False
        under = self.widget_to_image(anchor)
        scale = min(max(scale, MIN_SCALE), MAX_SCALE)
        self.set_view(scale, QPointF(anchor) - under * scale)

    def pan_by(self, delta: QPointF) -> None:
        self._auto_fit = False
        self.set_view(self._scale, self._offset + delta)

    def fit(self) -> None:
        """Show the whole image, centred, as large as the widget allows."""
        self._auto_fit = True
        size = self.document.size()
        if size.isEmpty():
            return
        scale = min(self.width() / size.width(), self.height() / size.height())
        self._centre(scale)

    def actual_size(self) -> None:
        """Show the image at 100% (one image pixel per screen pixel), centred."""
        self._auto_fit = False
        self._centre(1.0)

    def _centre(self, scale: float) -> None:
        size = self.document.size()
        scale = min(max(scale, MIN_SCALE), MAX_SCALE)
        left = (self.width() - size.width() * scale) / 2
        top = (self.height() - size.height() * scale) / 2
        self.set_view(scale, QPointF(round(left), round(top)))

    def resizeEvent(self, event: QResizeEvent) -> None:
        if self._auto_fit:
            self.fit()
        super().resizeEvent(event)

    def _on_replaced(self, size: QSize) -> None:
        # A result sent back at the same size keeps the person's zoom and position.
        if size != self._shown_size:
            self._shown_size = QSize(size)
            self.fit()

    def _widget_rect(self, image_rect: QRect, margin: int = 2) -> QRect:
        mapped = self.transform().mapRect(QRectF(image_rect)).toAlignedRect()
        return mapped.adjusted(-margin, -margin, margin, margin)

    def _on_document_changed(self, rect: QRect) -> None:
        self.update(self._widget_rect(rect))

    # ---- brush settings -------------------------------------------------------------------

    def set_brush(self, brush: Brush) -> None:
        if brush == self.brush:
            return
        self._update_outline()
        self.brush = brush
        self._update_outline()
        self.brush_changed.emit(brush)

    def set_eraser(self, on: bool) -> None:
        if on != self.eraser:
            self.eraser = on
            self._update_outline()
            self.eraser_changed.emit(on)

    def set_mask_visible(self, on: bool) -> None:
        if on != self.mask_visible:
            self.mask_visible = on
            self.update()
            self.mask_visible_changed.emit(on)

    def set_mask_opacity(self, opacity: float) -> None:
        self.mask_opacity = min(max(opacity, 0.0), 1.0)
        self.update()

    def grow_brush(self, steps: int) -> None:
        """Make the brush bigger (steps > 0) or smaller by about 15% per step, at least 1 px."""
        size = self.brush.size
        for _ in range(abs(steps)):
            change = max(1.0, round(size * 0.15))
            size = size + change if steps > 0 else size - change
        self.set_brush(self.brush.resized(size))

    # ---- drawing --------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        exposed = event.rect()
        painter.fillRect(exposed, BACKGROUND)
        doc = self.document
        if not doc.has_image():
            painter.setPen(QColor(170, 170, 175))
            painter.drawText(
                self.rect(),
                Qt.AlignmentFlag.AlignCenter,
                "Open, drop or paste (Ctrl+V) an image to paint a mask on it",
            )
            return
        source = self._source_rect(exposed)
        if not source.isEmpty():
            smooth = self._scale < 1.0
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
            painter.setTransform(self.transform())
            painter.drawImage(QRectF(source), doc.image_layer(), QRectF(source))
            painter.resetTransform()
            if self.mask_visible and self.mask_opacity > 0:
                self._draw_overlay(painter, source)
        self._draw_growth(painter)
        self._draw_outline(painter)

    def _draw_growth(self, painter: QPainter) -> None:
        """The frame the canvas will have once the drag is let go, dashed."""
        if self._growth.is_empty():
            return
        g, size = self._growth, self.document.size()
        grown = QRectF(-g.left, -g.top, size.width() + g.left + g.right, size.height() + g.top + g.bottom)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for color, style in ((QColor(0, 0, 0, 200), Qt.PenStyle.SolidLine), (QColor(255, 255, 255, 230), Qt.PenStyle.DashLine)):
            painter.setPen(QPen(color, 1.0, style))
            painter.drawRect(self.transform().mapRect(grown))

    def _source_rect(self, exposed: QRect) -> QRect:
        """The image pixels that cover the widget rect `exposed`, clipped to the image."""
        inverse, _ = self.transform().inverted()
        area = inverse.mapRect(QRectF(exposed))
        left, top = math.floor(area.left()), math.floor(area.top())
        right, bottom = math.ceil(area.right()), math.ceil(area.bottom())
        rect = QRect(left, top, right - left, bottom - top)
        return rect.intersected(QRect(0, 0, self.document.size().width(), self.document.size().height()))

    def _draw_overlay(self, painter: QPainter, source: QRect) -> None:
        # The mask is one alpha byte per pixel: drawn into a small screen-sized buffer it
        # becomes black with that alpha, then SourceIn recolours it with the tint. Nearest
        # sampling: half the cost of smooth when zoomed out, and exact pixels when zoomed in.
        target = self.transform().mapRect(QRectF(source)).toAlignedRect()
        buffer = QImage(target.size(), QImage.Format.Format_ARGB32_Premultiplied)
        buffer.fill(Qt.GlobalColor.transparent)
        overlay = QPainter(buffer)
        overlay.setTransform(self.transform() * QTransform.fromTranslate(-target.left(), -target.top()))
        overlay.drawImage(QRectF(source), self.document.mask_layer(), QRectF(source))
        overlay.resetTransform()
        overlay.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceIn)
        overlay.fillRect(buffer.rect(), self.tint)
        overlay.end()
        painter.setOpacity(self.mask_opacity)
        painter.drawImage(target.topLeft(), buffer)
        painter.setOpacity(1.0)

    def _outline_rect(self) -> QRect:
        if self._hover is None:
            return QRect()
        r = self.brush.radius * self._scale + 3
        return QRectF(self._hover.x() - r, self._hover.y() - r, 2 * r, 2 * r).toAlignedRect()

    def _update_outline(self) -> None:
        rect = self._outline_rect()
        if not rect.isEmpty():
            self.update(rect)

    def _draw_outline(self, painter: QPainter) -> None:
        """The brush outline at the current zoom, centred on the pointer (dashed if erasing)."""
        if self._hover is None or self._pan_from is not None or self._space_held or self._frame_drag:
            return
        if self._handle_at(self._hover) is not None:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        radius = self.brush.radius * self._scale
        style = Qt.PenStyle.DashLine if self.eraser else Qt.PenStyle.SolidLine
        for color, width in ((QColor(0, 0, 0, 200), 3.0), (QColor(255, 255, 255, 230), 1.2)):
            painter.setPen(QPen(color, width, style))
            painter.drawEllipse(self._hover, radius, radius)
        if self.brush.hardness < 1.0 and radius * self.brush.hardness > 2:
            painter.setPen(QPen(QColor(255, 255, 255, 140), 1.0, Qt.PenStyle.DotLine))
            inner = radius * self.brush.hardness
            painter.drawEllipse(self._hover, inner, inner)

    # ---- growing by the frame ---------------------------------------------------------------

    def _handle_at(self, pos: QPointF) -> tuple[bool, bool, bool, bool] | None:
        """The sides (left, top, right, bottom) the frame handle at widget `pos` moves: within
        HANDLE screen pixels outside the picture, beside an edge or a corner; else None."""
        if not self.document.has_image():
            return None
        size = self.document.size()
        frame = self.transform().mapRect(QRectF(0, 0, size.width(), size.height()))
        x, y = pos.x(), pos.y()
        if frame.contains(pos) or not frame.adjusted(-HANDLE, -HANDLE, HANDLE, HANDLE).contains(pos):
            return None
        return x < frame.left(), y < frame.top(), x > frame.right(), y > frame.bottom()

    def _dragged_growth(self, pos: QPointF) -> Growth:
        """The growth a frame drag to widget `pos` asks for: outward only, snapped to GROW_SNAP."""
        assert self._frame_drag is not None
        (left, top, right, bottom), start = self._frame_drag
        dx, dy = (pos.x() - start.x()) / self._scale, (pos.y() - start.y()) / self._scale

        def snapped(distance: float, moves: bool) -> int:
            return round(max(distance, 0) / GROW_SNAP) * GROW_SNAP if moves else 0

        return Growth(snapped(-dx, left), snapped(-dy, top), snapped(dx, right), snapped(dy, bottom))

    def _hover_cursor(self, pos: QPointF) -> None:
        if self._pan_from is not None or self._space_held or self._stroke_button != Qt.MouseButton.NoButton:
            return
        handle = self._handle_at(pos)
        self.setCursor(_HANDLE_CURSORS.get(handle, Qt.CursorShape.CrossCursor))

    # ---- input ----------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        pans = button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space_held
        )
        handle = self._handle_at(event.position()) if button == Qt.MouseButton.LeftButton else None
        if pans:
            self._pan_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            self._update_outline()
        elif handle is not None and self._stroke_button == Qt.MouseButton.NoButton:
            self._frame_drag = handle, QPointF(event.position())
            self._growth = Growth()
        elif (
            button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton)
            and self._stroke_button == Qt.MouseButton.NoButton
            and self.document.has_image()
        ):
            self._stroke_button = button
            erase = self.eraser or button == Qt.MouseButton.RightButton
            self.document.begin_stroke(self.widget_to_image(event.position()), self.brush, erase)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._pan_from is not None:
            self.pan_by(pos - self._pan_from)
            self._pan_from = pos
        elif self._frame_drag is not None:
            growth = self._dragged_growth(pos)
            if growth != self._growth:
                self._growth = growth
                self.update()
        elif self._stroke_button != Qt.MouseButton.NoButton:
            self.document.stroke_to(self.widget_to_image(pos))
        else:
            self._hover_cursor(pos)
        self._update_outline()
        self._hover = QPointF(pos)
        self._update_outline()
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if self._pan_from is not None and button in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            self.setCursor(Qt.CursorShape.OpenHandCursor if self._space_held else Qt.CursorShape.CrossCursor)
        elif self._frame_drag is not None and button == Qt.MouseButton.LeftButton:
            growth = self._dragged_growth(event.position())
            self._frame_drag, self._growth = None, Growth()
            self.update()
            if not growth.is_empty():
                self.grow_requested.emit(growth)
        elif button == self._stroke_button:
            self.document.stroke_to(self.widget_to_image(event.position()))
            self.document.end_stroke()
            self._stroke_button = Qt.MouseButton.NoButton
        event.accept()

    def leaveEvent(self, event) -> None:
        self._update_outline()
        self._hover = None
        super().leaveEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        notches = event.angleDelta().y() / 120
        if notches:
            self.zoom_at(self._scale * WHEEL_STEP**notches, event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            self._update_outline()
            if self._pan_from is None:
                self.setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            if self._pan_from is None:
                self.setCursor(Qt.CursorShape.CrossCursor)
            self._update_outline()
            event.accept()
            return
        super().keyReleaseEvent(event)
