"""Evaluate the built-in model the way a person would use it, through the app's own engine.

    python -m tools.builtin_model.evaluate [--model sdstudio/resources/models/builtin] [--seeds 2] [--limit N]

Prompts name (colour, shape, background) triples that were held out of training. Reports:
- colour: the prompted colour is the dominant colour apart from the picture's background
  (the colour of its border);
- background: that border colour is the prompted background colour;
- shape: the template matcher (judge.py) recognises the prompted shape;
- the same at CFG 1 (no guidance), which should score clearly lower;
- inpaint: a masked shape is replaced by the prompted colour, pixels outside stay unchanged.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sdstudio.engine.request import Inputs
from sdstudio.resources import builtin_model_dir
from tools.builtin_model.judge import (
    border_colour,
    classify_shape,
    dominant_colour,
    foreground_mask,
)
from tools.builtin_model.scenes import Scene, Shape, held_out_triples, render

DEFAULT_MODEL = builtin_model_dir()


@dataclass
class Score:
    images: int = 0
    colour_ok: int = 0
    shape_ok: int = 0
    background_ok: int = 0

    @property
    def colour(self) -> float:
        return self.colour_ok / max(1, self.images)

    @property
    def shape(self) -> float:
        return self.shape_ok / max(1, self.images)

    @property
    def background(self) -> float:
        return self.background_ok / max(1, self.images)


def held_out_prompts(limit: int | None = None) -> list[tuple[str, str, str, str]]:
    """(prompt, colour, shape, background) for held-out triples, spread over all of them."""
    triples = held_out_triples()
    if limit is not None and limit < len(triples):
        step = len(triples) / limit
        triples = [triples[int(i * step)] for i in range(limit)]
    return [(f"a large {c} {s} in the centre on a {b} background", c, s, b) for c, s, b in triples]


class Generator:
    """Runs requests through sdstudio's Engine, one at a time, and returns the images."""

    def __init__(self, model: Path) -> None:
        from sdstudio.engine.request import ModelRef
        from sdstudio.engine.runner import Engine

        self.engine = Engine()
        self.model = ModelRef(str(model))

    def __call__(self, **fields) -> list[Image.Image]:
        from sdstudio.engine.events import Failed, Finished
        from sdstudio.engine.request import GenerationRequest

        events = []
        job = self.engine.submit(GenerationRequest.create(model=self.model, **fields), events.append)
        job.wait()
        last = events[-1]
        if isinstance(last, Failed):
            raise RuntimeError(f"{last.message}\n{last.details}")
        assert isinstance(last, Finished)
        return list(last.images)

    def close(self) -> None:
        self.engine.shutdown()


def judge_image(arr: np.ndarray, colour: str, shape: str, background: str) -> tuple[bool, bool, bool]:
    """(colour right, shape right, background right) for one generated picture.

    Foreground = what differs from the picture's own background (its border colour);
    whether that background is the prompted one is the third, separate verdict.
    """
    seen = border_colour(arr)
    return (
        dominant_colour(arr, seen) == colour,
        classify_shape(foreground_mask(arr, seen)) == shape,
        seen == background,
    )


def score_prompts(gen: Generator, prompts, seeds: int, cfg: float, steps: int = 20) -> Score:
    score = Score()
    for prompt, colour, shape, background in prompts:
        images = gen(prompt=prompt, width=128, height=128, steps=steps, cfg_scale=cfg, seed=1000,
                     batch_size=seeds, sampler="Euler")
        for im in images:
            colour_ok, shape_ok, background_ok = judge_image(np.asarray(im.convert("RGB")), colour, shape,
                                                             background)
            score.images += 1
            score.colour_ok += colour_ok
            score.shape_ok += shape_ok
            score.background_ok += background_ok
    return score


def inpaint_check(gen: Generator, steps: int = 20) -> dict[str, float]:
    """Paint over a red circle with the prompt for a yellow square; measure inside and outside."""
    scene = Scene((Shape("circle", "red", "large", "centre"),), "blue", False)
    init = Image.fromarray(render(scene, np.random.default_rng(0)))
    mask_arr = np.zeros((128, 128), np.uint8)
    mask_arr[24:104, 24:104] = 255
    mask = Image.fromarray(mask_arr)
    out = gen(prompt="a large yellow square in the centre on a blue background", mode="inpaint",
              width=128, height=128, steps=steps, cfg_scale=5.0,
              seed=7, strength=1.0, mask_blur=0, sampler="Euler", inputs=Inputs.from_pil(init_image=init, mask=mask))[0]
    arr, ref = np.asarray(out.convert("RGB")), np.asarray(init)
    inside = mask_arr > 0
    return {
        "inside_is_yellow": float(dominant_colour(arr, "blue", inside) == "yellow"),
        "outside_changed_pixels": int((arr[~inside] != ref[~inside]).any(-1).sum()),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="number of held-out triples")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    prompts = held_out_prompts(args.limit)
    gen = Generator(args.model)
    try:
        guided = score_prompts(gen, prompts, args.seeds, cfg=5.0, steps=args.steps)
        unguided = score_prompts(gen, prompts, args.seeds, cfg=1.0, steps=args.steps)
        result = {
            "held_out_triples": len(prompts),
            "images": guided.images,
            "cfg5_colour": round(guided.colour, 3),
            "cfg5_shape": round(guided.shape, 3),
            "cfg5_background": round(guided.background, 3),
            "cfg1_colour": round(unguided.colour, 3),
            "cfg1_shape": round(unguided.shape, 3),
            "cfg1_background": round(unguided.background, 3),
            **inpaint_check(gen, args.steps),
        }
    finally:
        gen.close()
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
