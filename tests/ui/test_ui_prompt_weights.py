"""The prompt editor: Ctrl+Up/Down weigh words as A1111 does, and the token count per chunk."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor


@pytest.fixture
def panel(studio):
    return studio.prompt_panel


def select(edit, start, end):
    cursor = edit.textCursor()
    cursor.setPosition(start)
    cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
    edit.setTextCursor(cursor)


def test_ctrl_up_and_down_weigh_the_selection(qtbot, panel):
    edit = panel.prompt
    edit.setPlainText("a red cat")
    select(edit, 2, 5)
    qtbot.keyClick(edit, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(edit, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert edit.toPlainText() == "a (red:1.2) cat" and edit.textCursor().selectedText() == "red"
    for _ in range(3):
        qtbot.keyClick(edit, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    assert edit.toPlainText() == "a (red:0.9) cat"
    edit.undo()  # each press is one undo step
    assert edit.toPlainText() == "a red cat"


def test_ctrl_up_weighs_the_word_at_the_cursor_after_an_emoji(qtbot, panel):
    edit = panel.negative_prompt
    edit.setPlainText("🙂 blurry")
    select(edit, 5, 5)  # inside "blurry": Qt counts the emoji as two positions
    qtbot.keyClick(edit, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert edit.toPlainText() == "🙂 (blurry:1.1)" and edit.textCursor().selectedText() == "blurry"


def test_the_token_count_follows_the_prompt_per_chunk(qtbot, panel):
    assert panel.prompt_tokens.text() == "0/75"
    panel.prompt.setPlainText("a (lighthouse:1.3) at dusk")
    qtbot.waitUntil(lambda: panel.prompt_tokens.text() == "4/75", timeout=2000)
    panel.prompt.setPlainText("red apple " * 40 + "BREAK sky")
    qtbot.waitUntil(lambda: panel.prompt_tokens.text() == "75/75 · 5/75 · 1/75", timeout=2000)
    assert panel.negative_tokens.text() == "0/75"


def test_the_prompt_panel_counts_tokens_without_torch():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; import sdstudio.ui.prompt_panel; from sdstudio.engine.clip_tokenizer import "
            "prompt_token_counts; prompt_token_counts('a (red:1.2) cat'); "
            "print(*(name in sys.modules for name in ('torch', 'transformers', 'diffusers')))")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.split() == ["False", "False", "False"]
