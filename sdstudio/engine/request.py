"""The contract between the window (or CLI) and the engine: one request, a stream of events.

Only frozen dataclasses live here, and nothing heavy is imported: importing this module
must not import torch or diffusers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

BUILTIN_MODEL = "builtin"


class Mode(StrEnum):
    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"
    INPAINT = "inpaint"


@dataclass(frozen=True)
class ModelRef:
    """Where weights come from: "builtin", a diffusers folder, a .safetensors file or a hub id.

    `device` and `dtype` override the automatic choice (CUDA fp16 > MPS > CPU fp32), e.g.
    device="cpu", dtype="float32". `allow_pickle` opts in to loading .ckpt/.pt files, which
    can run arbitrary code.
    """

    source: str = BUILTIN_MODEL
    device: str | None = None
    dtype: str | None = None
    allow_pickle: bool = False

    @property
    def name(self) -> str:
        """A short display name: the file or folder name, or the hub id."""
        stripped = self.source.rstrip("/\\")
        tail = stripped.replace("\\", "/").rsplit("/", 1)[-1]
        for suffix in (".safetensors", ".ckpt", ".pt"):
            if tail.endswith(suffix):
                return tail[: -len(suffix)]
        return tail


@dataclass(frozen=True, eq=False)
class GenerationRequest:
    """Everything one generation job needs. `seed=-1` means "pick a random seed".

    A job makes `batch_count` batches of `batch_size` images; image k gets seed `seed + k`.
    `init_image` is used by img2img and inpaint, `mask` (white = repaint) by inpaint.
    """

    prompt: str
    negative_prompt: str = ""
    mode: Mode = Mode.TXT2IMG
    steps: int = 20
    cfg_scale: float = 7.0
    seed: int = -1
    width: int = 512
    height: int = 512
    batch_size: int = 1
    batch_count: int = 1
    sampler: str = "Euler a"
    strength: float = 0.75
    init_image: Image | None = None
    mask: Image | None = None
    mask_blur: int = 4
    inpaint_only_masked: bool = False
    inpaint_padding: int = 32
    model: ModelRef = field(default_factory=ModelRef)

    def __post_init__(self) -> None:
        # Callers (CLI, settings, JSON) often hold the mode as a plain string.
        object.__setattr__(self, "mode", Mode(self.mode))


@dataclass(frozen=True)
class ModelInfo:
    """What was loaded, for the status bar and the infotext."""

    name: str
    family: str  # "sd1", "sd2", "sdxl"
    inpaint_unet: bool  # a dedicated 9-channel inpainting UNet
    device: str
    dtype: str
    source: str
    native_size: int = 512  # the side it was trained at (UNet sample size x VAE scale)


# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelLoading:
    """A model is being loaded; `progress` is 0..1 or None when unknown."""

    message: str
    progress: float | None = None


@dataclass(frozen=True)
class ModelLoaded:
    info: ModelInfo


@dataclass(frozen=True)
class Started:
    """The job left the queue and runs now; `total` is the number of Step events to expect."""

    total: int


@dataclass(frozen=True, eq=False)
class Step:
    """One denoising step done. `index` counts from 1 to `total` over the whole job."""

    index: int
    total: int
    preview: Image | None = None


@dataclass(frozen=True)
class Notice:
    """Something the person should know that is not an error (e.g. a size was snapped to 8)."""

    message: str


@dataclass(frozen=True, eq=False)
class Finished:
    """The job's images, their seeds and their A1111 "parameters" texts, in order."""

    images: tuple[Image, ...]
    seeds: tuple[int, ...]
    infos: tuple[str, ...]


@dataclass(frozen=True)
class Failed:
    """The job failed. `error` is a short kind (see ErrorKind), `message` is for a person,
    `details` is the technical detail (traceback) for a "details" button."""

    error: str
    message: str
    details: str = ""


@dataclass(frozen=True)
class Cancelled:
    """The job was cancelled, before it started or at a step boundary."""


Event = ModelLoading | ModelLoaded | Started | Step | Notice | Finished | Failed | Cancelled
TERMINAL_EVENTS = (Finished, Failed, Cancelled)


class ErrorKind(StrEnum):
    BAD_INPUT = "bad_input"
    MODEL_LOAD = "model_load"
    OUT_OF_MEMORY = "out_of_memory"
    BAD_OUTPUT = "bad_output"  # NaN or all-black images, e.g. fp16 VAE overflow
    DISK = "disk"
    INTERNAL = "internal"
