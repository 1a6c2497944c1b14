"""Where weights come from, and one loaded model that serves txt2img, img2img and inpaint.

Sources (`ModelRef.source`): "builtin" (resources/models/builtin), a diffusers folder, a single
.safetensors checkpoint in the original (CompVis/LDM) key layout, or a Hugging Face hub id.
Everything heavy (torch, diffusers) is imported inside functions: importing this module is cheap.

Use from the engine's worker thread:

    model = load_model(ModelRef("path/or/id"), progress=lambda msg, frac: ...)
    pipe = model.pipeline(Mode.IMG2IMG)           # built once, then cached; shares all weights
    pipe.scheduler = make_scheduler(name, model.base_scheduler_config)
    pipe(prompt=..., **model.stand_in_inputs(mode, width, height, init_image), ...)

`stand_in_inputs` matters only for a dedicated 9-channel inpainting UNet; see LoadedModel.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdstudio import resources
from sdstudio.engine.families import (
    PICKLE_SUFFIXES,
    ModelLoadError,
    pickle_refusal,
    pipeline_classes,
)
from sdstudio.engine.load_budget import LoadBudget, Progress
from sdstudio.engine.loras import LoraAdapters
from sdstudio.engine.memory import JobMemory, MemoryOptions
from sdstudio.engine.model_folders import load_folder, load_hub
from sdstudio.engine.request import BUILTIN_MODEL, Mode, ModelInfo, ModelRef

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline
    from PIL.Image import Image

    from sdstudio.engine.events import UsedNetwork
    from sdstudio.engine.networks import FileVersion

CONFIG_ROOT = resources.config_root()
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def builtin_model_path() -> Path:
    """The folder of the small demo model that ships with the app."""
    return resources.builtin_model_dir()


# ---- the loaded model ---------------------------------------------------------------------


@dataclass
class LoadedModel:
    """One set of weights on one device, and a pipeline per mode that shares them.

    A dedicated inpainting UNet (9 input channels: latents + mask + masked image) cannot run in
    diffusers' text-to-image or image-to-image pipelines. As A1111 does, such a model paints
    txt2img and img2img through its inpainting pipeline with the whole image masked:
    `pipeline(mode)` returns the inpaint pipeline for every mode, and the caller adds
    `stand_in_inputs(mode, ...)` to the call (a mid-gray image for txt2img at strength 1.0, the
    init image for img2img, and an all-white mask). For every other model it returns {}.
    """

    info: ModelInfo
    device: torch.device
    dtype: torch.dtype
    base: DiffusionPipeline
    memory: MemoryOptions = field(default_factory=MemoryOptions)
    offload: str = "none"  # "none", "model" or "sequential" (see memory.plan_offload)
    warnings: tuple[str, ...] = ()  # said while loading: memory short, offload chosen
    loras: LoraAdapters = field(default_factory=LoraAdapters, repr=False)  # in the shared modules
    _pipelines: dict[Mode, DiffusionPipeline] = field(default_factory=dict, repr=False)
    _scheduler_config: dict[str, Any] = field(default_factory=dict, repr=False)
    _job_memory: JobMemory | None = field(default=None, repr=False)
    own_vae: Any = field(default=None, repr=False)
    vae_file: UsedNetwork | None = None  # the VAE file in use, None for the model's own
    vae_key: FileVersion | None = None  # which version of which file that is

    def __post_init__(self) -> None:
        # Snapshot now: callers replace pipe.scheduler per job, and the base pipeline is one of them.
        self._scheduler_config = dict(self.base.scheduler.config)
        self.own_vae = self.base.vae

    def use_vae(self, vae: Any | None, used: UsedNetwork | None = None, key: FileVersion | None = None) -> None:
        """Decode (and encode) with `vae` in every mode's pipeline, or with the model's own
        VAE again (None: the very object it came with, so results match bitwise)."""
        vae = self.own_vae if vae is None else vae
        if vae is not self.own_vae and self.offload == "none":
            vae.to(self.device)  # already in the model's dtype (vaes.load_vae)
        for pipe in {id(p): p for p in (self.base, *self._pipelines.values())}.values():
            pipe.vae = vae
            if self.offload != "none":  # the hooks were made for the old module
                _place(pipe, self.device, self.offload, self.info.name)
        self.vae_file, self.vae_key = (used, key) if vae is not self.own_vae else (None, None)
        self._job_memory = None  # tiling is switched per VAE module: set it again on the next job

    def pipeline(self, mode: Mode) -> DiffusionPipeline:
        """The pipeline for `mode`, sharing this model's components; built on first use, cached.

        The scheduler object is shared too: set `pipe.scheduler` per job (see schedulers.py).
        """
        from sdstudio.engine.devices import dtype_kwarg

        mode = Mode(mode)
        if self.info.inpaint_unet:
            mode = Mode.INPAINT
        pipe = self._pipelines.get(mode)
        if pipe is None:
            cls = pipeline_classes(self.info.family)[mode]
            if type(self.base) is cls:
                pipe = self.base
            else:
                # from_pipe casts every component to `torch_dtype` (float32 when not given), in
                # place: without it an fp16 model would silently turn fp32 (diffusers #12754).
                pipe = _quietly(lambda: cls.from_pipe(self.base, **dtype_kwarg(self.dtype)))
                if self.offload != "none":  # offload hooks are listed per pipeline: give it its own
                    _place(pipe, self.device, self.offload, self.info.name)
            pipe.set_progress_bar_config(disable=True)
            self._pipelines[mode] = pipe
        return pipe

    def stand_in_inputs(
        self, mode: Mode, width: int, height: int, init_image: Image | None = None
    ) -> dict[str, Any]:
        """Extra call arguments that let a 9-channel inpainting UNet do txt2img and img2img.

        Returns {} for regular models and for inpaint mode. For an inpainting UNet in txt2img:
        a mid-gray `image`, an all-white `mask_image` and `strength` 1.0 (pure noise start); in
        img2img: the init image under an all-white mask (the caller's strength applies).
        """
        from PIL import Image as PILImage

        mode = Mode(mode)
        if not self.info.inpaint_unet or mode is Mode.INPAINT:
            return {}
        if mode is Mode.TXT2IMG:
            return {
                "image": PILImage.new("RGB", (width, height), (127, 127, 127)),
                "mask_image": PILImage.new("L", (width, height), 255),
                "strength": 1.0,
            }
        if init_image is None:
            raise ValueError("img2img needs an init image")
        return {"image": init_image, "mask_image": PILImage.new("L", init_image.size, 255)}

    def apply_job_memory(self, width: int, height: int, batch_size: int = 1) -> JobMemory:
        """Turn VAE tiling and attention slicing on or off for a generation of this size, as
        `self.memory` says (automatic: from the free memory now); call before each job.
        Every mode's pipeline shares the VAE and UNet, so this covers them all."""
        import torch

        from sdstudio.engine.memory import (
            free_ram_bytes,
            free_vram_bytes,
            plan_job,
            total_ram_bytes,
        )

        vae = self.base.vae
        # diffusers decodes an fp16 VAE marked force_upcast in float32 (SDXL's overflows in fp16)
        upcast = self.dtype == torch.float16 and bool(getattr(vae.config, "force_upcast", False))
        plan = plan_job(
            self.memory, device_type=self.device.type, pixels=width * height * batch_size,
            bytes_per_value=4 if upcast else self.dtype.itemsize,
            free_bytes=free_vram_bytes(self.device) if self.device.type == "cuda" else free_ram_bytes(),
            total_bytes=total_ram_bytes(),
        )
        if plan != self._job_memory:
            if plan.vae_tiling:
                vae.enable_tiling()
            else:
                vae.disable_tiling()
            if plan.attention_slicing:
                self.base.enable_attention_slicing()
            else:
                self.base.disable_attention_slicing()
            self._job_memory = plan
        return plan

    @property
    def unet(self) -> torch.nn.Module:
        return self.base.unet

    @property
    def vae(self) -> torch.nn.Module:
        return self.base.vae

    @property
    def base_scheduler_config(self) -> dict[str, Any]:
        """The scheduler config the model came with (betas, prediction type, ...)."""
        return dict(self._scheduler_config)


# ---- loading ------------------------------------------------------------------------------


def load_model(
    ref: ModelRef, progress: Progress | None = None, *, config_root: Path | None = None,
    memory: MemoryOptions | None = None,
) -> LoadedModel:
    """Load from ref.source: "builtin", a diffusers folder, a single checkpoint file or a hub id.

    `progress(message, fraction)` is called along the way (fraction 0..1 or None); a warning
    (memory short, offload chosen) comes as a message with fraction None and is kept in
    `LoadedModel.warnings`.
    `config_root` replaces resources/configs, the folder of per-family config folders used for
    single-file checkpoints (tests point it at tiny configs).
    `memory` holds the person's memory settings (default: all automatic).
    Raises ModelLoadError with a message a person understands, and LoadOutOfMemory (a
    MemoryError) saying what helps when memory runs out.
    """
    from sdstudio.engine.devices import is_out_of_memory, pick_device, pick_dtype
    from sdstudio.engine.memory import LoadOutOfMemory

    report = progress or (lambda message, fraction: None)
    _quiet_loading_bars()
    try:
        device = pick_device(ref.device)
        dtype = pick_dtype(device, ref.dtype)
    except ValueError as exc:
        raise ModelLoadError(f"Cannot load {ref.name}: {exc}") from exc

    # An automatic CPU precision depends on the model's size: settled once that is known.
    budget = LoadBudget(ref.name, device, dtype, memory or MemoryOptions(), report, automatic=not ref.dtype)
    try:
        pipe, family, inpaint = _load_source(ref, device, report, config_root, budget)
        report(f"Moving {ref.name} to {device.type}", 0.9)
        _place(pipe, device, budget.offload, ref.name)
    except Exception as exc:
        if is_out_of_memory(exc) and not isinstance(exc, LoadOutOfMemory):
            raise LoadOutOfMemory(budget.oom_message()) from exc
        raise
    info = ModelInfo(
        name=ref.name, family=family, inpaint_unet=inpaint, device=device.type,
        dtype=budget.dtype_name, source=ref.source,
        native_size=int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor),
        # The built-in model was trained and evaluated at CFG 5 (tools/builtin_model/README.md).
        **({"default_cfg": 5.0} if ref.source == BUILTIN_MODEL else {}),
    )
    model = LoadedModel(info=info, device=device, dtype=budget.dtype, base=pipe, memory=budget.options,
                        offload=budget.offload, warnings=tuple(budget.warnings))
    report(f"Loaded {ref.name}", 1.0)
    return model


def _place(pipe: DiffusionPipeline, device: torch.device, offload: str, name: str) -> None:
    """Put the pipeline on `device`, or keep it in RAM behind accelerate's offload hooks."""
    from sdstudio.engine.devices import is_out_of_memory

    try:
        if offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        elif offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=device)
        else:
            pipe.to(device)
    except RuntimeError as exc:
        if is_out_of_memory(exc):
            raise
        raise ModelLoadError(f"Cannot move {name} to {device}: {exc}") from exc


def _quietly(build: Callable[[], DiffusionPipeline]) -> DiffusionPipeline:
    """Run `build` with diffusers' warnings off: from_pipe's casts warn that "modules should be
    kept in float32: []" for every model (an empty list still triggers it), which is only noise
    on the CLI's and the app's stderr."""
    from diffusers.utils import logging as diffusers_logging

    previous = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        return build()
    finally:
        diffusers_logging.set_verbosity(previous)


def _quiet_loading_bars() -> None:
    """Loading progress goes to `progress`; diffusers' and transformers' own terminal bars would
    only garble the CLI's progress bar and the app's stderr."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def _load_source(ref: ModelRef, device: torch.device, report: Progress, config_root: Path | None,
                 budget: LoadBudget):
    source = ref.source
    if source == BUILTIN_MODEL:
        path = builtin_model_path()
        if not path.is_dir():
            raise ModelLoadError(
                f"The built-in model was not found at {path}. Train it with `make train-builtin` "
                "or choose another model."
            )
        return load_folder(path, ref, report, budget)
    path = Path(source).expanduser()
    if path.is_dir():
        return load_folder(path, ref, report, budget)
    if path.is_file():
        return _load_file(path, ref, device, report, config_root, budget)
    if _looks_like_path(source):
        raise ModelLoadError(f"Model not found: {path} does not exist.")
    return load_hub(source, ref, report, budget)


def _looks_like_path(source: str) -> bool:
    return (
        not _HUB_ID.match(source)
        or source.startswith((".", "~", "/"))
        or source.endswith((".safetensors", *PICKLE_SUFFIXES))
    )


def _load_file(path: Path, ref: ModelRef, device: torch.device, report: Progress, config_root: Path | None,
               budget: LoadBudget):
    from sdstudio.engine.single_file import inspect_checkpoint, load_checkpoint

    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES and not ref.allow_pickle:
        raise pickle_refusal(path.name, suffix)
    if suffix != ".safetensors" and suffix not in PICKLE_SUFFIXES:
        raise ModelLoadError(
            f"{path.name} is not a model file: expected a .safetensors checkpoint or a diffusers folder."
        )
    report(f"Reading checkpoint {path.name}", 0.02)
    plan = inspect_checkpoint(path, config_root or CONFIG_ROOT)
    budget.check(plan.numels)
    return load_checkpoint(plan, device, budget.dtype, report)
