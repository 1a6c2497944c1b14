"""Completion in a prompt editor: after `<lora:` the LoRA names (completing to
`<lora:name:1>`), after three letters of a word the embedding names that start with them.

A QCompleter popup: Tab or Enter accepts, Esc dismisses, the arrows choose. Ctrl+Up/Down
(weights) and Ctrl+Enter (Generate) still reach the editor while the popup is open: the popup
would otherwise take them as its own navigation keys.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QEvent, QObject, QStringListModel, Qt
from PySide6.QtGui import QKeyEvent, QTextCursor
from PySide6.QtWidgets import QApplication, QCompleter, QPlainTextEdit

from sdstudio.ui.networks_panel import lora_tag

_LORA_START = re.compile(r"<lora:([^:<>]*)$")
# A word of three or more letters, digits, '_', '-' or '.' (embedding file names use them).
_WORD = re.compile(r"(?<![\w.\-])([\w.\-]{3,})$")
ACCEPT_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Tab, Qt.Key.Key_Backtab, Qt.Key.Key_Escape)
_PASS_WITH_CTRL = (Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Return, Qt.Key.Key_Enter)


class PromptCompleter(QObject):
    def __init__(self, edit: QPlainTextEdit) -> None:
        super().__init__(edit)
        self._edit = edit
        self._loras: list[str] = []
        self._embeddings: list[str] = []
        self._model = QStringListModel(self)
        self.completer = QCompleter(self._model, self)
        self.completer.setWidget(edit)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.completer.activated[str].connect(self._accept)  # type: ignore[index]
        # Installed after the completer's own filter, so this one sees the popup's keys first.
        self.completer.popup().installEventFilter(self)
        self._replace_from = 0  # Qt text position where the completed text starts
        self._lora = False

    def set_names(self, loras: list[str], embeddings: list[str]) -> None:
        self._loras, self._embeddings = list(loras), list(embeddings)

    def is_open(self) -> bool:
        return self.completer.popup().isVisible()

    def typed(self) -> None:
        """Offer what fits the text just before the cursor, or close the popup."""
        cursor = self._edit.textCursor()
        block, column = cursor.block().text(), cursor.positionInBlock()
        before = block.encode("utf-16-le")[: 2 * column].decode("utf-16-le", errors="ignore")
        if cursor.hasSelection():
            self.hide()
            return
        if match := _LORA_START.search(before):
            names, prefix, self._lora = self._loras, match.group(1), True
            self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
            start = match.start()
        elif (match := _WORD.search(before)) and self._embeddings:
            names, prefix, self._lora = self._embeddings, match.group(1), False
            self.completer.setFilterMode(Qt.MatchFlag.MatchStartsWith)
            start = match.start(1)
        else:
            self.hide()
            return
        if self._model.stringList() != names:
            self._model.setStringList(names)
        self.completer.setCompletionPrefix(prefix)
        count = self.completer.completionCount()
        finished = not self._lora and count == 1 and self.completer.currentCompletion().lower() == prefix.lower()
        if count == 0 or finished:
            self.hide()
            return
        self._replace_from = cursor.position() - len(before[start:].encode("utf-16-le")) // 2
        popup = self.completer.popup()
        popup.setCurrentIndex(self.completer.completionModel().index(0, 0))
        rect = self._edit.cursorRect()
        rect.setWidth(popup.sizeHintForColumn(0) + popup.verticalScrollBar().sizeHint().width() + 8)
        self.completer.complete(rect)

    def hide(self) -> None:
        self.completer.popup().hide()

    def _accept(self, name: str) -> None:
        cursor = self._edit.textCursor()
        cursor.setPosition(self._replace_from, QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(lora_tag(name, 1.0) if self._lora else name)
        self._edit.setTextCursor(cursor)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            isinstance(event, QKeyEvent)
            and event.type() == QEvent.Type.KeyPress
            and event.modifiers() & Qt.KeyboardModifier.ControlModifier
            and event.key() in _PASS_WITH_CTRL
        ):
            self.hide()
            QApplication.sendEvent(self._edit, event)
            return True
        return super().eventFilter(watched, event)
