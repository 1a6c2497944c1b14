"""The history gallery: search, favourites, grouping, the thumbnail grid and the details pane.

It talks to the rest of the window only through its signals (reuse, send to img2img /
inpaint, problems), which the window wiring connects (see history_dock.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QItemSelection, QPoint, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QDesktopServices,
    QGuiApplication,
    QImage,
    QImageReader,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sdstudio.history import GroupBy, HistoryError, HistoryImage, HistoryStore, Query
from sdstudio.ui.gallery_details import DetailsPane
from sdstudio.ui.gallery_model import GalleryModel
from sdstudio.ui.gallery_thumbs import ThumbnailLoader
from sdstudio.ui.gallery_view import THUMB, GalleryGrid
from sdstudio.ui.shortcuts import scoped_action
from sdstudio.ui.upscale_menu import UpscalerList, upscale_menu

SEARCH_DELAY_MS = 200
GROUPS_SHOWN = 300  # the newest days / prompts offered; older ones are reached by search
ALL = "\x00all"  # the groups combo's "All days / All prompts" entry (a prompt may be "")
# Item data is never None, so an empty QVariant never comes back to Python (see gallery_view).
_GROUPINGS = (("All images", ""), ("By day", GroupBy.DAY.value), ("By prompt", GroupBy.PROMPT.value))


class GalleryWidget(QWidget):
    # (dict of GenerationRequest fields): "Reuse parameters" was pressed for the image shown
    # in the details pane (`details.image`).
    reuse_fields = Signal(dict)
    # (seed): "Reuse seed" was pressed.
    reuse_seed = Signal(int)
    # (image file path, image id): "To img2img" was pressed; the window makes it the init image.
    send_to_img2img = Signal(str, int)
    # (image file path, image id): "To inpaint" was pressed; the window opens it on the canvas.
    send_to_inpaint = Signal(str, int)
    # (image file path, image id, factor, upscaler): "Upscale ×2 / ×4" was chosen.
    upscale = Signal(str, int, float, str)
    # (message for a person): something failed (disk, clipboard); the window reports it.
    problem = Signal(str)
    # (HistoryImage, its file Path, the full QImage): the selected image, to show it large.
    show_large = Signal(object, object, QImage)

    def __init__(self, store: HistoryStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.thumbnails = ThumbnailLoader(store, THUMB)
        self.model = GalleryModel(store, self.thumbnails)
        self.confirm: Callable[[str], bool] = self._ask
        self.upscalers: UpscalerList = lambda: ()  # the window names the backend's models
        self._undo: list[list[int]] = []  # ids moved to the trash, newest last

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search prompts…")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search prompts")
        self.favourites = _toggle("★", "Only favourites")
        self.grouping = QComboBox()
        for label, by in _GROUPINGS:
            self.grouping.addItem(label, by)
        self.groups = QComboBox()
        self.groups.setMinimumContentsLength(12)
        self.groups.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.groups.hide()
        self.trash_view = _toggle("Trash", "Show the trash (restore or empty it)")
        self.empty_trash = QPushButton("Empty trash…")
        self.empty_trash.hide()
        self.grid = GalleryGrid()
        self.grid.setModel(self.model)
        self.details = DetailsPane()
        self.count = QLabel()
        self.undo_label = QLabel()
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Bring the deleted images back (Ctrl+Z)")

        tools = QHBoxLayout()
        tools.addWidget(self.search, 1)
        for widget in (self.favourites, self.grouping, self.groups, self.trash_view):
            tools.addWidget(widget)
        undo_row = QHBoxLayout()
        undo_row.addWidget(self.undo_label, 1)
        undo_row.addWidget(self.undo_button)
        self.undo_bar = QWidget()
        self.undo_bar.setLayout(undo_row)
        self.undo_bar.hide()
        self.split = split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.grid)
        split.addWidget(self.details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        self._sized = False
        footer = QHBoxLayout()
        footer.addWidget(self.count, 1)
        footer.addWidget(self.empty_trash)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 4, 4, 4)
        column.addLayout(tools)
        column.addWidget(split, 1)
        column.addWidget(self.undo_bar)
        column.addLayout(footer)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._connect()
        self.apply_filters()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._sized:  # the grid gets most of the height at first; the splitter moves
            self._sized = True
            height = max(self.split.height(), 400)
            self.split.setSizes([height * 3 // 5, height * 2 // 5])

    # ---- filters -----------------------------------------------------------------------

    def grouped_by(self) -> GroupBy | None:
        data = self.grouping.currentData()
        return GroupBy(data) if data else None

    def query(self) -> Query:
        by = self.grouped_by()
        data = self.groups.currentData()
        key = data if by is not None and data != ALL else None
        return Query(
            text=self.search.text(),
            favourites=self.favourites.isChecked(),
            day=key if by is GroupBy.DAY else None,
            prompt=key if by is GroupBy.PROMPT else None,
            trashed=self.trash_view.isChecked(),
        )

    def apply_filters(self) -> None:
        self._search_timer.stop()
        self.model.set_query(self.query())
        self.apply_counts()
        self.empty_trash.setVisible(self.trash_view.isChecked())
        self.empty_trash.setEnabled(self.trash_view.isChecked() and self.model.rowCount() > 0)
        self._selection_changed()

    def _grouping_changed(self) -> None:
        by = self.grouped_by()
        self.groups.blockSignals(True)
        self.groups.clear()
        if by is not None:
            self.groups.addItem("All days" if by is GroupBy.DAY else "All prompts", ALL)
            base = Query(favourites=self.favourites.isChecked(), trashed=self.trash_view.isChecked())
            for group in self.store.groups(by, base, limit=GROUPS_SHOWN):
                label = group.key if by is GroupBy.DAY else _short(group.key or "(no prompt)")
                self.groups.addItem(f"{label} ({group.count})", group.key)
                self.groups.setItemData(self.groups.count() - 1, group.key, Qt.ItemDataRole.ToolTipRole)
        self.groups.blockSignals(False)
        self.groups.setVisible(by is not None)
        self.apply_filters()

    # ---- new images --------------------------------------------------------------------

    def add_images(self, images: list[HistoryImage]) -> None:
        """Images just saved by the window: shown at the top."""
        if self.trash_view.isChecked():
            return
        self.model.add_new(images)
        self.apply_counts()

    # ---- the selected image ------------------------------------------------------------

    def selected_images(self) -> list[HistoryImage]:
        rows = sorted(i.row() for i in self.grid.selectionModel().selectedIndexes())
        return [img for row in rows if (img := self.model.image_at(row)) is not None]

    def select_row(self, row: int) -> None:
        self.grid.setCurrentIndex(self.model.index(row))

    def _selection_changed(self, *_: QItemSelection) -> None:
        index = self.grid.currentIndex()
        selected = index.isValid() and self.grid.selectionModel().isSelected(index)
        image = self.model.image_at(index.row()) if selected else None
        if image is None:
            self.details.show_image(None, None)
            return
        self.details.show_image(image, self.store.path(image), self.thumbnails.get(image))

    def _picture_ready(self, picture: QImage) -> None:
        image = self.details.image
        if image is not None:
            self.show_large.emit(image, self.store.path(image), picture)

    def _context_menu(self, pos: QPoint) -> None:
        """The details pane's actions, for the image under the pointer."""
        index = self.grid.indexAt(pos)
        if not index.isValid():
            return
        if not self.grid.selectionModel().isSelected(index):
            self.grid.setCurrentIndex(index)
        self.context_menu().exec(self.grid.viewport().mapToGlobal(pos))

    def context_menu(self) -> QMenu:
        """The details pane's actions and "Upscale" for the image shown there."""
        menu = QMenu(self)
        for name, button in self.details.buttons.items():
            if button.isVisibleTo(self.details) and button.isEnabled():
                menu.addAction(button.text(), lambda name=name: self._act(name))
        image = self.details.image
        if image is not None and not self.trash_view.isChecked():
            path = str(self.store.path(image))
            menu.addMenu(upscale_menu(menu, self.upscalers(), lambda scale, name: self.upscale.emit(path, image.id, scale, name)))
        return menu

    def _act(self, name: str) -> None:
        image = self.details.image
        if image is None:
            return
        try:
            self._actions[name](image)
        except (HistoryError, OSError) as exc:
            self.problem.emit(str(exc))

    def _reuse(self, image: HistoryImage) -> None:
        fields = image.request_fields()
        if fields:
            self.reuse_fields.emit(fields)

    def _reuse_seed(self, image: HistoryImage) -> None:
        if image.seed is not None:
            self.reuse_seed.emit(image.seed)

    def _copy(self, image: HistoryImage) -> None:
        picture = QImageReader(str(self.store.path(image))).read()
        if picture.isNull():
            raise OSError(f"Could not read {self.store.path(image)} to copy it.")
        QGuiApplication.clipboard().setImage(picture)

    def _open_folder(self, image: HistoryImage) -> None:
        folder = self.store.path(image).parent
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            raise OSError(f"No file manager could open the folder; the image is in {folder}")

    def _export(self, image: HistoryImage) -> None:
        source = self.store.path(image)
        target, _ = QFileDialog.getSaveFileName(self, "Export image", str(Path.home() / source.name), "PNG image (*.png)")
        if target:
            shutil.copyfile(source, Path(target).with_suffix(source.suffix))

    def _favourite(self, image: HistoryImage) -> None:
        self.store.set_favourite(image.id, not image.favourite)
        if self.favourites.isChecked():
            self.apply_filters()
            return
        self.model.refresh(image.id)
        self._selection_changed()

    # ---- delete, undo, trash -----------------------------------------------------------

    def delete_selected(self) -> None:
        """Move the selected images to the trash; Undo (or Ctrl+Z) brings them back."""
        if self.trash_view.isChecked():
            return
        ids = [image.id for image in self.selected_images()]
        if not ids:
            return
        row = min(self.model.row_of(i) or 0 for i in ids)
        try:
            self.store.trash(ids)
        except HistoryError as exc:
            self.problem.emit(str(exc))
            return
        self.model.remove(ids)
        self._undo.append(ids)
        self.undo_label.setText(f"Moved {len(ids)} image{'s' if len(ids) != 1 else ''} to the trash.")
        self.undo_bar.show()
        self.apply_counts()
        if self.model.rowCount():
            self.select_row(min(row, self.model.rowCount() - 1))

    def undo_delete(self) -> None:
        if not self._undo:
            return
        try:
            self.store.restore(self._undo.pop())
        except HistoryError as exc:
            self.problem.emit(str(exc))
        self.undo_bar.setVisible(bool(self._undo))
        self.apply_filters()

    def _restore(self, image: HistoryImage) -> None:
        self.store.restore([image.id])
        self.apply_filters()

    def _empty_trash(self) -> None:
        if self.confirm("Delete every image in the trash for good? This cannot be undone."):
            try:
                self.store.empty_trash()
            except OSError as exc:
                self.problem.emit(f"Could not empty the trash: {exc}")
            for ids in self._undo:
                for image_id in ids:
                    self.thumbnails.forget(image_id)
            self._undo.clear()
            self.undo_bar.hide()
            self.apply_filters()

    def apply_counts(self) -> None:
        shown = self.model.rowCount()
        where = "in the trash" if self.trash_view.isChecked() else "in the history"
        total = self.store.count(Query(trashed=self.trash_view.isChecked()))
        of = f" of {total:,}" if total != shown else ""
        self.count.setText(f"{shown:,}{of} image{'s' if total != 1 else ''} {where}")

    def _ask(self, text: str) -> bool:
        answer = QMessageBox.question(self, "Empty trash", text)
        return answer == QMessageBox.StandardButton.Yes

    def close_loader(self) -> None:
        """Stop the thumbnail threads (the window is closing)."""
        self.thumbnails.close()

    # ---- wiring ------------------------------------------------------------------------

    def _connect(self) -> None:
        self._actions: dict[str, Callable[[HistoryImage], None]] = {
            "reuse": self._reuse,
            "reuse_seed": self._reuse_seed,
            "favourite": self._favourite,
            "img2img": lambda image: self.send_to_img2img.emit(str(self.store.path(image)), image.id),
            "inpaint": lambda image: self.send_to_inpaint.emit(str(self.store.path(image)), image.id),
            "copy": self._copy,
            "folder": self._open_folder,
            "export": self._export,
            "delete": lambda _image: self.delete_selected(),
            "restore": self._restore,
        }
        self.details.action.connect(self._act)
        self.details.picture_ready.connect(self._picture_ready)
        self.search.textChanged.connect(self._search_timer.start)
        self._search_timer.timeout.connect(self.apply_filters)
        self.search.returnPressed.connect(self.apply_filters)
        self.favourites.toggled.connect(self._grouping_changed)
        self.trash_view.toggled.connect(self._grouping_changed)
        self.grouping.currentIndexChanged.connect(self._grouping_changed)
        self.groups.currentIndexChanged.connect(self.apply_filters)
        self.empty_trash.clicked.connect(self._empty_trash)
        self.undo_button.clicked.connect(self.undo_delete)
        self.grid.selectionModel().selectionChanged.connect(self._selection_changed)
        self.grid.selectionModel().currentChanged.connect(lambda *_: self._selection_changed())
        self.grid.doubleClicked.connect(lambda _index: self._act("reuse"))
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.customContextMenuRequested.connect(self._context_menu)
        # Only while the focus is in the history: the canvas has its own Ctrl+Z and Delete.
        self.undo_action = scoped_action(self, "Undo move to trash", [QKeySequence.StandardKey.Undo], self.undo_delete)
        self.delete_action = scoped_action(self.grid, "Move to trash", [QKeySequence.StandardKey.Delete], self.delete_selected)


def _toggle(text: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    button.setCheckable(True)
    return button


def _short(text: str, length: int = 40) -> str:
    line = " ".join(text.split())
    return line if len(line) <= length else line[: length - 1] + "…"
