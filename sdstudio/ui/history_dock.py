"""The history in the studio window: every finished image is saved (off the UI thread) and
appears at the top of the gallery dock; the gallery's actions reach the panels and canvas;
an image file dropped on the window fills the panels with its parameters.

`install_history(window)` is the one call the window needs (see launch.py).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QWidget

from sdstudio.engine.request import Finished, GenerationRequest, Mode, ModelInfo
from sdstudio.history import HistoryError, HistoryImage, HistoryStore
from sdstudio.ui.errors import Level
from sdstudio.ui.gallery import GalleryWidget
from sdstudio.ui.history_drop import ParameterDropFilter

if TYPE_CHECKING:
    from sdstudio.ui.main_window import MainWindow


class HistorySaver(QObject):
    """Saves finished jobs on one worker thread, in the order they finished."""

    # (list of HistoryImage): one job's images are on disk and indexed; UI thread.
    saved = Signal(list)
    # (message for a person): a job's images could not be saved; UI thread.
    failed = Signal(str)

    def __init__(self, store: HistoryStore) -> None:
        super().__init__()
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-save")

    def save(self, request: GenerationRequest, finished: Finished, model: ModelInfo | None, parent_id: int | None) -> Future:
        future = self._pool.submit(self.store.save_finished, request, finished, model, parent_id)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future) -> None:
        error = future.exception()
        if error is None:
            self.saved.emit(future.result())
        elif isinstance(error, HistoryError):
            self.failed.emit(str(error))
        else:
            self.failed.emit(f"Could not save the images to the history: {error}")

    def close(self) -> None:
        """Finish the saves under way (never drop a finished image), then stop."""
        self._pool.shutdown(wait=True)


class HistoryPanel(QObject):
    """Owns the store, the gallery dock and the saver for one window."""

    def __init__(self, window: MainWindow, store: HistoryStore) -> None:
        super().__init__(window)
        self.window = window
        self.store = store
        self.gallery = GalleryWidget(store)
        # The gallery needs height more than width: its dock takes the window's right edge
        # from top to bottom, beside the prompt rather than under it.
        window.setCorner(Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.dock = window.add_dock(self.gallery, "History", Qt.DockWidgetArea.RightDockWidgetArea)
        self.saver = HistorySaver(store)
        # The gallery image last sent to img2img / inpaint: the parent of what is made from it.
        self._parent: HistoryImage | None = None
        self.drops = ParameterDropFilter(window, self.reuse, self._notice, skip=self._takes_images)
        window.controller.job_finished.connect(self.save)
        self.saver.saved.connect(self.gallery.add_images)
        self.saver.failed.connect(window.report)
        self.gallery.problem.connect(window.report)
        self.gallery.reuse_fields.connect(self.reuse)
        self.gallery.reuse_seed.connect(lambda seed: window.apply_fields({"seed": seed}))
        self.gallery.send_to_img2img.connect(self.send_to_img2img)
        self.gallery.send_to_inpaint.connect(self.send_to_inpaint)
        QApplication.instance().aboutToQuit.connect(self.close)

    def save(self, request: GenerationRequest, finished: Finished, model: ModelInfo | None) -> None:
        parent = self._parent
        from_parent = (
            parent is not None
            and request.mode is not Mode.TXT2IMG
            and request.init_image is not None
            and request.init_image.size == (parent.width, parent.height)
        )
        self.saver.save(request, finished, model, parent.id if from_parent and parent else None)

    def reuse(self, fields: dict) -> None:
        """Fill the prompt and parameter panels (mode included) from an image's fields."""
        self.window.apply_fields(fields)

    def send_to_img2img(self, path: str, image_id: int) -> None:
        self._parent = self.store.get(image_id)
        self.window.open_init_image(path)
        self.window.apply_fields({"mode": Mode.IMG2IMG})

    def send_to_inpaint(self, path: str, image_id: int) -> None:
        self._parent = self.store.get(image_id)
        canvas = getattr(self.window, "canvas", None)
        if canvas is not None and canvas.open_file(path):
            self.window.apply_fields({"mode": Mode.INPAINT})
            if self.window.center.indexOf(canvas) >= 0:
                self.window.center.setCurrentWidget(canvas)
            return
        self.window.open_init_image(path)
        self.window.apply_fields({"mode": Mode.INPAINT})

    def close(self) -> None:
        self.saver.close()
        self.gallery.close_loader()
        self.store.close()

    def _notice(self, message: str) -> None:
        self.window.report(message, level=Level.WARNING)

    def _takes_images(self, widget: QWidget) -> bool:
        canvas = getattr(self.window, "canvas", None)
        return canvas is not None and (widget is canvas or canvas.isAncestorOf(widget))


def install_history(window: MainWindow, root: Path | str | None = None) -> HistoryPanel | None:
    """Open the history (default: the user's data folder) and put its gallery in `window`.
    A history that cannot be opened is reported and left out; the studio still works."""
    try:
        store = HistoryStore.open(root)
    except HistoryError as exc:
        window.report(exc)
        return None
    for notice in store.notices:
        window.report(notice, level=Level.WARNING)
    return HistoryPanel(window, store)
