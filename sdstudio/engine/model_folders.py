"""Diffusers model folders (`model_index.json` and a folder per component), local or from the
Hugging Face cache: their family, their weights' size (for the memory check before reading
them), the pickle refusal, and loading them as a pipeline in the chosen dtype."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sdstudio.engine.families import (
    PICKLE_SUFFIXES,
    ModelLoadError,
    family_from_unet_config,
    pickle_refusal,
    pipeline_classes,
)
from sdstudio.engine.load_budget import LoadBudget, Progress
from sdstudio.engine.request import Mode, ModelRef

# model_index.json entries that name a component (the others are settings such as
# requires_safety_checker), and the components whose weights the app loads.
INDEX_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2",
                    "scheduler", "safety_checker", "feature_extractor", "image_encoder")
WEIGHT_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path} cannot be read as JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} is damaged: it holds {type(data).__name__} where a JSON object belongs.")
    return data


def check_index(folder: Path, index: dict[str, Any]) -> None:
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


def component_weight_files(component: Path) -> list[Path]:
    """The weight files from_pretrained reads for a component: .safetensors before pickles,
    full precision before the fp16 variant (which it reads only when it is all there is)."""
    safetensors = sorted(component.glob("*.safetensors"))
    files = safetensors or sorted(p for p in component.glob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
    return [p for p in files if ".fp16." not in p.name] or files


def folder_weights(folder: Path) -> dict[str, list[Path]]:
    """Weight component -> the files loading it reads (only the components the app loads)."""
    index = read_json(folder / "model_index.json")
    return {name: component_weight_files(folder / name) for name in WEIGHT_COMPONENTS
            if name in index and (folder / name).is_dir()}


def folder_numels(folder: Path) -> dict[str, int] | None:
    """Component -> number of weights in a diffusers folder, from the safetensors headers
    (a pickle's count is estimated from its size); None when a file cannot be read."""
    from sdstudio.engine.single_file import SafetensorsFile

    out = {}
    try:
        for name, files in folder_weights(folder).items():
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
    index = read_json(index_path)
    check_index(folder, index)
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
            read_json(unet_path),
            has_text_encoder_2="text_encoder_2" in index,
            pipeline_class=pipeline_class,
        )
    except ValueError as exc:
        raise ModelLoadError(f"{folder.name} is not supported: {exc}.") from exc


def load_folder(folder: Path, ref: ModelRef, report: Progress, budget: LoadBudget, name: str = ""):
    from sdstudio.engine.devices import dtype_kwarg, is_out_of_memory

    name = name or folder.name
    report(f"Reading {name}", 0.05)
    family, inpaint = folder_family(folder)
    if not ref.allow_pickle:
        for component, files in folder_weights(folder).items():
            if files and files[0].suffix.lower() in PICKLE_SUFFIXES:
                raise pickle_refusal(f"{folder.name}/{component}/{files[0].name}", files[0].suffix.lower())
    budget.check(folder_numels(folder))
    cls = pipeline_classes(family)[Mode.INPAINT if inpaint else Mode.TXT2IMG]
    report(f"Loading weights of {name}", 0.1)
    kwargs: dict[str, Any] = dtype_kwarg(budget.dtype)
    if family != "sdxl":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    if only_fp16_variant(folder / "unet"):
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


def only_fp16_variant(component: Path) -> bool:
    """Whether a component folder holds only `*.fp16.*` weight files (saved with variant="fp16"),
    which from_pretrained finds only when told the variant."""
    names = [p.name for p in component.glob("diffusion_pytorch_model*")]
    return bool(names) and all(".fp16." in n for n in names)


def load_hub(repo_id: str, ref: ModelRef, report: Progress, budget: LoadBudget):
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
    return load_folder(folder, ref, report, budget, repo_id)
