"""What the history knows of an image, read from the metadata inside its file.

The app's JSON chunk is exact and preferred; the A1111 text is read where it is all there
is (files from A1111, Forge, Fooocus, or an older version of this app).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdstudio.engine.infotext import parse_infotext
from sdstudio.engine.params import fields_from_infotext, networks_from_infotext, networks_from_json
from sdstudio.engine.pngmeta import read_png_text
from sdstudio.engine.request import GenerationRequest
from sdstudio.history.layout import IMAGES_DIR, INPUTS_DIR, contained_name

# The app's JSON chunk carries this extra key: history links that survive a rebuild.
HISTORY_KEY = "history"

# What the index accepts from a file; anything else is left empty rather than stored: SQLite
# integers are 64-bit (a made image's seed is never negative: -1 is "random", not a seed),
# PNG sides at most 2^31-1, and the gallery shows dates up to year 9999.
_SEED = (0, 2**63 - 1)
_SIDE = (1, 2**31 - 1)
_CREATED = (0.0, 253402300799.0)


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
    """The index columns for an image with this A1111 text and app JSON (either may be None).

    Total: whatever a file holds, every value is of its column's type and range (what cannot be
    read is left empty), and nothing raises.
    """
    parameters = parameters if isinstance(parameters, str) else None
    settings = settings if isinstance(settings, dict) else None
    fields = _fields(parameters, settings)
    mode = getattr(fields.get("mode"), "value", "")
    return Described(
        prompt=clean_text(fields.get("prompt")),
        negative_prompt=clean_text(fields.get("negative_prompt")),
        model=_model_name(parameters, settings, fields),
        mode=clean_text(mode),
        seed=_bounded_int(fields.get("seed"), *_SEED),
        width=_bounded_int(fields.get("width"), *_SIDE),
        height=_bounded_int(fields.get("height"), *_SIDE),
    )


def request_fields(
    parameters: str | None, settings: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Flat parameter fields to reuse an image (plus "model", the ModelRef, when the app's
    JSON names it, and "networks", the add-on files it used); None when it carries no
    parameters."""
    if settings and "prompt" in settings:  # a request of any version names its prompt
        try:
            request = GenerationRequest.from_json(settings)
        except ValueError:
            request = None
        if request is not None:
            return request.fields() | {"model": request.model, "networks": networks_from_json(settings)}
    if parameters:
        return fields_from_infotext(parameters) | {"networks": networks_from_infotext(parameters)}
    return None


def history_links(settings: dict[str, Any] | None, root: Path) -> dict[str, Any]:
    """The app's history links from its JSON, each only when valid: "created" (a time the
    gallery can show), "parent" (a file under images/), "init_image" and "mask" (files under
    inputs/), paths inside `root` even after following links. Total."""
    links = settings.get(HISTORY_KEY) if isinstance(settings, dict) else None
    if not isinstance(links, dict):
        return {}
    valid = {
        "created": _bounded_float(links.get("created"), *_CREATED),
        "parent": contained_name(root, links.get("parent"), IMAGES_DIR),
        "init_image": contained_name(root, links.get("init_image"), INPUTS_DIR),
        "mask": contained_name(root, links.get("mask"), INPUTS_DIR),
    }
    return {k: v for k, v in valid.items() if v is not None}


def fields_from_file(path: str | Path) -> tuple[dict[str, Any] | None, str]:
    """Parameters to load from any image file dropped on the window: (fields, "") or
    (None, a sentence saying why there are none). Never raises."""
    name = Path(path).name
    try:
        if not Path(path).is_file():
            return None, f"{name} is not a file."
    except OSError:
        return None, f"{name} could not be opened."
    parameters, settings = read_png_text(path)
    try:
        fields = request_fields(parameters, settings)
    except Exception:  # noqa: BLE001 - a foreign file may trip any parser
        return None, f"The parameters in {name} could not be read."
    if fields is None:
        return None, f"{name} has no generation parameters in it (no A1111 or SD Studio metadata)."
    if not fields.get("prompt") and len(fields.keys() - {"model", "networks"}) <= 2:
        return None, f"The parameters in {name} could not be read."
    return fields, ""


def clean_text(value: object) -> str:
    """`value` when it is a string SQLite can store (lone surrogates, which JSON allows and
    SQLite refuses, become "?"), else ""."""
    if not isinstance(value, str):
        return ""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _fields(parameters: str | None, settings: dict[str, Any] | None) -> dict[str, Any]:
    """request_fields, or what the A1111 text alone gives when the JSON trips it; {} when
    neither can be read."""
    for json_part in (settings, None):
        try:
            fields = request_fields(parameters, json_part)
        except Exception:  # noqa: BLE001 - a foreign file may trip any parser; the image still counts
            continue
        return fields if isinstance(fields, dict) else {}
    return {}


def _model_name(
    parameters: str | None, settings: dict[str, Any] | None, fields: dict[str, Any]
) -> str:
    info = settings.get("model_info") if settings else None
    try:
        if isinstance(info, dict):
            return clean_text(info.get("name"))
        if fields.get("model") is not None:
            return clean_text(fields["model"].name)
        if parameters:
            return clean_text(parse_infotext(parameters).params.get("Model", ""))
    except Exception:  # noqa: BLE001 - the metadata is foreign; no model name is no harm
        pass
    return ""


def _bounded_int(value: object, low: int, high: int) -> int | None:
    """An integer (or integral finite float) within [low, high]; None for anything else."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if low <= value <= high else None


def _bounded_float(value: object, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value) if abs(value) <= high * 2 else math.inf  # a 5000-digit int overflows
    return value if low <= value <= high else None


def index_row(
    file: str,
    parameters: str | None,
    settings: dict[str, Any] | None,
    *,
    created: float,
    size: tuple[int | None, int | None],
    thumbnail: str | None,
    init_file: str | None,
    mask_file: str | None,
    trashed: bool = False,
) -> dict[str, Any]:
    """The index row of an image file, whether just saved or found on disk by a rebuild:
    columns from its metadata, `width`/`height` the file's own pixel size (an inpaint "only
    masked" result is the init image's size, not the generation size)."""
    d = describe(parameters, settings)
    return {
        "created": created,
        "prompt": d.prompt,
        "negative": d.negative_prompt,
        "parameters": clean_text(parameters) if parameters is not None else None,
        "settings": settings_text(settings),
        "file": file,
        "thumbnail": thumbnail,
        "model": d.model,
        "mode": d.mode,
        "seed": d.seed,
        "width": size[0],
        "height": size[1],
        "init_file": init_file,
        "mask_file": mask_file,
        "trashed": int(trashed),
    }


def settings_text(settings: dict[str, Any] | None) -> str | None:
    """The app's JSON as the index keeps it; None when there is none or it cannot be written."""
    if not settings:
        return None
    try:
        return clean_text(json.dumps(settings, ensure_ascii=False, sort_keys=True))
    except (TypeError, ValueError, RecursionError):  # keys of mixed types, nesting too deep
        return None
