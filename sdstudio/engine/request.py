"""A generation request, composed of small serialisable parts (as krita-ai-diffusion's api.py).

    GenerationRequest
      mode                      txt2img | img2img | inpaint
      model: ModelRef           which weights, on which device and dtype
      prompt: Prompt            prompt, negative_prompt
      sampling: Sampling        sampler, steps, cfg_scale, seed, strength
      extent: Extent            width, height, batch_size, batch_count
      inpaint: InpaintOptions   mask_blur, inpaint_only_masked, inpaint_padding
      hires: Hires              hires_scale, hires_upscaler, hires_steps, hires_denoise
      inputs: Inputs            init image and mask as encoded bytes, and the lineage

The part classes are built from the parameter table (`parameters.py`), so a parameter is
declared once. `to_json()` / `from_json()` carry a version number; version-1 files (a flat
dict, written before the parts existed) are migrated on read. Images travel as encoded bytes
(`ImageData`), never as live PIL objects, so a request can be sent to another process or
server as it is. Importing this module imports neither torch nor PIL.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, make_dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sdstudio.engine.memory import MemoryOptions
from sdstudio.engine.parameters import BY_NAME, PARAMETERS, Mode, Part, coerced, is_mode

if TYPE_CHECKING:
    from PIL.Image import Image

BUILTIN_MODEL = "builtin"
REQUEST_VERSION = 2
# An init image is only ever cropped or resized, so it may exceed the largest generation size;
# past this, decoding alone would take seconds and gigabytes.
MAX_IMAGE_SIDE = 8192


class RequestFormatError(ValueError):
    """A serialised request that cannot be read at all (not an object, unknown version)."""


class Family(StrEnum):
    """The model families the studio runs."""

    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"


@dataclass(frozen=True)
class ModelRef:
    """Where weights come from: "builtin", a diffusers folder, a .safetensors file or a hub id.

    `device` and `dtype` override the automatic choice (CUDA fp16 > MPS > CPU fp32), e.g.
    device="cpu", dtype="float32". `allow_pickle` opts in to loading .ckpt/.pt files, which
    can run arbitrary code. `memory`: VAE tiling, attention slicing and offload (automatic
    unless the person says otherwise). `vae`: "" for the model's own VAE, else a VAE file's
    name in the VAE folder (see networks.py) or a path (a file or a diffusers VAE folder).
    """

    source: str = BUILTIN_MODEL
    device: str | None = None
    dtype: str | None = None
    allow_pickle: bool = False
    memory: MemoryOptions = field(default_factory=MemoryOptions)
    vae: str = ""

    @property
    def name(self) -> str:
        """A short display name: the file or folder name, or the hub id."""
        stripped = self.source.rstrip("/\\")
        tail = stripped.replace("\\", "/").rsplit("/", 1)[-1]
        for suffix in (".safetensors", ".ckpt", ".pt"):
            if tail.endswith(suffix):
                return tail[: -len(suffix)]
        return tail


@dataclass(frozen=True)
class ModelInfo:
    """What was loaded, for the status bar, the infotext and the model's own defaults."""

    name: str
    family: Family
    inpaint_unet: bool  # a dedicated 9-channel inpainting UNet
    device: str
    dtype: str
    source: str
    native_size: int = 512  # the side it was trained at (UNet sample size x VAE scale)
    default_cfg: float = 7.0  # the CFG scale it was made for

    def model_default(self, name: str) -> Any:
        """The value of a FROM_MODEL parameter for this model."""
        return {"width": self.native_size, "height": self.native_size, "cfg_scale": self.default_cfg}[name]


class ImageData:
    """An encoded image (PNG, JPEG, WebP… as a file holds it), compared and hashed by content."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)

    @classmethod
    def from_pil(cls, image: Image) -> ImageData:
        import io

        buffer = io.BytesIO()
        # Speed over size: these bytes live for one job (the history stores its own copy).
        image.save(buffer, format="PNG", compress_level=1)
        return cls(buffer.getvalue())

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def open(self) -> Image:
        """The decoded image. Raises ValueError with a sentence for a person when the bytes are
        not an image, or declare a size that could not be decoded safely (checked from the
        header, before decoding)."""
        import io

        from PIL import Image as PILImage
        from PIL import UnidentifiedImageError

        try:
            image = PILImage.open(io.BytesIO(self.data))
            if max(image.size) > MAX_IMAGE_SIDE:
                raise ValueError(
                    f"The image is {image.width}x{image.height}; use one at most {MAX_IMAGE_SIDE} pixels a side."
                )
            image.load()
        except PILImage.DecompressionBombError as exc:
            raise ValueError(f"The image is too large to open safely ({exc}).") from exc
        except (OSError, UnidentifiedImageError, SyntaxError) as exc:
            raise ValueError(f"The image cannot be read: {exc}") from exc
        return image

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImageData) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)

    def __repr__(self) -> str:
        return f"<ImageData {len(self.data)} bytes sha256={self.sha256[:12]}>"


@dataclass(frozen=True)
class Inputs:
    """The pictures a job starts from, and where they came from.

    `source` is the lineage the caller passes: the id of the image these inputs were taken
    from (for the history, its file), recorded with every result so a child knows its parent.
    """

    init_image: ImageData | None = None
    mask: ImageData | None = None  # white = repaint
    source: str | None = None

    @classmethod
    def from_pil(cls, init_image: Image | None = None, mask: Image | None = None, source: str | None = None) -> Inputs:
        """Inputs from live pictures (the canvas, a test), encoded once here."""
        return cls(
            ImageData.from_pil(init_image) if init_image is not None else None,
            ImageData.from_pil(mask) if mask is not None else None,
            source,
        )

    def to_json(self, embed_images: bool) -> dict[str, Any]:
        def image(data: ImageData | None) -> dict[str, str] | None:
            if data is None:
                return None
            ref = {"sha256": data.sha256}
            return ref | {"base64": base64.b64encode(data.data).decode()} if embed_images else ref

        return {"init_image": image(self.init_image), "mask": image(self.mask), "source": self.source}

    @classmethod
    def from_json(cls, data: object) -> Inputs:
        """Embedded images are read back; a reference alone (`sha256`) gives None here: the
        owner of the stored copy (the history) resolves it."""
        if not isinstance(data, Mapping):
            return cls()

        def image(value: object) -> ImageData | None:
            if isinstance(value, Mapping) and isinstance(value.get("base64"), str):
                try:
                    return ImageData(base64.b64decode(value["base64"], validate=True))
                except ValueError:
                    return None
            return None

        source = data.get("source")
        return cls(image(data.get("init_image")), image(data.get("mask")), source if isinstance(source, str) else None)


def _part_class(name: str, part: Part, doc: str) -> type:
    members = [
        (p.name, p.kind | None if p.from_model else p.kind, field(default=None if p.from_model else p.default))
        for p in PARAMETERS
        if p.part is part
    ]
    cls = make_dataclass(name, members, frozen=True)
    cls.__module__ = __name__
    cls.__doc__ = doc + " Fields: see parameters.PARAMETERS; None means 'the model decides'."
    return cls


Prompt = _part_class("Prompt", Part.PROMPT, "The prompt and the negative prompt.")
Sampling = _part_class("Sampling", Part.SAMPLING, "How the noise is removed: sampler, steps, CFG, seed, strength.")
Extent = _part_class("Extent", Part.EXTENT, "The size of the images and how many are made.")
InpaintOptions = _part_class("InpaintOptions", Part.INPAINT, "How the mask is used.")
Hires = _part_class("Hires", Part.HIRES, "A1111's hires fix: a second pass at a larger size (txt2img).")
_PART_CLASSES: dict[Part, type] = {
    Part.PROMPT: Prompt,
    Part.SAMPLING: Sampling,
    Part.EXTENT: Extent,
    Part.INPAINT: InpaintOptions,
    Part.HIRES: Hires,
}


@dataclass(frozen=True)
class GenerationRequest:
    """Everything one generation job needs. `sampling.seed=-1` means "pick a random seed".

    A job makes `batch_count` batches of `batch_size` images; image k gets seed `seed + k`.
    `inputs.init_image` is used by img2img and inpaint, `inputs.mask` by inpaint. Build one
    from flat parameter names with `GenerationRequest.create(prompt=..., steps=...)`.
    """

    prompt: Prompt = field(default_factory=Prompt)  # type: ignore[valid-type]
    mode: Mode = Mode.TXT2IMG
    sampling: Sampling = field(default_factory=Sampling)  # type: ignore[valid-type]
    extent: Extent = field(default_factory=Extent)  # type: ignore[valid-type]
    inpaint: InpaintOptions = field(default_factory=InpaintOptions)  # type: ignore[valid-type]
    hires: Hires = field(default_factory=Hires)  # type: ignore[valid-type]
    inputs: Inputs = field(default_factory=Inputs)
    model: ModelRef = field(default_factory=ModelRef)

    def __post_init__(self) -> None:
        # Callers (CLI, settings, JSON) often hold the mode as a plain string.
        if is_mode(self.mode):
            object.__setattr__(self, "mode", Mode(self.mode))

    @classmethod
    def create(cls, *, model: ModelRef | None = None, inputs: Inputs | None = None, **fields: Any) -> GenerationRequest:
        """A request from flat parameter names (`prompt`, `steps`, `width`…); the rest default.
        Values are not checked here (the engine does, so every caller gets the same words)."""
        unknown = set(fields) - set(BY_NAME)
        if unknown:
            raise TypeError(f"unknown parameters: {', '.join(sorted(unknown))}")
        return cls(model=model or ModelRef(), inputs=inputs or Inputs()).replace(**fields)

    def fields(self) -> dict[str, Any]:
        """Every parameter by its flat name (None for those the model decides)."""
        values: dict[str, Any] = {"mode": self.mode}
        for part in _PART_CLASSES:
            values |= dataclasses.asdict(getattr(self, part.value))
        return values

    def replace(self, **fields: Any) -> GenerationRequest:
        """A copy with some parameters changed, by their flat names."""
        changes: dict[str, Any] = {}
        for part in _PART_CLASSES:
            mine = {k: v for k, v in fields.items() if BY_NAME[k].part is part}
            if mine:
                changes[part.value] = dataclasses.replace(getattr(self, part.value), **mine)
        if "mode" in fields:
            changes["mode"] = fields["mode"]
        return dataclasses.replace(self, **changes)

    # ---- serialisation ------------------------------------------------------------------

    def to_json(self, embed_images: bool = False) -> dict[str, Any]:
        """A JSON-ready dict: the history's JSON chunk (images by reference) or a full
        request to send elsewhere (`embed_images`)."""
        data: dict[str, Any] = {"version": REQUEST_VERSION, "mode": self.mode.value}
        for part in _PART_CLASSES:
            data[part.value] = dataclasses.asdict(getattr(self, part.value))
        data["model"] = dataclasses.asdict(self.model)
        data["inputs"] = self.inputs.to_json(embed_images)
        return data

    @classmethod
    def from_json(cls, data: object) -> GenerationRequest:
        """Read `to_json()` output of this or an older version. A value of the wrong type or
        out of range falls back to its default (a file may say anything); a request that
        cannot be read at all raises RequestFormatError."""
        if not isinstance(data, Mapping):
            raise RequestFormatError(f"a request must be a JSON object, not {type(data).__name__}")
        version = data.get("version", 1)
        if version == 1 or not isinstance(version, int):
            data = _migrate_v1(data)
        elif version > REQUEST_VERSION:
            raise RequestFormatError(f"request version {version} is newer than this app reads ({REQUEST_VERSION})")
        fields: dict[str, Any] = {}
        for param in PARAMETERS:
            section = data if param.part is Part.JOB else data.get(param.part.value)
            if isinstance(section, Mapping) and param.name in section:
                value = coerced(param, section[param.name])
                if value is not None:
                    fields[param.name] = value
        return cls.create(model=_model_ref(data.get("model")), inputs=Inputs.from_json(data.get("inputs")), **fields)


def _migrate_v1(data: Mapping[str, Any]) -> dict[str, Any]:
    """Version 1 was one flat dict of the parameters by the same names, plus `model`."""
    migrated: dict[str, Any] = {"version": REQUEST_VERSION, "mode": data.get("mode"), "model": data.get("model")}
    for param in PARAMETERS:
        if param.part is not Part.JOB and param.name in data:
            migrated.setdefault(param.part.value, {})[param.name] = data[param.name]
    return migrated


def _model_ref(data: object) -> ModelRef:
    if not isinstance(data, Mapping) or not isinstance(data.get("source"), str):
        return ModelRef()
    optional = {k: data[k] for k in ("device", "dtype", "vae") if isinstance(data.get(k), str)}
    memory = MemoryOptions.from_json(data.get("memory"))
    return ModelRef(data["source"], allow_pickle=data.get("allow_pickle") is True, memory=memory, **optional)
