"""The "LoRAs & embeddings" browser: the add-on files a prompt can name, with their preview
pictures, a search field and a weight; clicking one (or Enter) asks to insert its tag.

Listing a folder and reading the pictures happen on a worker thread, a picture at a time
scaled down as it is read, so a folder of thousands of LoRAs never stalls the window; each
thumbnail appears when it is ready. Where the files live (a folder here, a server's lists) is
the caller's `Lister`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QImageReader, QKeyEvent, QPainter, QPixmap
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from sdstudio.engine.networks import NetworkFile, NetworkKind

# kind -> (its files, where they were looked for: a folder or a server, for the person).
# Called on a worker thread.
Lister = Callable[[NetworkKind], "tuple[list[NetworkFile], str]"]

THUMBNAIL = 64
_ROWS_PER_TURN = 200
KINDS = (NetworkKind.LORA, NetworkKind.EMBEDDING)
_TITLES = {NetworkKind.LORA: "LoRAs", NetworkKind.EMBEDDING: "Embeddings"}
_NAME = Qt.ItemDataRole.UserRole
_HAS_PICTURE = Qt.ItemDataRole.UserRole + 1


def lora_tag(name: str, weight: float) -> str:
    """`<lora:name:weight>` with the weight written as briefly as it reads (1, 0.75, -0.5)."""
    return f"<lora:{name}:{round(weight, 2):g}>"


def read_thumbnail(path: Path, size: int = THUMBNAIL) -> QImage:
    """`path` scaled to fit `size` x `size` while it is decoded (safe off the Qt thread);
    a null image when it cannot be read."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    original = reader.size()
    if original.isValid() and max(original.width(), original.height()) > size:
        reader.setScaledSize(original.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


class NetworksPanel(QWidget):
    # Insert this text at the cursor of the prompt being written: (tag or embedding name).
    insert_requested = Signal(str)
    # The names were listed: (LoRA names, embedding names), e.g. for the prompt's completer.
    names_changed = Signal(list, list)
    # From the worker: (refresh number, kind, files, where, why listing failed or "").
    _listed = Signal(int, object, list, str, str)
    # From the worker: (refresh number, kind, file path, thumbnail QImage).
    _thumbnail = Signal(int, object, str, QImage)

    def __init__(self, lister: Lister, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lister = lister
        self._refresh_number = 0
        self._names: dict[NetworkKind, list[str]] = {kind: [] for kind in KINDS}
        self._where: dict[NetworkKind, str] = {kind: "" for kind in KINDS}
        self._errors: dict[NetworkKind, str] = {kind: "" for kind in KINDS}
        self._items: dict[tuple[NetworkKind, str], QListWidgetItem] = {}  # by (kind, file path)
        self._early: dict[tuple[NetworkKind, str], QImage] = {}  # thumbnails read before their row
        self._listed_kinds: set[NetworkKind] = set()  # of this refresh
        # Said after "No LoRAs in …": how to change where they are looked for.
        self.empty_hint = ""

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search…")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Show only the names that contain this text; Enter inserts the first, Down goes to the list")
        self.search.installEventFilter(self)
        self.weight = QDoubleSpinBox()
        self.weight.setRange(-4.0, 4.0)
        self.weight.setSingleStep(0.05)
        self.weight.setValue(1.0)
        self.weight.setToolTip("The weight written into an inserted <lora:name:weight> tag")
        weight_label = QLabel("&Weight:")
        weight_label.setBuddy(self.weight)
        self.refresh_button = QPushButton("&Refresh")
        self.refresh_button.setToolTip("List the folders again (after adding or removing files)")
        self.lists: dict[NetworkKind, QListWidget] = {kind: self._make_list(kind) for kind in KINDS}
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for kind, widget in self.lists.items():
            self.tabs.addTab(widget, _TITLES[kind])
        self.where = QLabel()
        self.where.setWordWrap(True)
        self.where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(weight_label)
        top.addWidget(self.weight)
        top.addWidget(self.refresh_button)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 4, 4, 4)
        column.addLayout(top)
        column.addWidget(self.tabs, 1)
        column.addWidget(self.where)

        self.search.textChanged.connect(self._filter)
        self.refresh_button.clicked.connect(self.refresh)
        self.tabs.currentChanged.connect(self._show_where)
        self._listed.connect(self._show_files)
        self._thumbnail.connect(self._show_thumbnail)

    def refresh(self) -> None:
        """List again on a worker thread; a refresh still running is abandoned."""
        self._refresh_number += 1
        self._listed_kinds.clear()
        self._early.clear()
        self.where.setText("Listing…")
        threading.Thread(target=self._work, args=(self._refresh_number, self._lister), daemon=True).start()

    def insert(self, item: QListWidgetItem) -> None:
        name = item.data(_NAME)
        kind = next(k for k, widget in self.lists.items() if widget is item.listWidget())
        self.insert_requested.emit(lora_tag(name, self.weight.value()) if kind is NetworkKind.LORA else name)

    # ---- worker thread ----------------------------------------------------------------

    def _work(self, number: int, lister: Lister) -> None:
        listed = []
        for kind in KINDS:
            error = ""
            try:
                files, where = lister(kind)
            except Exception as exc:  # e.g. a server that stopped answering: say so, list nothing
                files, where, error = [], "", str(exc) or type(exc).__name__
            listed.append((kind, files))
            if not self._emit(self._listed, number, kind, files, where, error):
                return
        for kind, files in listed:
            for file in files:
                if number != self._refresh_number:
                    return  # a newer refresh took over
                if file.preview is not None:
                    image = read_thumbnail(file.preview)
                    if not image.isNull() and not self._emit(self._thumbnail, number, kind, str(file.path), image):
                        return

    def _emit(self, signal: Signal, *args: object) -> bool:
        """Emit from the worker (queued to the Qt thread); False once the panel is gone."""
        try:
            signal.emit(*args)  # type: ignore[attr-defined]
        except RuntimeError:  # the C++ side was deleted with the window
            return False
        return True

    # ---- Qt thread --------------------------------------------------------------------

    def _make_list(self, kind: NetworkKind) -> QListWidget:
        widget = QListWidget()
        widget.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        widget.setUniformItemSizes(True)  # every row has a picture's room, or none has
        widget.setToolTip(
            "Click or press Enter to insert the tag at the prompt's cursor (the negative prompt "
            "when it was the last one written in)"
            if kind is NetworkKind.LORA
            else "Click or press Enter to insert the embedding's name at the prompt's cursor"
        )
        widget.itemClicked.connect(self.insert)
        widget.installEventFilter(self)
        return widget

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Enter in a list inserts its current row; in the search field Enter inserts the first
        row shown and Down moves into the list."""
        if not (isinstance(event, QKeyEvent) and event.type() == QEvent.Type.KeyPress) or event.modifiers():
            return super().eventFilter(watched, event)
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if watched in self.lists.values():
            item = watched.currentItem()  # type: ignore[attr-defined]
            if enter and item is not None and not item.isHidden():
                self.insert(item)
                return True
        elif watched is self.search and (enter or event.key() == Qt.Key.Key_Down):
            widget = self.tabs.currentWidget()
            assert isinstance(widget, QListWidget)
            shown = [widget.item(r) for r in range(widget.count()) if not widget.item(r).isHidden()]
            if shown and enter:
                self.insert(shown[0])
            elif shown:
                widget.setCurrentItem(shown[0])
                widget.setFocus()
            return True
        return super().eventFilter(watched, event)

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def _show_files(self, number: int, kind: NetworkKind, files: list[NetworkFile], where: str, error: str) -> None:
        if number != self._refresh_number:
            return
        self.lists[kind].clear()
        self._items = {key: item for key, item in self._items.items() if key[0] is not kind}
        self._names[kind] = [f.name for f in files]
        self._where[kind], self._errors[kind] = where, error
        self.tabs.setTabText(list(self.lists).index(kind), f"{_TITLES[kind]} ({len(files)})")
        self._show_where()
        # Rows line up when every one has a picture's room, once any file has a picture.
        self._add_rows(number, kind, files, 0, _placeholder() if any(f.preview for f in files) else None)
        self._listed_kinds.add(kind)
        if self._listed_kinds == set(KINDS):
            self.names_changed.emit(self._names[NetworkKind.LORA], self._names[NetworkKind.EMBEDDING])

    def _add_rows(self, number: int, kind: NetworkKind, files: list[NetworkFile], start: int, placeholder: QIcon | None) -> None:
        """A few hundred rows per turn of the event loop, so a big folder never holds it long."""
        if number != self._refresh_number:
            return
        widget, needle = self.lists[kind], self.search.text().strip().lower()
        verb = "Insert " + ("<lora:…> tag" if kind is NetworkKind.LORA else "name")
        for file in files[start : start + _ROWS_PER_TURN]:
            item = QListWidgetItem(file.name)
            item.setData(_NAME, file.name)
            item.setToolTip(f"{verb}: {file.name}\n{file.path}" if file.path.name != file.name else f"{verb}: {file.name}")
            if placeholder is not None:
                item.setIcon(placeholder)
            widget.addItem(item)
            item.setHidden(needle not in file.name.lower())
            self._items[kind, str(file.path)] = item
            if (picture := self._early.pop((kind, str(file.path)), None)) is not None:
                self._set_picture(item, picture)
        if start + _ROWS_PER_TURN < len(files):
            QTimer.singleShot(0, self, lambda: self._add_rows(number, kind, files, start + _ROWS_PER_TURN, placeholder))

    def _show_thumbnail(self, number: int, kind: NetworkKind, path: str, image: QImage) -> None:
        if number != self._refresh_number:
            return
        item = self._items.get((kind, path))
        if item is None:  # its row is not added yet
            self._early[kind, path] = image
        else:
            self._set_picture(item, image)

    @staticmethod
    def _set_picture(item: QListWidgetItem, image: QImage) -> None:
        item.setIcon(QIcon(QPixmap.fromImage(image)))
        item.setData(_HAS_PICTURE, True)

    def has_thumbnail(self, kind: NetworkKind, name: str) -> bool:
        """Whether the row of `name` shows its preview picture."""
        widget = self.lists[kind]
        return any(widget.item(r).data(_NAME) == name and bool(widget.item(r).data(_HAS_PICTURE))
                   for r in range(widget.count()))

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for widget in self.lists.values():
            for row in range(widget.count()):
                item = widget.item(row)
                item.setHidden(needle not in item.text().lower())

    def _show_where(self) -> None:
        kind = KINDS[max(self.tabs.currentIndex(), 0)]
        where, count = self._where[kind], len(self._names[kind])
        label = _TITLES[kind]
        if self._errors[kind]:
            self.where.setText(f"The {label} could not be listed: {self._errors[kind]}")
        elif count:
            self.where.setText(f"{count} {label} in {where}")
        else:
            self.where.setText(f"No {label} in {where}. {self.empty_hint}".strip())


def _placeholder() -> QIcon:
    pixmap = QPixmap(THUMBNAIL, THUMBNAIL)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(128, 128, 128, 48))
    painter.drawRoundedRect(4, 4, THUMBNAIL - 8, THUMBNAIL - 8, 6, 6)
    painter.end()
    return QIcon(pixmap)
