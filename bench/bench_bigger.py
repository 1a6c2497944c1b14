"""Bigger pictures (issue 14): what a hires fix costs, and the memory of large pictures.

Prints, beside their goals:
- a hires-fix job (txt2img, Lanczos ×2, img2img at denoise 0.5) on the engine / the same two
  passes run by hand with plain diffusers pipelines (median of interleaved repeats; goal <= 1.05);
- peak RSS of a 2× hires job from 512x512 on the tiny model (its own process);
- peak RSS of a ×4 upscale of a 1024x1024 picture by an upscaler model, tiled and whole, and as
  the window runs it (an upscale job on the engine, the picture sent as PNG bytes), each in its
  own process: tiling keeps the peak near the model plus the 4096x4096 result.

Run by `make bench`; takes a few minutes on a laptop CPU.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from measure import rss_mib  # noqa: E402  (bench/measure.py, beside this script)

SIZE = 256
STEPS = 10
DENOISE = 0.5
REPEATS = 5
PROMPT = "a lighthouse on a cliff at dusk"
COST_GOAL = 1.05
UPSCALE_HEADROOM_MIB = 256  # tiled: at most this above the loaded model plus the result


def hires_request(folder: Path, size: int, seed: int):
    from sdstudio.engine.request import GenerationRequest, ModelRef

    return GenerationRequest.create(
        model=ModelRef(str(folder), device="cpu", dtype="float32"), prompt=PROMPT, steps=STEPS, width=size,
        height=size, seed=seed, sampler="Euler", cfg_scale=7.0, hires_scale=2.0, hires_upscaler="Lanczos",
        hires_steps=STEPS, hires_denoise=DENOISE,
    )


def engine_call(engine, folder: Path):
    from sdstudio.engine.events import Finished

    def call(seed: int) -> float:
        events: list = []
        start = time.perf_counter()
        engine.submit(hires_request(folder, SIZE, seed), events.append).wait()
        elapsed = time.perf_counter() - start
        assert isinstance(events[-1], Finished), events[-1]
        return elapsed

    return call


def by_hand_call(folder: Path):
    """The two passes a person would run: txt2img, Lanczos ×2, img2img on the result."""
    import numpy as np
    import torch
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionImg2ImgPipeline,
        StableDiffusionPipeline,
    )
    from PIL import Image

    first = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    first.scheduler = EulerDiscreteScheduler.from_config(first.scheduler.config)
    second = StableDiffusionImg2ImgPipeline.from_pipe(first)
    second.scheduler = EulerDiscreteScheduler.from_config(first.scheduler.config)
    for pipe in (first, second):
        pipe.set_progress_bar_config(disable=True)

    def call(seed: int) -> float:
        start = time.perf_counter()
        generator = torch.Generator("cpu").manual_seed(seed)
        pixels = first(PROMPT, num_inference_steps=STEPS, height=SIZE, width=SIZE, guidance_scale=7.0,
                       generator=generator, output_type="np").images[0]
        picture = Image.fromarray((pixels * 255).round().astype(np.uint8)).resize((2 * SIZE, 2 * SIZE), Image.LANCZOS)
        second(PROMPT, image=picture, strength=DENOISE, num_inference_steps=STEPS, guidance_scale=7.0,
               generator=generator).images[0].load()
        return time.perf_counter() - start

    return call


def cost(folder: Path) -> None:
    import torch

    from sdstudio.engine.runner import Engine

    engine = Engine(device="cpu")
    try:
        calls = {"engine": engine_call(engine, folder), "by hand": by_hand_call(folder)}
        for call in calls.values():
            call(0)  # warm: model load, first-call allocations
        times: dict[str, list[float]] = {name: [] for name in calls}
        for seed in range(1, REPEATS + 1):
            for name, call in calls.items():
                times[name].append(call(seed))
    finally:
        engine.shutdown()
    engine_s, hand_s = statistics.median(times["engine"]), statistics.median(times["by hand"])
    print(f"hires fix, tiny SD1, {SIZE}x{SIZE} -> {2 * SIZE}x{2 * SIZE}, {STEPS}+{STEPS} steps at denoise "
          f"{DENOISE}, Lanczos, CPU ({torch.get_num_threads()} threads), median of {REPEATS}")
    print(f"  two passes by hand     {hand_s * 1000:9.1f} ms")
    print(f"  one hires job          {engine_s * 1000:9.1f} ms")
    ratio = engine_s / hand_s
    print(f"  ratio job / by hand    {ratio:9.3f}   (goal <= {COST_GOAL}: {'met' if ratio <= COST_GOAL else 'NOT met'})")


# ---- memory, each figure in its own process ------------------------------------------------


def child_hires(folder: str) -> dict:
    from sdstudio.engine.events import Finished
    from sdstudio.engine.runner import Engine

    engine = Engine(device="cpu")
    events: list = []
    engine.load_model(hires_request(Path(folder), 512, 1).model, events.append).wait()
    loaded = _loaded_mib()
    engine.submit(hires_request(Path(folder), 512, 1), events.append).wait()
    engine.shutdown()
    assert isinstance(events[-1], Finished), events[-1]
    return {"loaded": loaded, "peak": _peak_mib(), "size": list(events[-1].results[0].image.size)}


def child_upscale(folder: str, tile: str) -> dict:
    from PIL import Image

    from sdstudio.engine.upscalers import load_upscaler, upscale

    model = load_upscaler("bench-x4.safetensors", folder=Path(folder))
    image = Image.effect_noise((1024, 1024), 64).convert("RGB")
    loaded = _loaded_mib()
    start = time.perf_counter()
    result = upscale(image, (4096, 4096), _Tiled(model, int(tile)))
    return {"loaded": loaded, "peak": _peak_mib(), "size": list(result.size), "s": time.perf_counter() - start}


def child_upscale_job(folder: str) -> dict:
    """The window's path: `Backend.upscale` on the local engine, from PNG bytes to the result."""
    import os

    from PIL import Image

    from sdstudio.engine.backend import Upscale, local_backend
    from sdstudio.engine.events import Finished
    from sdstudio.engine.request import GenerationRequest, ImageData
    from sdstudio.engine.upscalers import FOLDER_ENV

    os.environ[FOLDER_ENV] = folder
    engine = local_backend("cpu", "float32")
    picture = ImageData.from_pil(Image.effect_noise((1024, 1024), 64).convert("RGB"))
    events: list = []
    warm = Upscale(ImageData.from_pil(Image.new("RGB", (16, 16))), 4.0, "bench-x4.safetensors", GenerationRequest())
    engine.upscale(warm, events.append).wait()  # torch and spandrel imported, as in a running window
    loaded = _loaded_mib()
    start = time.perf_counter()
    engine.upscale(Upscale(picture, 4.0, "bench-x4.safetensors", GenerationRequest()), events.append).wait()
    elapsed = time.perf_counter() - start
    engine.shutdown()
    assert isinstance(events[-1], Finished), events[-1]
    return {"loaded": loaded, "peak": _peak_mib(), "size": list(events[-1].results[0].image.size), "s": elapsed}


class _Tiled:
    """The model with a chosen tile size, as `upscale` calls it."""

    def __init__(self, model, tile: int) -> None:
        self.model, self.tile, self.scale = model, tile, model.scale

    def __call__(self, image, on_tile=None):
        return self.model(image, tile=self.tile, on_tile=on_tile)


def _loaded_mib() -> float:
    """The resident memory now, with the peak counter restarted from it (Linux): the peak that
    follows is the job's, not the imports' (ru_maxrss would even carry the parent's over exec)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return rss_mib()


def _peak_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def in_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def save_bench_upscaler(folder: Path) -> None:
    """A Real-ESRGAN Compact ×4 (the realesr-general-x4v3 layout, slimmed to 32 features and 8
    convolutions so a CPU runs 1024x1024 in seconds), random weights."""
    import torch
    from safetensors.torch import save_file

    from sdstudio.engine.upscalers import _spandrel

    _spandrel()
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    net = Compact(num_feat=32, num_conv=8, upscale=4)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "bench-x4.safetensors"))


def memory(folder: Path, work: Path) -> None:
    from sdstudio.engine.request import BUILTIN_MODEL

    for label, model in (("tiny SD1", str(folder)), ("the built-in model", BUILTIN_MODEL)):
        hires = in_child("hires", model)
        print(f"peak RSS, 2x hires 512x512 -> {hires['size'][0]}x{hires['size'][1]}, {label}, CPU fp32")
        print(f"  model loaded {hires['loaded']:8.1f} MiB, peak {hires['peak']:8.1f} MiB "
              f"(+{hires['peak'] - hires['loaded']:.1f} MiB for the job)")
    save_bench_upscaler(work)
    result_mib = 4096 * 4096 * 3 / 2**20
    print(f"peak RSS, x4 upscale 1024x1024 -> 4096x4096 (result alone {result_mib:.0f} MiB), Compact x4, CPU fp32")
    for tile in (256, 4096):
        run = in_child("upscale", str(work), str(tile))
        added = run["peak"] - run["loaded"]
        label = f"tiles of {tile}" if tile < 1024 else "whole picture"
        goal = (f"   (goal <= result + {UPSCALE_HEADROOM_MIB}: {'met' if added <= result_mib + UPSCALE_HEADROOM_MIB else 'NOT met'})"
                if tile < 1024 else "")
        print(f"  {label:14s} peak {run['peak']:8.1f} MiB (+{added:7.1f} MiB over the loaded model), "
              f"{run['s']:.1f} s{goal}")
    job = in_child("upscale_job", str(work))
    added = job["peak"] - job["loaded"]
    met = "met" if added <= result_mib + UPSCALE_HEADROOM_MIB else "NOT met"
    print(f"  {'upscale job':14s} peak {job['peak']:8.1f} MiB (+{added:7.1f} MiB over the idle engine), "
          f"{job['s']:.1f} s   (goal, bounded by tiling: <= result + {UPSCALE_HEADROOM_MIB}: {met})")


def main() -> None:
    from tools.tiny_models import save_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        folder = save_tiny_model(Path(tmp) / "tiny-sd1", "sd1")
        cost(folder)
        memory(folder, Path(tmp))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        kind, *rest = sys.argv[2:]
        children = {"hires": child_hires, "upscale": child_upscale, "upscale_job": child_upscale_job}
        print(json.dumps(children[kind](*rest)))
    else:
        main()
