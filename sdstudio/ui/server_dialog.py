"""Model ▸ Connect to server…: a ComfyUI server's address, an optional token for a proxy in
front of it, and a Test connection button that asks the server without blocking the window."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

# (url, token) -> a line about the server; raises ConnectionError with a sentence.
Probe = Callable[[str, str], str]


def probe_server(url: str, token: str) -> str:
    from sdstudio.engine.comfy import probe

    return probe(url, token or None)


class ServerDialog(QDialog):
    # A test ended: (ok, what to show).
    tested = Signal(bool, str)

    def __init__(
        self,
        recent: list[str],
        url: str = "",
        token: str = "",
        probe: Probe = probe_server,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect to a ComfyUI server")
        self._probe = probe
        self.url = QComboBox()
        self.url.setEditable(True)
        self.url.addItems(recent)
        self.url.setCurrentText(url or (recent[0] if recent else "http://127.0.0.1:8188"))
        self.url.setToolTip(
            "The server's address, e.g. http://gpu-box:8188 or https://example.org/comfy; "
            "several, separated by commas, share the jobs."
        )
        self.token = QLineEdit(token)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("optional")
        self.token.setToolTip(
            "For a proxy in front of the server: a bearer token, or 'Header: value'. Kept in the "
            "system keyring, or in a file only you can read, never in the settings file."
        )
        self.test_button = QPushButton("&Test connection")
        self.result = QLabel()
        self.result.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("&Connect")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("&Address:", self.url)
        form.addRow("T&oken:", self.token)
        form.addRow(self.test_button, self.result)
        form.addRow(buttons)
        self.test_button.clicked.connect(self.test)
        self.tested.connect(self._show_test)
        self.resize(480, self.sizeHint().height())

    def values(self) -> tuple[str, str]:
        return self.url.currentText().strip(), self.token.text().strip()

    def test(self) -> None:
        """Ask the server on a thread; the answer comes back through `tested`."""
        url, token = self.values()
        self.test_button.setEnabled(False)
        self.result.setText(f"Asking {url}…")

        def ask() -> None:
            try:
                answer = (True, self._probe(url, token))
            except ConnectionError as exc:
                answer = (False, str(exc))
            with contextlib.suppress(RuntimeError):  # the dialog was closed meanwhile
                self.tested.emit(*answer)

        threading.Thread(target=ask, name="sdstudio-server-test", daemon=True).start()

    def _show_test(self, ok: bool, text: str) -> None:
        self.test_button.setEnabled(True)
        self.result.setText(("Connected: " if ok else "") + text)
        self.result.setProperty("ok", ok)
