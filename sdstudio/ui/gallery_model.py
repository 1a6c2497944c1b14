"""The gallery's list model: one row per history image, newest first.

The ids of the whole filtered list are read at once (10,000 ints take milliseconds), so
the row count and the scroll bar are right from the start; the rows themselves are
read from the store a page at a time when the view first asks for them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from sdstudio.history import HistoryImage, HistoryStore, Query
from sdstudio.ui.gallery_thumbs import ThumbnailLoader

PAGE = 48
_Index = QModelIndex | QPersistentModelIndex


class GalleryModel(QAbstractListModel):
    """Python code reads rows with `image_at(row)` rather than `index.data()` (see gallery_view.py)."""

    def __init__(self, store: HistoryStore, thumbnails: ThumbnailLoader, max_pages: int = 40) -> None:
        super().__init__()
        self.store = store
        self.thumbnails = thumbnails
        self.query = Query()
        self._ids: list[int] = []
        self._row_of: dict[int, int] | None = None
        self._pages: OrderedDict[int, dict[int, HistoryImage]] = OrderedDict()
        self._max_pages = max_pages
        thumbnails.loaded.connect(self._thumbnails_loaded)

    # ---- Qt model ----------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._ids)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._ids):
            return None
        image = self.image_at(index.row())
        if image is None:
            return None
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.get(image)
        if role == Qt.ItemDataRole.ToolTipRole:
            seed = f"\nSeed {image.seed}" if image.seed is not None else ""
            return (image.prompt[:300] or "(no prompt)") + seed
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return image.prompt[:100] or "image without parameters"
        return None

    # ---- reading -----------------------------------------------------------------------

    def set_query(self, query: Query) -> None:
        self.beginResetModel()
        self.query = query
        self._ids = self.store.ids(query)
        self._row_of = None
        self._pages.clear()
        self.endResetModel()

    def reload(self) -> None:
        self.set_query(self.query)

    def image_at(self, row: int) -> HistoryImage | None:
        if not 0 <= row < len(self._ids):
            return None
        number = row // PAGE
        page = self._pages.get(number)
        if page is None:
            page = self.store.get_many(self._ids[number * PAGE : (number + 1) * PAGE])
            self._pages[number] = page
            if len(self._pages) > self._max_pages:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(number)
        return page.get(self._ids[row])

    def row_of(self, image_id: int) -> int | None:
        if self._row_of is None:
            self._row_of = {image_id: row for row, image_id in enumerate(self._ids)}
        return self._row_of.get(image_id)

    # ---- changes -----------------------------------------------------------------------

    def add_new(self, images: list[HistoryImage]) -> None:
        """New images just saved: shown at the top when the current filter is the plain list."""
        if self.query != Query():
            self.reload()
            return
        fresh = [i for i in reversed(images) if self.row_of(i.id) is None]  # newest first
        if not fresh:
            return
        self.beginInsertRows(QModelIndex(), 0, len(fresh) - 1)
        self._ids[:0] = [i.id for i in fresh]
        self._row_of = None
        self._pages.clear()  # page boundaries moved
        self.endInsertRows()

    def remove(self, image_ids: list[int]) -> None:
        for image_id in image_ids:
            row = self.row_of(image_id)
            if row is None:
                continue
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._ids[row]
            self._row_of = None
            self._pages.clear()
            self.endRemoveRows()

    def refresh(self, image_id: int) -> None:
        """The row's record changed in the store (e.g. favourite)."""
        row = self.row_of(image_id)
        if row is None:
            return
        number = row // PAGE
        if number in self._pages:
            fresh = self.store.get(image_id)
            if fresh is not None:
                self._pages[number][image_id] = fresh
        index = self.index(row)
        self.dataChanged.emit(index, index)

    def _thumbnails_loaded(self, image_ids: list[int]) -> None:
        rows = [row for i in image_ids if (row := self.row_of(i)) is not None]
        if rows:
            self.dataChanged.emit(self.index(min(rows)), self.index(max(rows)), [Qt.ItemDataRole.DecorationRole])
