"""The studio's own icons: SVG files in sdstudio/resources/ui, sharp at any device pixel ratio."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon

from sdstudio.resources import icon_path


@cache
def icon(name: str) -> QIcon:
    """`name` is a file stem in sdstudio/resources/ui, e.g. "dice"."""
    return QIcon(str(icon_path(name)))
