"""Every shortcut acts where it belongs: Ctrl+Z and Delete on the canvas act on the canvas,
in the history on the history, and no key is claimed twice wherever the focus is."""

from __future__ import annotations

from PIL import Image
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from sdstudio.canvas import Brush
from sdstudio.ui.shortcuts import ShortcutsDialog, shortcut_rows
from tests.canvas.canvas_helpers import drag_image
from tests.ui.conftest import finish_job


class ShortcutSpy(QObject):
    """Swallows shortcut events (nothing is triggered) and records who would get them."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[QObject, bool]] = []

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Shortcut:
            self.events.append((watched, event.isAmbiguous()))
            return True
        return False


def press(widget: QWidget, sequence: QKeySequence) -> None:
    combo = sequence[0]
    QTest.keyClick(widget, combo.key(), combo.keyboardModifiers())


def every_sequence(window) -> list[QKeySequence]:
    """The keys of every action and every bare QShortcut in the window."""
    keys = [s for a in window.findChildren(QAction) for s in a.shortcuts()]
    keys += [s.key() for s in window.findChildren(QShortcut)]
    return list({s.toString(): s for s in keys if not s.isEmpty()}.values())


def focus_places(window) -> list[QWidget]:
    """Every widget a person can put the focus on, on the page now shown."""
    return [
        w
        for w in window.findChildren(QWidget)
        if w.isVisible() and w.isEnabled() and w.focusPolicy() & Qt.FocusPolicy.ClickFocus and w.window() is window
    ]


def test_no_key_is_ambiguous_on_any_page_or_dock(qtbot, studio):
    finish_job(studio)
    qtbot.waitUntil(lambda: studio.history.gallery.model.rowCount() == 1, timeout=5000)
    studio.history.gallery.select_row(0)
    studio.canvas.set_image(Image.new("RGB", (64, 64)))
    for action in studio.findChildren(QAction):
        action.setEnabled(True)  # a disabled action hides a clash that shows once it is enabled
    sequences = every_sequence(studio)
    assert {"Ctrl+Z", "Del", "Ctrl+Return", "Esc"} <= {s.toString() for s in sequences}
    spy = ShortcutSpy()
    QApplication.instance().installEventFilter(spy)
    checked = 0
    try:
        for page in range(studio.center.count()):
            studio.center.setCurrentIndex(page)
            for widget in focus_places(studio):
                widget.setFocus(Qt.FocusReason.OtherFocusReason)
                if QApplication.focusWidget() is not widget:
                    continue
                for sequence in sequences:
                    spy.events.clear()
                    press(widget, sequence)
                    ambiguous = [w for w, is_ambiguous in spy.events if is_ambiguous]
                    assert not ambiguous, f"{sequence.toString()} is ambiguous with the focus on {widget!r}: {ambiguous}"
                    checked += 1
    finally:
        QApplication.instance().removeEventFilter(spy)
    assert checked > 200


def test_ctrl_z_and_delete_on_the_canvas_act_on_the_canvas(qtbot, studio):
    finish_job(studio)
    gallery = studio.history.gallery
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 1, timeout=5000)
    gallery.select_row(0)
    gallery.grid.setFocus()
    canvas = studio.canvas
    studio.center.setCurrentWidget(canvas)
    canvas.set_image(Image.new("RGB", (64, 64), (9, 9, 9)))
    canvas.view.set_brush(Brush(size=10))
    qtbot.mouseClick(canvas.view, Qt.MouseButton.LeftButton)
    canvas.document.clear_mask()
    drag_image(canvas.view, [(16.5, 32.5), (48.5, 32.5)])
    assert QApplication.focusWidget() is canvas.view and canvas.has_mask()

    QTest.keyClick(canvas.view, Qt.Key.Key_Delete)
    assert gallery.model.rowCount() == 1  # the selected history image stays out of the trash
    QTest.keyClick(canvas.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not canvas.has_mask()  # the stroke is undone


def test_delete_and_ctrl_z_in_the_history_act_on_the_history(qtbot, studio):
    finish_job(studio)
    gallery = studio.history.gallery
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 1, timeout=5000)
    gallery.select_row(0)
    gallery.grid.setFocus()
    QTest.keyClick(gallery.grid, Qt.Key.Key_Delete)
    assert gallery.model.rowCount() == 0
    QTest.keyClick(gallery.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert gallery.model.rowCount() == 1


def test_the_shortcut_list_is_made_from_the_actions(qtbot, studio):
    rows = shortcut_rows(studio)
    places = {(row.where, row.keys) for row in rows}
    assert ("Canvas", "Ctrl+Z") in places and ("History", "Del") in places and ("Everywhere", "Esc") in places
    new = QAction("Frobnicate", studio)
    new.setShortcut(QKeySequence("Ctrl+Alt+F"))
    studio.addAction(new)
    dialog = ShortcutsDialog(studio)
    qtbot.addWidget(dialog)
    texts = {dialog.table.item(r, 1).text() + "=" + dialog.table.item(r, 2).text() for r in range(dialog.table.rowCount())}
    assert "Frobnicate=Ctrl+Alt+F" in texts
