"""Which device and number format a model runs in: CUDA fp16, then MPS fp32, then CPU fp32.

torch is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DTYPE_NAMES = {"float16": "float16", "fp16": "float16", "half": "float16",
               "bfloat16": "bfloat16", "bf16": "bfloat16",
               "float32": "float32", "fp32": "float32", "float": "float32", "full": "float32"}


def pick_device(requested: str | None = None) -> torch.device:
    """The requested device, or the best one present: CUDA, then Apple MPS, then CPU."""
    import torch

    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as exc:
            raise ValueError(f"unknown device {requested!r} (use cuda, mps or cpu)") from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for, but no CUDA GPU is available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("device 'mps' was asked for, but Apple MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, requested: str | None = None) -> torch.dtype:
    """The requested dtype, or float16 on CUDA and float32 on Apple MPS and the CPU.

    MPS gets float32 as in diffusers' MPS guide: in fp16 the SD 1.x/2.x pipelines decode with the
    VAE in fp16 too (black or NaN images on many VAEs), and SDXL fp16 on MPS has NaN reports
    (diffusers #11229); a person with a small Mac can still ask for float16.
    Half precision on the CPU is slow and poorly supported, so it is only used when asked for.
    On CUDA, a VAE that overflows in fp16 (SDXL's) is kept safe by diffusers itself through the
    VAE config's `force_upcast`, so one dtype for the whole model is enough here.
    """
    import torch

    if requested:
        name = DTYPE_NAMES.get(requested.lower())
        if name is None:
            raise ValueError(f"unknown dtype {requested!r} (use float16, bfloat16 or float32)")
        return getattr(torch, name)
    return torch.float16 if device.type == "cuda" else torch.float32


def dtype_kwarg(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """The dtype keyword for diffusers' loaders: `dtype` since 0.42 (`torch_dtype` warns there),
    `torch_dtype` before."""
    import diffusers
    from packaging.version import Version

    name = "dtype" if Version(diffusers.__version__).release >= (0, 42) else "torch_dtype"
    return {name: dtype}


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` means the device (or the CPU) ran out of memory, whatever raised it."""
    import torch

    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        phrase in text for phrase in ("out of memory", "can't allocate memory", "not enough memory")
    )
