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

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdstudio.engine.request import BUILTIN_MODEL, Mode, ModelInfo, ModelRef

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline
    from PIL.Image import Image

Progress = Callable[[str, float | None], None]

RESOURCES = Path(__file__).resolve().parent.parent.parent / "resources"
CONFIG_ROOT = RESOURCES / "configs"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class ModelLoadError(Exception):
    """A model could not be loaded; str(e) is a message a person understands."""


def builtin_model_path() -> Path:
    """The folder of the small demo model that ships with the app."""
    return RESOURCES / "models" / "builtin"


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
    if in_channels not in (4, 9):
        raise ValueError(
            f"its UNet takes {in_channels} input channels; only regular (4) and inpainting (9) "
            "Stable Diffusion UNets are supported (not depth, upscaler or instruct-pix2pix models)"
        )
    inpaint = in_channels == 9
    if (
        unet_config.get("addition_embed_type") == "text_time"
        or has_text_encoder_2
        or "XL" in pipeline_class
    ):
        return "sdxl", inpaint
    if unet_config.get("cross_attention_dim") == 1024:
        return "sd2", inpaint
    return "sd1", inpaint


def pipeline_classes(family: str) -> dict[Mode, type]:
    """The diffusers pipeline class of each mode for a family."""
    import diffusers

    if family == "sdxl":
        names = ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
                 "StableDiffusionXLInpaintPipeline")
    else:
        names = ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline",
                 "StableDiffusionInpaintPipeline")
    return {mode: getattr(diffusers, name) for mode, name in zip(Mode, names, strict=True)}


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
    _pipelines: dict[Mode, DiffusionPipeline] = field(default_factory=dict, repr=False)
    _scheduler_config: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Snapshot now: callers replace pipe.scheduler per job, and the base pipeline is one of them.
        self._scheduler_config = dict(self.base.scheduler.config)

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
    ref: ModelRef, progress: Progress | None = None, *, config_root: Path | None = None
) -> LoadedModel:
    """Load from ref.source: "builtin", a diffusers folder, a single checkpoint file or a hub id.

    `progress(message, fraction)` is called along the way (fraction 0..1 or None).
    `config_root` replaces resources/configs, the folder of per-family config folders used for
    single-file checkpoints (tests point it at tiny configs).
    Raises ModelLoadError with a message a person understands; running out of memory is
    raised as it is (see devices.is_out_of_memory) so that the caller can say what to lower.
    """
    from sdstudio.engine.devices import is_out_of_memory, pick_device, pick_dtype

    report = progress or (lambda message, fraction: None)
    _quiet_loading_bars()
    try:
        device = pick_device(ref.device)
        dtype = pick_dtype(device, ref.dtype)
    except ValueError as exc:
        raise ModelLoadError(f"Cannot load {ref.name}: {exc}") from exc

    pipe, family, inpaint = _load_source(ref, device, dtype, report, config_root)
    report(f"Moving {ref.name} to {device.type}", 0.9)
    try:
        pipe.to(device)
    except RuntimeError as exc:
        if is_out_of_memory(exc):
            raise  # the runner reports it as out-of-memory, with what to do
        raise ModelLoadError(f"Cannot move {ref.name} to {device}: {exc}") from exc
    info = ModelInfo(
        name=ref.name, family=family, inpaint_unet=inpaint, device=device.type,
        dtype=str(dtype).removeprefix("torch."), source=ref.source,
        native_size=int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor),
    )
    model = LoadedModel(info=info, device=device, dtype=dtype, base=pipe)
    report(f"Loaded {ref.name}", 1.0)
    return model


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


def _load_source(ref: ModelRef, device: torch.device, dtype: torch.dtype, report: Progress,
                 config_root: Path | None):
    source = ref.source
    if source == BUILTIN_MODEL:
        path = builtin_model_path()
        if not path.is_dir():
            raise ModelLoadError(
                f"The built-in model was not found at {path}. Train it with `make train-builtin` "
                "or choose another model."
            )
        return _load_folder(path, dtype, report)
    path = Path(source).expanduser()
    if path.is_dir():
        return _load_folder(path, dtype, report)
    if path.is_file():
        return _load_file(path, ref, device, dtype, report, config_root)
    if _looks_like_path(source):
        raise ModelLoadError(f"Model not found: {path} does not exist.")
    return _load_hub(source, dtype, report)


def _looks_like_path(source: str) -> bool:
    return (
        not _HUB_ID.match(source)
        or source.startswith((".", "~", "/"))
        or source.endswith((".safetensors", *PICKLE_SUFFIXES))
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path} cannot be read as JSON: {exc}") from exc


def folder_family(folder: Path) -> tuple[str, bool]:
    """The family of a diffusers folder from its model_index.json and unet/config.json."""
    index_path = folder / "model_index.json"
    unet_path = folder / "unet" / "config.json"
    if not index_path.is_file():
        files = sorted(p.name for p in folder.glob("*.safetensors"))
        hint = f" To load a checkpoint, choose the file itself, e.g. {files[0]}." if files else ""
        raise ModelLoadError(f"{folder} is not a diffusers model folder: it has no model_index.json.{hint}")
    index = _read_json(index_path)
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


def _load_folder(folder: Path, dtype: torch.dtype, report: Progress, name: str = ""):
    from sdstudio.engine.devices import dtype_kwarg, is_out_of_memory

    name = name or folder.name
    report(f"Reading {name}", 0.05)
    family, inpaint = folder_family(folder)
    cls = pipeline_classes(family)[Mode.INPAINT if inpaint else Mode.TXT2IMG]
    report(f"Loading weights of {name}", 0.1)
    kwargs: dict[str, Any] = dtype_kwarg(dtype)
    if family != "sdxl":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    if _only_fp16_variant(folder / "unet"):
        kwargs["variant"] = "fp16"
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


def _load_hub(repo_id: str, dtype: torch.dtype, report: Progress):
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
    return _load_folder(folder, dtype, report, repo_id)


def _load_file(path: Path, ref: ModelRef, device: torch.device, dtype: torch.dtype, report: Progress,
               config_root: Path | None):
    from sdstudio.engine.single_file import load_checkpoint

    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES and not ref.allow_pickle:
        raise ModelLoadError(
            f"{path.name} is a pickle checkpoint ({suffix}), which can run arbitrary code when "
            "loaded. Use a .safetensors version of the model, or allow pickle files if you trust "
            "where it came from."
        )
    if suffix != ".safetensors" and suffix not in PICKLE_SUFFIXES:
        raise ModelLoadError(
            f"{path.name} is not a model file: expected a .safetensors checkpoint or a diffusers folder."
        )
    return load_checkpoint(path, device, dtype, report, config_root or CONFIG_ROOT)
