"""Dropping an image file anywhere on the window reads its parameters into the panels.

An application-wide event filter, so a drop on the prompt box or a dock is caught before
a text field pastes the file's path; widgets that take images themselves (the canvas)
are left their drops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

from sdstudio.history.layout import IMAGE_SUFFIXES
from sdstudio.history.metadata import fields_from_file


def dropped_image(event: QDragEnterEvent | QDropEvent) -> str | None:
    """The local image file being dragged, if it is one (a single PNG/JPEG/WebP)."""
    urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
    if len(urls) != 1 or not urls[0].isLocalFile():
        return None
    path = urls[0].toLocalFile()
    return path if path.lower().endswith(IMAGE_SUFFIXES) else None


class ParameterDropFilter(QObject):
    """Installed on the application; handles image drops over `window` (outside `skip`)."""

    def __init__(
        self,
        window: QWidget,
        apply: Callable[[dict[str, Any]], None],
        notify: Callable[[str], None],
        skip: Callable[[QWidget], bool] = lambda _widget: False,
    ) -> None:
        super().__init__(window)
        self._window, self._apply, self._notify, self._skip = window, apply, notify, skip
        window.setAcceptDrops(True)  # else Qt sends no drag events over plain widgets at all
        QApplication.instance().installEventFilter(self)
        window.destroyed.connect(lambda: QApplication.instance().removeEventFilter(self))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind not in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            return False
        if not isinstance(watched, QWidget) or watched.window() is not self._window or self._skip(watched):
            return False
        path = dropped_image(event)  # type: ignore[arg-type]
        if path is None:
            return False
        event.acceptProposedAction()  # type: ignore[attr-defined]
        if kind == QEvent.Type.Drop:
            self.read(path)
        return True

    def read(self, path: str) -> None:
        """Load the parameters of the image at `path` into the panels, or say why not."""
        fields, reason = fields_from_file(path)
        if fields is None:
            self._notify(reason)
            return
        self._apply(fields)
