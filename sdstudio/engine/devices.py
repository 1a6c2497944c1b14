"""Which device and number format a model runs in: CUDA fp16/bf16, MPS fp32, CPU bf16/fp32.

torch is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import functools
from pathlib import Path
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


CPU_FLOAT16_REFUSAL = (
    "float16 is not usable on the CPU: most of its operations run there hundreds of times "
    "slower than in float32. Choose bfloat16 or float32, or leave the precision automatic"
)
# /proc/cpuinfo flags of CPUs with bfloat16 arithmetic that PyTorch's CPU kernels (oneDNN) use:
# Intel AMX and AVX-512 BF16 on x86, FEAT_BF16 ("bf16" in "Features") on ARM (Graviton 3 on).
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16", "bf16"})
# Even there bf16 pays off only for wide layers. On an AMX CPU (bench/bench_load.py) SD 1.5's
# UNet steps 1.8-3x faster in bf16 and one narrowed to 57 M weights 1.6x, while the built-in
# model and the test models (1-2 M weights) run about half as fast. Real SD models have 1e9+.
CPU_BF16_MIN_WEIGHTS = 50_000_000


def pick_dtype(device: torch.device, requested: str | None = None, weights: int | None = None) -> torch.dtype:
    """The requested dtype, else the automatic one for a model of `weights` weights (see
    `automatic_dtype_name`).

    float16 on the CPU is refused (ValueError): it is slow beyond use there.
    On CUDA, a VAE that overflows in fp16 (SDXL's) is kept safe by diffusers itself through the
    VAE config's `force_upcast`, so one dtype for the whole model is enough here.
    """
    import torch

    if requested:
        name = DTYPE_NAMES.get(requested.lower())
        if name is None:
            raise ValueError(f"unknown dtype {requested!r} (use float16, bfloat16 or float32)")
        if name == "float16" and device.type == "cpu":
            raise ValueError(CPU_FLOAT16_REFUSAL + f" ({automatic_dtype_name(device)} on this CPU).")
        return getattr(torch, name)
    return getattr(torch, automatic_dtype_name(device, weights))


def automatic_dtype_name(device: torch.device, weights: int | None = None) -> str:
    """The precision a model of `weights` weights (None: unknown) runs in on `device` when the
    person does not choose."""
    import torch

    cuda_bf16 = device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return default_dtype_name(device.type, cpu_bf16=cpu_runs_bf16_well(), cuda_bf16=cuda_bf16, weights=weights)


def default_dtype_name(device_type: str, *, cpu_bf16: bool, cuda_bf16: bool, weights: int | None = None) -> str:
    """float16 on CUDA, bfloat16 there when the GPU has it (fp16's range without its VAE
    overflows); float32 on Apple MPS; on a CPU with bf16 arithmetic bfloat16 for a model of at
    least CPU_BF16_MIN_WEIGHTS weights, else (and when the size is unknown) float32.

    MPS gets float32 as in diffusers' MPS guide: in fp16 the SD 1.x/2.x pipelines decode with the
    VAE in fp16 too (black or NaN images on many VAEs), and SDXL fp16 on MPS has NaN reports
    (diffusers #11229); a person with a small Mac can still ask for float16.
    On a CPU without bf16 instructions, bfloat16 is emulated and slower than float32.
    """
    if device_type == "cuda":
        return "bfloat16" if cuda_bf16 else "float16"
    if device_type == "cpu" and cpu_bf16 and weights is not None and weights >= CPU_BF16_MIN_WEIGHTS:
        return "bfloat16"
    return "float32"


def cpu_runs_bf16_well(flags: frozenset[str] | None = None) -> bool:
    """Whether this CPU (or one with these cpuinfo `flags`) has bfloat16 arithmetic."""
    return bool((_cpu_flags() if flags is None else flags) & BF16_CPU_FLAGS)


@functools.cache
def _cpu_flags() -> frozenset[str]:
    """The CPU feature flags from /proc/cpuinfo (Linux); empty elsewhere, which means float32."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


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
