"""The studio's own icons: SVG files in resources/ui, sharp at any device pixel ratio."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

ICON_DIR = Path(__file__).resolve().parents[2] / "resources" / "ui"


@cache
def icon(name: str) -> QIcon:
    """`name` is a file stem in resources/ui, e.g. "dice"."""
    return QIcon(str(ICON_DIR / f"{name}.svg"))
