"""The thumbnail grid: a QListView in icon mode over GalleryModel, painted by a small delegate."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QImage, QPainter, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from sdstudio.ui.gallery_model import GalleryModel

CELL = 136  # px per grid cell; thumbnails are scaled to fit CELL - 2 * MARGIN
MARGIN = 4
THUMB = CELL - 2 * MARGIN


class ThumbnailDelegate(QStyledItemDelegate):
    """Paints a cell: the thumbnail (or a placeholder while it loads), a star for favourites."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        painter.save()
        box = option.rect.adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN)
        palette = option.palette
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, palette.highlight())
        # The model is asked directly, not through index.data(): no QVariant round trip per
        # cell, and none of PySide6 6.12's None refcount bug on Python 3.11 (pyproject pins
        # it out; it aborted Python after a few thousand paints).
        model = index.model()
        image = model.image_at(index.row()) if isinstance(model, GalleryModel) else None
        thumb = model.thumbnails.get(image) if image is not None else None
        if isinstance(thumb, QImage) and not thumb.isNull():
            size = thumb.size()
            if size.width() > box.width() or size.height() > box.height():
                size = size.scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(box.topLeft(), size)
            target.moveCenter(box.center())
            painter.drawImage(target, thumb)
        else:
            painter.fillRect(box, palette.alternateBase())
            if isinstance(thumb, QImage):  # read, but not an image
                painter.setPen(palette.placeholderText().color())
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter, "unreadable")
        if image is not None and image.favourite:
            painter.setPen(Qt.GlobalColor.yellow)
            font = painter.font()
            font.setPointSizeF(font.pointSizeF() * 1.4)
            painter.setFont(font)
            painter.drawText(box.adjusted(4, 2, -4, -2), Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight, "★")
        painter.restore()

    def sizeHint(self, _option: QStyleOptionViewItem, _index: QModelIndex | QPersistentModelIndex) -> QSize:
        view = self.parent()
        return view.gridSize() if isinstance(view, QListView) else QSize(CELL, CELL)


class GalleryGrid(QListView):
    """Only the cells on screen are painted and only their thumbnails are asked for."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setGridSize(QSize(CELL, CELL))
        self.setSpacing(0)
        self.setWrapping(True)
        # The grid lays its cells out over several event loop turns (on opening, and again
        # when saved images are inserted at the top); 500 cells take ~8 ms of the UI thread,
        # 2000 took ~30 ms (bench_history).
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(CELL // 3)
        self.setItemDelegate(ThumbnailDelegate(self))
        self.setAccessibleName("History images")

    def resizeEvent(self, event: QResizeEvent) -> None:
        # Cells widen a little so the columns fill the width instead of leaving a gap.
        width = self.viewport().width() - 2  # the view wraps a row that fills it exactly
        side = width // max(1, width // CELL) if width >= CELL else CELL
        if side != self.gridSize().width():
            self.setGridSize(QSize(side, side))
        super().resizeEvent(event)
