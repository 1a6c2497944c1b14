"""The canvas in the studio window: a page beside "Result" with its toolbar, the source of the
init image and mask for img2img / inpaint, and "Send to canvas" for a result.

`install_canvas(window)` does it all and attaches the canvas to the window
(`window.canvas`, where the history dock opens images).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QImage
from PySide6.QtWidgets import QLabel, QMenu, QToolBar, QToolButton, QVBoxLayout, QWidget

from sdstudio.canvas import Canvas
from sdstudio.canvas.brush import MIN_SIZE
from sdstudio.engine.parameters import snap_to_8
from sdstudio.engine.request import Mode
from sdstudio.ui.errors import Level, Problem
from sdstudio.ui.slider_spin import SliderSpin

if TYPE_CHECKING:
    from PIL.Image import Image

    from sdstudio.ui.main_window import MainWindow


class CanvasToolbar(QWidget):
    """Three short rows, so they fit beside the docks: picture, undo and zoom; the brush; the mask."""

    def __init__(self, canvas: Canvas, send_result: QAction, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        act = canvas.actions_by_name
        rows = QVBoxLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        rows.setSpacing(0)
        picture, brush, mask = QToolBar("Canvas"), QToolBar("Brush"), QToolBar("Mask")
        for bar in (picture, brush, mask):
            bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            rows.addWidget(bar)
        picture.addActions([act["open"], act["paste"], send_result])
        picture.addSeparator()
        picture.addActions([act["undo"], act["redo"]])
        picture.addSeparator()
        picture.addActions([act["fit"], act["actual_size"]])
        picture.addSeparator()
        picture.addWidget(_menu_button(
            "Grow", "Grow the canvas for outpainting (or drag the picture's frame outward)",
            [act[f"grow_{side}"] for side in ("left", "top", "right", "bottom")]
            + [None] + [a for name, a in act.items() if name.startswith("infill_")]))
        self.zoom = QLabel()
        self.zoom.setMinimumWidth(self.zoom.fontMetrics().horizontalAdvance(" 3200% "))
        self.zoom.setAlignment(Qt.AlignmentFlag.AlignCenter)
        picture.addWidget(self.zoom)
        brush.addAction(act["eraser"])
        self.size = _slider(brush, "Size", "Brush diameter in image pixels ([ and ])", MIN_SIZE, 512, 1, 0)
        self.size.set_value(canvas.brush.size)
        self.size.value_changed.connect(canvas.set_brush_size)
        self.hardness = _slider(brush, "Hardness", "1 = crisp edge, 0 = soft edge", 0, 1, 0.05, 2)
        self.hardness.set_value(canvas.brush.hardness)
        self.hardness.value_changed.connect(canvas.set_brush_hardness)
        mask.addAction(act["show_mask"])
        self.opacity = _slider(mask, "Opacity", "How strongly the mask tint covers the image (%)", 0, 100, 5, 0)
        self.opacity.set_value(canvas.view.mask_opacity * 100)
        self.opacity.value_changed.connect(lambda value: canvas.view.set_mask_opacity(value / 100))
        mask.addSeparator()
        mask.addActions([act["clear"], act["invert"], act["fill"]])
        canvas.view.zoom_changed.connect(lambda scale: self.zoom.setText(f"{scale * 100:.0f}%"))
        canvas.view.brush_changed.connect(self._brush_changed)

    def _brush_changed(self, brush) -> None:
        # `[` / `]` change the size beyond the slider's range too; the slider shows what fits.
        self.size.set_value(min(brush.size, 512))
        self.hardness.set_value(brush.hardness)


def _menu_button(text: str, tip: str, actions: list[QAction | None]) -> QToolButton:
    """One toolbar button opening a menu (None: a separator): room for a group the toolbar's
    width cannot hold."""
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    menu = QMenu(button)
    for action in actions:
        if action is None:
            menu.addSeparator()
        else:
            menu.addAction(action)
    button.setMenu(menu)
    return button


def _slider(bar: QToolBar, text: str, tip: str, minimum: float, maximum: float, step: float, decimals: int) -> SliderSpin:
    bar.addWidget(QLabel(f" {text} "))
    slider = SliderSpin(minimum, maximum, step, decimals)
    slider.setMaximumWidth(220)
    slider.setToolTip(tip)
    bar.addWidget(slider)
    return slider


def install_canvas(window: MainWindow) -> Canvas:
    """Put the canvas page into `window` and make it the init image / mask for img2img and inpaint."""
    canvas = Canvas()
    canvas.setObjectName("canvas")
    send = QAction("Send to canvas", canvas)
    send.setIconText("From result")
    send.setToolTip("Put the shown result on the canvas for another round (the mask is kept)")
    send.triggered.connect(lambda: send_result_to_canvas(window, canvas))
    canvas.set_toolbar(CanvasToolbar(canvas, send))
    window.attach_canvas(canvas)
    for name in ("img2img", "inpaint"):
        window.results.actions_by_name[name].setVisible(True)
    window.results.send_to_img2img.connect(lambda image: send_to_canvas(window, canvas, image, Mode.IMG2IMG))
    window.results.send_to_inpaint.connect(lambda image: send_to_canvas(window, canvas, image, Mode.INPAINT))
    # A painter pressing Generate on the canvas wants to watch the picture come: the preview
    # and the results are on the Result page (Send to canvas brings a result back).
    window.controller.job_started.connect(lambda *_: _watch_from_canvas(window, canvas))
    canvas.error.connect(lambda message: window.report(message))
    canvas.image_changed.connect(lambda _size: _leave_txt2img(window, canvas))
    canvas.image_changed.connect(lambda _size: tell_canvas_size(window, canvas))
    window.params.mode_changed.connect(lambda _mode: tell_canvas_size(window, canvas))
    canvas.document.history_changed.connect(lambda: offer_inpaint(window, canvas))
    window.params.mode_changed.connect(lambda _mode: offer_inpaint(window, canvas))
    # Another picture on the canvas is no longer the one the lineage named.
    canvas.image_changed.connect(lambda _size: window.set_input_source(None))

    def provide() -> tuple[Image | None, Image | None]:
        """(init image, mask): the mask only for inpaint and only when something is painted.
        Without a canvas image, img2img / inpaint use what the window had before."""
        if not canvas.has_image():
            return fallback()
        inpaint = window.params.current_mode() is Mode.INPAINT
        return canvas.image(), canvas.mask() if inpaint and canvas.has_mask() else None

    fallback = window.set_image_provider(provide)
    return canvas


def send_result_to_canvas(window: MainWindow, canvas: Canvas) -> None:
    """The result shown in the result view goes onto the canvas; the painted mask stays."""
    image = window.results.view.image()
    if image.isNull():
        window.report("There is no result to send to the canvas yet.", level=Level.INFO)
        return
    canvas.set_image(image.copy(), keep_mask=True)
    window.center.setCurrentWidget(canvas)


def send_to_canvas(window: MainWindow, canvas: Canvas, image: QImage, mode: Mode) -> None:
    """A picture from the viewer onto the canvas for img2img or inpaint (the mask stays)."""
    canvas.set_image(image.copy(), keep_mask=True)
    window.apply_fields({"mode": mode})
    window.center.setCurrentWidget(canvas)


def _watch_from_canvas(window: MainWindow, canvas: Canvas) -> None:
    if window.center.currentWidget() is canvas:
        window.center.setCurrentWidget(window.results)


def tell_canvas_size(window: MainWindow, canvas: Canvas) -> None:
    """One banner, while it is so, when img2img / inpaint will resize the canvas picture: the
    engine makes the image at the size in Parameters and fits the picture to it. The banner
    offers the picture's own size instead (to the nearest multiple of 8, as the engine needs)."""
    fields = window.request_fields()
    size = canvas.document.size()
    wanted = (fields["width"], fields["height"])
    if not canvas.has_image() or fields["mode"] is Mode.TXT2IMG or (size.width(), size.height()) == wanted:
        window.banner.clear("canvas-size")
        return
    target = f"{wanted[0]}×{wanted[1]} (the size in Parameters)" if None not in wanted else "the model's own size"
    own = (snap_to_8(size.width()), snap_to_8(size.height()))
    window.banner.show_problem(
        Problem(
            f"The canvas picture is {size.width()}×{size.height()}; {fields['mode'].value} makes "
            f"{target} and resizes the picture to that.",
            level=Level.INFO,
            cause="canvas-size",
            action=(f"Use {own[0]}×{own[1]}", lambda: window.apply_fields({"width": own[0], "height": own[1]})),
        )
    )


def offer_inpaint(window: MainWindow, canvas: Canvas) -> None:
    """img2img ignores the mask: while one is painted in img2img, the banner offers inpaint."""
    if window.params.current_mode() is not Mode.IMG2IMG or not canvas.has_mask():
        window.banner.clear("mask-in-img2img")
        return
    window.banner.show_problem(
        Problem(
            "A mask is painted, but img2img repaints the whole picture.",
            level=Level.INFO,
            cause="mask-in-img2img",
            action=("Use inpaint", lambda: window.apply_fields({"mode": Mode.INPAINT})),
        )
    )


def _leave_txt2img(window: MainWindow, canvas: Canvas) -> None:
    """A picture put on the canvas is meant to be worked on: txt2img becomes img2img
    (inpaint when a mask is already painted)."""
    if window.params.current_mode() is Mode.TXT2IMG:
        window.apply_fields({"mode": Mode.INPAINT if canvas.has_mask() else Mode.IMG2IMG})
