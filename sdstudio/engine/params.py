"""One place that maps a GenerationRequest to the words of the A1111 text and back.

The window's "reuse parameters", the history store and the CLI all go through here, so a
parameter has one name in every layer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sdstudio.engine.infotext import Infotext, format_infotext, parse_infotext
from sdstudio.engine.request import GenerationRequest, Mode, ModelInfo, ModelRef

JSON_VERSION = 1
# Fields of GenerationRequest that the JSON chunk stores verbatim (images are stored as files).
_PLAIN_FIELDS = tuple(
    f.name for f in dataclasses.fields(GenerationRequest) if f.name not in ("init_image", "mask", "model")
)


def infotext_params(request: GenerationRequest, seed: int, model: ModelInfo | None) -> dict[str, object]:
    """The `Key: value` pairs for one image of `request` made with `seed`."""
    params: dict[str, object] = {
        "Steps": request.steps,
        "Sampler": request.sampler,
        "CFG scale": request.cfg_scale,
        "Seed": seed,
        "Size": f"{request.width}x{request.height}",
        "Model": model.name if model else request.model.name,
    }
    if request.mode is not Mode.TXT2IMG:
        params["Denoising strength"] = request.strength
    if request.mode is Mode.INPAINT:
        params["Mask blur"] = request.mask_blur
        if request.inpaint_only_masked:
            params["Inpaint area"] = "Only masked"
            params["Masked area padding"] = request.inpaint_padding
    params["Mode"] = request.mode.value
    return params


def request_infotext(request: GenerationRequest, seed: int, model: ModelInfo | None) -> str:
    return format_infotext(request.prompt, request.negative_prompt, infotext_params(request, seed, model))


def request_json(request: GenerationRequest, seed: int, model: ModelInfo | None) -> dict[str, Any]:
    """Everything needed to reproduce the image exactly (besides the init image and mask)."""
    data: dict[str, Any] = {name: getattr(request, name) for name in _PLAIN_FIELDS}
    data["mode"] = request.mode.value
    data["seed"] = seed
    data["model"] = dataclasses.asdict(request.model)
    data["model_info"] = dataclasses.asdict(model) if model else None
    data["version"] = JSON_VERSION
    return data


def request_fields_from_json(data: dict[str, Any]) -> dict[str, Any]:
    """GenerationRequest keyword arguments from the app's JSON chunk (unknown keys ignored)."""
    fields = {name: data[name] for name in _PLAIN_FIELDS if name in data}
    if "mode" in fields:
        fields["mode"] = Mode(fields["mode"])
    if isinstance(data.get("model"), dict):
        known = {f.name for f in dataclasses.fields(ModelRef)}
        fields["model"] = ModelRef(**{k: v for k, v in data["model"].items() if k in known})
    return fields


def request_fields_from_infotext(text: str | Infotext) -> dict[str, Any]:
    """GenerationRequest keyword arguments read from an A1111 text (this app's or another's).

    Values that do not parse are skipped, never raised: a foreign file may say anything.
    """
    info = parse_infotext(text) if isinstance(text, str) else text
    p = info.params
    fields: dict[str, Any] = {"prompt": info.prompt, "negative_prompt": info.negative_prompt}
    _take(fields, "steps", p.get("Steps"), int)
    _take(fields, "cfg_scale", p.get("CFG scale"), float)
    _take(fields, "seed", p.get("Seed"), int)
    _take(fields, "strength", p.get("Denoising strength"), float)
    _take(fields, "mask_blur", p.get("Mask blur"), int)
    _take(fields, "inpaint_padding", p.get("Masked area padding"), int)
    if "Sampler" in p:
        sampler = p["Sampler"]
        schedule = p.get("Schedule type", "")
        # Newer A1111 writes "DPM++ 2M" + "Schedule type: Karras" for the old "DPM++ 2M Karras".
        if schedule and schedule.lower() not in ("automatic", "uniform") and schedule not in sampler:
            sampler = f"{sampler} {schedule}"
        fields["sampler"] = sampler
    size = p.get("Size", "")
    if "x" in size:
        w, _, h = size.partition("x")
        _take(fields, "width", w, int)
        _take(fields, "height", h, int)
    if p.get("Inpaint area") == "Only masked":
        fields["inpaint_only_masked"] = True
    if p.get("Mode") in {m.value for m in Mode}:
        fields["mode"] = Mode(p["Mode"])
    return fields


def _take(fields: dict[str, Any], name: str, raw: str | None, kind: type) -> None:
    if raw is None:
        return
    try:
        fields[name] = kind(float(raw)) if kind is int else kind(raw)
    except ValueError:
        pass
