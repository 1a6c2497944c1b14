"""The selected history image shown large, with its parameters and what can be done with it."""

from __future__ import annotations

import time

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from sdstudio.history import HistoryImage
from sdstudio.ui.gallery_thumbs import FullImageLoader

# (label, name of the `action` it emits, tooltip); laid out three per row.
PANE_SIDE = 1024  # the details pane never shows more; the large viewer gets the file's own size

BUTTONS = (
    ("Reuse parameters", "reuse", "Fill the prompt and every parameter from this image"),
    ("Reuse seed", "reuse_seed", "Use this image's seed"),
    ("★ Favourite", "favourite", "Mark or unmark as favourite"),
    ("To img2img", "img2img", "Use this image as the init image of img2img"),
    ("To inpaint", "inpaint", "Open this image on the canvas to inpaint it"),
    ("Copy image", "copy", "Copy the image to the clipboard"),
    ("Open folder", "folder", "Show the image file in its folder"),
    ("Export…", "export", "Save a copy of the image (with its parameters) elsewhere"),
    ("Delete", "delete", "Move to the trash (Ctrl+Z undoes)"),
    ("Restore", "restore", "Bring the image back from the trash"),
)


class DetailsPane(QWidget):
    # (action name from BUTTONS): a button was pressed for the image shown.
    action = Signal(str)
    # (QImage): the full picture of the image shown was read (for the large viewer).
    picture_ready = Signal(QImage)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: HistoryImage | None = None
        self._loader = FullImageLoader()
        self._loader.ready.connect(self._full_ready)
        self._ticket = 0
        self._picture = QImage()
        self.picture = QLabel("Select an image")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(96, 96)
        self.picture.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.parameters = QPlainTextEdit()
        self.parameters.setReadOnly(True)
        self.parameters.setMaximumHeight(96)
        self.parameters.setAccessibleName("Parameters of the selected image")
        self.buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        grid.setSpacing(4)
        for n, (label, name, tip) in enumerate(BUTTONS):
            button = QPushButton(label)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, name=name: self.action.emit(name))
            self.buttons[name] = button
            grid.addWidget(button, n // 3, n % 3)
        self.buttons["favourite"].setCheckable(True)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 4, 4, 4)
        column.addWidget(self.picture, 1)
        column.addWidget(self.summary)
        column.addWidget(self.parameters)
        column.addLayout(grid)
        self.show_image(None, None)

    def show_image(self, image: HistoryImage | None, path: object, thumbnail: QImage | None = None) -> None:
        """Show `image` (its file at `path`); the thumbnail stands in until the file is read."""
        self.image = image
        for button in self.buttons.values():
            button.setEnabled(image is not None)
        self.buttons["delete"].setVisible(image is None or not image.trashed)
        self.buttons["restore"].setVisible(image is not None and image.trashed)
        self.parameters.setVisible(image is not None)
        if image is None:
            self._picture = QImage()
            self.picture.setText("Select an image")
            self.summary.clear()
            self.parameters.clear()
            return
        has_parameters = image.request_fields() is not None
        for name in ("reuse", "reuse_seed"):
            self.buttons[name].setEnabled(has_parameters)
        self.buttons["favourite"].setChecked(image.favourite)
        self.summary.setText(_summary(image))
        self.parameters.setPlainText(image.parameters or "This image carries no generation parameters.")
        self._picture = thumbnail if thumbnail is not None and not thumbnail.isNull() else QImage()
        self._fit()
        self._ticket = self._loader.load(path, QSize(PANE_SIDE, PANE_SIDE))  # type: ignore[arg-type]

    def _full_ready(self, ticket: int, picture: QImage, fitted: QImage) -> None:
        if ticket != self._ticket:
            return  # the selection moved on
        if picture.isNull():
            self.picture.setText("The image file could not be read.")
            self._picture = QImage()
            return
        self._picture = fitted  # the pane rescales on every resize: keep that cheap
        self._fit()
        self.picture_ready.emit(picture)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self._picture.isNull():
            return
        box = self.picture.contentsRect().size()
        scaled = self._picture.scaled(box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.picture.setPixmap(QPixmap.fromImage(scaled))


def _summary(image: HistoryImage) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(image.created))
    parts = [when]
    if image.width and image.height:
        parts.append(f"{image.width}×{image.height}")
    if image.seed is not None:
        parts.append(f"seed {image.seed}")
    if image.mode:
        parts.append(image.mode)
    if image.model:
        parts.append(image.model)
    if image.trashed:
        parts.append("in the trash")
    return " · ".join(parts)
