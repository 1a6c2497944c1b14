"""Open the studio window: Qt + qasync first, the window on screen, the engine after.

Nothing here imports torch or diffusers: the engine's worker thread does that once the
window has been exposed, so the person sees the studio at once and the status bar tells
them the engine and model are loading.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

if TYPE_CHECKING:
    from sdstudio.engine.runner import Engine
    from sdstudio.ui.main_window import MainWindow


def parse_args(args: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="sdstudio", description="SD Studio: a desktop studio for Stable Diffusion.")
    parser.add_argument("--model", help='model to open: "builtin", a diffusers folder, a .safetensors file or a hub id')
    parser.add_argument("--settings", help="settings file to use (default: in the user's config folder)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--dtype", help="float16, bfloat16 or float32 (default: by device)")
    parser.add_argument(
        "--history", help="history folder (default: beside --settings when given, else in the user's data folder)"
    )
    return parser.parse_known_args(args)


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


@dataclass
class Studio:
    """A started studio: the window is showing and the engine starts once it is exposed."""

    app: QApplication
    loop: asyncio.AbstractEventLoop
    window: MainWindow
    engines: list[Engine] = field(default_factory=list)

    def shutdown(self) -> None:
        for engine in self.engines:
            engine.shutdown(wait=True)


def open_studio(args: list[str]) -> Studio:
    """Parse `args`, make the app and its qasync loop, show the window; no heavy import."""
    import qasync

    from sdstudio.settings import SettingsStore
    from sdstudio.ui.canvas_panel import install_canvas
    from sdstudio.ui.errors import route_unexpected
    from sdstudio.ui.history_dock import install_history
    from sdstudio.ui.main_window import MainWindow

    options, qt_args = parse_args(args)
    app = create_app(qt_args)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    engines: list[Engine] = []

    def make_engine() -> Engine:
        from sdstudio.engine.runner import Engine

        engines.append(Engine(device=options.device, dtype=options.dtype))
        return engines[-1]

    window = MainWindow(SettingsStore(options.settings), make_engine, startup_model=options.model)
    route_unexpected(window.report, loop)
    install_canvas(window)
    # A separate settings file is a separate profile: its history sits beside it.
    beside_settings = Path(options.settings).parent / "history" if options.settings else None
    install_history(window, options.history or beside_settings)
    window.show()
    when_exposed(window, window.start)
    return Studio(app, loop, window, engines)


def run_window(args: list[str]) -> int:
    studio = open_studio(args)
    try:
        with studio.loop:
            studio.loop.run_forever()
    finally:
        studio.shutdown()
    return 0
