"""Images put into a history folder the way a user would (files copied into images/), and the
history docked into a window."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdstudio.ui.history_dock import install_history
from tests.history.history_helpers import write_png


@pytest.fixture
def drop_png(tmp_path):
    """drop_png(name, parameters=None, json=None | dict | str) -> path under <tmp>/images/2024-05-06/."""

    def drop(name: str, parameters: str | None = None, settings: object = None) -> Path:
        text = settings if isinstance(settings, str) or settings is None else json.dumps(settings)
        return write_png(tmp_path / "images" / "2024-05-06" / name, parameters, text)

    return drop


@pytest.fixture
def panel(qtbot, window, tmp_path):
    """The history docked into the module's `window` fixture, open."""
    p = install_history(window, tmp_path / "history")
    qtbot.waitUntil(lambda: p.gallery is not None, timeout=5000)
    yield p
    p.close()
