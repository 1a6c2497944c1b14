"""The history in the studio window: every finished image is saved (off the UI thread) and
appears at the top of the gallery dock; the gallery's actions reach the panels and canvas;
an image file dropped on the window fills the panels with its parameters.

`install_history(window)` is the one call the window needs (see app.py).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from sdstudio.engine.events import ErrorKind, Finished, ResultImage
from sdstudio.engine.request import Mode, ModelRef
from sdstudio.history import HistoryError, HistoryImage, HistoryStore
from sdstudio.ui.errors import Level
from sdstudio.ui.gallery import GalleryWidget
from sdstudio.ui.history_drop import ParameterDropFilter
from sdstudio.ui.upscale_menu import file_order

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
        # Each saved result's file, while the result lives (the window may upscale it).
        self.files: weakref.WeakKeyDictionary[ResultImage, str] = weakref.WeakKeyDictionary()
        # Each result given to save(), to the save that writes it (done or not).
        self.saves: weakref.WeakKeyDictionary[ResultImage, Future] = weakref.WeakKeyDictionary()

    def save(self, finished: Finished) -> Future:
        future = self._pool.submit(self._save, finished)
        future.add_done_callback(self._done)
        for result in finished.results:
            self.saves[result] = future
        return future

    def _save(self, finished: Finished) -> list[HistoryImage]:
        images = self.store.save_finished(finished)
        for result, image in zip(finished.results, images, strict=True):
            self.files[result] = image.file
        return images

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
    """Owns the store, the gallery dock and the saver for one window.

    The store opens in a thread (a first start after a lost index re-reads every PNG):
    the dock says "Opening the history…" meanwhile, and jobs that finish before it is
    open are saved as soon as it is.
    """

    # (HistoryStore, or the HistoryError that stopped it): the store finished opening.
    opened = Signal(object)

    def __init__(self, window: MainWindow, root: Path | str | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.store: HistoryStore | None = None
        self.gallery: GalleryWidget | None = None
        self.saver: HistorySaver | None = None
        self._waiting: list[Finished] = []
        # Lineage asked of results still being saved: (result, its save, who asked).
        self._awaiting: list[tuple[ResultImage, Future, Callable[[str | None], None]]] = []
        self._failed = False
        self._closed = False
        placeholder = QLabel("Opening the history…")
        placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # The gallery needs height more than width: its dock takes the window's right edge
        # from top to bottom, beside the prompt rather than under it.
        window.setCorner(Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.dock = window.add_dock(placeholder, "History", Qt.DockWidgetArea.RightDockWidgetArea)
        if not window.settings.window_state:  # first start: the layout with the history in it
            window.reset_layout()
        self.drops = ParameterDropFilter(window, self.reuse, self._notice, skip=self._takes_images)
        window.controller.job_finished.connect(self.save)
        QApplication.instance().aboutToQuit.connect(self.close)
        self.opened.connect(self._opened, Qt.ConnectionType.QueuedConnection)
        threading.Thread(target=self._open, args=(root,), name="history-open", daemon=True).start()

    def _open(self, root: Path | str | None) -> None:
        try:
            result: HistoryStore | HistoryError = HistoryStore.open(root)
        except HistoryError as exc:
            result = exc
        except Exception as exc:  # noqa: BLE001 - a thread's failure must still reach the person
            result = HistoryError(f"Could not open the history: {exc}", ErrorKind.INTERNAL)
        try:
            self.opened.emit(result)
        except RuntimeError:  # the window is gone already
            if isinstance(result, HistoryStore):
                result.close()

    def _opened(self, result: HistoryStore | HistoryError) -> None:
        if self._closed:
            if isinstance(result, HistoryStore):
                result.close()
            return
        if isinstance(result, HistoryError):
            self._failed = True
            self.dock.widget().setText(f"The history is not available:\n{result}")
            self.window.report(f"{result} Finished images are not kept in the history this session.")
            self._waiting.clear()
            return
        self.store = store = result
        for notice in store.notices:
            self.window.report(notice, level=Level.WARNING)
        self.gallery = gallery = GalleryWidget(store)
        self.dock.setWidget(gallery)
        self.saver = HistorySaver(store)
        self.saver.saved.connect(self._show_saved)
        self.saver.failed.connect(self.window.report)
        for ended in (self.saver.saved, self.saver.failed):
            ended.connect(lambda *_args: self._answer_awaiting())
        gallery.problem.connect(self.window.report)
        gallery.reuse_fields.connect(self._reuse_shown)
        gallery.reuse_seed.connect(lambda seed: self.window.apply_fields({"seed": seed}))
        gallery.send_to_img2img.connect(self.send_to_img2img)
        gallery.send_to_inpaint.connect(self.send_to_inpaint)
        gallery.upscale.connect(self.upscale)
        gallery.upscalers = self.window.results.upscalers
        self.window.lineage_of = self._lineage_of
        # Tab goes on from the image in the centre to the history: search, filters, the grid.
        chain = [self.window.results.view, gallery.search, gallery.favourites, gallery.grouping, gallery.groups, gallery.trash_view, gallery.grid]
        for before, after in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(before, after)
        # The selected image shows in the large viewer too (arrow keys in the grid step on).
        gallery.show_large.connect(
            lambda image, path, picture: self.window.results.show_file(picture, path, image.seed, image.parameters or "")
        )
        for finished in self._waiting:
            self.saver.save(finished)
        self._waiting.clear()

    def _show_saved(self, images: list[HistoryImage]) -> None:
        # A save finished on the worker can be delivered after close() shut the index.
        if self.gallery is not None and not self._closed:
            self.gallery.add_images(images)

    def save(self, finished: Finished) -> None:
        """Save a finished job; its parent is named by its request's lineage (see
        `MainWindow.set_input_source`), never guessed here."""
        if self.saver is not None:
            self.saver.save(finished)
        elif not self._failed:
            self._waiting.append(finished)

    def reuse(self, fields: dict) -> None:
        """Fill the prompt and parameter panels (mode included) from an image's fields, and
        say so when the image was made with another model than the one loaded."""
        self.window.apply_fields(fields)
        self.window.parameters_reused.emit(fields)
        made_with, loaded = fields.get("model"), self.window.controller.model_ref
        if isinstance(made_with, ModelRef) and loaded is not None and made_with.source != loaded.source:
            self.window.report(
                f"This image was made with the model {made_with.name}; {loaded.name} is loaded "
                "(Model menu to switch).",
                level=Level.INFO,
            )

    def _reuse_shown(self, fields: dict) -> None:
        """"Reuse parameters" in the gallery: the fields, and for img2img / inpaint the kept
        init image (and mask, on the canvas), so the image can be made again exactly."""
        self.reuse(fields)
        image = self.gallery.details.image if self.gallery else None
        if self.store is None or image is None or not image.init_file or image.mode not in ("img2img", "inpaint"):
            return
        init = self.store.root / image.init_file
        canvas = self.window.canvas
        if image.mode == "inpaint" and image.mask_file and canvas is not None and canvas.open_file(init):
            from PIL import Image as PILImage

            with PILImage.open(self.store.root / image.mask_file) as mask:
                canvas.set_mask(mask.convert("L"))
        else:
            self.window.open_init_image(str(init))
        # Made again from the same init image: the same parent as the image reused.
        self.window.set_input_source(self._file_of(image.parent_id) if image.parent_id else None)
        self.window.apply_fields({"mode": Mode(image.mode)})

    def send_to_img2img(self, path: str, image_id: int) -> None:
        self.window.open_init_image(path)
        self.window.set_input_source(self._file_of(image_id))
        self.window.apply_fields({"mode": Mode.IMG2IMG})

    def send_to_inpaint(self, path: str, image_id: int) -> None:
        canvas = self.window.canvas
        if canvas is not None and canvas.open_file(path):
            self.window.set_input_source(self._file_of(image_id))
            self.window.apply_fields({"mode": Mode.INPAINT})
            self.window.center.setCurrentWidget(canvas)
            return
        self.window.open_init_image(path)
        self.window.set_input_source(self._file_of(image_id))
        self.window.apply_fields({"mode": Mode.INPAINT})

    def upscale(self, path: str, image_id: int, scale: float, upscaler: str) -> None:
        """Upscale a history image; the result is saved as its child."""
        try:
            order = file_order(Path(path), scale, upscaler, self._file_of(image_id))
        except OSError as exc:
            self.window.report(f"Could not read the picture to upscale: {exc}")
            return
        self.window.upscale(order)

    def _lineage_of(self, picture: ResultImage | Path, then: Callable[[str | None], None]) -> None:
        """then(lineage id): a result's file once its save has ended (a result upscaled right
        after it finished still gets its parent), or a file of this history by its path."""
        if isinstance(picture, ResultImage):
            save = self.saver.saves.get(picture) if self.saver is not None else None
            if save is None:
                then(None)  # never given to this history
            else:
                self._awaiting.append((picture, save, then))
                self._answer_awaiting()
            return
        if self.store is None:
            then(None)
            return
        try:
            then(Path(picture).resolve().relative_to(self.store.root.resolve()).as_posix())
        except ValueError:
            then(None)

    def _answer_awaiting(self) -> None:
        """Answer the lineage asked of results whose save has ended (UI thread)."""
        waiting, self._awaiting = self._awaiting, []
        for picture, save, then in waiting:
            if save.done():
                then(self.saver.files.get(picture) if self.saver is not None else None)
            else:
                self._awaiting.append((picture, save, then))

    def _file_of(self, image_id: int) -> str | None:
        """The lineage id of a history image: its file, stable across index rebuilds."""
        image = self.store.get(image_id) if self.store else None
        return image.file if image else None

    def close(self) -> None:
        """Finish pending saves, stop the thumbnail thread, close the index."""
        self._closed = True
        if self.saver is not None:
            self.saver.close()
        if self.gallery is not None:
            self.gallery.close_loader()
        if self.store is not None:
            self.store.close()
        self.saver = self.gallery = self.store = None

    def _notice(self, message: str) -> None:
        self.window.report(message, level=Level.WARNING)

    def _takes_images(self, widget: QWidget) -> bool:
        canvas = self.window.canvas
        return canvas is not None and (widget is canvas or canvas.isAncestorOf(widget))


def install_history(window: MainWindow, root: Path | str | None = None) -> HistoryPanel:
    """Put the history (default: the user's data folder) into `window`: its gallery dock,
    saving every finished job, and image drops. A history that cannot be opened is
    reported; the studio works on without it."""
    return HistoryPanel(window, root)
