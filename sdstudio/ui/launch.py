"""Qt start-up helpers for the composition root (`app.py`): the QApplication and a hook
for "the window is on screen", so the backend starts only after the first paint.

Nothing here imports torch or diffusers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget


class _ExposeWatcher(QObject):
    """Calls `callback` once, on the event loop turn after the window first reaches the screen."""

    def __init__(self, callback: Callable[[], None], parent: QObject) -> None:
        super().__init__(parent)
        self._callback = callback

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Expose and watched.isExposed():
            watched.removeEventFilter(self)
            # The expose paints the window; start after that paint, not before it.
            QTimer.singleShot(0, self._callback)
        return False


def when_exposed(window: QWidget, callback: Callable[[], None]) -> None:
    """Run `callback` once `window` (shown already) is on screen."""
    handle = window.windowHandle()
    handle.installEventFilter(_ExposeWatcher(callback, handle))


def create_app(qt_args: list[str]) -> QApplication:
    from sdstudio.ui.theme import follow_platform_theme

    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("sdstudio")
    app.setApplicationDisplayName("SD Studio")
    follow_platform_theme(app)
    return app
