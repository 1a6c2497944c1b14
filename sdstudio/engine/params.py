"""A request's A1111 "parameters" text and the app's JSON chunk, both derived from the
parameter table (`parameters.py`), and read back into flat parameter fields.

The window's "reuse parameters", the history store and the CLI all go through here, so a
parameter has one name in every layer.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from sdstudio.engine.events import ResultImage, UsedNetwork
from sdstudio.engine.infotext import Infotext, format_infotext, parse_infotext
from sdstudio.engine.parameters import PARAMETERS, Param, Part, applies, upscaler_label
from sdstudio.engine.request import GenerationRequest, ModelInfo

if TYPE_CHECKING:
    from PIL.Image import Image

    from sdstudio.engine.networks import NetworkFolders

# Keys of the JSON chunk beside the request's own (`GenerationRequest.to_json()`).
MODEL_INFO_KEY = "model_info"
NETWORKS_KEY = "networks"  # the add-on files used: [{kind, name, hash, weight}, ...]
# A1111's keys listing add-on files as "name: hash, name: hash", by networks.NetworkKind value.
HASH_LIST_KEYS = {"lora": "Lora hashes", "embedding": "TI hashes"}


def infotext_pairs(
    request: GenerationRequest, model: ModelInfo | None, networks: tuple[UsedNetwork, ...] = ()
) -> dict[str, object]:
    """The `Key: value` pairs of one image of `request` (its own seed, the size used) and the
    add-on files it used, where A1111 puts them."""
    fields = request.fields()
    pairs: dict[str, object] = {}
    def add(params: list[Param]) -> None:
        for param in params:
            if param.infotext and applies(param, request.mode):
                pairs[param.infotext] = param.infotext_value(fields)

    add([p for p in PARAMETERS if p.part is not Part.JOB])
    pairs["Model"] = model.name if model else request.model.name
    for used in networks:
        if used.kind == "vae":
            pairs |= {"VAE hash": used.hash, "VAE": used.name} if used.hash else {"VAE": used.name}
    if model is not None:
        pairs["Precision"] = model.dtype
    for kind, key in HASH_LIST_KEYS.items():
        # A1111 drops ":" and "," from the names, which would end the list's items.
        # A file a server keeps has no hash here: it is recorded in the JSON chunk only.
        listed = [f"{n.name.replace(':', '').replace(',', '')}: {n.hash}" for n in networks if n.kind == kind and n.hash]
        if listed:
            pairs[key] = ", ".join(listed)
    # The app's own keys (the mode) come after A1111's, as extensions' keys do.
    add([p for p in PARAMETERS if p.part is Part.JOB])
    return pairs


def request_infotext(
    request: GenerationRequest, model: ModelInfo | None, networks: tuple[UsedNetwork, ...] = ()
) -> str:
    pairs = infotext_pairs(request, model, networks)
    return format_infotext(request.prompt.prompt, request.prompt.negative_prompt, pairs)


def result_image(
    image: Image, request: GenerationRequest, model: ModelInfo | None, networks: tuple[UsedNetwork, ...] = ()
) -> ResultImage:
    """One image with what made it (`request` as used for it alone, the add-on files used) and
    its A1111 text."""
    return ResultImage(image, request, model, request_infotext(request, model, networks), networks)


def image_json(
    request: GenerationRequest, model: ModelInfo | None, networks: tuple[UsedNetwork, ...] = ()
) -> dict[str, Any]:
    """The app's JSON chunk of one image: the request used, serialised, the model and the
    add-on files used (pass `ResultImage.networks`)."""
    return request.to_json() | {
        MODEL_INFO_KEY: dataclasses.asdict(model) if model else None,
        NETWORKS_KEY: [dataclasses.asdict(n) for n in networks],
    }


def result_json(result: ResultImage) -> dict[str, Any]:
    """The JSON chunk of a result, with everything it carries: every writer of a result's
    file (history, CLI, Save as…) uses this one."""
    return image_json(result.request, result.model, result.networks)


def networks_from_json(data: object) -> list[UsedNetwork]:
    """The add-on files an image's JSON chunk records (entries that do not read are skipped)."""
    entries = data.get(NETWORKS_KEY) if isinstance(data, dict) else None
    found = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in ("kind", "name", "hash")):
            weight = entry.get("weight")
            weight = float(weight) if isinstance(weight, int | float) and not isinstance(weight, bool) else 1.0
            found.append(UsedNetwork(entry["kind"], entry["name"], entry["hash"], weight))
    return found


def networks_from_infotext(text: str | Infotext) -> list[UsedNetwork]:
    """The add-on files an A1111 text names: `Lora hashes`, `TI hashes` and `VAE` (the VAE is
    no GenerationRequest parameter, so `fields_from_infotext` leaves it out; a caller that
    reuses a text sets ModelRef.vae from this). Weights are not in these keys: 1.0."""
    info = parse_infotext(text) if isinstance(text, str) else text
    found = []
    for kind, key in HASH_LIST_KEYS.items():
        for item in info.params.get(key, "").split(","):
            name, _, digest = item.rpartition(":")
            if name.strip() and digest.strip():
                found.append(UsedNetwork(kind, name.strip(), digest.strip()))
    if info.params.get("VAE"):
        found.append(UsedNetwork("vae", info.params["VAE"], info.params.get("VAE hash", "")))
    return found


def missing_networks(
    used: list[UsedNetwork], folders: NetworkFolders, allow_pickle: bool = False
) -> list[tuple[UsedNetwork, str]]:
    """Each recorded add-on file not in its folder now, with the sentence that says so (for
    reusing an image's parameters: the prompt names embeddings and LoRAs, which work again
    once the files are back). `networks.missing_listed` asks a server's lists instead."""
    from sdstudio.engine.networks import NetworkKind, NetworkNotFound, find_network

    missing = []
    for network in used:
        try:
            kind = NetworkKind(network.kind)
            find_network(kind, network.name, folders.folder(kind), allow_pickle)
        except NetworkNotFound as exc:
            missing.append((network, str(exc)))
        except ValueError:
            continue  # a kind this app does not know
    return missing


def fields_from_infotext(text: str | Infotext) -> dict[str, Any]:
    """Flat parameter fields read from an A1111 text (this app's or another's). Values that
    do not parse, or are out of range, are left out, never raised: a foreign file may say
    anything."""
    info = parse_infotext(text) if isinstance(text, str) else text
    fields: dict[str, Any] = {"prompt": info.prompt, "negative_prompt": info.negative_prompt}
    for param in PARAMETERS:
        value = param.infotext_read(info.params)
        if value is not None:
            fields[param.name] = value
    return fields


def postprocess_text(source: str | None, scale: float, upscaler: str) -> str:
    """The source's A1111 text with the extras tab's keys after its own (they read as more
    `Key: value` pairs of its last line); a model file is named without its extension."""
    pairs = f"Postprocess upscale by: {scale:g}, Postprocess upscaler: {upscaler_label(upscaler)}"
    return f"{source.rstrip()}, {pairs}" if source and source.strip() else pairs
