"""Memory: what a model needs, whether it fits, which savers to turn on, and what to say when not.

The deciding functions are pure (numbers in, a plan or a sentence out), so every branch is
tested on any machine; `free_ram_bytes` and `free_vram_bytes` are the only probes. Nothing here
imports torch at module level.

Savers, as diffusers offers them:
- VAE tiling decodes a large image in overlapping tiles: the decoder's activations grow with
  the pixel count and are what runs out first on big images.
- Attention slicing computes attention a slice at a time; with PyTorch 2's fused attention it
  only helps on Apple MPS with little unified memory (diffusers' MPS guide).
- Model CPU offload keeps each component in RAM and moves it to the GPU while it runs (one
  component's size of VRAM, a little slower); sequential offload moves layer by layer (the
  least VRAM, much slower). Both need a CUDA GPU and accelerate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

OFFLOAD_MODES = ("auto", "none", "model", "sequential")
GIB = 1024**3
# Loading holds the weights plus a tensor or two in flight and the pipeline's small parts.
LOAD_MARGIN = 1.1
# Besides the weights, a step needs activations: about 1 GiB for SD 1.5 at 512², more for SDXL.
WORKING_BYTES = GIB
# Values alive per output pixel at the VAE decoder's peak (its full-resolution 128-channel
# stage holds a few tensors at once); an estimate on the safe side, used only to decide tiling.
DECODE_VALUES_PER_PIXEL = 1000
# Below this much unified memory diffusers' MPS guide recommends attention slicing.
MPS_SLICING_BELOW = 64 * GIB
# Without a free-memory figure, tile images past this many pixels (a 2048x2048 batch of one).
TILE_PIXELS_WHEN_UNKNOWN = 2048 * 2048


@dataclass(frozen=True)
class MemoryOptions:
    """A person's memory settings. None and "auto" leave the choice to the plan functions.

    vae_tiling: decode in tiles (None: when the image would not fit).
    attention_slicing: compute attention in slices (None: on Apple MPS with < 64 GiB).
    offload: "none", "model" (whole components), "sequential" (layer by layer) or "auto"
    (the least offload with which the model fits in free VRAM).
    """

    vae_tiling: bool | None = None
    attention_slicing: bool | None = None
    offload: str = "auto"

    def __post_init__(self) -> None:
        if self.offload not in OFFLOAD_MODES:
            raise ValueError(f"offload must be one of {', '.join(OFFLOAD_MODES)}, not {self.offload!r}")

    @classmethod
    def from_json(cls, data: object) -> MemoryOptions:
        """Options from `dataclasses.asdict` output (a request, the settings file); anything
        unreadable stays automatic."""
        if not isinstance(data, dict):
            return cls()
        switches = {k: data[k] for k in ("vae_tiling", "attention_slicing") if data.get(k) in (True, False)}
        offload = data.get("offload")
        return cls(**switches, offload=offload if offload in OFFLOAD_MODES else "auto")


@dataclass(frozen=True)
class JobMemory:
    """The savers one generation runs with."""

    vae_tiling: bool
    attention_slicing: bool


class LoadOutOfMemory(MemoryError):
    """Memory ran out while loading a model; str(e) says what helps, with the figures."""


def plan_offload(
    options: MemoryOptions,
    *,
    device_type: str,
    weights_bytes: int,
    largest_component_bytes: int,
    free_device_bytes: int | None,
    accelerate_ok: bool = True,
) -> tuple[str, str | None]:
    """(offload mode, a sentence for the person or None) for a model about to be loaded.

    Offload only exists on CUDA. Automatic: none when the weights and a step's working memory
    fit in free VRAM, model offload when the largest component does, else sequential.
    """
    asked = options.offload
    if device_type != "cuda":
        if asked in ("model", "sequential"):
            return "none", f"CPU offload needs a CUDA GPU; it is off on {device_type}."
        return "none", None
    if not accelerate_ok:
        if asked in ("model", "sequential"):
            return "none", "CPU offload needs the accelerate package (pip install accelerate); it is off."
        return "none", None
    if asked != "auto":
        return asked, None
    if free_device_bytes is None or weights_bytes + WORKING_BYTES <= free_device_bytes:
        return "none", None
    if largest_component_bytes + WORKING_BYTES <= free_device_bytes:
        mode, how = "model", "moved to the GPU one part at a time while it runs (a little slower)"
    else:
        mode, how = "sequential", "moved to the GPU layer by layer (much slower)"
    return mode, (
        f"The model needs {format_bytes(weights_bytes + WORKING_BYTES)} of GPU memory and "
        f"{format_bytes(free_device_bytes)} is free: it stays in RAM and is {how}."
    )


def plan_job(
    options: MemoryOptions,
    *,
    device_type: str,
    pixels: int,
    bytes_per_value: int,
    free_bytes: int | None,
    total_bytes: int | None = None,
) -> JobMemory:
    """The savers for one generation of `pixels` output pixels (width x height x batch size).

    `bytes_per_value` is the VAE's compute precision (4 when it decodes in float32),
    `free_bytes` the memory free on the device now (RAM on the CPU), `total_bytes` the
    machine's memory (for the MPS rule).
    """
    tiling = options.vae_tiling
    if tiling is None:
        if free_bytes is None:
            tiling = pixels > TILE_PIXELS_WHEN_UNKNOWN
        else:
            # Keep half of what is free for the rest of the pipeline and the other programs.
            tiling = pixels * DECODE_VALUES_PER_PIXEL * bytes_per_value > free_bytes // 2
    slicing = options.attention_slicing
    if slicing is None:
        slicing = device_type == "mps" and total_bytes is not None and total_bytes < MPS_SLICING_BELOW
    return JobMemory(vae_tiling=tiling, attention_slicing=slicing)


def fit_warning(name: str, needed_bytes: int, free_bytes: int | None, where: str, dtype_name: str,
                helps: list[str]) -> str | None:
    """A warning when loading `name` will likely not fit in the free `where` ("RAM", "GPU
    memory"), saying what `helps`; None when it fits or the free figure is unknown."""
    if free_bytes is None or needed_bytes <= free_bytes:
        return None
    return (
        f"{name} needs about {format_bytes(needed_bytes)} of {where} in {dtype_name} and "
        f"{format_bytes(free_bytes)} is free: loading may fail or make the computer swap. "
        f"To make room, {' or '.join(helps)}."
    )


def load_oom_message(name: str, *, needed_bytes: int | None, free_bytes: int | None,
                     dtype_name: str, smaller_dtype: str | None, device_type: str) -> str:
    """What to tell a person whose model ran out of memory while loading.

    A diffusers folder is not offered as a remedy: single files stream into the model at
    about the weights' size (bench/bench_load.py), while a folder loaded in another precision
    than it is stored in holds both copies for a while."""
    figures = ""
    if needed_bytes is not None:
        figures = f" It needs about {format_bytes(needed_bytes)} in {dtype_name}"
        figures += f"; {format_bytes(free_bytes)} of RAM was free." if free_bytes is not None else "."
    helps = ["close other programs"]
    if smaller_dtype:
        helps.append(f"choose {smaller_dtype} as the precision (half the memory)")
    if device_type == "cuda":
        helps.append("turn on model CPU offload")
    return f"Out of memory while loading {name}.{figures} What helps: {'; '.join(helps)}."


def format_bytes(n: int) -> str:
    """Bytes as a person reads them: "3.2 GB", "640 MB" (decimal units, as file managers show)."""
    if n >= 10**9:
        return f"{n / 10**9:.1f} GB"
    return f"{max(n, 0) / 10**6:.0f} MB"


def free_ram_bytes() -> int | None:
    """RAM available to a new allocation without swapping, or None when unknown."""
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def total_ram_bytes() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().total)


def free_vram_bytes(device: torch.device) -> int | None:
    """Free memory of a CUDA device (None for other devices)."""
    import torch

    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)
