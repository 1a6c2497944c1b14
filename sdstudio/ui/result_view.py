"""The result page: one big image (preview while generating, result after) and a strip of
thumbnails when a job made several images."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QListView,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

THUMBNAIL = 96


class ImageView(QWidget):
    """Draws an image as large as fits, aspect kept, scaled smoothly (small previews too)."""

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        self._scaled = QPixmap()
        self._placeholder = placeholder
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 160)

    def image(self) -> QImage:
        return self._image

    def set_image(self, image: QImage) -> None:
        self._image = image
        self._scaled = QPixmap()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        if self._image.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        ratio = self.devicePixelRatioF()
        target = self._image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - target.width()) // 2
        y = (self.height() - target.height()) // 2
        rect = QRect(x, y, target.width(), target.height())
        pixels = QSize(round(target.width() * ratio), round(target.height() * ratio))
        if pixels.width() >= self._image.width():
            # Enlarging (previews are small): bilinear while painting is 4x cheaper than a
            # smooth QImage.scaled and looks the same, which keeps the loop free during a job.
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(rect, self._image)
            return
        if self._scaled.size() != pixels:
            # Shrinking a big result: area-averaged scaling avoids aliasing; once per size.
            scaled = self._image.scaled(pixels, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
            self._scaled = QPixmap.fromImage(scaled)
            self._scaled.setDevicePixelRatio(ratio)
        painter.drawPixmap(rect, self._scaled)


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
    """The first page of the centre: the image view with the batch strip below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = ImageView("Your image appears here.\nWrite a prompt and press Ctrl+Enter.")
        self.strip = ThumbnailStrip()
        self.strip.hide()
        self._images: list[QImage] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.strip)
        self.strip.chosen.connect(lambda row: self.view.set_image(self._images[row]))

    def show_preview(self, image: QImage) -> None:
        self.view.set_image(image)

    def show_results(self, images: list[QImage], labels: list[str]) -> None:
        """The finished images replace the preview; more than one fills the strip."""
        self._images = images
        self.view.set_image(images[0])
        self.strip.set_images(images, labels)
        self.strip.setVisible(len(images) > 1)

    def images(self) -> list[QImage]:
        return list(self._images)
