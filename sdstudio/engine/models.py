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

import importlib.util
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdstudio import resources
from sdstudio.engine.families import ModelLoadError, pipeline_classes, variant
from sdstudio.engine.loras import LoraAdapters
from sdstudio.engine.memory import JobMemory, MemoryOptions
from sdstudio.engine.request import BUILTIN_MODEL, Family, Mode, ModelInfo, ModelRef

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline
    from PIL.Image import Image

    from sdstudio.engine.events import UsedNetwork
    from sdstudio.engine.networks import FileVersion

Progress = Callable[[str, float | None], None]

CONFIG_ROOT = resources.config_root()
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
# model_index.json entries that name a component (the others are settings such as
# requires_safety_checker), and the components whose weights the app loads.
INDEX_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2",
                    "scheduler", "safety_checker", "feature_extractor", "image_encoder")
WEIGHT_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def builtin_model_path() -> Path:
    """The folder of the small demo model that ships with the app."""
    return resources.builtin_model_dir()


# ---- family detection (pure) --------------------------------------------------------------


def family_from_unet_config(
    unet_config: dict[str, Any], *, has_text_encoder_2: bool = False, pipeline_class: str = ""
) -> tuple[str, bool]:
    """("sd1" | "sd2" | "sdxl", inpaint_unet) from a diffusers UNet config and the folder's shape.

    Real models are told apart by the text-conditioning width (768 SD1, 1024 SD2) and SDXL's
    size conditioning (`addition_embed_type` "text_time"). Small test models have other widths,
    so a second text encoder or an XL pipeline class also means SDXL; anything else is SD1.
    Raises ValueError for UNets that are not text-to-image SD UNets (depth, upscaler, ...).
    """
    in_channels = unet_config.get("in_channels", 4)
    if unet_config.get("addition_embed_type") == "text_time" or has_text_encoder_2 or "XL" in pipeline_class:
        return variant(Family.SDXL, in_channels)
    if unet_config.get("cross_attention_dim") == 1024:
        return variant(Family.SD2, in_channels)
    return variant(Family.SD1, in_channels)


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
    budget = _LoadBudget(ref.name, device, dtype, memory or MemoryOptions(), report, automatic=not ref.dtype)
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


@dataclass
class _LoadBudget:
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
                 budget: _LoadBudget):
    source = ref.source
    if source == BUILTIN_MODEL:
        path = builtin_model_path()
        if not path.is_dir():
            raise ModelLoadError(
                f"The built-in model was not found at {path}. Train it with `make train-builtin` "
                "or choose another model."
            )
        return _load_folder(path, ref, report, budget)
    path = Path(source).expanduser()
    if path.is_dir():
        return _load_folder(path, ref, report, budget)
    if path.is_file():
        return _load_file(path, ref, device, report, config_root, budget)
    if _looks_like_path(source):
        raise ModelLoadError(f"Model not found: {path} does not exist.")
    return _load_hub(source, ref, report, budget)


def _looks_like_path(source: str) -> bool:
    return (
        not _HUB_ID.match(source)
        or source.startswith((".", "~", "/"))
        or source.endswith((".safetensors", *PICKLE_SUFFIXES))
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path} cannot be read as JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} is damaged: it holds {type(data).__name__} where a JSON object belongs.")
    return data


def _check_index(folder: Path, index: dict[str, Any]) -> None:
    """Refuse a model_index.json whose components are not [library, class] pairs, which
    diffusers would otherwise fail on with a bare TypeError."""
    for key in INDEX_COMPONENTS:
        value = index.get(key)
        pair = isinstance(value, list) and len(value) == 2 and all(v is None or isinstance(v, str) for v in value)
        if value is not None and not pair:
            raise ModelLoadError(
                f"{folder.name}/model_index.json is damaged: \"{key}\" should name a library and a "
                f"class, like [\"diffusers\", \"UNet2DConditionModel\"], not {json.dumps(value)}."
            )


def pickle_refusal(shown: str, suffix: str) -> ModelLoadError:
    """The one refusal of a pickle weight file loaded without `allow_pickle`."""
    return ModelLoadError(
        f"{shown} is a pickle checkpoint ({suffix}), which can run arbitrary code when "
        "loaded. Use a .safetensors version of the model, or allow pickle files if you trust "
        "where it came from."
    )


def _component_weight_files(component: Path) -> list[Path]:
    """The weight files from_pretrained reads for a component: .safetensors before pickles,
    full precision before the fp16 variant (which it reads only when it is all there is)."""
    safetensors = sorted(component.glob("*.safetensors"))
    files = safetensors or sorted(p for p in component.glob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
    return [p for p in files if ".fp16." not in p.name] or files


def _folder_weights(folder: Path) -> dict[str, list[Path]]:
    """Weight component -> the files loading it reads (only the components the app loads)."""
    index = _read_json(folder / "model_index.json")
    return {name: _component_weight_files(folder / name) for name in WEIGHT_COMPONENTS
            if name in index and (folder / name).is_dir()}


def folder_numels(folder: Path) -> dict[str, int] | None:
    """Component -> number of weights in a diffusers folder, from the safetensors headers
    (a pickle's count is estimated from its size); None when a file cannot be read."""
    from sdstudio.engine.single_file import SafetensorsFile

    out = {}
    try:
        for name, files in _folder_weights(folder).items():
            total = 0
            for file in files:
                if file.suffix == ".safetensors":
                    total += sum(math.prod(shape) for shape in SafetensorsFile(file).shapes.values())
                else:
                    total += file.stat().st_size // (2 if ".fp16." in file.name else 4)
            out[name] = total
    except (OSError, ValueError, ModelLoadError):
        return None
    return out


def folder_family(folder: Path) -> tuple[str, bool]:
    """The family of a diffusers folder from its model_index.json and unet/config.json."""
    index_path = folder / "model_index.json"
    unet_path = folder / "unet" / "config.json"
    if not index_path.is_file():
        files = sorted(p.name for p in folder.glob("*.safetensors"))
        hint = f" To load a checkpoint, choose the file itself, e.g. {files[0]}." if files else ""
        raise ModelLoadError(f"{folder} is not a diffusers model folder: it has no model_index.json.{hint}")
    index = _read_json(index_path)
    _check_index(folder, index)
    pipeline_class = str(index.get("_class_name", ""))
    if not unet_path.is_file():
        raise ModelLoadError(
            f"{folder.name} is not a Stable Diffusion 1.x/2.x/XL model: it has no UNet "
            f"({pipeline_class or 'unknown pipeline'})."
        )
    if (index.get("text_encoder") or [None])[0] is None:
        raise ModelLoadError(
            f"{folder.name} has no (first) text encoder, so it cannot be prompted on its own "
            "(an SDXL refiner?). Load a base model instead."
        )
    try:
        return family_from_unet_config(
            _read_json(unet_path),
            has_text_encoder_2="text_encoder_2" in index,
            pipeline_class=pipeline_class,
        )
    except ValueError as exc:
        raise ModelLoadError(f"{folder.name} is not supported: {exc}.") from exc


def _load_folder(folder: Path, ref: ModelRef, report: Progress, budget: _LoadBudget, name: str = ""):
    from sdstudio.engine.devices import dtype_kwarg, is_out_of_memory

    name = name or folder.name
    report(f"Reading {name}", 0.05)
    family, inpaint = folder_family(folder)
    if not ref.allow_pickle:
        for component, files in _folder_weights(folder).items():
            if files and files[0].suffix.lower() in PICKLE_SUFFIXES:
                raise pickle_refusal(f"{folder.name}/{component}/{files[0].name}", files[0].suffix.lower())
    budget.check(folder_numels(folder))
    cls = pipeline_classes(family)[Mode.INPAINT if inpaint else Mode.TXT2IMG]
    report(f"Loading weights of {name}", 0.1)
    kwargs: dict[str, Any] = dtype_kwarg(budget.dtype)
    if family != "sdxl":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    if _only_fp16_variant(folder / "unet"):
        kwargs["variant"] = "fp16"
    if not ref.allow_pickle:
        # Beyond the check above: diffusers never falls back to a pickle beside other files.
        kwargs["use_safetensors"] = True
    try:
        pipe = cls.from_pretrained(folder, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        if is_out_of_memory(exc):
            raise
        raise ModelLoadError(f"{name} could not be loaded: {exc}") from exc
    return pipe, family, inpaint


def _only_fp16_variant(component: Path) -> bool:
    """Whether a component folder holds only `*.fp16.*` weight files (saved with variant="fp16"),
    which from_pretrained finds only when told the variant."""
    names = [p.name for p in component.glob("diffusion_pytorch_model*")]
    return bool(names) and all(".fp16." in n for n in names)


def _load_hub(repo_id: str, ref: ModelRef, report: Progress, budget: _LoadBudget):
    from diffusers import DiffusionPipeline
    from huggingface_hub import constants

    offline = constants.HF_HUB_OFFLINE
    report(f"Looking up {repo_id} in the local cache" if offline else f"Downloading {repo_id} (this can take a while)", None)
    try:
        # safety_checker=None: never fetch the 1.2 GB checker, which the app does not use.
        folder = Path(DiffusionPipeline.download(repo_id, safety_checker=None))
    except Exception as exc:  # huggingface_hub raises many kinds; all mean "not available"
        if offline:
            raise ModelLoadError(
                f"{repo_id} is not in the local Hugging Face cache and there is no network "
                "(offline mode), nor is it a local file or folder. Download it once while online, "
                "or choose a local model."
            ) from exc
        raise ModelLoadError(
            f"{repo_id} is not a local file or folder, and it could not be downloaded from the "
            f"Hugging Face hub: {exc}"
        ) from exc
    return _load_folder(folder, ref, report, budget, repo_id)


def _load_file(path: Path, ref: ModelRef, device: torch.device, report: Progress, config_root: Path | None,
               budget: _LoadBudget):
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
