"""The built-in model's speed: one 128x128 image in 20 steps on this CPU (goal < 1 s).

Measured twice side by side: the plain diffusers pipeline call, and a job through the app's
Engine (with a live preview every step). Median of 5 after one warm-up.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPT = "a red circle on a blue background"
REPEATS = 5


def main() -> None:
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    from sdstudio.engine.models import builtin_model_path
    from sdstudio.engine.request import BUILTIN_MODEL, GenerationRequest, ModelRef
    from sdstudio.engine.runner import Engine

    folder = builtin_model_path()
    if not (folder / "model_index.json").exists():
        print(f"built-in model missing at {folder}; run `make train-builtin`")
        return
    pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)

    def plain() -> None:
        pipe(PROMPT, height=128, width=128, num_inference_steps=20, guidance_scale=5.0,
             generator=torch.Generator().manual_seed(1))

    engine = Engine()
    request = GenerationRequest.create(prompt=PROMPT, width=128, height=128, steps=20, cfg_scale=5.0,
                                seed=1, sampler="Euler", model=ModelRef(BUILTIN_MODEL))

    def through_engine() -> None:
        engine.submit(request, lambda _event: None).wait()

    timings: dict[str, list[float]] = {"plain": [], "engine": []}
    plain()
    through_engine()
    for _ in range(REPEATS):
        for name, fn in (("plain", plain), ("engine", through_engine)):
            start = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - start)
    engine.shutdown()
    for name, values in timings.items():
        print(f"128x128, 20 steps, CFG 5, {name:6s}: median {statistics.median(values) * 1000:6.0f} ms"
              f"  (min {min(values) * 1000:.0f} ms; goal < 1000 ms)")


if __name__ == "__main__":
    main()
