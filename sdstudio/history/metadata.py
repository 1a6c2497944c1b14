"""What the history knows of an image, read from the metadata inside its file.

The app's JSON chunk is exact and preferred; the A1111 text is read where it is all there
is (files from A1111, Forge, Fooocus, or an older version of this app).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdstudio.engine.infotext import parse_infotext
from sdstudio.engine.params import request_fields_from_infotext, request_fields_from_json
from sdstudio.engine.pngmeta import read_png_text

# The app's JSON chunk carries this extra key: history links that survive a rebuild.
HISTORY_KEY = "history"


@dataclass(frozen=True)
class Described:
    """The index columns that come from an image's metadata."""

    prompt: str = ""
    negative_prompt: str = ""
    model: str = ""
    mode: str = ""
    seed: int | None = None
    width: int | None = None
    height: int | None = None


def describe(parameters: str | None, settings: dict[str, Any] | None) -> Described:
    """The index columns for an image with this A1111 text and app JSON (either may be None)."""
    fields = request_fields(parameters, settings) or {}
    model = ""
    if settings and isinstance(settings.get("model_info"), dict):
        model = str(settings["model_info"].get("name") or "")
    elif fields.get("model") is not None:
        model = fields["model"].name
    elif parameters:
        model = parse_infotext(parameters).params.get("Model", "")
    mode = fields.get("mode")
    return Described(
        prompt=str(fields.get("prompt", "")),
        negative_prompt=str(fields.get("negative_prompt", "")),
        model=model,
        mode=str(mode.value) if mode is not None else "",
        seed=_int(fields.get("seed")),
        width=_int(fields.get("width")),
        height=_int(fields.get("height")),
    )


def request_fields(
    parameters: str | None, settings: dict[str, Any] | None
) -> dict[str, Any] | None:
    """GenerationRequest keyword arguments to reuse an image; None when it carries no parameters."""
    if settings:
        try:
            fields = request_fields_from_json(settings)
        except (TypeError, ValueError):
            fields = {}
        if "prompt" in fields:
            return fields
    if parameters:
        return request_fields_from_infotext(parameters)
    return None


def history_links(settings: dict[str, Any] | None) -> dict[str, Any]:
    """The app's history links (created time, parent file, init image, mask) from its JSON."""
    links = settings.get(HISTORY_KEY) if settings else None
    return links if isinstance(links, dict) else {}


def fields_from_file(path: str | Path) -> tuple[dict[str, Any] | None, str]:
    """Parameters to load from any image file dropped on the window: (fields, "") or
    (None, a sentence saying why there are none). Never raises."""
    name = Path(path).name
    if not Path(path).is_file():
        return None, f"{name} is not a file."
    parameters, settings = read_png_text(path)
    fields = request_fields(parameters, settings)
    if fields is None:
        return None, f"{name} has no generation parameters in it (no A1111 or SD Studio metadata)."
    if not fields.get("prompt") and len(fields) <= 2:
        return None, f"The parameters in {name} could not be read."
    return fields, ""


def _int(value: object) -> int | None:
    try:
        return int(value) if value is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
