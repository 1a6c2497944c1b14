"""The prompt panel: prompt and negative prompt, Generate, Cancel and the queue indicator."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from sdstudio.ui.queue_view import QueueButton


class PromptEdit(QPlainTextEdit):
    """Multi-line text where Ctrl+Enter asks to generate and Tab moves on (keyboard use)."""

    # Ctrl+Enter (or Ctrl+Return) was pressed in the edit.
    submitted = Signal()

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class PromptPanel(QWidget):
    def __init__(self, queue_button: QueueButton, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt = PromptEdit("What to draw, e.g. a lighthouse at dusk, oil painting")
        self.negative_prompt = PromptEdit("What to avoid, e.g. blurry, text, watermark")
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
        grid.addWidget(self.generate, 1, 1)
        grid.addWidget(self.cancel, 2, 1)
        grid.addWidget(queue_button, 3, 1, Qt.AlignmentFlag.AlignTop)
        grid.setRowStretch(1, 3)
        grid.setRowStretch(3, 1)
        grid.setColumnStretch(0, 1)

    def texts(self) -> dict[str, str]:
        return {"prompt": self.prompt.toPlainText(), "negative_prompt": self.negative_prompt.toPlainText()}

    def set_texts(self, fields: dict[str, object]) -> None:
        if "prompt" in fields:
            self.prompt.setPlainText(str(fields["prompt"]))
        if "negative_prompt" in fields:
            self.negative_prompt.setPlainText(str(fields["negative_prompt"]))
