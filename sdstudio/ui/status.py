"""The status bar: what the engine is doing, the job's progress and time left, and the
loaded model with its device and dtype."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from sdstudio.engine.request import ModelInfo


def time_left(elapsed: float, done: int, total: int) -> str:
    """"12 s left" / "3 min left" from the average time per step so far."""
    if done <= 0:
        return ""
    seconds = elapsed / done * (total - done)
    if seconds < 90:
        return f"{seconds:.0f} s left"
    return f"{seconds / 60:.0f} min left"


class StudioStatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.activity = QLabel("Starting…")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(self.fontMetrics().horizontalAdvance("step 150/150 · 59 min left") + 40)
        self.progress.setMinimumWidth(self.progress.maximumWidth())
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.model = QLabel()
        self.device = QLabel()
        self.dtype = QLabel()
        self.addWidget(self.activity, 1)
        self.addPermanentWidget(self.progress)
        for label in (self.model, self.device, self.dtype):
            self.addPermanentWidget(label)
        self._job_start = 0.0
        self.set_model(None)

    def set_activity(self, text: str, progress: float | None = None) -> None:
        """A message about the engine; with `progress` (0..1) the bar shows it too."""
        self.activity.setText(text)
        if progress is not None and not self._job_running():
            self.progress.setRange(0, 100)
            self.progress.setValue(round(progress * 100))
            self.progress.setFormat("%p%")
            self.progress.show()

    def load_ended(self) -> None:
        """A model load stopped without a model (it failed): its progress bar goes."""
        if not self._job_running():
            self.progress.hide()

    def model_ready(self, info: ModelInfo) -> None:
        self.set_model(info)
        if not self._job_running():
            self.progress.hide()
            self.activity.setText("Ready")

    def set_model(self, info: ModelInfo | None) -> None:
        self.model.setText(f"Model: {info.name}" if info else "Model: none")
        self.model.setToolTip(info.source if info else "No model is loaded yet")
        self.device.setText(f"Device: {info.device}" if info else "")
        self.dtype.setText(f"dtype: {info.dtype}" if info else "")

    def job_started(self, total: int) -> None:
        self._job_start = time.monotonic()
        self.activity.setText("Generating…")
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setFormat(f"step 0/{total}")
        self.progress.setProperty("running", True)
        self.progress.show()

    def step(self, index: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(index)
        left = time_left(time.monotonic() - self._job_start, index, total)
        self.progress.setFormat(f"step {index}/{total}" + (f" · {left}" if left and index < total else ""))

    def job_ended(self, outcome: str) -> None:
        self.progress.setProperty("running", False)
        self.progress.hide()
        self.activity.setText({"done": "Done", "cancelled": "Cancelled", "failed": "Failed"}[outcome])

    def _job_running(self) -> bool:
        return bool(self.progress.property("running"))
