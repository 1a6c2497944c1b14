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
    # Generate on this ComfyUI server from now on: (url, token); "" = this computer.
    server_chosen = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("&Model", parent)
        self.builtin = self.addAction("&Built-in model", lambda: self.choose(BUILTIN_MODEL))
        self.addAction("Open model &folder…", self._open_folder)
        self.addAction("Open .&safetensors…", self._open_file)
        self.addSeparator()
        self.recent = self.addMenu("&Recent models")
        self._recent: list[str] = []
        self.addSeparator()
        self.addAction("Connect to &server…", self._connect_server)
        self.local = self.addAction("Generate on &this computer", lambda: self.server_chosen.emit("", ""))
        self._servers: list[str] = []
        self._server = ("", "")
        self.aboutToShow.connect(self._refresh)
        self._refresh()

    def set_recent(self, sources: list[str]) -> None:
        self._recent = list(sources)
        self._refresh()

    def set_servers(self, recent: list[str], url: str, token: str) -> None:
        """The servers used before (newest first) and the one in use ("" = this computer)."""
        self._servers, self._server = list(recent), (url, token)
        self.local.setEnabled(bool(url))

    def _connect_server(self) -> None:
        from sdstudio.ui.server_dialog import ServerDialog

        dialog = ServerDialog(self._servers, *self._server, parent=self.parentWidget())
        if dialog.exec() == ServerDialog.DialogCode.Accepted and dialog.values()[0]:
            self.server_chosen.emit(*dialog.values())

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
