"""Live preview colours on the built-in model: how far the last preview of a run is from the
final image, for each way of making previews, and what a preview costs against a step.

Paths: "table" (the published SD1.x table, what a standard VAE gets), "fitted" (the linear
map fitted to this VAE), "decoder" (the real decoder every step) and "chosen" (what the app
uses: `preview_for`, the decoder within PREVIEW_BUDGET of the step time). Colour error: mean
absolute RGB difference (0..255) at the preview's resolution, over a few prompts and seeds.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPTS = (
    "a red circle on a blue background",
    "a green square on a white background",
    "a yellow triangle on a black background",
    "a purple circle on an orange background",
)
SEEDS = (1, 2)
STEPS = 20


def colour_error(preview, final) -> float:
    import numpy as np
    from PIL import Image

    small = final.resize(preview.size, Image.Resampling.BOX)
    return float(np.abs(np.asarray(preview, float) - np.asarray(small, float)).mean())


def main() -> None:
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    from sdstudio.engine.models import builtin_model_path
    from sdstudio.engine.preview import (
        PREVIEW_BUDGET,
        SD15_BIAS,
        SD15_FACTORS,
        LatentPreview,
        X0Capture,
        fit_latent_rgb,
        preview_for,
    )

    folder = builtin_model_path()
    if not (folder / "model_index.json").exists():
        print(f"built-in model missing at {folder}")
        return
    pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    fit = fit_latent_rgb(pipe.vae)
    chosen = preview_for(pipe.vae)
    fixed = {
        "table": LatentPreview(torch.tensor(SD15_FACTORS), torch.tensor(SD15_BIAS), "table"),
        "fitted": LatentPreview(fit.factors, fit.bias, "fitted"),
    }
    errors: dict[str, list[float]] = {name: [] for name in (*fixed, "decoder", "chosen")}
    cost: dict[str, list[float]] = {name: [] for name in (*fixed, "decoder")}
    steps: list[float] = []
    shown_steps: list[int] = []

    def run(prompt: str, seed: int, preview) -> object:
        """One generation calling `preview(x0)` after each step; returns the final image."""
        capture = X0Capture(pipe.scheduler)
        clock = {"t": time.perf_counter()}

        def on_step(_pipe, _i, _t, tensors):
            steps.append(time.perf_counter() - clock["t"])
            preview(capture.latest(tensors["latents"]))
            clock["t"] = time.perf_counter()
            return {}

        with torch.inference_mode():
            return pipe(prompt, height=128, width=128, num_inference_steps=STEPS, guidance_scale=5.0,
                        generator=torch.Generator().manual_seed(seed), callback_on_step_end=on_step).images[0]

    for prompt in PROMPTS:
        for seed in SEEDS:
            last: dict[str, object] = {}

            def every_path(x0, last=last) -> None:
                for name, previewer in fixed.items():
                    start = time.perf_counter()
                    last[name] = previewer.image(x0)
                    cost[name].append(time.perf_counter() - start)
                start = time.perf_counter()
                last["decoder"] = chosen._decode(x0) if hasattr(chosen, "_decode") else None
                cost["decoder"].append(time.perf_counter() - start)

            shown = []

            def as_the_app(x0, last=last, shown=shown) -> None:
                # A run of its own: the budget is earned from step time alone, as in the app.
                picture = chosen.image(x0)
                if picture is not None:
                    last["chosen"] = picture
                    shown.append(picture)

            final = run(prompt, seed, every_path)
            assert run(prompt, seed, as_the_app).tobytes() == final.tobytes()
            for name, picture in last.items():
                if picture is not None:
                    errors[name].append(colour_error(picture, final))
            shown_steps.append(len(shown))

    step_ms = statistics.median(steps) * 1000
    print(f"built-in model, {len(PROMPTS) * len(SEEDS)} runs of {STEPS} steps at 128x128; "
          f"median step {step_ms:.1f} ms; fitted map R^2 {fit.r2:.2f}; app path: {chosen.source}")
    print(f"{'path':<8} {'last-preview colour error':>26} {'preview ms':>11} {'% of a step':>12}")
    for name, values in errors.items():
        if not values:
            continue
        ms = statistics.median(cost[name]) * 1000 if name in cost else float("nan")
        share = f"{ms / step_ms * 100:.1f}" if name in cost else "-"
        print(f"{name:<8} {statistics.mean(values):>26.1f} {ms:>11.2f} {share:>12}")
    print(f"chosen: a preview on {statistics.mean(shown_steps):.1f} of {STEPS} steps "
          f"(decoder within {PREVIEW_BUDGET:.0%} of the step time)")


if __name__ == "__main__":
    main()
