"""Single-file checkpoints in the original CompVis/LDM key layout, loaded fully offline.

diffusers' `from_single_file` builds the architecture from a config folder; without one it asks
the hub. So the family is read from the checkpoint's key names and shapes (without loading the
tensors) and the matching folder from resources/configs is passed as `config=`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

UNET = "model.diffusion_model."
UNET_IN = UNET + "input_blocks.0.0.weight"
SD1_TEXT = "cond_stage_model.transformer."
SD2_TEXT = "cond_stage_model.model."
SDXL_TEXT_2 = "conditioner.embedders.1."
SDXL_REFINER_TEXT = "conditioner.embedders.0.model."
SDXL_SIZE_EMBED = UNET + "label_emb."

# (family, inpaint_unet) -> config folder under resources/configs
CONFIG_FOLDERS = {
    ("sd1", False): "sd15",
    ("sd1", True): "sd15-inpaint",
    ("sdxl", False): "sdxl",
    ("sdxl", True): "sdxl-inpaint",
}
SD2_V, SD2_BASE = "sd21", "sd2-base"


def checkpoint_family(shapes: Mapping[str, tuple[int, ...]]) -> tuple[str, bool]:
    """("sd1" | "sd2" | "sdxl", inpaint_unet) from an LDM checkpoint's key -> shape map.

    Raises ValueError saying what the file seems to be when it is not a supported SD model.
    """
    if UNET_IN not in shapes:
        raise ValueError(f"it is not a Stable Diffusion checkpoint ({_what_else(shapes)})")
    in_channels = shapes[UNET_IN][1]
    if in_channels not in (4, 9):
        raise ValueError(
            f"its UNet takes {in_channels} input channels; only regular (4) and inpainting (9) "
            "Stable Diffusion models are supported"
        )
    inpaint = in_channels == 9
    has = lambda prefix: any(key.startswith(prefix) for key in shapes)  # noqa: E731
    if has(SDXL_TEXT_2) or (has(SDXL_SIZE_EMBED) and not has(SDXL_REFINER_TEXT)):
        return "sdxl", inpaint
    if has(SDXL_REFINER_TEXT):
        raise ValueError("it is an SDXL refiner, which is not supported as a main model")
    if has(SD2_TEXT) or _context_dim(shapes) == 1024:
        if inpaint:
            raise ValueError("SD 2.x inpainting checkpoints are not supported")
        return "sd2", inpaint
    return "sd1", inpaint


def _context_dim(shapes: Mapping[str, tuple[int, ...]]) -> int | None:
    for key, shape in shapes.items():
        if key.startswith(UNET) and key.endswith("attn2.to_k.weight"):
            return shape[-1]
    return None


def _what_else(shapes: Mapping[str, tuple[int, ...]]) -> str:
    keys = list(shapes)
    if any("lora" in key.lower() for key in keys):
        return "it looks like a LoRA; load a full model and apply LoRAs on top"
    if any(key in shapes for key in ("string_to_param.*", "emb_params", "clip_l", "clip_g")):
        return "it looks like a textual-inversion embedding"
    if any(key.startswith(("encoder.down.", "decoder.up.", "first_stage_model.")) for key in keys):
        return "it looks like a VAE alone"
    if any(key.startswith(("down_blocks.", "unet.down_blocks.")) for key in keys):
        return "it looks like a diffusers-format part; load the whole diffusers folder instead"
    return "no UNet weights under model.diffusion_model"


def config_folder_for(family: str, inpaint: bool, predicts_v: bool | None = None) -> str:
    """The resources/configs folder for a checkpoint of `family`.

    SD 2.x 768-v and 512-base checkpoints have the same keys and shapes. Unless told (an
    A1111-style sidecar .yaml), start from the 768-v config: it also upcasts attention, which
    2.x-v needs in fp16 and which costs the base model nothing but a little speed. The loader
    then probes the UNet and switches to epsilon when it is a base model.
    """
    if family == "sd2":
        return SD2_BASE if predicts_v is False else SD2_V
    return CONFIG_FOLDERS[family, inpaint]


def sd2_predicts_v_from_sidecar(checkpoint: Path) -> bool | None:
    """True/False when an A1111-style `<name>.yaml` next to the checkpoint says, else None."""
    yaml_path = checkpoint.with_suffix(".yaml")
    if not yaml_path.is_file():
        return None
    text = yaml_path.read_text(encoding="utf-8", errors="replace")
    return re.search(r"parameterization:\s*[\"']?v[\"']?\s*$", text, re.MULTILINE) is not None


def predicts_v(unet: torch.nn.Module) -> bool:
    """Whether an SD2 UNet was trained for v-prediction, by one tiny forward pass.

    The same probe as A1111's `is_using_v_parameterization_for_sd2`: at the last timestep an
    epsilon model predicts noise close to its input, a v model returns roughly its negative.
    """
    import torch

    param = next(unet.parameters())
    context_dim = unet.config.cross_attention_dim
    with torch.no_grad():
        x = torch.full((1, unet.config.in_channels, 8, 8), 0.5, dtype=param.dtype, device=param.device)
        cond = torch.full((1, 2, context_dim), 0.5, dtype=param.dtype, device=param.device)
        out = unet(x, torch.tensor([999], device=param.device), encoder_hidden_states=cond).sample
    return (out.float() - x.float()).mean().item() < -1


def read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a .safetensors file (header only) or a pickle (loaded with weights_only)."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}  # noqa: SIM118
    import pickle
    import zipfile

    import torch

    try:
        # weights_only, as diffusers loads it too: tensors and plain containers, no code.
        data: Any = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        raise ValueError(
            "it holds Python objects besides the weights, which cannot be loaded safely; "
            "convert it to .safetensors first"
        ) from exc
    while isinstance(data, dict) and "state_dict" in data:
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ValueError("it holds no state dict")
    return {key: tuple(value.shape) for key, value in data.items() if hasattr(value, "shape")}


def load_checkpoint(path: Path, device: torch.device, dtype: torch.dtype,
                    report: Callable[[str, float | None], None],
                    config_root: Path):
    """(pipeline, family, inpaint_unet) from a single checkpoint file, offline.

    `device` is only used for the SD 2 v-prediction probe; the caller moves the pipeline."""
    from sdstudio.engine.devices import dtype_kwarg, is_out_of_memory
    from sdstudio.engine.models import ModelLoadError, pipeline_classes
    from sdstudio.engine.request import Mode

    report(f"Reading checkpoint {path.name}", 0.02)
    try:
        shapes = read_shapes(path)
    except ValueError as exc:
        raise ModelLoadError(f"{path.name} cannot be loaded: {exc}.") from exc
    except Exception as exc:  # safetensors and torch.load raise many kinds for a bad file
        raise ModelLoadError(
            f"{path.name} cannot be read: the file is damaged, incomplete or not a model ({exc})."
        ) from exc
    try:
        family, inpaint = checkpoint_family(shapes)
    except ValueError as exc:
        raise ModelLoadError(f"{path.name} cannot be loaded: {exc}.") from exc

    predicts_v_hint = sd2_predicts_v_from_sidecar(path) if family == "sd2" else None
    folder_name = config_folder_for(family, inpaint, predicts_v_hint)
    config = config_root / folder_name
    if not config.is_dir():
        raise ModelLoadError(f"The config folder for {folder_name} is missing at {config}.")

    report(f"Building pipeline ({folder_name}) from {path.name}", 0.1)
    cls = pipeline_classes(family)[Mode.INPAINT if inpaint else Mode.TXT2IMG]
    kwargs: dict[str, Any] = {"config": str(config), "local_files_only": True, **dtype_kwarg(dtype)}
    if family != "sdxl":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    try:
        pipe = cls.from_single_file(str(path), **kwargs)
    except Exception as exc:  # conversion errors come as KeyError, ValueError, RuntimeError...
        if is_out_of_memory(exc):
            raise
        raise ModelLoadError(
            f"{path.name} could not be converted as a {folder_name} model: {exc}"
        ) from exc

    if family == "sd2" and predicts_v_hint is None:
        report("Checking whether the SD 2 model predicts v or noise", 0.8)
        pipe.unet.to(device)  # probe where the model will run: milliseconds on a GPU
        if not predicts_v(pipe.unet):
            _use_epsilon(pipe)
    if family == "sdxl" and inpaint:
        # The sdxl-inpaint config describes the fp16-fix VAE; a checkpoint usually carries the
        # original SDXL VAE, which overflows in fp16, so let diffusers decode it in fp32.
        pipe.vae.register_to_config(force_upcast=True)
    return pipe, family, inpaint


def _use_epsilon(pipe) -> None:
    """Turn a pipeline loaded with the 768-v SD2 config into the 512-base (epsilon) one."""
    scheduler = pipe.scheduler
    pipe.scheduler = type(scheduler).from_config(scheduler.config, prediction_type="epsilon")
    pipe.unet.register_to_config(sample_size=64)
