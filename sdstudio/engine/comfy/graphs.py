"""GenerationRequest -> ComfyUI API-format graphs (node id -> {class_type, inputs}).

One graph per batch: the checkpoint, the prompts and the init latent are shared, and every
image gets its own sampler chain with its own seed. ComfyUI seeds a batch from one generator,
so a batched EmptyLatentImage would make image k differ from the single run with seed + k;
separate chains keep that equality exact. A link is `[node_id, output_index]`.

Nothing here talks to a server: `server_samplers` reads the server's `/object_info` answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sdstudio.engine.networks import strip_tags
from sdstudio.engine.request import GenerationRequest, Mode

Graph = dict[str, dict[str, Any]]

# A1111 sampler name -> ComfyUI (sampler_name, scheduler). A1111's "Karras" variants are the
# same sampler on Karras sigmas; DDIM runs on its own uniform steps there as here.
SAMPLERS: dict[str, tuple[str, str]] = {
    "Euler a": ("euler_ancestral", "normal"),
    "Euler": ("euler", "normal"),
    "Heun": ("heun", "normal"),
    "LMS": ("lms", "normal"),
    "LMS Karras": ("lms", "karras"),
    "DPM2": ("dpm_2", "normal"),
    "DPM2 Karras": ("dpm_2", "karras"),
    "DPM2 a": ("dpm_2_ancestral", "normal"),
    "DPM2 a Karras": ("dpm_2_ancestral", "karras"),
    "DPM++ 2S a": ("dpmpp_2s_ancestral", "normal"),
    "DPM++ 2S a Karras": ("dpmpp_2s_ancestral", "karras"),
    "DPM++ 2M": ("dpmpp_2m", "normal"),
    "DPM++ 2M Karras": ("dpmpp_2m", "karras"),
    "DPM++ SDE": ("dpmpp_sde", "normal"),
    "DPM++ SDE Karras": ("dpmpp_sde", "karras"),
    "DPM++ 2M SDE": ("dpmpp_2m_sde", "normal"),
    "DPM++ 2M SDE Karras": ("dpmpp_2m_sde", "karras"),
    "DPM++ 3M SDE": ("dpmpp_3m_sde", "normal"),
    "DPM++ 3M SDE Karras": ("dpmpp_3m_sde", "karras"),
    "DDIM": ("ddim", "ddim_uniform"),
    "UniPC": ("uni_pc", "normal"),
    "LCM": ("lcm", "normal"),
}

# Node ids of the shared part of every graph.
CHECKPOINT, POSITIVE, NEGATIVE, LATENT, INIT, MASK, MASKED = "ckpt", "pos", "neg", "latent", "init", "mask", "masked"


@dataclass(frozen=True)
class Uploaded:
    """Names of the job's pictures in the server's input folder."""

    init_image: str | None = None
    mask: str | None = None


@dataclass(frozen=True)
class BatchGraph:
    """One batch as a prompt: the graph, its sampler nodes with the steps each runs (progress
    is counted from them), and per image (in seed order) its output node."""

    graph: Graph
    samplers: dict[str, int]
    outputs: tuple[str, ...]


# The node classes whose /object_info a backend needs.
KNOWN_NODES = (
    "CheckpointLoaderSimple", "KSampler", "SaveImageWebsocket", "LoraLoader", "UpscaleModelLoader", "VAELoader",
)


@dataclass(frozen=True)
class Lora:
    """A LoRA file of the server, applied with these strengths (ComfyUI's LoraLoader)."""

    name: str  # as the server lists it, e.g. "styles/ink.safetensors"
    model_strength: float
    clip_strength: float


def _options(object_info: Mapping[str, Any], node: str, name: str) -> list[str]:
    """The choices a server offers for a combo input, or [] when it lacks the node.
    `object_info` maps node class names to their `/object_info/{class}` answers: the choices
    as the input's first entry, or (nodes of ComfyUI's newer schema, e.g. UpscaleModelLoader)
    `["COMBO", {"options": [...]}]`."""
    try:
        spec = object_info[node]["input"]["required"][name]
        choices = spec[1].get("options") if spec[0] == "COMBO" else spec[0]
    except (KeyError, IndexError, TypeError, AttributeError):
        return []
    return [str(o) for o in choices] if isinstance(choices, list) else []


def server_checkpoints(object_info: Mapping[str, Any]) -> list[str]:
    return _options(object_info, "CheckpointLoaderSimple", "ckpt_name")


def server_loras(object_info: Mapping[str, Any]) -> list[str]:
    return _options(object_info, "LoraLoader", "lora_name")


def server_upscalers(object_info: Mapping[str, Any]) -> list[str]:
    return _options(object_info, "UpscaleModelLoader", "model_name")


# VAELoader also offers these built-in decoders (tiny previews, Flux-style pixel space), not files.
_BUILTIN_VAES = {"pixel_space", "taesd", "taesdxl", "taesd3", "taef1"}


def server_vaes(object_info: Mapping[str, Any]) -> list[str]:
    """The server's VAE files (`models/vae`)."""
    return [n for n in _options(object_info, "VAELoader", "vae_name") if n not in _BUILTIN_VAES]


# The server's embedding names live beside its nodes' lists in one cached "server info".
EMBEDDINGS = "/embeddings"


def server_embeddings(info: Mapping[str, Any]) -> list[str]:
    return list(info.get(EMBEDDINGS, []))


def comfy_text(text: str, embeddings: Sequence[str]) -> str:
    """A prompt as ComfyUI reads it: without extra-network tags (ComfyUI would encode them as
    words), and each word that is an embedding's name written `embedding:name`, ComfyUI's
    syntax for what A1111 finds by the bare name. Names already so written stay as they are."""
    text = strip_tags(text)
    names = sorted({n for n in embeddings if n}, key=len, reverse=True)
    if not names:
        return text
    word = re.compile(r"(?<![\w:.-])(" + "|".join(map(re.escape, names)) + r")(?![\w.-])")
    return word.sub(lambda m: "embedding:" + m.group(1), text)


def used_embeddings(texts: Sequence[str], embeddings: Sequence[str]) -> list[str]:
    """The server's embeddings `texts` name, in the order met (as A1111's TI hashes list them)."""
    found: list[str] = []
    for text in texts:
        for match in re.finditer(r"embedding:([^\s,()\[\]]+)", comfy_text(text, embeddings)):
            if match.group(1) in embeddings and match.group(1) not in found:
                found.append(match.group(1))
    return found


def server_samplers(object_info: Mapping[str, Any]) -> list[str]:
    """The A1111 names whose ComfyUI sampler and scheduler the server has, in menu order."""
    samplers = set(_options(object_info, "KSampler", "sampler_name"))
    schedulers = set(_options(object_info, "KSampler", "scheduler"))
    return [name for name, (s, sch) in SAMPLERS.items() if s in samplers and sch in schedulers]


def _partial(steps: int, strength: float) -> tuple[int, float]:
    """(steps run, KSampler denoise) for the last `strength` part of a `steps` schedule, as A1111
    runs img2img: int(steps * strength) steps. KSampler runs `steps` of a schedule of
    int(steps / denoise), so denoise is that fraction, a hair lower so the division cannot fall
    below the whole schedule by rounding."""
    run = min(int(steps * strength), steps)
    return run, 1.0 if run == steps else run / steps - 1e-9


def sampler_plan(request: GenerationRequest) -> tuple[int, float]:
    """(steps each image's first sampler runs, its denoise)."""
    steps = request.sampling.steps
    return (steps, 1.0) if request.mode is Mode.TXT2IMG else _partial(steps, request.sampling.strength)


def hires_plan(request: GenerationRequest) -> tuple[int, float]:
    """(steps the hires pass runs, its denoise), as the local engine counts them."""
    hires = request.hires
    return _partial(hires.hires_steps or request.sampling.steps, hires.hires_denoise)


# A1111's hires upscalers as ComfyUI methods: latents (LatentUpscale) or pixels (ImageScale).
LATENT_METHODS = {"Latent": "bilinear", "Latent (nearest)": "nearest-exact", "Latent (bicubic)": "bicubic",
                  "Latent (antialiased)": "bislerp"}
PIXEL_METHODS = {"Lanczos": "lanczos", "Nearest": "nearest-exact"}


def batch_graph(
    request: GenerationRequest,
    checkpoint: str,
    seeds: Sequence[int],
    size: tuple[int, int],
    uploaded: Uploaded,
    websocket_output: bool = True,
    hires_size: tuple[int, int] | None = None,
    loras: Sequence[Lora] = (),
    embeddings: Sequence[str] = (),
    vae_name: str | None = None,
    hires_model: str | None = None,
) -> BatchGraph:
    """The graph of one batch of `request` (model defaults filled in, checked) at `size`, one
    image per seed, with a hires pass to `hires_size` when given. Final images go over the
    websocket (no file on the server) or, without that node, to the server's temp folder for
    `/history` + `/view`. `loras` chain LoraLoaders after the checkpoint; the prompts' own
    `<lora:…>` tags are left out of the text and the server's `embeddings` are named as ComfyUI
    names them (`comfy_text`). `vae_name`, a VAE file of the server, encodes and decodes
    instead of the checkpoint's own VAE; `hires_model`, an upscaler model of the server, is the
    hires upscaler `request` names."""
    sampling = request.sampling
    sampler_name, scheduler = SAMPLERS[sampling.sampler]
    clip, vae, model = [CHECKPOINT, 1], [CHECKPOINT, 2], [CHECKPOINT, 0]
    graph: Graph = {CHECKPOINT: {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}}}
    if vae_name is not None:
        graph["vae"] = {"class_type": "VAELoader", "inputs": {"vae_name": vae_name}}
        vae = ["vae", 0]
    for k, lora in enumerate(loras):
        graph[f"lora{k}"] = {"class_type": "LoraLoader", "inputs": {
            "model": model, "clip": clip, "lora_name": lora.name,
            "strength_model": lora.model_strength, "strength_clip": lora.clip_strength}}
        model, clip = [f"lora{k}", 0], [f"lora{k}", 1]
    for node, text in ((POSITIVE, request.prompt.prompt), (NEGATIVE, request.prompt.negative_prompt)):
        graph[node] = {"class_type": "CLIPTextEncode", "inputs": {"text": comfy_text(text, embeddings), "clip": clip}}
    latent: list[Any] = [LATENT, 0]
    steps, denoise = sampler_plan(request)
    if request.mode is Mode.TXT2IMG:
        graph[LATENT] = {"class_type": "EmptyLatentImage", "inputs": {"width": size[0], "height": size[1], "batch_size": 1}}
    else:
        graph[INIT] = {"class_type": "LoadImage", "inputs": {"image": uploaded.init_image}}
        graph[LATENT] = {"class_type": "VAEEncode", "inputs": {"pixels": [INIT, 0], "vae": vae}}
        if request.mode is Mode.INPAINT:
            graph[MASK] = {"class_type": "LoadImageMask", "inputs": {"image": uploaded.mask, "channel": "red"}}
            graph[MASKED] = {"class_type": "SetLatentNoiseMask", "inputs": {"samples": latent, "mask": [MASK, 0]}}
            latent = [MASKED, 0]
    samplers: dict[str, int] = {}
    outputs = []

    def ksampler(node: str, seed: int, latent: list[Any], steps: int, denoise: float) -> list[Any]:
        graph[node] = {
            "class_type": "KSampler",
            "inputs": {
                "model": model, "positive": [POSITIVE, 0], "negative": [NEGATIVE, 0], "latent_image": latent,
                "seed": seed, "steps": steps, "cfg": float(sampling.cfg_scale),
                "sampler_name": sampler_name, "scheduler": scheduler, "denoise": denoise,
            },
        }
        samplers[node] = steps
        return [node, 0]

    for k, seed in enumerate(seeds):
        decode, save = f"decode{k}", f"save{k}"
        result = ksampler(f"sample{k}", seed, latent, steps, denoise)
        if hires_size is not None:
            result = _hires_pass(graph, request, k, result, hires_size, vae, hires_model)
            result = ksampler(f"hires{k}", seed, result, *hires_plan(request))
        graph[decode] = {"class_type": "VAEDecode", "inputs": {"samples": result, "vae": vae}}
        graph[save] = _output([decode, 0], websocket_output)
        outputs.append(save)
    return BatchGraph(graph, samplers, tuple(outputs))


def _hires_pass(
    graph: Graph, request: GenerationRequest, k: int, latent: list[Any], size: tuple[int, int], vae: list[Any],
    model: str | None,
) -> list[Any]:
    """Image k's first-pass latent enlarged to `size`: the latents themselves, or the decoded
    picture enlarged (by the upscaler `model`, then Lanczos to the exact size, as an upscale job
    runs it) and encoded again (the second sampler starts from the result)."""
    upscaler = request.hires.hires_upscaler
    width, height = size
    if upscaler in LATENT_METHODS:
        graph[f"enlarge{k}"] = {"class_type": "LatentUpscale", "inputs": {
            "samples": latent, "upscale_method": LATENT_METHODS[upscaler], "width": width, "height": height,
            "crop": "disabled"}}
        return [f"enlarge{k}", 0]
    graph[f"first{k}"] = {"class_type": "VAEDecode", "inputs": {"samples": latent, "vae": vae}}
    pixels: list[Any] = [f"first{k}", 0]
    if model is not None:
        graph["hires_upscaler"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": model}}
        graph[f"by_model{k}"] = {"class_type": "ImageUpscaleWithModel",
                                 "inputs": {"upscale_model": ["hires_upscaler", 0], "image": pixels}}
        pixels = [f"by_model{k}", 0]
    graph[f"enlarge{k}"] = {"class_type": "ImageScale", "inputs": {
        "image": pixels, "upscale_method": PIXEL_METHODS.get(upscaler, "lanczos"), "width": width, "height": height,
        "crop": "disabled"}}
    graph[f"encode{k}"] = {"class_type": "VAEEncode", "inputs": {"pixels": [f"enlarge{k}", 0], "vae": vae}}
    return [f"encode{k}", 0]


def _output(images: list[Any], websocket_output: bool) -> dict[str, Any]:
    """The node that hands a final picture back: over the websocket, or by the temp folder."""
    return {"class_type": "SaveImageWebsocket" if websocket_output else "PreviewImage", "inputs": {"images": images}}


def upscale_graph(image: str, size: tuple[int, int], model: str | None, websocket_output: bool = True) -> BatchGraph:
    """The uploaded picture `image` at `size`: through the server's upscaler `model` (one pass
    at the model's own scale, as ComfyUI runs it, tile by tile), then Lanczos to the exact size;
    Lanczos alone without a model. The model's tiles report progress, counted as one step."""
    graph: Graph = {"picture": {"class_type": "LoadImage", "inputs": {"image": image}}}
    pixels: list[Any] = ["picture", 0]
    samplers: dict[str, int] = {}
    if model is not None:
        graph["upscaler"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": model}}
        graph["enlarge"] = {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["upscaler", 0], "image": pixels}}
        pixels, samplers = ["enlarge", 0], {"enlarge": 1}
    graph["fit"] = {"class_type": "ImageScale", "inputs": {
        "image": pixels, "upscale_method": "lanczos", "width": size[0], "height": size[1], "crop": "disabled"}}
    graph["save"] = _output(["fit", 0], websocket_output)
    return BatchGraph(graph, samplers, ("save",))
