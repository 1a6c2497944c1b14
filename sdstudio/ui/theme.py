"""Fusion style with a dark palette by default, light when the platform says light.

Qt's default high-DPI scaling is left on and nothing here uses fixed-pixel bitmaps.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

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


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
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
