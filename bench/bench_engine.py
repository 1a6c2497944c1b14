"""Engine overhead, preview cost and mode switching, measured side by side on one tiny model.

Prints:
- engine wall time / plain diffusers pipeline call, same model, size, steps, sampler and seed
  (median of interleaved repeats; goal <= 1.03 with a preview every step);
- preview ms per step against step ms (goal < 2%), and the preview alone at real SD latent sizes;
- mode-switch time (txt2img -> img2img -> inpaint pipelines) and the RSS growth it causes.

Run by `make bench`; takes about a minute on a laptop CPU.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from measure import rss_mib  # noqa: E402  (bench/measure.py, beside this script)

SIZE = 256
STEPS = 20
REPEATS = 9
SAMPLER = "Euler"
PROMPT = "a lighthouse on a cliff at dusk"



def plain_call(folder: Path):
    """A plain diffusers pipeline, loaded and called the documented way."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)

    def call(seed: int) -> float:
        start = time.perf_counter()
        pipe(PROMPT, num_inference_steps=STEPS, height=SIZE, width=SIZE, guidance_scale=7.0,
             generator=torch.Generator("cpu").manual_seed(seed))
        return time.perf_counter() - start

    return call


def timing_pipeline_calls(pipe, durations: list[float]) -> None:
    """Record how long each call of `pipe` takes, to split the engine's own cost (everything
    outside the pipeline call) from the pipeline's."""
    import functools

    cls = type(pipe)
    original = cls.__call__

    @functools.wraps(original)
    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            if self is pipe:
                durations.append(time.perf_counter() - start)

    cls.__call__ = timed


def engine_call(engine, folder: Path, step_gaps: list[float]):
    from sdstudio.engine.events import Finished, Step
    from sdstudio.engine.request import GenerationRequest, ModelRef

    def call(seed: int) -> float:
        request = GenerationRequest.create(prompt=PROMPT, steps=STEPS, width=SIZE, height=SIZE, seed=seed,
                                    sampler=SAMPLER, cfg_scale=7.0, model=ModelRef(str(folder)))
        stamps: list[float] = []
        events: list = []
        start = time.perf_counter()
        job = engine.submit(request, lambda e: (events.append(e), isinstance(e, Step) and stamps.append(time.perf_counter())))
        job.wait()
        elapsed = time.perf_counter() - start
        assert isinstance(events[-1], Finished), events[-1]
        step_gaps.extend(b - a for a, b in zip(stamps, stamps[1:], strict=False))
        return elapsed

    return call


def main() -> None:
    import torch

    from sdstudio.engine.models import load_model
    from sdstudio.engine.preview import SD15_FACTORS, LatentPreview
    from sdstudio.engine.request import Mode, ModelRef
    from sdstudio.engine.runner import Engine
    from tools.tiny_models import save_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        folder = save_tiny_model(Path(tmp) / "tiny-sd1", "sd1")
        plain = plain_call(folder)
        engine = Engine(device="cpu")
        step_gaps: list[float] = []
        run_engine = engine_call(engine, folder, step_gaps)
        run_engine(0)  # load the model and warm up both paths
        plain(0)
        preview_times: list[float] = []
        previewer = engine._previewer
        original_image = previewer.image

        def timed_image(latents):
            start = time.perf_counter()
            image = original_image(latents)
            preview_times.append(time.perf_counter() - start)
            return image

        previewer.image = timed_image
        plain_times, engine_times, inside = [], [], []
        for seed in range(1, REPEATS + 1):  # interleaved, so load on the shared CPU hits both alike
            plain_times.append(plain(seed))
            inside_before = len(inside)
            if seed == 1:
                timing_pipeline_calls(engine._model.pipeline(Mode.TXT2IMG), inside)
            engine_times.append(run_engine(seed))
            assert len(inside) == inside_before + 1
        engine.shutdown()
        outside = [total - pipe for total, pipe in zip(engine_times, inside, strict=True)]

        plain_s, engine_s = statistics.median(plain_times), statistics.median(engine_times)
        step_ms = statistics.median(step_gaps) * 1000
        preview_ms = statistics.median(preview_times) * 1000
        print(f"tiny SD1, {SIZE}x{SIZE}, {STEPS} steps, {SAMPLER}, CFG 7, CPU ({torch.get_num_threads()} threads), "
              f"median of {REPEATS}")
        print(f"  plain diffusers call     {plain_s * 1000:8.1f} ms")
        print(f"  engine (preview/step)    {engine_s * 1000:8.1f} ms")
        print(f"  ratio engine / plain     {engine_s / plain_s:8.3f}   (goal <= 1.03; best of each: "
              f"{min(engine_times) / min(plain_times):.3f})")
        added = statistics.median(outside) * 1000 + preview_ms * STEPS
        print(f"  engine's own cost        {added:8.1f} ms = {100 * added / (plain_s * 1000):.2f}% of the plain call "
              f"(outside the pipeline call {statistics.median(outside) * 1000:.1f} ms + previews)")
        print(f"  step                     {step_ms:8.2f} ms")
        print(f"  preview per step         {preview_ms:8.3f} ms = {100 * preview_ms / step_ms:.2f}% of a step "
              f"(goal < 2%)")

        table = LatentPreview(torch.tensor(SD15_FACTORS), torch.zeros(3), "table")
        for latent in (64, 128):
            latents = torch.randn(1, 4, latent, latent)
            table.image(latents)
            start = time.perf_counter()
            for _ in range(50):
                table.image(latents)
            per = (time.perf_counter() - start) / 50 * 1000
            print(f"  preview alone, {latent * 8}x{latent * 8} image ({latent}x{latent} latent)  {per:6.3f} ms")

        model = load_model(ModelRef(str(folder), device="cpu"))
        model.pipeline(Mode.TXT2IMG)
        before = rss_mib()
        print(f"mode switch (pipelines sharing one model), RSS before {before:.1f} MiB")
        for mode in (Mode.IMG2IMG, Mode.INPAINT):
            start = time.perf_counter()
            pipe = model.pipeline(mode)
            elapsed = (time.perf_counter() - start) * 1000
            shared = pipe.unet is model.unet and pipe.vae is model.vae and pipe.text_encoder is model.base.text_encoder
            print(f"  -> {mode.value:8s} {elapsed:7.1f} ms, RSS {rss_mib() - before:+6.1f} MiB, "
                  f"weights shared: {shared}")
        start = time.perf_counter()
        for mode in (Mode.TXT2IMG, Mode.IMG2IMG, Mode.INPAINT):
            model.pipeline(mode)
        print(f"  switching again (cached) {(time.perf_counter() - start) * 1000:7.3f} ms for 3 switches, "
              f"RSS {rss_mib() - before:+6.1f} MiB in all")


if __name__ == "__main__":
    main()
