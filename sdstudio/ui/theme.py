"""Fusion style with a dark palette by default, light when the platform says light.

Qt's default high-DPI scaling is left on and nothing here uses fixed-pixel bitmaps.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QApplication,
    QProxyStyle,
    QStyle,
    QStyleFactory,
    QStyleOption,
    QStyleOptionComplex,
    QWidget,
)

_DARK = {
    QPalette.ColorRole.Window: "#25272b",
    QPalette.ColorRole.WindowText: "#e3e5e8",
    QPalette.ColorRole.Base: "#1b1c1f",
    QPalette.ColorRole.AlternateBase: "#2c2e33",
    QPalette.ColorRole.ToolTipBase: "#2c2e33",
    QPalette.ColorRole.ToolTipText: "#e3e5e8",
    QPalette.ColorRole.PlaceholderText: "#8a8f98",
    QPalette.ColorRole.Text: "#e3e5e8",
    QPalette.ColorRole.Button: "#32353a",
    QPalette.ColorRole.ButtonText: "#e3e5e8",
    QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.Light: "#45484f",
    QPalette.ColorRole.Midlight: "#3a3d43",
    QPalette.ColorRole.Mid: "#2a2c30",
    QPalette.ColorRole.Dark: "#151618",
    QPalette.ColorRole.Shadow: "#000000",
    QPalette.ColorRole.Highlight: "#6b5cff",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#8ab4ff",
}
_DARK_DISABLED = {
    QPalette.ColorRole.WindowText: "#6d717a",
    QPalette.ColorRole.Text: "#6d717a",
    QPalette.ColorRole.ButtonText: "#6d717a",
    QPalette.ColorRole.Highlight: "#3d3f46",
}


def prefers_light() -> bool:
    """Dark unless the platform explicitly says light (Unknown counts as dark)."""
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Light


class FocusRingStyle(QProxyStyle):
    """Fusion, plus a ring around the button that has the keyboard focus: Fusion draws a
    focused button exactly like an unfocused one, and the default button (Generate) always
    wears its highlight outline, so a keyboard user could not tell where Enter goes."""

    def drawControl(self, element: QStyle.ControlElement, option: QStyleOption, painter: QPainter, widget: QWidget | None = None) -> None:
        super().drawControl(element, option, painter, widget)
        if element == QStyle.ControlElement.CE_PushButton:
            _ring(option, painter)

    def drawComplexControl(self, control: QStyle.ComplexControl, option: QStyleOptionComplex, painter: QPainter, widget: QWidget | None = None) -> None:
        super().drawComplexControl(control, option, painter, widget)
        if control == QStyle.ComplexControl.CC_ToolButton:
            _ring(option, painter)


def _ring(option: QStyleOption, painter: QPainter) -> None:
    if not option.state & QStyle.StateFlag.State_HasFocus:
        return
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(option.palette.color(QPalette.ColorRole.Highlight).lighter(160), 2))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRoundedRect(QRectF(option.rect).adjusted(1.5, 1.5, -1.5, -1.5), 3, 3)
    painter.restore()


def apply_theme(app: QApplication) -> None:
    if not isinstance(app.style(), FocusRingStyle):
        app.setStyle(FocusRingStyle(QStyleFactory.create("Fusion")))
    if prefers_light():
        palette = app.style().standardPalette()
    else:
        palette = QPalette()
        for role, colour in _DARK.items():
            palette.setColor(role, QColor(colour))
        for role, colour in _DARK_DISABLED.items():
            palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(colour))
    app.setPalette(palette)


def follow_platform_theme(app: QApplication) -> None:
    """Apply the theme now and again whenever the platform switches light/dark."""
    apply_theme(app)
    QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_theme(app))
