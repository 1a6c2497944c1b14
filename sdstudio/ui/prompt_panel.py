"""The prompt panel: prompt and negative prompt, Generate, Cancel and the queue indicator."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QFocusEvent, QKeyEvent, QTextCursor
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from sdstudio.engine.prompts import CHUNK_LENGTH, WEIGHT_STEP, nudge_weight
from sdstudio.ui.prompt_completer import ACCEPT_KEYS, PromptCompleter
from sdstudio.ui.queue_view import QueueButton

_WEIGHT_KEYS = {Qt.Key.Key_Up: WEIGHT_STEP, Qt.Key.Key_Down: -WEIGHT_STEP}


class PromptEdit(QPlainTextEdit):
    """Multi-line text where Ctrl+Enter asks to generate, Tab moves on (keyboard use) and
    Ctrl+Up/Down weigh the selection or the word at the cursor, as in A1111."""

    # Ctrl+Enter (or Ctrl+Return) was pressed in the edit.
    submitted = Signal()
    # The edit got the keyboard focus (the panel remembers which prompt is being written).
    focused = Signal()

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.completer = PromptCompleter(self)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.submitted.emit()
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier and event.key() in _WEIGHT_KEYS:
            self.nudge_weight(_WEIGHT_KEYS[event.key()])
            return
        if self.completer.is_open() and event.key() in ACCEPT_KEYS:
            event.ignore()  # the completer accepts (Tab, Enter) or dismisses (Esc)
            return
        super().keyPressEvent(event)
        if event.text() or event.key() == Qt.Key.Key_Backspace:
            self.completer.typed()

    def event(self, event: QEvent) -> bool:
        # Tab moves the focus before keyPressEvent sees it; with the popup open it accepts.
        tab = isinstance(event, QKeyEvent) and event.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab)
        if tab and event.type() == QEvent.Type.KeyPress and self.completer.is_open():
            event.ignore()
            return False
        return super().event(event)

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        self.focused.emit()

    def insert_at_cursor(self, text: str) -> None:
        """Insert `text` at the cursor (replacing a selection), a space apart from the words
        around it, as one undo step."""
        cursor = self.textCursor()
        cursor.beginEditBlock()
        cursor.removeSelectedText()
        whole = self.toPlainText()
        index = _index(whole, cursor.position())
        before, after = whole[:index], whole[index:]
        space_before = " " if before and not before[-1].isspace() else ""
        space_after = " " if after and not after[0].isspace() else ""
        cursor.insertText(space_before + text + space_after)
        cursor.endEditBlock()
        self.setTextCursor(cursor)

    def nudge_weight(self, delta: float) -> None:
        """Raise or lower the weight of the selection (or the word at the cursor) by `delta`,
        as one undo step, keeping the words selected."""
        text, cursor = self.toPlainText(), self.textCursor()
        start, end = (_index(text, p) for p in (cursor.selectionStart(), cursor.selectionEnd()))
        new, start, end = nudge_weight(text, start, end, delta)
        if new == text:
            return
        # Replace only what changed, so the view does not scroll and undo restores it in one step.
        first = next((i for i, (a, b) in enumerate(zip(text, new, strict=False)) if a != b), min(len(text), len(new)))
        same_tail = 0
        while same_tail < min(len(text), len(new)) - first and text[-1 - same_tail] == new[-1 - same_tail]:
            same_tail += 1
        cursor.setPosition(_position(text, first))
        cursor.setPosition(_position(text, len(text) - same_tail), QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(new[first : len(new) - same_tail])
        cursor.setPosition(_position(new, start))
        cursor.setPosition(_position(new, end), QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)


# Qt counts text positions in UTF-16 units, Python in code points: they differ after an emoji.
def _index(text: str, position: int) -> int:
    return len(text.encode("utf-16-le")[: 2 * position].decode("utf-16-le", errors="ignore"))


def _position(text: str, index: int) -> int:
    return len(text[:index].encode("utf-16-le")) // 2


class TokenCount(QLabel):
    """"12/75" for each 75-token chunk of a prompt, as the engine will split it, updated
    shortly after typing stops (the count is plain Python: no torch in the UI thread)."""

    def __init__(self, edit: QPlainTextEdit, parent: QWidget | None = None) -> None:
        super().__init__(f"0/{CHUNK_LENGTH}", parent)
        self._edit = edit
        # Text -> {embedding name: vectors} for the embeddings it names, each counting as its
        # vectors do in the engine; the add-on browser sets it (nothing known: names are words).
        self.embedding_vectors: Callable[[str], Mapping[str, int]] = lambda _text: {}
        self.setToolTip(
            f"Tokens in each {CHUNK_LENGTH}-token chunk the text encoder reads. A longer prompt "
            "goes on in a new chunk; BREAK starts one."
        )
        self._timer = QTimer(self, singleShot=True, interval=150)
        self._timer.timeout.connect(self.refresh)
        edit.textChanged.connect(self._timer.start)

    def refresh(self) -> None:
        # Imported on first use: the vocabulary takes a moment to load, not worth it at startup.
        from sdstudio.engine.clip_tokenizer import prompt_token_counts

        text = self._edit.toPlainText()
        counts = prompt_token_counts(text, self.embedding_vectors(text)) if text else [0]
        self.setText(" · ".join(f"{count}/{CHUNK_LENGTH}" for count in counts))


class PromptPanel(QWidget):
    def __init__(self, queue_button: QueueButton, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt = PromptEdit("What to draw, e.g. a lighthouse at dusk, oil painting")
        self.negative_prompt = PromptEdit("What to avoid, e.g. blurry, text, watermark")
        self.prompt_tokens = TokenCount(self.prompt)
        self.negative_tokens = TokenCount(self.negative_prompt)
        self.last_edit = self.prompt  # where the add-on browser inserts
        for edit in (self.prompt, self.negative_prompt):
            edit.focused.connect(lambda e=edit: setattr(self, "last_edit", e))
        line = self.fontMetrics().lineSpacing()
        self.prompt.setMinimumHeight(3 * line)
        self.negative_prompt.setMinimumHeight(2 * line)
        # Extra height goes to the prompt first: it is the longer text.
        self.prompt.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.generate = QPushButton("&Generate")
        self.generate.setToolTip("Generate (Ctrl+Enter); while a job runs, queue another")
        self.generate.setDefault(True)
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Stop the running job at its next step (Esc)")
        self.cancel.setEnabled(False)
        for button in (self.generate, self.cancel):
            button.setMinimumWidth(button.fontMetrics().horizontalAdvance("Generate") * 2)
        self.generate.setMinimumHeight(3 * line)

        prompt_label = QLabel("&Prompt:")
        prompt_label.setBuddy(self.prompt)
        negative_label = QLabel("&Negative prompt:")
        negative_label.setBuddy(self.negative_prompt)
        grid = QGridLayout(self)
        grid.addWidget(prompt_label, 0, 0)
        grid.addWidget(self.prompt, 1, 0)
        grid.addWidget(negative_label, 2, 0)
        grid.addWidget(self.negative_prompt, 3, 0)
        # Each count sits under its prompt, at the right (beside the next label for the first).
        grid.addWidget(self.prompt_tokens, 2, 0, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.negative_tokens, 4, 0, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.generate, 1, 1)
        grid.addWidget(self.cancel, 2, 1)
        grid.addWidget(queue_button, 3, 1, Qt.AlignmentFlag.AlignTop)
        grid.setRowStretch(1, 3)
        grid.setRowStretch(3, 1)
        grid.setColumnStretch(0, 1)

    def insert(self, text: str) -> None:
        """Insert `text` at the cursor of the prompt written in last (the positive one first)."""
        self.last_edit.insert_at_cursor(text)

    def set_completions(self, loras: list[str], embeddings: list[str]) -> None:
        for edit in (self.prompt, self.negative_prompt):
            edit.completer.set_names(loras, embeddings)

    def texts(self) -> dict[str, str]:
        return {"prompt": self.prompt.toPlainText(), "negative_prompt": self.negative_prompt.toPlainText()}

    def set_texts(self, fields: dict[str, object]) -> None:
        # The cursor goes to the end, where writing (or an inserted LoRA tag) goes on.
        for name, edit in (("prompt", self.prompt), ("negative_prompt", self.negative_prompt)):
            if name in fields:
                edit.setPlainText(str(fields[name]))
                edit.moveCursor(QTextCursor.MoveOperation.End)
