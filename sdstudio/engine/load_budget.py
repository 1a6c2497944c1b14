"""What loading a model will take in memory, checked once the weights' size is known and
before they are read: a warning when it will not fit (RAM, and VRAM on a GPU), the offload to
use, the automatic CPU precision settled by the model's size, and the out-of-memory advice."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sdstudio.engine.memory import MemoryOptions

if TYPE_CHECKING:
    import torch

# (message, fraction 0..1 or None): how a load reports its progress and its warnings.
Progress = Callable[[str, float | None], None]


@dataclass
class LoadBudget:
    """What a load will take in memory, checked once the weights' size is known and before
    they are read: warnings when it will not fit, the offload to use, the out-of-memory advice."""

    name: str
    device: torch.device
    dtype: torch.dtype
    options: MemoryOptions
    report: Progress
    automatic: bool = False  # dtype is the automatic choice, to be settled by the model's size
    weights_bytes: int | None = None
    offload: str = "none"
    warnings: list[str] = field(default_factory=list)

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def smaller_dtype(self) -> str | None:
        if self.dtype.itemsize < 4:
            return None
        return "bfloat16" if self.device.type == "cpu" else "float16"

    def check(self, numels: dict[str, int] | None) -> None:
        """Settle an automatic dtype, warn when the weights (`numels`: component -> count,
        None when unknown) will not fit, and choose the offload."""
        from sdstudio.engine.devices import pick_dtype
        from sdstudio.engine.memory import (
            LOAD_MARGIN,
            WORKING_BYTES,
            fit_warning,
            free_ram_bytes,
            free_vram_bytes,
            plan_offload,
        )

        if self.automatic and numels:
            self.dtype = pick_dtype(self.device, weights=sum(numels.values()))
        sizes = {name: n * self.dtype.itemsize for name, n in (numels or {}).items()}
        self.weights_bytes = sum(sizes.values()) or None
        free_vram = free_vram_bytes(self.device)
        self.offload, note = plan_offload(
            self.options, device_type=self.device.type, weights_bytes=self.weights_bytes or 0,
            largest_component_bytes=max(sizes.values(), default=0),
            free_device_bytes=free_vram if self.weights_bytes else None,
            accelerate_ok=importlib.util.find_spec("accelerate") is not None,
        )
        self._warn(note)
        if self.weights_bytes is None:
            return
        helps = ["close other programs"] + ([f"choose {self.smaller_dtype} (half the memory)"]
                                           if self.smaller_dtype else [])
        self._warn(fit_warning(self.name, int(self.weights_bytes * LOAD_MARGIN), free_ram_bytes(),
                               "RAM", self.dtype_name, helps))
        if self.offload == "none":
            self._warn(fit_warning(self.name, self.weights_bytes + WORKING_BYTES, free_vram,
                                   "GPU memory", self.dtype_name, [*helps, "turn on model CPU offload"]))

    def _warn(self, message: str | None) -> None:
        if message:
            self.warnings.append(message)
            self.report(message, None)

    def oom_message(self) -> str:
        from sdstudio.engine.memory import free_ram_bytes, load_oom_message

        return load_oom_message(
            self.name, needed_bytes=self.weights_bytes, free_bytes=free_ram_bytes(),
            dtype_name=self.dtype_name, smaller_dtype=self.smaller_dtype,
            device_type=self.device.type,
        )
