"""Random LoRAs in kohya's key layout (what A1111, civitai and sd-scripts use), made in code for
a pipeline's own UNet and text encoders, for tests and benchmarks.

A kohya LoRA names each patched layer by its module path with "_" for "." and a prefix per
model part (`lora_unet_`, `lora_te_` for SD1/SD2's text encoder, `lora_te1_`/`lora_te2_` for
SDXL's two), and stores `.lora_down.weight` (rank x in), `.lora_up.weight` (out x rank) and
`.alpha` (the forward pass scales by alpha / rank).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The layers kohya's sd-scripts trains by default: attention projections and feed-forwards.
UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2")
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def kohya_lora(pipe: Any, rank: int = 4, seed: int = 0, scale: float = 0.5, parts: tuple[str, ...] = ("unet", "te"),
               dtype: Any = None) -> dict[str, Any]:
    """A random LoRA for `pipe`'s UNet ("unet") and text encoder(s) ("te"), as a kohya state dict.
    `scale` sizes the up weights so the LoRA visibly changes a tiny model's picture."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    modules: list[tuple[str, Any, tuple[str, ...]]] = []
    if "unet" in parts:
        modules.append(("lora_unet_", pipe.unet, UNET_TARGETS))
    if "te" in parts:
        encoders = [e for e in (pipe.text_encoder, getattr(pipe, "text_encoder_2", None)) if e is not None]
        prefixes = ("lora_te1_", "lora_te2_") if len(encoders) == 2 else ("lora_te_",)
        modules += [(prefix, encoder, TEXT_TARGETS) for prefix, encoder in zip(prefixes, encoders, strict=True)]
    state: dict[str, Any] = {}
    for prefix, model, targets in modules:
        for path, layer in model.named_modules():
            if not path.endswith(targets) or not isinstance(layer, torch.nn.Linear | torch.nn.Conv2d):
                continue
            key = prefix + path.replace(".", "_")
            out_features, in_features = layer.weight.shape[:2]
            kernel = tuple(layer.weight.shape[2:])  # proj_in/proj_out are 1x1 convolutions in SD1
            down = torch.randn((rank, in_features, *kernel), generator=generator) / in_features**0.5
            up = torch.randn((out_features, rank, *((1,) * len(kernel))), generator=generator) * scale
            state[key + ".lora_down.weight"] = down.to(dtype or torch.float32)
            state[key + ".lora_up.weight"] = up.to(dtype or torch.float32)
            state[key + ".alpha"] = torch.tensor(float(rank))
    return state


def save_kohya_lora(path: Path, pipe: Any, **options: Any) -> Path:
    """`kohya_lora(pipe, **options)` written as a `.safetensors` file at `path`."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(kohya_lora(pipe, **options), str(path), metadata={"ss_network_module": "networks.lora"})
    return path
