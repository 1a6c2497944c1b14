"""The queue indicator: how many jobs wait, and a menu to cancel one or all of them."""

from __future__ import annotations

from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

from sdstudio.canvas.convert import to_qimage
from sdstudio.ui.controller import GenerationController
from sdstudio.ui.jobs import JobStream

ICON = 48  # px, the init image's thumbnail in the queue menu


def describe(stream: JobStream) -> str:
    """A one-line summary of a generation job for a menu."""
    request = stream.request
    assert request is not None
    prompt = " ".join(request.prompt.prompt.split()) or "(empty prompt)"
    if len(prompt) > 40:
        prompt = prompt[:39] + "…"
    extent, sampling = request.extent, request.sampling
    size = f"{extent.width}×{extent.height}" if extent.width and extent.height else "model size"
    seed = "random seed" if sampling.seed < 0 else f"seed {sampling.seed}"
    images = extent.batch_size * extent.batch_count
    return f"{prompt} — {request.mode.value}, {size}, {sampling.steps} steps, {seed}, {images} image(s)"


def init_icon(stream: JobStream) -> QIcon:
    """A thumbnail of the job's init image (img2img / inpaint), so alike prompts differ."""
    request = stream.request
    if request is None or request.inputs.init_image is None:
        return QIcon()
    picture = request.inputs.init_image.open()
    picture.thumbnail((ICON, ICON))
    return QIcon(QPixmap.fromImage(to_qimage(picture)))


class QueueButton(QToolButton):
    """Shows "Queue: N"; its menu cancels pending jobs, never the running one."""

    def __init__(self, controller: GenerationController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._controller = controller
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setMenu(QMenu(self))
        self.setToolTip("Jobs waiting to run; open to cancel one or all of them")
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("Queue: empty") + 36)
        controller.queue_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        pending = self._controller.pending()
        self.setText(f"&Queue: {len(pending)}" if pending else "&Queue: empty")
        self.setEnabled(bool(pending))
        menu = self.menu()
        menu.clear()
        for stream in pending:
            action = menu.addAction(f"Cancel: {describe(stream)}")
            action.setIcon(init_icon(stream))
            action.triggered.connect(lambda _=False, s=stream: self._controller.cancel_pending(s))
        if pending:
            menu.addSeparator()
            menu.addAction("Cancel &all pending", self._controller.cancel_all_pending)
