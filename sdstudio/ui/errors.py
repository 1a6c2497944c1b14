"""The one place problems reach the person: a dismissable banner with a Details toggle.

`MainWindow.report(...)` is the single entry point; it lands here. Unexpected exceptions
(sys.excepthook, asyncio task errors) are routed to the same function by `route_unexpected`.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


_COLOURS = {Level.ERROR: "#8f2d2d", Level.WARNING: "#7a5a12", Level.INFO: "#1f4f7a"}
_TITLES = {Level.ERROR: "Error", Level.WARNING: "Note", Level.INFO: "Info"}


@dataclass(frozen=True)
class Problem:
    message: str
    details: str = ""
    level: Level = Level.ERROR
    # What the problem is about ("model", "canvas-size", ...): a newer problem with the same
    # cause replaces it, and `Banner.clear(cause)` removes it once the cause is gone. Without
    # a cause it is a one-off, superseded by the next one-off.
    cause: str = ""
    # (button text, what it does): a way out the banner offers, e.g. ("Use inpaint", ...).
    action: tuple[str, Callable[[], None]] | None = None


def problem_from(
    error: BaseException | str, details: str = "", level: Level = Level.ERROR, cause: str = ""
) -> Problem:
    """A Problem from an exception (its traceback becomes the details) or a plain message."""
    if isinstance(error, BaseException):
        message = str(error) or type(error).__name__
        details = details or "".join(traceback.format_exception(error))
        return Problem(message, details, level, cause)
    return Problem(error, details, level, cause)


class Banner(QFrame):
    """Shows the newest problem; one per cause. Dismiss shows the one before only if its
    cause is still there: one-offs are superseded and stale causes are cleared."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._problems: list[Problem] = []
        self.setAutoFillBackground(True)
        self.setAccessibleName("Messages")
        self.title = QLabel()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.more = QLabel()
        self.action_button = QPushButton()
        self.action_button.hide()
        self.details_button = QPushButton("Details")
        self.details_button.setCheckable(True)
        self.dismiss_button = QToolButton()
        self.dismiss_button.setText("✕")
        self.dismiss_button.setToolTip("Dismiss")
        self.dismiss_button.setAccessibleName("Dismiss message")
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details.setMaximumHeight(self.fontMetrics().lineSpacing() * 12)
        self.details.hide()
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.message, 1)
        top.addWidget(self.more)
        top.addWidget(self.action_button)
        top.addWidget(self.details_button)
        top.addWidget(self.dismiss_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.details)
        self.details_button.toggled.connect(self.details.setVisible)
        self.dismiss_button.clicked.connect(self.dismiss)
        self.action_button.clicked.connect(self._act)
        self.hide()

    def problems(self) -> list[Problem]:
        return list(self._problems)

    def show_problem(self, problem: Problem) -> None:
        """Show `problem` on top, replacing the one of the same cause (or the last one-off)
        and any other showing the same message (e.g. queued jobs failing alike)."""

        def replaced(old: Problem) -> bool:
            return old.message == problem.message or old.cause == problem.cause

        self._problems = [old for old in self._problems if not replaced(old)] + [problem]
        self._refresh()

    def clear(self, cause: str) -> None:
        """The cause went away: remove its problem (every cause starting with `cause`)."""
        kept = [p for p in self._problems if not (p.cause and p.cause.startswith(cause))]
        if len(kept) != len(self._problems):
            self._problems = kept
            self._refresh()

    def dismiss(self) -> None:
        if self._problems:
            self._problems.pop()
        self._refresh()

    def _act(self) -> None:
        """The shown problem's way out was taken: do it, and the problem is gone."""
        problem = self._problems[-1]
        self._problems.pop()
        if problem.action is not None:
            problem.action[1]()
        self._refresh()

    def _refresh(self) -> None:
        if not self._problems:
            self.hide()
            return
        problem = self._problems[-1]
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(_COLOURS[problem.level]))
        palette.setColor(QPalette.ColorRole.WindowText, QColor("#ffffff"))
        self.setPalette(palette)
        self.title.setText(f"<b>{_TITLES[problem.level]}:</b>")
        self.message.setText(problem.message)
        others = len(self._problems) - 1
        self.more.setText(f"(+{others} more)" if others else "")
        self.action_button.setText(problem.action[0] if problem.action else "")
        self.action_button.setVisible(problem.action is not None)
        self.details.setPlainText(problem.details)
        self.details_button.setVisible(bool(problem.details))
        if not problem.details:
            self.details_button.setChecked(False)
        self.show()


def route_unexpected(report: Callable[[BaseException], None], loop: asyncio.AbstractEventLoop) -> None:
    """Send uncaught exceptions (Qt slots, asyncio tasks) to `report` as well as stderr."""
    previous = sys.excepthook

    def excepthook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        previous(kind, error, tb)
        if not isinstance(error, KeyboardInterrupt):
            report(error.with_traceback(tb))

    def loop_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        loop.default_exception_handler(context)
        error = context.get("exception")
        report(error if isinstance(error, BaseException) else RuntimeError(context.get("message", "?")))

    sys.excepthook = excepthook
    loop.set_exception_handler(loop_handler)
