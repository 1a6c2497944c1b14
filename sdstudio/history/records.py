"""The rows of the history index as Python values, and the filters over them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sdstudio.history.metadata import request_fields


@dataclass(frozen=True)
class HistoryImage:
    """One image of the history. `file`, `thumbnail`, `init_file` and `mask_file` are paths
    relative to the history folder (`file` is where the image lives when not trashed)."""

    id: int
    created: float
    prompt: str
    negative_prompt: str
    parameters: str | None
    settings: str | None  # the app's JSON chunk, as text
    file: str
    thumbnail: str | None
    model: str
    mode: str
    seed: int | None
    width: int | None
    height: int | None
    favourite: bool
    parent_id: int | None
    init_file: str | None
    mask_file: str | None
    trashed: bool

    def settings_dict(self) -> dict[str, Any] | None:
        if not self.settings:
            return None
        try:
            data = json.loads(self.settings)
        except json.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None

    def request_fields(self) -> dict[str, Any] | None:
        """GenerationRequest keyword arguments to make this image again; None if unknown."""
        return request_fields(self.parameters, self.settings_dict())


COLUMNS = (
    "id, created, prompt, negative, parameters, settings, file, thumbnail, model, mode, seed, "
    "width, height, favourite, parent_id, init_file, mask_file, trashed"
)


def from_row(row: tuple) -> HistoryImage:
    values = list(row)
    values[13] = bool(values[13])
    values[17] = bool(values[17])
    return HistoryImage(*values)


class GroupBy(StrEnum):
    DAY = "day"
    PROMPT = "prompt"


@dataclass(frozen=True)
class Query:
    """Which images to list: prompt words (full-text, prefix match), favourites only, one day
    ("YYYY-MM-DD", local time), one exact prompt, and the trash instead of the history."""

    text: str = ""
    favourites: bool = False
    day: str | None = None
    prompt: str | None = None
    trashed: bool = False


@dataclass(frozen=True)
class Group:
    """One day or one prompt of the history: its key (a Query.day / Query.prompt value),
    how many images it holds and its newest image's id."""

    key: str
    count: int
    newest_id: int
