"""A picture grid of the built-in model (prompts x seeds) for the README.

    python -m tools.builtin_model.grid [--out docs/builtin_grid.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from tools.builtin_model.evaluate import DEFAULT_MODEL, Generator

PROMPTS = [
    "a red circle on a blue background",
    "a large yellow star in the centre on a purple background",
    "a small green triangle on the left on a white background",
    "a blue square at the top on an orange background",
    "a white ring on a black background",
    "a red cross on the right and a blue circle on the left on a yellow background",
]
SEEDS = 4
CELL = 128


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--out", type=Path, default=Path("docs/builtin_grid.png"))
    args = ap.parse_args(argv)
    gen = Generator(args.model)
    label_w = 300
    grid = Image.new("RGB", (label_w + SEEDS * CELL, len(PROMPTS) * CELL), "white")
    draw = ImageDraw.Draw(grid)
    try:
        for row, prompt in enumerate(PROMPTS):
            images = gen(prompt=prompt, width=CELL, height=CELL, steps=20, cfg_scale=5.0, seed=100,
                         batch_size=SEEDS, sampler="Euler")
            for col, im in enumerate(images):
                grid.paste(im, (label_w + col * CELL, row * CELL))
            words, line, y = prompt.split(), "", row * CELL + 8
            for word in words:
                if len(line) + len(word) > 40:
                    draw.text((8, y), line, fill="black")
                    line, y = "", y + 14
                line = f"{line} {word}".strip()
            draw.text((8, y), line, fill="black")
    finally:
        gen.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out)
    print(args.out)
    return args.out


if __name__ == "__main__":
    main()
