"""Keyboard and layout for a newcomer: the prompt has the focus at start, Tab walks the panels
in order and reaches the history grid, the focused button looks focused, and at 1024x700 the
image gets at least half the width with nothing cut off; View ▸ Reset layout; Help ▸ shortcuts."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDockWidget, QStyleFactory, QToolButton, QWidget

from sdstudio.ui.shortcuts import ShortcutsDialog
from sdstudio.ui.theme import FocusRingStyle


def tab_walk(start: QWidget, presses: int = 120) -> list[QWidget]:
    start.setFocus(Qt.FocusReason.TabFocusReason)
    seen = [QApplication.focusWidget()]
    for _ in range(presses):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        widget = QApplication.focusWidget()
        if widget is seen[0]:
            break
        seen.append(widget)
    return seen


def test_the_prompt_has_the_focus_at_start(studio):
    assert QApplication.focusWidget() is studio.prompt_panel.prompt


def test_tab_follows_the_panels_and_reaches_the_history_grid(studio):
    studio.resize(1700, 900)  # wide: every dock side by side
    studio.reset_layout()
    gallery = studio.history.gallery
    walk = tab_walk(studio.prompt_panel.prompt)
    order = [studio.prompt_panel.prompt, studio.prompt_panel.generate, studio.params.mode, studio.results.view, gallery.search, gallery.grid]
    for widget in order:
        assert widget in walk, f"Tab never reaches {widget!r}"
    positions = [walk.index(w) for w in order]
    assert positions == sorted(positions), [type(walk[p]).__name__ for p in positions]


def test_the_focused_button_looks_focused(studio):
    generate = studio.prompt_panel.generate
    style = FocusRingStyle(QStyleFactory.create("Fusion"))  # what apply_theme gives the app
    generate.setStyle(style)
    studio.prompt_panel.prompt.setFocus()
    unfocused = generate.grab().toImage()
    generate.setFocus()
    assert QApplication.focusWidget() is generate
    assert generate.grab().toImage() != unfocused


def test_at_1024x700_the_image_gets_half_the_width_and_nothing_is_cut_off(qtbot, studio):
    studio.resize(1024, 700)
    studio.reset_layout()
    qtbot.waitUntil(lambda: studio.results.view.width() >= 512, timeout=3000)
    docks = [d for d in studio.findChildren(QDockWidget) if d.isVisible()]
    for dock in docks:  # every dock's content has the room it asks for
        hint = dock.widget().minimumSizeHint()
        assert dock.widget().width() >= hint.width() and dock.widget().height() >= hint.height(), dock.windowTitle()
    for page in range(studio.center.count()):
        studio.center.setCurrentIndex(page)
        QApplication.processEvents()
        hidden = [b for b in studio.findChildren(QToolButton) if b.objectName() == "qt_toolbar_ext_button" and b.isVisible()]
        assert not hidden, f"toolbar items hidden behind » on page {studio.center.tabText(page)}"
        assert studio.center.currentWidget().width() >= studio.width() / 2


def test_reset_layout_brings_every_dock_back(qtbot, studio):
    studio.resize(1024, 700)
    studio.params_dock.hide()
    studio.history.dock.setFloating(True)
    studio.reset_layout()
    assert studio.params_dock.isVisible() and not studio.history.dock.isFloating()
    assert studio.history.dock in studio.tabifiedDockWidgets(studio.params_dock)  # narrow: one column
    assert "Reset layout" in [a.text().replace("&", "") for a in studio.view_menu.actions()]


def test_help_lists_every_shortcut_from_the_actions(qtbot, studio):
    action = next(a for a in studio.help_menu.actions() if "Keyboard shortcuts" in a.text().replace("&", ""))
    action.trigger()
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, ShortcutsDialog) and w.isVisible())
    rows = {(dialog.table.item(r, 0).text(), dialog.table.item(r, 2).text()) for r in range(dialog.table.rowCount())}
    assert ("Everywhere", "F1") in rows and ("Result", "F11") in rows and ("History", "Del") in rows
    dialog.close()
