"""Shortcuts that belong to one part of the window, and the list of every shortcut.

A key like Ctrl+Z or Delete means different things on the canvas and in the history, so a
part's shortcuts only act while the focus is inside that part (`scoped_action`). The list in
Help ▸ Keyboard shortcuts is read from the window's actions, so it cannot go stale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QHeaderView,
    QMainWindow,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

Keys = QKeySequence | QKeySequence.StandardKey | str


def scoped_action(owner: QWidget, text: str, keys: Sequence[Keys], slot: Callable[[], object]) -> QAction:
    """An action of `owner` whose shortcuts act only while the focus is in `owner` (or a child)."""
    action = QAction(text, owner)
    # A standard key's first binding only: the others are hardware keys (F14 "Undo") or, on
    # some desktops, surprises (Ctrl+D for Delete).
    action.setShortcuts([QKeySequence(key) for key in keys])
    action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    action.triggered.connect(lambda _=False: slot())
    owner.addAction(action)
    return action


@dataclass(frozen=True)
class ShortcutRow:
    where: str  # "Everywhere" or the page / dock the focus must be in
    command: str
    keys: str  # as shown to a person, e.g. "Ctrl+Z, Ctrl+Y"


def shortcut_rows(window: QMainWindow) -> list[ShortcutRow]:
    """Every action with a shortcut in `window` (menus, pages, docks), sorted by place."""
    rows: set[ShortcutRow] = set()
    for action in window.findChildren(QAction):
        shortcuts = action.shortcuts()
        if not shortcuts or not action.isVisible():
            continue
        keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in shortcuts)
        command = action.text().replace("&&", "\x00").replace("&", "").replace("\x00", "&").rstrip("…. ")
        rows.add(ShortcutRow(_where(action, window), command, keys))
    return sorted(rows, key=lambda r: (r.where != "Everywhere", r.where, r.command))


def _where(action: QAction, window: QMainWindow) -> str:
    if action.shortcutContext() in (Qt.ShortcutContext.WindowShortcut, Qt.ShortcutContext.ApplicationShortcut):
        return "Everywhere"
    for widget in action.associatedObjects():
        if isinstance(widget, QWidget) and (place := _place_of(widget, window)):
            return place
    return "Everywhere"


def _place_of(widget: QWidget, window: QMainWindow) -> str:
    """The title of the dock or centre page holding `widget`."""
    child: QWidget | None = widget
    while child is not None and child is not window:
        parent = child.parentWidget()
        if isinstance(child, QDockWidget):
            return child.windowTitle()
        if parent is not None and isinstance(parent.parentWidget(), QTabWidget):
            tabs = parent.parentWidget()
            return tabs.tabText(tabs.indexOf(child))
        child = parent
    return ""


class ShortcutsDialog(QDialog):
    """Help ▸ Keyboard shortcuts: a read-only table built from `shortcut_rows`."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows(window)
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Where", "Command", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAccessibleName("Keyboard shortcuts")
        for n, row in enumerate(rows):
            for column, text in enumerate((row.where, row.command, row.keys)):
                self.table.setItem(n, column, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(560, min(640, 80 + 26 * max(len(rows), 4)))
