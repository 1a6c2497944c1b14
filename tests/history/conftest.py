"""Images put into a history folder the way a user would: files copied into images/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.history.history_helpers import write_png


@pytest.fixture
def drop_png(tmp_path):
    """drop_png(name, parameters=None, json=None | dict | str) -> path under <tmp>/images/2024-05-06/."""

    def drop(name: str, parameters: str | None = None, settings: object = None) -> Path:
        text = settings if isinstance(settings, str) or settings is None else json.dumps(settings)
        return write_png(tmp_path / "images" / "2024-05-06" / name, parameters, text)

    return drop
