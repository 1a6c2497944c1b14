"""The masking canvas as one widget: the view, its actions and shortcuts, and ways to put a
picture on it (open, drop, paste). Errors leave through a signal, never dialogs."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
)
from PySide6.QtWidgets import QFileDialog, QVBoxLayout, QWidget

from sdstudio.canvas.brush import Brush
from sdstudio.canvas.document import CanvasDocument
from sdstudio.canvas.loading import OPEN_FILTER, ImageLoadError, picture_from_mime, read_image
from sdstudio.canvas.view import CanvasView
from sdstudio.imaging_outpaint import Growth, Infill

# How a growth's new area is filled, as the Grow menu names it.
_INFILL_TEXTS = {
    Infill.EDGE: "stretch the edges",
    Infill.TELEA: "inpaint (Telea)",
    Infill.NAVIER_STOKES: "inpaint (Navier-Stokes)",
    Infill.NOISE: "noise",
}
GROW_STEP = 128  # pixels a toolbar growth adds: a quarter of an SD1 picture, a useful outpaint


class Canvas(QWidget):
    """An image layer and a mask layer (white = repaint) a person paints on.

    `image()` and `mask()` hand out PIL RGB and L images of the same size.
    """

    error = Signal(str)
    """Carries a message for a person; fires when a picture cannot be opened, dropped or pasted."""

    image_changed = Signal(QSize)
    """Carries the image size; fires whenever a new image is put on the canvas."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = CanvasDocument(self)
        self.view = CanvasView(self.document, self)
        self.infill = Infill.EDGE  # how a growth's new area is filled, by the toolbar or a frame drag
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(0)
        self._layout.addWidget(self.view)
        self.setAcceptDrops(True)
        self.document.replaced.connect(self.image_changed)
        self.view.grow_requested.connect(self.grow)
        self._make_actions()
        self.document.history_changed.connect(self._sync_history_actions)
        self.view.eraser_changed.connect(self.actions_by_name["eraser"].setChecked)
        self.view.mask_visible_changed.connect(self.actions_by_name["show_mask"].setChecked)
        self._sync_history_actions()

    def set_toolbar(self, toolbar: QWidget) -> None:
        """Show `toolbar` above the view (the window builds it from `actions_by_name`)."""
        self._layout.insertWidget(0, toolbar)

    # ---- the edge: PIL in and out ---------------------------------------------------------

    def has_image(self) -> bool:
        return self.document.has_image()

    def has_mask(self) -> bool:
        """True when some pixel is marked for repainting."""
        return self.document.has_mask()

    def image(self) -> Image.Image | None:
        """The canvas image as PIL RGB (None when empty)."""
        return self.document.image()

    def mask(self) -> Image.Image | None:
        """The mask as PIL "L", 255 = repaint, the image's size (None when empty)."""
        return self.document.mask()

    def set_image(self, picture: Image.Image | QImage, keep_mask: bool = True) -> None:
        """Put a picture on the canvas; `keep_mask` keeps the painted mask (e.g. for a result
        sent back for another round). What size the engine makes of it is the window's to say."""
        self.document.set_image(picture, keep_mask=keep_mask)

    def set_mask(self, picture: Image.Image | QImage) -> None:
        """Replace the mask (white or opaque = repaint); undoable."""
        self.document.set_mask(picture)

    # ---- putting a picture on it ----------------------------------------------------------

    def open_file(self, path: str | Path | None = None) -> bool:
        """Open an image file (asking for one when `path` is None) as a new canvas, mask cleared.
        Returns True on success; on failure emits `error` and leaves the canvas as it was."""
        if path is None:
            chosen, _ = QFileDialog.getOpenFileName(self, "Open image", "", OPEN_FILTER)
            if not chosen:
                return False
            path = chosen
        return self._put(lambda: read_image(path))

    def paste(self) -> bool:
        """Put the clipboard's image (or image file) on the canvas as a new canvas."""
        mime = QGuiApplication.clipboard().mimeData()
        return self._put_from_mime(mime)

    def _put_from_mime(self, mime) -> bool:
        return self._put(lambda: picture_from_mime(mime))

    def _put(self, load) -> bool:
        """Put what `load()` reads on the canvas as a new canvas; a bad file goes to `error`."""
        try:
            picture = load()
        except ImageLoadError as exc:
            self.error.emit(str(exc))
            return False
        self.set_image(picture, keep_mask=False)
        return True

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        if self._put_from_mime(event.mimeData()):
            event.acceptProposedAction()

    # ---- brush ----------------------------------------------------------------------------

    @property
    def brush(self) -> Brush:
        return self.view.brush

    def set_brush_size(self, size: float) -> None:
        self.view.set_brush(self.view.brush.resized(size))

    def set_brush_hardness(self, hardness: float) -> None:
        self.view.set_brush(Brush(self.view.brush.size, min(max(hardness, 0.0), 1.0)))

    def grow(self, growth: Growth, infill: Infill | None = None) -> None:
        """Enlarge the canvas for outpainting (see `CanvasDocument.grow`), filled by `infill`
        (default: the chosen `self.infill`); too large a canvas goes to `error`."""
        try:
            self.document.grow(growth, infill or self.infill)
        except ValueError as exc:
            self.error.emit(str(exc))

    # ---- actions --------------------------------------------------------------------------

    def _make_actions(self) -> None:
        """Every canvas command as a QAction, so a toolbar can show them and shortcuts work
        while the canvas has focus (without stealing Ctrl+Z from the prompt editor)."""
        view, doc = self.view, self.document
        specs = [  # name, menu text, toolbar text, shortcuts, slot
            ("undo", "Undo", "Undo", ("Ctrl+Z",), doc.undo),
            ("redo", "Redo", "Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), doc.redo),
            ("eraser", "Eraser", "Eraser", ("E",), view.set_eraser),
            ("show_mask", "Show mask", "Mask", ("H",), view.set_mask_visible),
            ("smaller", "Smaller brush", "Smaller", ("[",), lambda: view.grow_brush(-1)),
            ("bigger", "Bigger brush", "Bigger", ("]",), lambda: view.grow_brush(1)),
            ("clear", "Clear mask", "Clear", (), doc.clear_mask),
            ("invert", "Invert mask", "Invert", ("Ctrl+I",), doc.invert_mask),
            ("fill", "Fill mask", "Fill", (), doc.fill_mask),
            ("fit", "Fit to window", "Fit", ("Ctrl+0",), view.fit),
            ("actual_size", "Actual size (100%)", "100%", ("Ctrl+1",), view.actual_size),
            ("open", "Open image…", "Open", (), self.open_file),
            ("paste", "Paste image", "Paste", ("Ctrl+V",), self.paste),
        ] + [
            (f"grow_{side}", f"Grow canvas {side} by {GROW_STEP} px (outpaint)", f"+{arrow}", (),
             lambda side=side: self.grow(Growth(**{side: GROW_STEP})))
            for side, arrow in (("left", "←"), ("top", "↑"), ("right", "→"), ("bottom", "↓"))
        ]
        self.actions_by_name: dict[str, QAction] = {}
        for name, text, short, keys, slot in specs:
            action = QAction(text, self)
            action.setIconText(short)
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.setToolTip(f"{text} ({keys[0]})" if keys else text)
            if name in ("eraser", "show_mask"):
                action.setCheckable(True)
                action.toggled.connect(slot)
            else:
                action.triggered.connect(lambda _=False, slot=slot: slot())
            self.addAction(action)
            self.actions_by_name[name] = action
        self.actions_by_name["show_mask"].setChecked(view.mask_visible)
        infills = QActionGroup(self)
        for infill, text in _INFILL_TEXTS.items():
            action = QAction(f"New area: {text}", infills)
            action.setCheckable(True)
            action.setChecked(infill is self.infill)
            action.toggled.connect(lambda on, infill=infill: self._set_infill(infill) if on else None)
            self.actions_by_name[f"infill_{infill.value}"] = action

    def _set_infill(self, infill: Infill) -> None:
        self.infill = infill

    def _sync_history_actions(self) -> None:
        doc = self.document
        self.actions_by_name["undo"].setEnabled(doc.can_undo())
        self.actions_by_name["redo"].setEnabled(doc.can_redo())
        self.actions_by_name["undo"].setText(f"Undo {doc.undo_label()}".strip())
        self.actions_by_name["redo"].setText(f"Redo {doc.redo_label()}".strip())
