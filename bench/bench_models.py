"""Model loading and mode switching: times, and proof that switching copies no weights.

Prints, for a small random-weight SD1.x model (UNet large enough that a copy would show in RSS):
load time from a diffusers folder and from an LDM single-file checkpoint, the time to build each
mode's pipeline the first time and to switch once cached, and the RSS growth all switching
caused next to the model's weight size (goal: growth ~0, far below one copy of the weights).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from measure import rss_mib  # noqa: E402  (bench/measure.py, beside this script)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")



def small_sd1(folder: Path) -> Path:
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    from tools.tiny_models import tiny_sd1_components

    components = tiny_sd1_components()
    torch.manual_seed(0)
    components["unet"] = UNet2DConditionModel(
        block_out_channels=(128, 256, 512), layers_per_block=2, sample_size=8, cross_attention_dim=32,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    )
    StableDiffusionPipeline(**components, requires_safety_checker=False).save_pretrained(folder)
    return folder


def main() -> None:
    from sdstudio.engine.models import load_model
    from sdstudio.engine.request import Mode, ModelRef
    from tools.ldm_checkpoint import write_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = small_sd1(tmp / "small-sd1")
        (tmp / "configs").mkdir()
        checkpoint = write_checkpoint(folder, tmp / "small-sd1.safetensors", tmp / "configs" / "sd15")

        start = time.perf_counter()
        from_file = load_model(ModelRef(str(checkpoint)), config_root=tmp / "configs")
        file_s = time.perf_counter() - start
        del from_file

        start = time.perf_counter()
        model = load_model(ModelRef(str(folder)))
        folder_s = time.perf_counter() - start
        weights_mb = sum(p.numel() * p.element_size() for name in ("unet", "vae", "text_encoder")
                         for p in getattr(model.base, name).parameters()) / 2**20
        pointers = [p.data_ptr() for p in model.unet.parameters()]

        rss_before = rss_mib()
        first_ms = {}
        for mode in Mode:
            start = time.perf_counter()
            model.pipeline(mode)
            first_ms[mode] = (time.perf_counter() - start) * 1000
        switches = 300
        start = time.perf_counter()
        for k in range(switches):
            model.pipeline(list(Mode)[k % 3])
        switch_us = (time.perf_counter() - start) / switches * 1e6
        growth = rss_mib() - rss_before
        same = pointers == [p.data_ptr() for p in model.unet.parameters()]

    print(f"load small SD1 ({weights_mb:.0f} MB of weights): folder {folder_s:.2f} s, "
          f"single-file .safetensors {file_s:.2f} s")
    print("first use of a mode (from_pipe): " + ", ".join(f"{m.value} {v:.1f} ms" for m, v in first_ms.items()))
    print(f"switch between cached modes: {switch_us:.1f} us per switch ({switches} switches)")
    print(f"RSS growth from building 3 modes + switching: {growth:+.1f} MB "
          f"(one copy of the weights would be {weights_mb:.0f} MB)   goal ~0")
    print(f"UNet parameters kept their storage: {same}")


if __name__ == "__main__":
    main()
