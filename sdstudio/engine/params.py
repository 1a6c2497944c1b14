"""A request's A1111 "parameters" text and the app's JSON chunk, both derived from the
parameter table (`parameters.py`), and read back into flat parameter fields.

The window's "reuse parameters", the history store and the CLI all go through here, so a
parameter has one name in every layer.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from sdstudio.engine.events import ResultImage
from sdstudio.engine.infotext import Infotext, format_infotext, parse_infotext
from sdstudio.engine.parameters import PARAMETERS, Param, Part, applies
from sdstudio.engine.request import GenerationRequest, ModelInfo

if TYPE_CHECKING:
    from PIL.Image import Image

# Keys of the JSON chunk beside the request's own (`GenerationRequest.to_json()`).
MODEL_INFO_KEY = "model_info"


def infotext_pairs(request: GenerationRequest, model: ModelInfo | None) -> dict[str, object]:
    """The `Key: value` pairs of one image of `request` (its own seed, the size used)."""
    fields = request.fields()
    pairs: dict[str, object] = {}
    def add(params: list[Param]) -> None:
        for param in params:
            if param.infotext and applies(param, request.mode):
                pairs[param.infotext] = param.infotext_value(fields)

    add([p for p in PARAMETERS if p.part is not Part.JOB])
    pairs["Model"] = model.name if model else request.model.name
    if model is not None:
        pairs["Precision"] = model.dtype
    # The app's own keys (the mode) come after A1111's, as extensions' keys do.
    add([p for p in PARAMETERS if p.part is Part.JOB])
    return pairs


def request_infotext(request: GenerationRequest, model: ModelInfo | None) -> str:
    return format_infotext(request.prompt.prompt, request.prompt.negative_prompt, infotext_pairs(request, model))


def result_image(image: Image, request: GenerationRequest, model: ModelInfo | None) -> ResultImage:
    """One image with what made it (`request` as used for it alone) and its A1111 text."""
    return ResultImage(image, request, model, request_infotext(request, model))


def image_json(request: GenerationRequest, model: ModelInfo | None) -> dict[str, Any]:
    """The app's JSON chunk of one image: the request used, serialised, and the model."""
    return request.to_json() | {MODEL_INFO_KEY: dataclasses.asdict(model) if model else None}


def fields_from_infotext(text: str | Infotext) -> dict[str, Any]:
    """Flat parameter fields read from an A1111 text (this app's or another's). Values that
    do not parse, or are out of range, are left out, never raised: a foreign file may say
    anything."""
    info = parse_infotext(text) if isinstance(text, str) else text
    fields: dict[str, Any] = {"prompt": info.prompt, "negative_prompt": info.negative_prompt}
    for param in PARAMETERS:
        value = param.infotext_read(info.params)
        if value is not None:
            fields[param.name] = value
    return fields
