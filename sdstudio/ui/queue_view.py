"""The queue indicator: how many jobs wait, a menu to cancel one or all of them, and each
machine the jobs run on (this computer, or each ComfyUI server) with what it does now."""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

from sdstudio.canvas.convert import to_qimage
from sdstudio.engine.backend import ServerState
from sdstudio.engine.request import GenerationRequest
from sdstudio.ui.controller import GenerationController

ICON = 48  # px, the init image's thumbnail in the queue menu
# Connections come and go without a job event, so the view looks again this often (ms).
REFRESH_MS = 1000
DOT = {"idle": "#3a9d3a", "busy": "#d08a00", "lost": "#c0392b"}


class HasRequest(Protocol):
    """A job as the window or a backend holds it (JobStream, JobHandle)."""

    @property
    def request(self) -> GenerationRequest | None: ...


def snippet(request: GenerationRequest, limit: int = 40) -> str:
    """The start of the job's prompt, on one line."""
    prompt = " ".join(request.prompt.prompt.split()) or "(empty prompt)"
    return prompt if len(prompt) <= limit else prompt[: limit - 1] + "…"


def describe(job: HasRequest) -> str:
    """A one-line summary of a generation job for a menu."""
    request = job.request
    assert request is not None
    prompt = snippet(request)
    extent, sampling = request.extent, request.sampling
    size = f"{extent.width}×{extent.height}" if extent.width and extent.height else "model size"
    seed = "random seed" if sampling.seed < 0 else f"seed {sampling.seed}"
    images = extent.batch_size * extent.batch_count
    return f"{prompt} — {request.mode.value}, {size}, {sampling.steps} steps, {seed}, {images} image(s)"


def server_line(state: ServerState) -> str:
    """One machine's state for a person: address, connection, the job it runs, its queues."""
    if not state.connected:
        return f"{state.name}: connection lost"
    if state.running is None:
        work = "idle"
    elif state.running.request is None:
        work = f"busy: loading {state.running.model_ref.name}"
    else:
        request = state.running.request
        work = f"busy: {snippet(request, 24)}, seed {request.sampling.seed}"
    queues = [f"{state.waiting} waiting"] if state.waiting else []
    if state.server_queue is not None:
        queues.append(f"server queue {state.server_queue}")
    return f"{state.name}: connected, {work}" + (f" ({', '.join(queues)})" if queues else "")


def state_icon(state: ServerState) -> QIcon:
    """A coloured dot: green idle, amber busy, red lost."""
    key = "lost" if not state.connected else "idle" if state.running is None else "busy"
    pixmap = QPixmap(12, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(DOT[key]))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(1, 1, 10, 10)
    painter.end()
    return QIcon(pixmap)


def init_icon(job: HasRequest) -> QIcon:
    """A thumbnail of the job's init image (img2img / inpaint), so alike prompts differ."""
    request = job.request
    if request is None or request.inputs.init_image is None:
        return QIcon()
    picture = request.inputs.init_image.open()
    picture.thumbnail((ICON, ICON))
    return QIcon(QPixmap.fromImage(to_qimage(picture)))


class QueueButton(QToolButton):
    """Shows "Queue: N" (and servers whose connection is lost); its menu cancels pending jobs,
    never the running one, and lists each machine with its state."""

    def __init__(self, controller: GenerationController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._controller = controller
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setMenu(QMenu(self))
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("Queue: empty") + 36)
        self._shown: tuple[list[int], list[str]] | None = None
        controller.queue_changed.connect(self.refresh)
        self.menu().aboutToShow.connect(self.refresh)
        self._timer = QTimer(self, interval=REFRESH_MS, timeout=self._tick)
        self._timer.start()
        self.refresh()

    def refresh(self) -> None:
        pending = self._controller.pending()
        states = self._controller.server_states()
        shown = ([id(s) for s in pending], [server_line(s) for s in states])
        if shown == self._shown:
            return  # the timer looks every second; thumbnails are decoded only on a change
        self._shown = shown
        lost = sum(not s.connected for s in states)
        text = f"&Queue: {len(pending)}" if pending else "&Queue: empty"
        self.setText(text + (f" · {lost} lost" if lost else ""))
        self.setEnabled(bool(pending or states))
        self.setToolTip("\n".join(["Jobs waiting to run; open to cancel one or all of them"] + [server_line(s) for s in states]))
        menu = self.menu()
        menu.clear()
        for stream in pending:
            action = menu.addAction(f"Cancel: {describe(stream)}")
            action.setIcon(init_icon(stream))
            action.triggered.connect(lambda _=False, s=stream: self._controller.cancel_pending(s))
        if pending:
            menu.addSeparator()
            menu.addAction("Cancel &all pending", self._controller.cancel_all_pending)
        if states:
            menu.addSection("Where jobs run")
            for state in states:
                menu.addAction(state_icon(state), server_line(state))

    def _tick(self) -> None:
        if not self.menu().isVisible():  # never rebuild a menu under the person's pointer
            self.refresh()
