"""Every generation parameter, declared once.

Each `Param` says what the parameter is (type, default or "from the model", bounds, step),
where it lives in the composed request (its `part`), which modes use it, how the A1111 text
writes and reads it, its command-line flag and help, and its control in the window (label,
tooltip, kind of widget). Request validation (`check`), the request's part classes
(`request.py`), the CLI options (`cli.py`), the parameter panel (`ui/param_panel.py`), the A1111
text (`params.py`) and the JSON chunk are all derived from this table.

Adding a parameter: add a `Param` here and use it in the engine (`request.sampling.<name>`…).
`tests/engine/test_parameters.py` walks the table and round-trips every entry through the
CLI, the panel, the A1111 text and the JSON.

Nothing heavy is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"
    INPAINT = "inpaint"


class Part(StrEnum):
    """The parts of a request, as a reader of `request.to_json()` sees them."""

    JOB = "job"  # what kind of job (the mode)
    PROMPT = "prompt"
    SAMPLING = "sampling"
    EXTENT = "extent"  # the size and number of images
    INPAINT = "inpaint"
    HIRES = "hires"  # a second, larger pass after txt2img (A1111's hires fix)


class Control(StrEnum):
    """The widget the parameter panel builds for a parameter."""

    NONE = "none"  # edited elsewhere (the prompt panel)
    COMBO = "combo"
    SLIDER = "slider"
    CHECK = "check"
    SEED = "seed"


class _FromModel:
    """The default of a parameter that the loaded model decides (native size, its CFG)."""

    def __repr__(self) -> str:
        return "FROM_MODEL"


FROM_MODEL: Any = _FromModel()
ALL_MODES = frozenset(Mode)
IMAGE_MODES = frozenset({Mode.IMG2IMG, Mode.INPAINT})
INPAINT_ONLY = frozenset({Mode.INPAINT})
TXT2IMG_ONLY = frozenset({Mode.TXT2IMG})
# The range the seed generator takes; A1111 and ComfyUI UIs agree on 32 bits.
MAX_SEED = 2**32 - 1

Fields = Mapping[str, Any]
# Writes a parameter's A1111 value from all the request's fields; None leaves the key out.
Writer = Callable[[Fields], object]
# Reads a parameter's value from the A1111 `Key: value` pairs; None when absent or unreadable.
Reader = Callable[[Mapping[str, str]], object]


@dataclass(frozen=True)
class Param:
    name: str  # the field name, in the request part and in every "fields" dict
    part: Part
    kind: type  # int, float, str, bool or Mode
    default: Any  # a value, or FROM_MODEL (resolved by the engine from the loaded model)
    label: str  # for the window, with its & mnemonic
    tooltip: str
    minimum: float | None = None
    maximum: float | None = None
    step: float = 1
    decimals: int = 0
    modes: frozenset[Mode] = ALL_MODES
    infotext: str | None = None  # the A1111 key
    write: Writer | None = None  # default: the value itself
    read: Reader | None = None  # default: the key's text converted to `kind`
    cli: str | None = None  # the flag, e.g. "--steps"; None: not on the command line
    cli_help: str = ""
    control: Control = Control.SLIDER
    choices: tuple[str, ...] = ()  # the values a text parameter may take (empty: any)
    # Values beyond `choices` it also takes, known only where it runs (an installed model's
    # file name): the backend checks they exist and its capabilities list them.
    also: Callable[[object], bool] | None = None

    @property
    def from_model(self) -> bool:
        return self.default is FROM_MODEL

    @property
    def title(self) -> str:
        """The label without its mnemonic and colon, for messages."""
        return self.label.replace("&", "").rstrip(":")

    def infotext_value(self, fields: Fields) -> object:
        if self.infotext is None:
            return None
        return self.write(fields) if self.write else fields.get(self.name)

    def infotext_read(self, pairs: Mapping[str, str]) -> object:
        """This parameter's value from A1111 pairs, or None; never raises."""
        if self.infotext is None:
            return None
        try:
            value = self.read(pairs) if self.read else _convert(self.kind, pairs.get(self.infotext))
        except (ValueError, TypeError, OverflowError):
            return None
        return value if value is None or self.problem(value) is None else None

    def problem(self, value: object) -> str | None:
        """Why `value` cannot be used for this parameter (a sentence), or None when it can."""
        if value is None and self.from_model:
            return None
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.kind is Mode:
            return None if is_mode(value) else f"{self.title} must be one of {', '.join(Mode)}, not {value!r}."
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            return f"{self.title} must be {_KIND_WORDS[self.kind]}, not {value!r}."
        if self.kind is float and not math.isfinite(value):  # type: ignore[arg-type]
            return f"{self.title} must be a finite number, not {value!r}."
        if self.choices and value not in self.choices and not (self.also and self.also(value)):
            return f"{self.title} must be one of {', '.join(self.choices)}, not {value!r}."
        if self.name == "seed" and value == -1:
            return None
        low, high = self.minimum, self.maximum
        if (low is not None and value < low) or (high is not None and value > high):  # type: ignore[operator]
            random = " (or -1 for a random seed)" if self.name == "seed" else ""
            return f"{self.title} must be {_num(low)} to {_num(high)}{random}, not {value!r}."
        return None


_KIND_WORDS = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}


def _num(value: float | None) -> str:
    return "any" if value is None else str(int(value)) if float(value).is_integer() else str(value)


def _convert(kind: type, text: str | None) -> object:
    if text is None:
        return None
    text = text.strip()
    if kind is int:
        number = float(text)
        return int(number) if number.is_integer() else None
    if kind is float:
        number = float(text)
        return number if math.isfinite(number) else None
    if kind is Mode:
        return Mode(text)
    return text


def _size(index: int) -> Reader:
    """Width (0) or height (1) from A1111's `Size: 512x768`."""

    def read(pairs: Mapping[str, str]) -> int | None:
        parts = pairs.get("Size", "").split("x")
        return _convert(int, parts[index]) if len(parts) == 2 else None  # type: ignore[return-value]

    return read


def _sampler(pairs: Mapping[str, str]) -> str | None:
    sampler = pairs.get("Sampler")
    schedule = pairs.get("Schedule type", "")
    # Newer A1111 writes "DPM++ 2M" + "Schedule type: Karras" for the old "DPM++ 2M Karras".
    if sampler and schedule and schedule.lower() not in ("automatic", "uniform") and schedule not in sampler:
        return f"{sampler} {schedule}"
    return sampler


def _hires(write: Callable[[Fields], object]) -> Writer:
    """A hires-fix key is written only when the hires pass runs (scale above 1)."""
    return lambda f: write(f) if (f.get("hires_scale") or 1) > 1 else None


# A1111's names: "Latent" upscales the latents (bilinear), the others the decoded pixels.
LATENT_UPSCALERS = ("Latent", "Latent (nearest)", "Latent (bicubic)", "Latent (antialiased)")
HIRES_UPSCALERS = (*LATENT_UPSCALERS, "Lanczos", "Nearest")
# An upscaler model (ESRGAN, SwinIR, …) is named by its file name in the upscaler folder.
UPSCALER_MODEL_SUFFIXES = (".safetensors", ".pth")


def is_upscaler_model_name(value: object) -> bool:
    """Whether `value` can name an upscaler model: its file name or its name without the
    extension, as A1111's text writes it ("4x-UltraSharp"), never a path (the engine looks it
    up in its upscaler folder and names close matches when it is not there)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 255
        and value.strip() == value
        and not value.startswith(".")
        and "/" not in value
        and "\\" not in value
    )


def upscaler_label(name: str) -> str:
    """An upscaler as A1111's text names it: a model file without its extension."""
    return name.rsplit(".", 1)[0] if name.lower().endswith(UPSCALER_MODEL_SUFFIXES) else name


def _area(pairs: Mapping[str, str]) -> bool | None:
    return {"Only masked": True, "Whole picture": False}.get(pairs.get("Inpaint area", ""))


PARAMETERS: tuple[Param, ...] = (
    Param("prompt", Part.PROMPT, str, "", "&Prompt:", "What the picture shows.",
          cli="--prompt", cli_help="what the picture shows", control=Control.NONE),
    Param("negative_prompt", Part.PROMPT, str, "", "&Negative prompt:", "What the picture should not show.",
          cli="--negative", cli_help="negative prompt", control=Control.NONE),
    Param("mode", Part.JOB, Mode, Mode.TXT2IMG, "Mo&de:",
          "txt2img draws from the prompt alone; img2img redraws the canvas image; inpaint "
          "repaints only the masked area of it.",
          infotext="Mode", cli="--mode",
          cli_help="default: inpaint with --mask, img2img with --init, else txt2img", control=Control.COMBO),
    Param("steps", Part.SAMPLING, int, 20, "&Steps:",
          "Denoising steps: more is slower and usually finer, with little gain past 30-40.",
          minimum=1, maximum=150, infotext="Steps", cli="--steps", cli_help="denoising steps"),
    Param("sampler", Part.SAMPLING, str, "Euler a", "S&ampler:",
          "How each step removes noise. 'Euler a' and 'DPM++ 2M Karras' are good first choices; "
          "'a' (ancestral) samplers keep changing the picture as steps grow.",
          infotext="Sampler", read=_sampler, cli="--sampler", cli_help="an A1111 sampler name",
          control=Control.COMBO),
    Param("cfg_scale", Part.SAMPLING, float, FROM_MODEL, "&CFG scale:",
          "How strictly the picture follows the prompt. Low: loose and soft; high: literal, "
          "saturated and eventually burnt. The model's own default is used until you change it.",
          minimum=0, maximum=30, step=0.5, decimals=1, infotext="CFG scale", cli="--cfg",
          cli_help="CFG scale (default: the model's)"),
    Param("clip_skip", Part.PROMPT, int, 1, "Cl&ip skip:",
          "Which text-encoder layer reads the prompt, counted from the last: 1 is the model's own, "
          "2 the one before (which some anime-style SD1 models were trained on).",
          minimum=1, maximum=12, infotext="Clip skip", write=lambda f: f["clip_skip"] if f["clip_skip"] > 1 else None,
          cli="--clip-skip", cli_help="text-encoder layer counted from the last, A1111's way (1 = the model's own)"),
    Param("seed", Part.SAMPLING, int, -1, "S&eed:",
          "Seed of the first image; image k of a job uses seed + k. -1 picks a random one.",
          minimum=0, maximum=MAX_SEED, infotext="Seed", cli="--seed",
          cli_help=f"0 to {MAX_SEED}, or -1 for a random seed", control=Control.SEED),
    Param("width", Part.EXTENT, int, FROM_MODEL, "&Width:",
          "Width in pixels, a multiple of 8. A model draws best near the size it was trained at.",
          minimum=64, maximum=4096, step=8, infotext="Size",
          write=lambda f: f"{f['width']}x{f['height']}", read=_size(0), cli="--width",
          cli_help="width in pixels (default: the model's native size)"),
    Param("height", Part.EXTENT, int, FROM_MODEL, "&Height:",
          "Height in pixels, a multiple of 8.",
          minimum=64, maximum=4096, step=8, infotext="Size",
          write=lambda f: f"{f['width']}x{f['height']}", read=_size(1), cli="--height",
          cli_help="height in pixels (default: the model's native size)"),
    Param("batch_size", Part.EXTENT, int, 1, "&Batch size:",
          "Images made at once, side by side in memory: faster per image, needs more memory.",
          minimum=1, maximum=8, cli="--batch-size", cli_help="images made at once"),
    Param("batch_count", Part.EXTENT, int, 1, "Batch c&ount:",
          "Batches made one after the other.",
          minimum=1, maximum=100, cli="--batch-count", cli_help="batches made one after the other"),
    Param("resize_mode", Part.EXTENT, str, "Just resize", "Resize mode:",
          "How an init image of another shape meets the set size: stretched (Just resize), "
          "cropped to fill it (Crop and resize) or fitted inside with its edges extended "
          "(Resize and fill).",
          modes=IMAGE_MODES, infotext="Resize mode",
          write=lambda f: f["resize_mode"] if f["resize_mode"] != "Just resize" else None,
          cli="--resize-mode", cli_help="just resize (stretch), crop and resize, or resize and fill",
          control=Control.COMBO, choices=("Just resize", "Crop and resize", "Resize and fill")),
    Param("strength", Part.SAMPLING, float, 0.75, "S&trength:",
          "Denoising strength: how much of the init image is redrawn. 0 keeps it, 1 replaces it.",
          minimum=0, maximum=1, step=0.01, decimals=2, modes=IMAGE_MODES, infotext="Denoising strength",
          cli="--strength", cli_help="denoising strength (img2img, inpaint)"),
    Param("mask_blur", Part.INPAINT, int, 4, "Mask b&lur:",
          "Softens the mask's edge by this many pixels so the repainted area blends in.",
          minimum=0, maximum=64, modes=INPAINT_ONLY, infotext="Mask blur", cli="--mask-blur",
          cli_help="mask blur in pixels"),
    Param("inpaint_only_masked", Part.INPAINT, bool, False, "Only mas&ked:",
          "Inpaint only the masked area, cropped and drawn at full size, then pasted back: "
          "more detail for small areas.",
          modes=INPAINT_ONLY, infotext="Inpaint area", write=lambda f: "Only masked" if f["inpaint_only_masked"] else None,
          read=_area, cli="--only-masked", cli_help="inpaint only the masked area, at full size",
          control=Control.CHECK),
    Param("inpaint_padding", Part.INPAINT, int, 32, "Paddin&g:",
          "With 'only masked': pixels of context around the mask included in the crop.",
          minimum=0, maximum=256, step=4, modes=INPAINT_ONLY, infotext="Masked area padding",
          write=lambda f: f["inpaint_padding"] if f["inpaint_only_masked"] else None,
          cli="--padding", cli_help="masked area padding (with --only-masked)"),
)

PARAMETERS += (
    Param("hires_scale", Part.HIRES, float, 1.0, "Hires &upscale:",
          "Hires fix: draw at the set size, then upscale by this factor and redraw the details "
          "in a second pass. 1 turns it off.",
          minimum=1, maximum=4, step=0.05, decimals=2, modes=TXT2IMG_ONLY, infotext="Hires upscale",
          write=_hires(lambda f: f["hires_scale"]), cli="--hires-scale",
          cli_help="hires fix: upscale factor of the second pass (1 = off)"),
    Param("hires_upscaler", Part.HIRES, str, "Latent", "Hires upsca&ler:",
          "How the first pass is enlarged: Latent methods upscale before decoding (softer, need "
          "a denoise of 0.5 or more), Lanczos and Nearest upscale the picture itself.",
          modes=TXT2IMG_ONLY, infotext="Hires upscaler", write=_hires(lambda f: upscaler_label(f["hires_upscaler"])),
          cli="--hires-upscaler", cli_help="hires fix: " + ", ".join(HIRES_UPSCALERS) + ", or an upscaler model's file name",
          control=Control.COMBO, choices=HIRES_UPSCALERS, also=is_upscaler_model_name),
    Param("hires_steps", Part.HIRES, int, 0, "Hires s&teps:",
          "Steps of the second pass; 0 uses the same number as the first.",
          minimum=0, maximum=150, modes=TXT2IMG_ONLY, infotext="Hires steps",
          write=_hires(lambda f: f["hires_steps"] or None), cli="--hires-steps",
          cli_help="hires fix: steps of the second pass (0 = same as --steps)"),
    Param("hires_denoise", Part.HIRES, float, 0.7, "Hires denoise:",
          "How much the second pass may change the upscaled picture: low keeps it, high redraws it.",
          minimum=0, maximum=1, step=0.01, decimals=2, modes=TXT2IMG_ONLY, infotext="Denoising strength",
          write=_hires(lambda f: f["hires_denoise"]),
          # img2img writes the same key for its own strength: only a hires text names this one.
          read=lambda pairs: _convert(float, pairs.get("Denoising strength")) if "Hires upscale" in pairs else None,
          cli="--hires-denoise",
          cli_help="hires fix: denoising strength of the second pass"),
)

BY_NAME: dict[str, Param] = {p.name: p for p in PARAMETERS}


def defaults() -> dict[str, Any]:
    """Every parameter's default (None where the model decides)."""
    return {p.name: None if p.from_model else p.default for p in PARAMETERS}


def snap(value: float, step: float) -> int:
    """The nearest multiple of `step`, halves rounding up (sizes snap to the VAE's 8)."""
    return int((value + step / 2) // step * step)


def snap_to_8(value: float) -> int:
    """A side as the VAE needs it: the nearest multiple of 8, at least 8."""
    return max(8, snap(int(value), 8))


def is_mode(value: object) -> bool:
    return isinstance(value, str) and value in {m.value for m in Mode}


def applies(param: Param, mode: Mode) -> bool:
    return mode in param.modes


def check(fields: Fields) -> list[str]:
    """A sentence for each unusable value among `fields` (parameters of other modes are not
    checked: a txt2img request may carry any leftover strength)."""
    mode = fields.get("mode", Mode.TXT2IMG)
    problems = []
    for param in PARAMETERS:
        if param.name in fields and (param.name == "mode" or not is_mode(mode) or applies(param, mode)):
            problem = param.problem(fields[param.name])
            if problem:
                problems.append(problem)
    return problems


def coerced(param: Param, value: object) -> object:
    """`value` as read from JSON, in the parameter's own type, or None when it cannot be used
    (a file may say anything; callers fall back to the default)."""
    if param.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if param.kind is Mode and is_mode(value):
        value = Mode(value)
    return value if param.problem(value) is None else None


def seeds_for(first: int, count: int) -> list[int]:
    """The seeds of a job's images: first, first+1, … wrapping round within 0..MAX_SEED."""
    return [(first + k) % (MAX_SEED + 1) for k in range(count)]
