"""The Model menu: built-in model, open a folder or a .safetensors file, recent models."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from sdstudio.engine.backend import builtin_model_available
from sdstudio.engine.request import BUILTIN_MODEL, ModelRef


def model_label(source: str) -> str:
    return "Built-in model" if source == BUILTIN_MODEL else f"{ModelRef(source).name}  —  {source}"


class ModelMenu(QMenu):
    """Emits `model_chosen`; the window decides what loading means."""

    # The person picked a model to load: (ModelRef).
    model_chosen = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("&Model", parent)
        self.builtin = self.addAction("&Built-in model", lambda: self.choose(BUILTIN_MODEL))
        self.addAction("Open model &folder…", self._open_folder)
        self.addAction("Open .&safetensors…", self._open_file)
        self.addSeparator()
        self.recent = self.addMenu("&Recent models")
        self._recent: list[str] = []
        self.aboutToShow.connect(self._refresh)
        self._refresh()

    def set_recent(self, sources: list[str]) -> None:
        self._recent = list(sources)
        self._refresh()

    def choose(self, source: str) -> None:
        self.model_chosen.emit(ModelRef(source))

    def _refresh(self) -> None:
        available = builtin_model_available()
        self.builtin.setEnabled(available)
        self.builtin.setText("&Built-in model" if available else "&Built-in model (not installed)")
        self.recent.clear()
        for number, source in enumerate(self._recent, start=1):
            self.recent.addAction(f"&{number} {model_label(source)}", lambda _=False, s=source: self.choose(s))
        self.recent.setEnabled(bool(self._recent))

    def _open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.parentWidget(), "Open a diffusers model folder")
        if folder:
            self.choose(folder)

    def _open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.parentWidget(), "Open a Stable Diffusion checkpoint", str(Path.home()), "Checkpoints (*.safetensors)"
        )
        if path:
            self.choose(path)
