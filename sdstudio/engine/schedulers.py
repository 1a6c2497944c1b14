"""A1111 sampler names -> diffusers scheduler classes and flags.

The mapping follows the A1111/k-diffusion table in diffusers' scheduler overview. "DPM++ SDE"
is k-diffusion's Brownian-tree sampler, which diffusers ports as DPMSolverSDEScheduler (it
needs torchsde); LMS needs scipy. Samplers whose package is missing are left out of
`available_samplers()` and `make_scheduler` refuses them with a clear message.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffusers import SchedulerMixin

DEFAULT_SAMPLER = "Euler a"


@dataclass(frozen=True)
class Sampler:
    name: str  # the A1111 name
    scheduler: str  # diffusers class name
    flags: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()  # Python packages the scheduler imports


def _karras(sampler: Sampler) -> Sampler:
    return Sampler(f"{sampler.name} Karras", sampler.scheduler,
                   {**sampler.flags, "use_karras_sigmas": True}, sampler.needs)


_DPM_2M = Sampler("DPM++ 2M", "DPMSolverMultistepScheduler",
                  {"algorithm_type": "dpmsolver++", "solver_order": 2})
_DPM_2M_SDE = Sampler("DPM++ 2M SDE", "DPMSolverMultistepScheduler",
                      {"algorithm_type": "sde-dpmsolver++", "solver_order": 2})
_DPM_3M_SDE = Sampler("DPM++ 3M SDE", "DPMSolverMultistepScheduler",
                      {"algorithm_type": "sde-dpmsolver++", "solver_order": 3})
_DPM_SDE = Sampler("DPM++ SDE", "DPMSolverSDEScheduler", needs=("torchsde",))
_LMS = Sampler("LMS", "LMSDiscreteScheduler", needs=("scipy",))
_DPM2 = Sampler("DPM2", "KDPM2DiscreteScheduler")
_DPM2_A = Sampler("DPM2 a", "KDPM2AncestralDiscreteScheduler")

SAMPLERS: dict[str, Sampler] = {
    s.name: s
    for s in (
        Sampler("Euler a", "EulerAncestralDiscreteScheduler"),
        Sampler("Euler", "EulerDiscreteScheduler"),
        Sampler("Heun", "HeunDiscreteScheduler"),
        _LMS, _karras(_LMS),
        _DPM2, _karras(_DPM2),
        _DPM2_A, _karras(_DPM2_A),
        _DPM_2M, _karras(_DPM_2M),
        _DPM_2M_SDE, _karras(_DPM_2M_SDE),
        _DPM_3M_SDE, _karras(_DPM_3M_SDE),
        _DPM_SDE, _karras(_DPM_SDE),
        Sampler("DDIM", "DDIMScheduler"),
        Sampler("PNDM", "PNDMScheduler", {"skip_prk_steps": True}),
        Sampler("UniPC", "UniPCMultistepScheduler"),
        Sampler("LCM", "LCMScheduler"),
    )
}
# Flags that a model's own scheduler config may carry and that each sampler must set itself.
_RESET_FLAGS = {"use_karras_sigmas": False}


def _missing(sampler: Sampler) -> list[str]:
    return [name for name in sampler.needs if importlib.util.find_spec(name) is None]


def available_samplers() -> list[str]:
    """The A1111 sampler names usable on this machine, in menu order."""
    return [name for name, sampler in SAMPLERS.items() if not _missing(sampler)]


def make_scheduler(name: str, base_config: dict[str, Any]) -> SchedulerMixin:
    """A fresh scheduler for sampler `name`, keeping the model's betas and prediction type.

    Raises ValueError for an unknown name or one whose package is not installed.
    """
    import diffusers

    sampler = SAMPLERS.get(name)
    if sampler is None:
        raise ValueError(f"Unknown sampler {name!r}. Known samplers: {', '.join(available_samplers())}.")
    missing = _missing(sampler)
    if missing:
        packages = " ".join(missing)
        raise ValueError(
            f"Sampler {name!r} needs the Python package {packages}, which is not installed "
            f"(pip install {packages}). Choose another sampler."
        )
    cls = getattr(diffusers, sampler.scheduler)
    accepted = cls._get_init_keys(cls)
    flags = {k: v for k, v in _RESET_FLAGS.items() if k in accepted} | sampler.flags
    return cls.from_config(base_config, **flags)
