"""Thumbnails for the gallery grid, read off the UI thread and kept in a small LRU cache.

Requests are served newest first (the cells on screen now), and a bounded queue drops the
oldest ones, so fast scrolling never piles up work for cells long gone. One worker is the
default: a 128 px JPEG decodes in ~0.2 ms, and a second thread only competes with the UI
thread for the GIL (bench_history: higher p99 stall with two).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader

from sdstudio.engine.request import MAX_IMAGE_SIDE
from sdstudio.history import HistoryImage, HistoryStore


def read_scaled(path: Path | str, bound: QSize) -> QImage:
    """Decode an image file scaled to fit `bound` (null QImage when unreadable)."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and (size.width() > bound.width() or size.height() > bound.height()):
        reader.setScaledSize(size.scaled(bound, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    return image if not image.isNull() else QImage()


class ThumbnailLoader(QObject):
    """Gives cached thumbnails at once and loads missing ones in worker threads."""

    # (list of image ids): their requested thumbnails are now cached; UI thread, batched so
    # a burst of reads costs the UI one update rather than one per thumbnail.
    loaded = Signal(list)
    # (): a worker finished reads since the last hop; internal, worker -> UI thread.
    _read = Signal()

    def __init__(
        self, store: HistoryStore, size: int, cache_size: int = 600, threads: int = 1, queue_size: int = 256
    ) -> None:
        super().__init__()
        self.store = store
        self.bound = QSize(size, size)
        self._cache: OrderedDict[int, QImage] = OrderedDict()
        self._cache_size = cache_size
        self._queue: deque[HistoryImage] = deque()
        self._queue_size = queue_size
        self._pending: set[int] = set()
        self._done: list[tuple[int, QImage]] = []  # read by a worker, not yet cached
        self._wake = threading.Condition()
        self._closed = False
        self._read.connect(self._take_reads, Qt.ConnectionType.QueuedConnection)
        self._workers = [threading.Thread(target=self._work, name=f"thumbnails-{i}", daemon=True) for i in range(threads)]
        for worker in self._workers:
            worker.start()

    def get(self, image: HistoryImage) -> QImage | None:
        """The thumbnail if cached; else None, and `loaded` fires once it is read."""
        cached = self._cache.get(image.id)
        if cached is not None:
            self._cache.move_to_end(image.id)
            return cached
        with self._wake:
            if image.id not in self._pending:
                self._pending.add(image.id)
                self._queue.append(image)
                if len(self._queue) > self._queue_size:
                    self._pending.discard(self._queue.popleft().id)
                self._wake.notify()
        return None

    def forget(self, image_id: int) -> None:
        """Drop a cached thumbnail (e.g. its image was deleted for good)."""
        self._cache.pop(image_id, None)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._queue.clear()
            self._wake.notify_all()
        for worker in self._workers:
            worker.join(timeout=5)

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                image = self._queue.pop()  # newest request first: the cells on screen now
            try:
                path = self.store.thumbnail_path(image)
                thumb = read_scaled(path, self.bound) if path is not None else QImage()
            except Exception:  # noqa: BLE001 - one bad file shows as "unreadable", the loader goes on
                thumb = QImage()
            with self._wake:
                self._done.append((image.id, thumb))
                first = len(self._done) == 1
            if first:  # one hop per batch: later reads join the list until the UI takes it
                self._read.emit()

    def _take_reads(self) -> None:
        with self._wake:
            done, self._done = self._done, []
            for image_id, _thumb in done:
                self._pending.discard(image_id)
        for image_id, thumb in done:
            self._cache[image_id] = thumb
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        if done:
            self.loaded.emit([image_id for image_id, _thumb in done])


class FullImageLoader(QObject):
    """Reads one image at its own size (for the large viewer, where 100 % must be the file's
    pixels) and a copy scaled to fit a pane, both on the global thread pool."""

    # (request number, full picture, picture scaled to the pane's bound); UI thread.
    ready = Signal(int, QImage, QImage)

    def __init__(self) -> None:
        super().__init__()
        self._latest = 0

    def load(self, path: Path, pane: QSize) -> int:
        """Start reading `path`; returns the number `ready` will carry."""
        self._latest += 1
        ticket = self._latest
        emit: Callable[[int, QImage, QImage], None] = self.ready.emit

        def read() -> None:
            picture = read_scaled(path, QSize(MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
            fitted = picture
            if picture.width() > pane.width() or picture.height() > pane.height():
                fitted = picture.scaled(pane, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
            try:
                emit(ticket, picture, fitted)
            except RuntimeError:  # the pane was closed while the file was read
                pass

        QThreadPool.globalInstance().start(read)
        return ticket
