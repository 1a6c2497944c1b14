"""LoRA switch time in the local engine: a LoRA's first load against switching to one that is
already loaded (cached adapters), and turning LoRAs off for a plain job.

What a job pays before its first step (`loras.apply_loras`), on:
- the tiny test model with rank-4 LoRAs, and
- an SD1.5-shaped model (the shipped UNet and text-encoder configs, weights left uninitialised:
  loading a LoRA does not depend on them) with rank-16 kohya LoRAs of every attention and
  feed-forward layer (fp16 files, ~19 MB each, like common civitai LoRAs).

Goals: switching between loaded LoRAs, or off, under 0.1 s (it runs once per job, a 512x512
SD1.5 step costs ~0.05 s on a GPU and seconds on a CPU); a first load under 2 s for a
rank-16 file. Run by `make bench`; about a minute on a laptop CPU.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPEATS = 5
CACHED_GOAL_S = 0.1
FIRST_LOAD_GOAL_S = 2.0


def _sd15_pipe():
    """An SD1.5-shaped pipeline without initialising the 1 B weights (seconds instead of a minute)."""
    import torch
    from accelerate import init_empty_weights
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from sdstudio.resources import config_root
    from tools.tiny_models import _scheduler, _vae

    config = config_root() / "sd15"
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config / "unet"))
        text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(config / "text_encoder"))
    unet, text_encoder = unet.to_empty(device="cpu"), text_encoder.to_empty(device="cpu")
    for module in (unet, text_encoder):
        for parameter in module.parameters():
            torch.nn.init.zeros_(parameter)  # no NaN garbage
    return StableDiffusionPipeline(
        unet=unet, text_encoder=text_encoder, tokenizer=CLIPTokenizer.from_pretrained(config / "tokenizer"),
        vae=_vae(), scheduler=_scheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )


def _tiny_pipe():
    from diffusers import StableDiffusionPipeline

    from tools.tiny_models import tiny_sd1_components

    return StableDiffusionPipeline(**tiny_sd1_components(), requires_safety_checker=False)


def measure(label: str, pipe, rank: int, folder: Path) -> None:
    import torch

    from sdstudio.engine.loras import apply_loras
    from sdstudio.engine.models import LoadedModel
    from sdstudio.engine.request import Family, GenerationRequest, ModelInfo
    from tools.tiny_lora import save_kohya_lora

    for name, seed in (("a", 0), ("b", 1)):
        path = save_kohya_lora(folder / f"{label}_{name}.safetensors", pipe, rank=rank, seed=seed, dtype=torch.float16)
    size_mb = path.stat().st_size / 1e6
    info = ModelInfo(label, Family.SD1, False, "cpu", "float32", label)
    model = LoadedModel(info=info, device=torch.device("cpu"), dtype=torch.float32, base=pipe)

    def switch(prompt: str) -> float:
        start = time.perf_counter()
        apply_loras(model, pipe, GenerationRequest.create(prompt=prompt), folder)
        return time.perf_counter() - start

    first = [switch(f"x <lora:{label}_a:1>"), switch(f"x <lora:{label}_b:1>")]
    cached, off = [], []
    for _ in range(REPEATS):
        cached += [switch(f"x <lora:{label}_a:1>"), switch(f"x <lora:{label}_b:0.7>")]
        off.append(switch("x"))
    both = statistics.median(switch(f"x <lora:{label}_a:1> <lora:{label}_b:0.5>") for _ in range(REPEATS))
    adapter = next(iter(model.loras.loaded))
    layers = sum(1 for key in model.base.unet.state_dict() if key.endswith(f".lora_A.{adapter}.weight"))
    print(f"{label}: rank {rank}, {size_mb:.1f} MB per file, {layers} UNet layers patched")
    print(f"  first load          {max(first):7.3f} s  (goal < {FIRST_LOAD_GOAL_S} s)")
    print(f"  switch, cached      {statistics.median(cached):7.3f} s  (goal < {CACHED_GOAL_S} s)")
    print(f"  two LoRAs, cached   {both:7.3f} s")
    print(f"  off (plain job)     {statistics.median(off):7.3f} s  (goal < {CACHED_GOAL_S} s)")


def main() -> None:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # the app turns it off when it loads a model
    with tempfile.TemporaryDirectory() as tmp:
        measure("tiny", _tiny_pipe(), 4, Path(tmp))
        start = time.perf_counter()
        pipe = _sd15_pipe()
        print(f"(SD1.5-shaped model built in {time.perf_counter() - start:.1f} s)")
        measure("sd15", pipe, 16, Path(tmp))


if __name__ == "__main__":
    main()
