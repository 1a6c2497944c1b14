"""The status bar: what the engine is doing, the job's progress and time left, and the
loaded model with its device and dtype."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from sdstudio.engine.request import ModelInfo

RECENT_STEPS = 8  # the time left follows the pace of the last few steps
# The widest the model's and the server's labels get (px): with a job's progress beside them
# the status bar sets the window's least width, which must stay under a 1024-px screen's.
# Longer text is shortened in the middle; its tooltip holds it whole.
MODEL_WIDTH, LABEL_WIDTH = 300, 220


class StepClock:
    """When each step of a job ended, and the time left from the steps' own pace.

    The first step also pays for warm-up (text encoding, moving weights, first kernels), often
    several times a later step, so the time up to the first step seen never counts: before a
    second step arrives there is no estimate. Then the median of the recent per-step times
    (steps the window skipped while busy are spread over the gap), which one hiccup cannot skew."""

    def __init__(self) -> None:
        self._seen: list[tuple[int, float]] = []  # (step index, when it arrived)

    def start(self) -> None:
        self._seen = []

    def step(self, index: int, now: float) -> None:
        self._seen.append((index, now))

    def seconds_left(self, done: int, total: int) -> float | None:
        pairs = zip(self._seen, self._seen[1:], strict=False)
        per_step = [(t1 - t0) / (i1 - i0) for (i0, t0), (i1, t1) in pairs if i1 > i0]
        if not per_step:
            return None
        recent = sorted(per_step[-RECENT_STEPS:])
        return recent[len(recent) // 2] * (total - done)


def time_left(seconds: float | None) -> str:
    """"12 s left" / "3 min left"; "" when there is no estimate yet."""
    if seconds is None:
        return ""
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
        self.where = QLabel()
        self.addWidget(self.activity, 1)
        self.addPermanentWidget(self.progress)
        for label in (self.where, self.model, self.device, self.dtype):
            self.addPermanentWidget(label)
        self._clock = StepClock()
        self.set_model(None)
        self.set_server("")

    def set_server(self, url: str) -> None:
        """Where images are made: this computer ("") or the server at `url`."""
        _show(self.where, f"Remote: {url}" if url else "Local",
              f"Generating on the ComfyUI server at {url}" if url else "Generating on this computer")

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

    def model_ready(self, info: ModelInfo, vae: str = "") -> None:
        """`vae`: the VAE file it decodes with ("" for the model's own)."""
        self.set_model(info, vae)
        if not self._job_running():
            self.progress.hide()
            self.activity.setText("Ready")

    def set_model(self, info: ModelInfo | None, vae: str = "") -> None:
        if info is None:
            _show(self.model, "Model: none", "No model is loaded yet")
        else:
            _show(self.model, f"Model: {info.name}" + (f" + VAE {vae}" if vae else ""),
                  info.source + (f"\nVAE: {vae}" if vae else ""), MODEL_WIDTH)
        # A server's device is its address, which "Remote: …" shows already.
        local = info is not None and "://" not in info.device
        _show(self.device, f"Device: {info.device}" if local else "", info.device if local else "")
        self.dtype.setText(f"dtype: {info.dtype}" if info else "")

    def job_started(self, total: int) -> None:
        self._clock.start()
        self.activity.setText("Generating…")
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setFormat(f"step 0/{total}")
        self.progress.setProperty("running", True)
        self.progress.show()

    def step(self, index: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(index)
        self._clock.step(index, time.monotonic())
        left = time_left(self._clock.seconds_left(index, total))
        self.progress.setFormat(f"step {index}/{total}" + (f" · {left}" if left and index < total else ""))

    def job_ended(self, outcome: str) -> None:
        self.progress.setProperty("running", False)
        self.progress.hide()
        self.activity.setText({"done": "Done", "cancelled": "Cancelled", "failed": "Failed"}[outcome])

    def _job_running(self) -> bool:
        return bool(self.progress.property("running"))


def _show(label: QLabel, text: str, tooltip: str, width: int = LABEL_WIDTH) -> None:
    label.setText(label.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, width))
    label.setToolTip(tooltip)
    label.setVisible(bool(text))  # an empty label would leave a gap between its neighbours
