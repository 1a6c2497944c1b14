"""Single-file checkpoints in the original CompVis/LDM key layout, loaded fully offline.

diffusers' `from_single_file` builds the architecture from a config folder; without one it asks
the hub. So the family is read from the checkpoint's key names and shapes (without loading the
tensors) and the matching folder from resources/configs gives each component's config.

Loading streams: each component's tensors are read one at a time, cast to the target dtype as
they are read, converted to diffusers names and placed into a model built on the meta device,
so the process never holds more than the weights in that dtype plus one tensor in flight
(diffusers' own `from_single_file` first reads the whole file, then converts).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdstudio.engine.families import ModelLoadError, pipeline_classes, variant
from sdstudio.engine.request import Family

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
    if len(shapes[UNET_IN]) != 4:
        raise ValueError(
            f"its UNet's first layer has shape {list(shapes[UNET_IN])}, not the 4 dimensions of a "
            "convolution: the file is damaged or not a Stable Diffusion model"
        )
    in_channels = shapes[UNET_IN][1]
    has = lambda prefix: any(key.startswith(prefix) for key in shapes)  # noqa: E731
    if has(SDXL_TEXT_2) or (has(SDXL_SIZE_EMBED) and not has(SDXL_REFINER_TEXT)):
        return variant(Family.SDXL, in_channels)
    if has(SDXL_REFINER_TEXT):
        raise ValueError("it is an SDXL refiner, which is not supported as a main model")
    if has(SD2_TEXT) or _context_dim(shapes) == 1024:
        return variant(Family.SD2, in_channels)
    return variant(Family.SD1, in_channels)


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


# Component -> LDM key prefix, per family. EMA copies ("model_ema.") are never read, as in
# diffusers, which loads the regular UNet weights unless asked to extract the EMA ones.
VAE = "first_stage_model."
COMPONENT_PREFIXES = {
    "sd1": {"unet": UNET, "vae": VAE, "text_encoder": SD1_TEXT},
    "sd2": {"unet": UNET, "vae": VAE, "text_encoder": SD2_TEXT},
    "sdxl": {"unet": UNET, "vae": VAE, "text_encoder": "conditioner.embedders.0.transformer.",
             "text_encoder_2": SDXL_TEXT_2},
}

# safetensors dtype names -> torch dtype names
_SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
}
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
             "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
_MAX_HEADER = 100 * 2**20  # real headers are well under 1 MB; more means a damaged file
_CHUNK_BYTES = 16 * 2**20


class DamagedFile(ValueError):
    """The file is not a readable safetensors file: damaged, incomplete or something else."""


class SafetensorsFile:
    """A .safetensors file whose tensors are read one at a time with plain reads.

    Not safetensors' `safe_open`: it memory-maps the file, and every page read through the map
    stays in the process's resident memory until the file is closed, so a component read that
    way costs its size in the file's dtype on top of the converted weights. Plain reads go
    through the page cache, which the kernel can drop. Raises DamagedFile for a bad header.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise DamagedFile("the file is shorter than a safetensors header")
            length = int.from_bytes(head, "little")
            if length > min(size - 8, _MAX_HEADER):
                raise DamagedFile("its header length is larger than the file")
            try:
                header = json.loads(f.read(length))
            except ValueError as exc:
                raise DamagedFile(f"its header is not JSON ({exc})") from exc
        if not isinstance(header, dict):
            raise DamagedFile("its header is not a table of tensors")
        header.pop("__metadata__", None)
        self._base = 8 + length
        self._entries = {key: _checked_entry(key, entry, size - self._base) for key, entry in header.items()}

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: shape for key, (_dtype, shape, _begin, _end) in self._entries.items()}

    def tensors(self, prefix: str, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
        """Every tensor whose key starts with `prefix`, floating-point ones cast to `dtype`."""
        import torch

        keys = sorted((k for k in self._entries if k.startswith(prefix)), key=lambda k: self._entries[k][2])
        converted = {k for k in keys if _converts(self._entries[k][0], dtype)}
        # Tensors that change precision pass through one small buffer, a piece at a time, into
        # their final tensor: never a second full-size copy, nor a page fault per fresh buffer.
        chunk = torch.empty(_CHUNK_BYTES if converted else 0, dtype=torch.uint8)
        out = {}
        with open(self.path, "rb", buffering=0) as f:
            for key in keys:
                name, shape, begin, end = self._entries[key]
                file_dtype = getattr(torch, _SAFETENSORS_DTYPES[name])
                f.seek(self._base + begin)
                if key in converted:
                    out[key] = _read_converted(f, key, shape, file_dtype, dtype, chunk)
                else:
                    raw = torch.empty(end - begin, dtype=torch.uint8)
                    _read_exactly(f, memoryview(raw.numpy()), key)
                    out[key] = raw.view(file_dtype).reshape(shape)
        return out


def _read_converted(f, key: str, shape: tuple[int, ...], file_dtype: torch.dtype, dtype: torch.dtype,
                    chunk: torch.Tensor) -> torch.Tensor:
    import torch

    out = torch.empty(shape, dtype=dtype)
    flat = out.view(-1)
    per_chunk = len(chunk) // file_dtype.itemsize
    for start in range(0, flat.numel(), per_chunk):
        count = min(per_chunk, flat.numel() - start)
        piece = chunk[: count * file_dtype.itemsize]
        _read_exactly(f, memoryview(piece.numpy()), key)
        flat[start : start + count].copy_(piece.view(file_dtype))
    return out


def _checked_entry(key: str, entry: Any, data_size: int) -> tuple[str, tuple[int, ...], int, int]:
    """(dtype, shape, begin, end) of one header entry, or DamagedFile saying what is wrong."""
    bad = DamagedFile(f"its header entry for {key!r} is damaged")
    if not isinstance(entry, dict):
        raise bad
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in _SAFETENSORS_DTYPES:
        raise DamagedFile(f"tensor {key!r} has an unknown number format {dtype!r}")
    if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
        raise bad
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int for n in offsets)):
        raise bad
    begin, end = offsets
    if not 0 <= begin <= end <= data_size or end - begin != math.prod(shape) * _ITEMSIZE[dtype]:
        raise DamagedFile(f"tensor {key!r} lies outside the file or has the wrong size: the file is incomplete")
    return dtype, tuple(shape), begin, end


def _read_exactly(f, view: memoryview, key: str) -> None:
    done = 0
    while done < len(view):
        n = f.readinto(view[done:])
        if not n:
            raise DamagedFile(f"the file ends inside tensor {key!r}: it is incomplete")
        done += n


def _converts(file_dtype: str, dtype: torch.dtype | None) -> bool:
    """Whether a tensor stored as `file_dtype` (a safetensors name) changes precision on load:
    floating-point weights take the model's dtype, integer tensors (position ids) stay."""
    return dtype is not None and file_dtype in ("F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2") and \
        _SAFETENSORS_DTYPES[file_dtype] != str(dtype).removeprefix("torch.")


def _cast(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    if dtype is None or not tensor.is_floating_point() or tensor.dtype == dtype:
        return tensor
    return tensor.to(dtype)


class PickleCheckpoint:
    """A .ckpt/.pt state dict, loaded with weights_only (tensors and plain containers, no code)
    and memory-mapped when it is a zip archive, so tensors are read when a component needs them."""

    def __init__(self, path: Path) -> None:
        import pickle
        import zipfile

        import torch

        try:
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
        self._state = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: tuple(value.shape) for key, value in self._state.items()}

    def tensors(self, prefix: str, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
        return {k: _cast(v, dtype) for k, v in self._state.items() if k.startswith(prefix)}


Checkpoint = SafetensorsFile | PickleCheckpoint


def open_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint's tensor index (nothing of the weights read yet for .safetensors).

    Raises ValueError when it is no usable checkpoint, other errors when the file is unreadable."""
    return SafetensorsFile(path) if path.suffix.lower() == ".safetensors" else PickleCheckpoint(path)


def component_numels(shapes: Mapping[str, tuple[int, ...]], family: str) -> dict[str, int]:
    """Component -> number of weights a `family` checkpoint loads into it (EMA copies left out)."""
    return {
        name: sum(math.prod(shape) for key, shape in shapes.items() if key.startswith(prefix))
        for name, prefix in COMPONENT_PREFIXES[family].items()
    }


@dataclass(frozen=True)
class CheckpointPlan:
    """What a checkpoint is and how it will be loaded, known before any weight is read."""

    path: Path
    checkpoint: Checkpoint
    family: str
    inpaint: bool
    config: Path
    predicts_v_hint: bool | None

    @property
    def numels(self) -> dict[str, int]:
        return component_numels(self.checkpoint.shapes, self.family)


def inspect_checkpoint(path: Path, config_root: Path) -> CheckpointPlan:
    """Family, config folder and component sizes of a single-file checkpoint, from its header."""

    try:
        checkpoint = open_checkpoint(path)
        shapes = checkpoint.shapes
    except DamagedFile as exc:
        raise ModelLoadError(
            f"{path.name} cannot be read: the file is damaged, incomplete or not a model ({exc})."
        ) from exc
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
    return CheckpointPlan(path, checkpoint, family, inpaint, config, predicts_v_hint)


def load_checkpoint(plan: CheckpointPlan, device: torch.device, dtype: torch.dtype,
                    report: Callable[[str, float | None], None]):
    """(pipeline, family, inpaint_unet) from a single checkpoint file, offline, streaming.

    `device` is only used for the SD 2 v-prediction probe; the caller moves the pipeline."""
    from sdstudio.engine.devices import dtype_kwarg, is_out_of_memory
    from sdstudio.engine.request import Mode

    path, family, inpaint = plan.path, plan.family, plan.inpaint
    report(f"Building pipeline ({plan.config.name}) from {path.name}", 0.1)
    cls = pipeline_classes(family)[Mode.INPAINT if inpaint else Mode.TXT2IMG]
    kwargs: dict[str, Any] = {"local_files_only": True, **dtype_kwarg(dtype)}
    if family != "sdxl":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    try:
        parts = dict(_stream_components(plan, dtype, report))
        pipe = cls.from_pretrained(str(plan.config), **parts, **kwargs)
    except ModelLoadError:
        raise
    except Exception as exc:  # conversion errors come as KeyError, ValueError, RuntimeError...
        if is_out_of_memory(exc):
            raise
        raise ModelLoadError(
            f"{path.name} could not be converted as a {plan.config.name} model: {exc}"
        ) from exc

    if family == "sd2" and plan.predicts_v_hint is None:
        report("Checking whether the SD 2 model predicts v or noise", 0.8)
        pipe.unet.to(device)  # probe where the model will run: milliseconds on a GPU
        if not predicts_v(pipe.unet):
            _use_epsilon(pipe)
    if family == "sdxl" and inpaint:
        # The sdxl-inpaint config describes the fp16-fix VAE; a checkpoint usually carries the
        # original SDXL VAE, which overflows in fp16, so let diffusers decode it in fp32.
        pipe.vae.register_to_config(force_upcast=True)
    return pipe, family, inpaint


def _stream_components(plan: CheckpointPlan, dtype: torch.dtype,
                       report: Callable[[str, float | None], None]) -> Iterator[tuple[str, Any]]:
    """(name, model) per component, each read, converted and placed before the next is read:
    the component's state dict shares its tensors with the model and is dropped after it."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import create_diffusers_clip_model_from_ldm
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from sdstudio.engine.devices import dtype_kwarg

    classes = {"unet": UNet2DConditionModel, "vae": AutoencoderKL, "text_encoder": CLIPTextModel,
               "text_encoder_2": CLIPTextModelWithProjection}
    prefixes = COMPONENT_PREFIXES[plan.family]
    for i, (name, prefix) in enumerate(prefixes.items()):
        report(f"Loading {name.replace('_', ' ')} of {plan.path.name}", 0.1 + 0.7 * i / len(prefixes))
        state = plan.checkpoint.tensors(prefix, dtype)
        if not state:
            raise ModelLoadError(f"{plan.path.name} cannot be loaded: it has no {name.replace('_', ' ')} weights.")
        if name in ("unet", "vae"):
            model = classes[name].from_single_file(
                state, config=str(plan.config), subfolder=name, local_files_only=True, **dtype_kwarg(dtype))
        else:
            model = create_diffusers_clip_model_from_ldm(
                classes[name], state, subfolder=name, config=str(plan.config), torch_dtype=dtype,
                local_files_only=True)
        del state
        yield name, model


def _use_epsilon(pipe) -> None:
    """Turn a pipeline loaded with the 768-v SD2 config into the 512-base (epsilon) one."""
    scheduler = pipe.scheduler
    pipe.scheduler = type(scheduler).from_config(scheduler.config, prediction_type="epsilon")
    pipe.unet.register_to_config(sample_size=64)
