"""The result page: the large viewer (preview while generating, the results after, or a history
image), a strip of thumbnails when a job made several, and what can be done with the picture
shown: save, copy, copy its parameters, reuse its seed, send it on, drag it out as a PNG file."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QMimeData, QPoint, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QDrag, QGuiApplication, QIcon, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from sdstudio.canvas.convert import to_qimage
from sdstudio.ui.shortcuts import scoped_action
from sdstudio.ui.upscale_menu import UpscalerList, upscale_menu
from sdstudio.ui.viewer import FullScreenViewer, ImageViewer

if TYPE_CHECKING:
    from sdstudio.engine.events import ResultImage

THUMBNAIL = 96


@dataclass(frozen=True)
class Shown:
    """A picture in the viewer and what it carries."""

    image: QImage
    seed: int | None = None
    infotext: str = ""  # the A1111 "parameters" text
    result: ResultImage | None = None  # a fresh result: written with its full metadata
    path: Path | None = None  # a history file: saved and dragged as it is


class ThumbnailStrip(QListWidget):
    """A row of thumbnails; choosing one (click or arrow keys) shows it big."""

    # The person chose an image in the strip: (its index).
    chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.setFixedHeight(THUMBNAIL + 2 * self.frameWidth() + self.horizontalScrollBar().sizeHint().height() + 12)
        self.setHorizontalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.setAccessibleName("Images of the last job")
        self.currentRowChanged.connect(self._row_changed)

    def set_images(self, images: list[QImage], labels: list[str]) -> None:
        self.blockSignals(True)
        self.clear()
        for image, label in zip(images, labels, strict=True):
            thumb = image.scaled(self.iconSize() * self.devicePixelRatioF(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
            thumb.setDevicePixelRatio(self.devicePixelRatioF())
            item = QListWidgetItem(QIcon(QPixmap.fromImage(thumb)), "")
            item.setToolTip(label)
            # Icon only: without a size hint, icon mode keeps an empty text line under it.
            item.setSizeHint(QSize(THUMBNAIL + 8, THUMBNAIL + 8))
            self.addItem(item)
        self.setCurrentRow(0)
        self.blockSignals(False)

    def _row_changed(self, row: int) -> None:
        if row >= 0:
            self.chosen.emit(row)


class ResultView(QWidget):
    """The first page of the centre: the viewer with the batch strip below."""

    # "Use seed" on the picture shown: (seed).
    use_seed = Signal(int)
    # "Send to img2img" / "Send to canvas / inpaint": (the picture).
    send_to_img2img = Signal(QImage)
    send_to_inpaint = Signal(QImage)
    # "Upscale ×2 / ×4" on the picture shown: (Shown, factor, upscaler).
    upscale = Signal(object, float, str)
    # Saving or dragging failed: (message for a person).
    problem = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = ImageViewer("Your image appears here.\nWrite a prompt and press Ctrl+Enter.")
        self.strip = ThumbnailStrip()
        self.strip.hide()
        self._shown: list[Shown] = []
        self._row = -1
        self._full: FullScreenViewer | None = None
        self._drag_dir: tempfile.TemporaryDirectory[str] | None = None
        self.upscalers: UpscalerList = lambda: ()  # the window names the backend's models
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.strip)
        self.strip.chosen.connect(self.show_row)
        self.view.drag_out.connect(self.drag_out)
        self.view.full_screen_requested.connect(self.full_screen)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self._make_actions()
        self._sync_actions()

    # ---- what is shown ----------------------------------------------------------------

    def show_preview(self, image: QImage) -> None:
        """A step's preview (or an init image): nothing to save or send yet."""
        self._row = -1
        self.view.set_image(image)
        self.view.set_caption("")
        self._sync_actions()

    def show_results(self, results: Sequence[ResultImage]) -> None:
        """A job's images replace the preview; more than one fills the strip."""
        shown = [Shown(to_qimage(r.image), r.seed, r.infotext, result=r) for r in results]
        self._show_all(shown)

    def show_file(self, image: QImage, path: Path, seed: int | None, infotext: str) -> None:
        """A history image, large, as a result is shown."""
        self._show_all([Shown(image, seed, infotext, path=path)])

    def _show_all(self, shown: list[Shown]) -> None:
        self._shown = shown
        self.strip.set_images([s.image for s in shown], [_label(s) for s in shown])
        self.strip.setVisible(len(shown) > 1)
        self.show_row(0)

    def show_row(self, row: int) -> None:
        if not 0 <= row < len(self._shown):
            return
        self._row = row
        shown = self._shown[row]
        caption = _label(shown) + (f" · {row + 1}/{len(self._shown)}" if len(self._shown) > 1 else "")
        self.view.set_image(shown.image)
        self.view.set_caption(caption)
        if self.strip.currentRow() != row:
            self.strip.blockSignals(True)
            self.strip.setCurrentRow(row)
            self.strip.blockSignals(False)
        if self._full is not None:
            self._full.show_image(shown.image, caption)
        self._sync_actions()

    def step(self, delta: int) -> None:
        """The next (+1) or previous (-1) image of the batch."""
        if self._shown:
            self.show_row(min(max(self._row + delta, 0), len(self._shown) - 1))

    def images(self) -> list[QImage]:
        return [s.image for s in self._shown]

    def current(self) -> Shown | None:
        return self._shown[self._row] if 0 <= self._row < len(self._shown) else None

    # ---- what can be done with it -----------------------------------------------------

    def save_as(self, target: str | None = None) -> Path | None:
        """Write the picture shown as PNG with its parameters (asks where when `target` is None)."""
        shown = self.current()
        if shown is None:
            return None
        if target is None:
            suggestion = str(Path.home() / _file_name(shown))
            target, _ = QFileDialog.getSaveFileName(self, "Save image as", suggestion, "PNG image (*.png)")
            if not target:
                return None
        path = Path(target).with_suffix(".png")
        try:
            _write_png(shown, path)
        except OSError as exc:
            self.problem.emit(f"Could not save {path}: {exc}")
            return None
        return path

    def copy(self) -> None:
        if (shown := self.current()) is not None:
            QGuiApplication.clipboard().setImage(shown.image)

    def copy_parameters(self) -> None:
        if (shown := self.current()) is not None and shown.infotext:
            QGuiApplication.clipboard().setText(shown.infotext)

    def drag_mime(self) -> QMimeData | None:
        """The picture shown as a PNG file (with its parameters) and as image data."""
        shown = self.current()
        if shown is None:
            return None
        if shown.path is not None:
            path = shown.path
        else:
            if self._drag_dir is None:
                self._drag_dir = tempfile.TemporaryDirectory(prefix="sdstudio-drag-")
            path = Path(self._drag_dir.name) / _file_name(shown)
            _write_png(shown, path)
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        mime.setImageData(shown.image)
        return mime

    def drag_out(self) -> None:
        try:
            mime = self.drag_mime()
        except OSError as exc:
            self.problem.emit(f"Could not prepare the image for dragging: {exc}")
            return
        if mime is None:
            return
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.setPixmap(QPixmap.fromImage(self.view.image().scaled(QSize(THUMBNAIL, THUMBNAIL), Qt.AspectRatioMode.KeepAspectRatio)))
        drag.exec(Qt.DropAction.CopyAction)

    def full_screen(self) -> None:
        if self._full is not None:
            self._full.close()
            return
        if self.view.image().isNull():
            return
        self._full = FullScreenViewer(self.view.image(), self.view.caption(), self.step)
        self._full.destroyed.connect(self._full_closed)
        self._full.showFullScreen()

    def _full_closed(self) -> None:
        self._full = None

    # ---- actions and menu -------------------------------------------------------------

    def _make_actions(self) -> None:
        def seed() -> None:
            if (shown := self.current()) is not None and shown.seed is not None:
                self.use_seed.emit(shown.seed)

        def send(signal: Signal) -> None:
            if (shown := self.current()) is not None:
                signal.emit(shown.image)

        specs = (  # name, text, keys, slot; the first six are the picture's menu
            ("save", "Save as…", [QKeySequence.StandardKey.Save], lambda: self.save_as()),
            ("copy", "Copy image", [QKeySequence.StandardKey.Copy], self.copy),
            ("copy_parameters", "Copy parameters", ["Ctrl+Shift+C"], self.copy_parameters),
            ("use_seed", "Use seed", [], seed),
            ("img2img", "Send to img2img", [], lambda: send(self.send_to_img2img)),
            ("inpaint", "Send to canvas / inpaint", [], lambda: send(self.send_to_inpaint)),
            ("fit", "Fit to window", ["Ctrl+0"], self.view.fit),
            ("actual_size", "Actual size (100%)", ["Ctrl+1"], self.view.actual_size),
            ("full_screen", "Full screen", ["F11"], self.full_screen),
            ("previous", "Previous image", ["Left"], lambda: self.step(-1)),
            ("next", "Next image", ["Right"], lambda: self.step(1)),
        )
        self.actions_by_name: dict[str, QAction] = {
            name: scoped_action(self, text, keys, slot) for name, text, keys, slot in specs
        }
        self._menu_names = [name for name, *_ in specs[:6]]
        # Sending needs somewhere to send to: the canvas page turns these on.
        for name in ("img2img", "inpaint"):
            self.actions_by_name[name].setVisible(False)

    def _sync_actions(self) -> None:
        shown = self.current()
        for name in self._menu_names:
            self.actions_by_name[name].setEnabled(shown is not None)
        if shown is not None:
            self.actions_by_name["use_seed"].setEnabled(shown.seed is not None)
            self.actions_by_name["copy_parameters"].setEnabled(bool(shown.infotext))
        many = len(self._shown) > 1
        self.actions_by_name["previous"].setEnabled(many)
        self.actions_by_name["next"].setEnabled(many)

    def context_menu(self) -> QMenu:
        """The picture's menu: save, copy, parameters, seed, send on, upscale; then view commands."""
        menu = QMenu(self)
        for name in self._menu_names:
            if self.actions_by_name[name].isVisible():
                menu.addAction(self.actions_by_name[name])
        shown = self.current()
        if shown is not None and (shown.result is not None or shown.path is not None):
            menu.addMenu(upscale_menu(menu, self.upscalers(), lambda scale, name: self.upscale.emit(shown, scale, name)))
        menu.addSeparator()
        for name in ("fit", "actual_size", "full_screen"):
            menu.addAction(self.actions_by_name[name])
        return menu

    def _context_menu(self, pos: QPoint) -> None:
        if not self.view.image().isNull():
            self.context_menu().exec(self.view.mapToGlobal(pos))


def _label(shown: Shown) -> str:
    return f"Seed {shown.seed}" if shown.seed is not None else ""


def _file_name(shown: Shown) -> str:
    if shown.path is not None:
        return shown.path.name
    return f"sdstudio-{shown.seed}.png" if shown.seed is not None else "sdstudio.png"


def _write_png(shown: Shown, path: Path) -> None:
    """The history file as it is, a fresh result with its metadata, or just the pixels."""
    if shown.path is not None:
        if shown.path.resolve() != path.resolve():
            shutil.copyfile(shown.path, path)
        return
    if shown.result is not None:
        from sdstudio.engine.params import result_json
        from sdstudio.engine.pngmeta import save_png

        result = shown.result
        save_png(result.image, path, result.infotext, result_json(result))
        return
    if not shown.image.save(str(path), "PNG"):
        raise OSError("the image could not be written")
