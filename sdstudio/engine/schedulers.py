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

@dataclass(frozen=True)
class Sampler:
    name: str  # the A1111 name
    scheduler: str  # diffusers class name
    flags: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()  # Python packages the scheduler imports


def _k(name: str, scheduler: str, needs: tuple[str, ...] = (), **flags: Any) -> Sampler:
    """A k-diffusion sampler. A1111 runs those on `linspace(999, 0, steps)`, i.e. from the full
    noise level; diffusers' SD configs default to "leading" spacing, which starts lower."""
    return Sampler(name, scheduler, {"timestep_spacing": "linspace", **flags}, needs)


def _karras(sampler: Sampler) -> Sampler:
    return Sampler(f"{sampler.name} Karras", sampler.scheduler,
                   {**sampler.flags, "use_karras_sigmas": True}, sampler.needs)


_LMS = _k("LMS", "LMSDiscreteScheduler", needs=("scipy",))
_DPM2 = _k("DPM2", "KDPM2DiscreteScheduler")
_DPM2_A = _k("DPM2 a", "KDPM2AncestralDiscreteScheduler")
_DPM_2M = _k("DPM++ 2M", "DPMSolverMultistepScheduler", algorithm_type="dpmsolver++", solver_order=2)
_DPM_2M_SDE = _k("DPM++ 2M SDE", "DPMSolverMultistepScheduler", algorithm_type="sde-dpmsolver++",
                 solver_order=2)
_DPM_3M_SDE = _k("DPM++ 3M SDE", "DPMSolverMultistepScheduler", algorithm_type="sde-dpmsolver++",
                 solver_order=3)
_DPM_SDE = _k("DPM++ SDE", "DPMSolverSDEScheduler", needs=("torchsde",))

SAMPLERS: dict[str, Sampler] = {
    s.name: s
    for s in (
        _k("Euler a", "EulerAncestralDiscreteScheduler"),
        _k("Euler", "EulerDiscreteScheduler"),
        _k("Heun", "HeunDiscreteScheduler"),
        _LMS, _karras(_LMS),
        _DPM2, _karras(_DPM2),
        _DPM2_A, _karras(_DPM2_A),
        _DPM_2M, _karras(_DPM_2M),
        _DPM_2M_SDE, _karras(_DPM_2M_SDE),
        _DPM_3M_SDE, _karras(_DPM_3M_SDE),
        _DPM_SDE, _karras(_DPM_SDE),
        # A1111 runs DDIM and PLMS on its own "uniform" steps, which is the models' own config.
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
