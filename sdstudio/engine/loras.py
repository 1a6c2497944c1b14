"""LoRAs named by a prompt's `<lora:name:weight>` tags, applied to the local engine's model.

A tag names a file in the LoRA folder by its stem (networks.find_network); kohya/A1111-format
files (`lora_unet_…`, `lora_te_…`, SDXL's `lora_te1_…`/`lora_te2_…`) and diffusers/peft ones
load through diffusers' `load_lora_weights` as peft adapters. The three modes' pipelines share
the UNet and text encoders, so an adapter is loaded once into those modules and serves every
mode. Adapters stay loaded between jobs (keyed by the file's hash, so a renamed file is not
loaded twice and an edited one is); the least recently used is unloaded beyond MAX_LOADED.

Each job activates exactly its own LoRAs with their weights (`<lora:name:te:unet>` gives the
text encoders and the UNet their own). A job without LoRAs, or with weights of 0 only, turns
every adapter off: peft's disabled layers run the original layer alone, so its picture is
bitwise what the model makes without ever having seen a LoRA (tests/engine/test_loras.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdstudio.engine.events import UsedNetwork
from sdstudio.engine.images import InputError
from sdstudio.engine.networks import (
    NetworkKind,
    NetworkNotFound,
    find_network,
    request_tags,
    short_hash,
)
from sdstudio.engine.request import Family, GenerationRequest

if TYPE_CHECKING:
    from sdstudio.engine.models import LoadedModel

MAX_LOADED = 8  # adapters kept in memory; a rank-16 SD1.5 LoRA holds ~35 MB
FAMILY_LABELS = {Family.SD1: "SD 1.x", Family.SD2: "SD 2.x", Family.SDXL: "SDXL"}
log = logging.getLogger(__name__)


@dataclass
class LoraAdapters:
    """The adapters loaded into one model's modules (they go when the model goes): adapter
    name → file, most recently used last, and how many files were loaded so far."""

    loaded: OrderedDict[str, Path] = field(default_factory=OrderedDict)
    loads: int = 0


@dataclass(frozen=True)
class _Wanted:
    name: str  # as the tag wrote it: A1111 records this name (params.py drops its ':' and ',')
    path: Path
    hash: str
    te: float
    unet: float

    @property
    def adapter(self) -> str:
        return "lora_" + self.hash

    @property
    def active(self) -> bool:
        return bool(self.te or self.unet)


def lora_tags(request: GenerationRequest) -> list[tuple[str, float, float]]:
    """(name, text-encoder weight, UNet weight) of each LoRA tag of the prompts, in order."""
    return [(t.name, t.weight, t.unet_weight) for t in request_tags(request) if t.kind == NetworkKind.LORA.value]


def apply_loras(model: LoadedModel, pipe: Any, request: GenerationRequest, folder: Path) -> tuple[UsedNetwork, ...]:
    """Make `pipe` (one of `model`'s pipelines) run with exactly the request's LoRAs, loading
    files not loaded yet; returns what was used, for the result's text. Raises InputError for
    an unknown name (with close matches) or a file that is no LoRA for this model."""
    wanted: dict[str, _Wanted] = {}
    for tag in lora_tags(request):
        item = _resolve(folder, request.model.allow_pickle, *tag)
        if same := wanted.get(item.adapter):  # one file tagged twice: its weights add up
            item = replace(same, te=same.te + item.te, unet=same.unet + item.unet)
        wanted[item.adapter] = item
    adapters: LoraAdapters = model.loras
    active = [w for w in wanted.values() if w.active]
    for item in active:
        if item.adapter in adapters.loaded:
            adapters.loaded.move_to_end(item.adapter)
        else:
            _load(model, pipe, item)
            adapters.loaded[item.adapter] = item.path
            adapters.loads += 1
    _evict(pipe, adapters, keep={w.adapter for w in active})
    if adapters.loaded:
        if active:
            names = [w.adapter for w in active]
            parts = pipe.get_list_adapters()  # {"unet": [...], "text_encoder": [...], ...}
            pipe.enable_lora()
            pipe.set_adapters(names, [_component_weights(w, parts) for w in active])
        else:
            pipe.disable_lora()
    return tuple(UsedNetwork(NetworkKind.LORA.value, w.name, w.hash, w.unet) for w in wanted.values())


def _resolve(folder: Path, allow_pickle: bool, name: str, te: float, unet: float) -> _Wanted:
    try:
        file = find_network(NetworkKind.LORA, name, folder, allow_pickle)
    except NetworkNotFound as exc:
        raise InputError(str(exc)) from exc
    return _Wanted(name, file.path, short_hash(file.path, NetworkKind.LORA), te, unet)


def _component_weights(item: _Wanted, parts: dict[str, list[str]]) -> dict[str, float]:
    """The weight per model part that holds this adapter (naming a part without it warns)."""
    return {part: item.unet if part == "unet" else item.te for part, names in parts.items() if item.adapter in names}


def _evict(pipe: Any, adapters: LoraAdapters, keep: set[str]) -> None:
    """Unload the least recently used adapters beyond MAX_LOADED (never one this job uses)."""
    for name in [n for n in adapters.loaded if n not in keep][: max(0, len(adapters.loaded) - MAX_LOADED)]:
        with _quiet():
            pipe.delete_adapters([name])
        del adapters.loaded[name]


def _load(model: LoadedModel, pipe: Any, item: _Wanted) -> None:
    state = _read(item.path, item.name)
    _check_family(state, model.info.family, item.name)
    try:
        with _quiet():
            pipe.load_lora_weights(state, adapter_name=item.adapter)
    except Exception as exc:  # diffusers and peft raise many kinds for layers that do not match
        from sdstudio.engine.devices import is_out_of_memory

        with contextlib.suppress(Exception), _quiet():  # a half-made adapter must not linger
            pipe.delete_adapters([item.adapter])
        if is_out_of_memory(exc):
            raise
        log.info("LoRA %s did not load: %s", item.path, exc)
        raise InputError(
            f"The LoRA {item.name!r} does not fit {model.info.name} ({FAMILY_LABELS[model.info.family]}): its layers have "
            "other names or sizes (a LoRA for another model family, or a LyCORIS type this app does not load)."
        ) from exc


def _read(path: Path, name: str) -> dict[str, Any]:
    """The file's tensors as stored, read as checkpoints are (`.safetensors`, or a pickle, found
    only with allow_pickle, with torch's weights-only loader)."""
    from sdstudio.engine.single_file import open_checkpoint

    try:
        state = open_checkpoint(path).tensors("", None)
    except Exception as exc:  # a damaged header, a pickle with code in it, an unreadable file
        raise InputError(f"The LoRA {name!r} ({path}) cannot be read: {exc}") from exc
    if not any("lora" in key.lower() for key in state):
        raise InputError(f"{path.name} is not a LoRA: it has no LoRA weights.")
    return state


def _check_family(state: dict[str, Any], family: Family, name: str) -> None:
    """SDXL LoRAs name two text encoders (`lora_te1_`/`lora_te2_`), SD 1.x/2.x ones one
    (`lora_te_`): a clear sentence before diffusers' size-mismatch error."""
    xl_keys = any(k.startswith(("lora_te1_", "lora_te2_")) for k in state)
    single_te = any(k.startswith("lora_te_") for k in state)
    if xl_keys and family is not Family.SDXL:
        raise InputError(f"The LoRA {name!r} is an SDXL LoRA; the model is {FAMILY_LABELS[family]}.")
    if single_te and family is Family.SDXL:
        raise InputError(f"The LoRA {name!r} is an SD 1.x/2.x LoRA; the model is SDXL.")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """diffusers, peft and transformers log every adapter key loading a LoRA (and, for each
    further adapter, the earlier ones' keys as 'missing'): noise on the app's stderr."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    levels = diffusers_logging.get_verbosity(), transformers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    try:
        with _no_warnings():
            yield
    finally:
        diffusers_logging.set_verbosity(levels[0])
        transformers_logging.set_verbosity(levels[1])


@contextlib.contextmanager
def _no_warnings() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
