"""`sdstudio generate`: the headless command line, on the same Engine as the window.

Writes one PNG per image, named `<number>-<seed>.png` (never overwriting a file), each with
the A1111 "parameters" text and the app's JSON; prints the written paths on stdout and a
progress bar on stderr. Bad input ends with exit status 2 and one line on stderr, a failed
job with status 1, Ctrl-C with 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import queue
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sdstudio.engine.request import (
    BUILTIN_MODEL,
    TERMINAL_EVENTS,
    Cancelled,
    Event,
    Failed,
    Finished,
    GenerationRequest,
    Mode,
    ModelLoaded,
    ModelLoading,
    ModelRef,
    Notice,
    Started,
    Step,
)

if TYPE_CHECKING:
    from PIL.Image import Image

    from sdstudio.engine.runner import Engine

BAR_WIDTH = 30
_NUMBERED = re.compile(r"^(\d+)-")


class UsageError(Exception):
    """Bad command-line input; str(e) is the one line shown."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of argparse's usage block
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sdstudio generate", description="Generate images without the window.")
    p.add_argument("--model", default=BUILTIN_MODEL,
                   help="a diffusers folder, a .safetensors file, a hub id, or 'builtin' (default)")
    p.add_argument("--prompt", required=True)
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--mode", choices=[m.value for m in Mode],
                   help="default: inpaint with --mask, img2img with --init, else txt2img")
    p.add_argument("--init", type=Path, help="init image for img2img and inpaint")
    p.add_argument("--mask", type=Path, help="inpaint mask, white = repaint")
    p.add_argument("--strength", type=float, default=0.75, help="denoising strength (img2img, inpaint)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=7.0, help="CFG scale")
    p.add_argument("--seed", type=int, default=-1, help="-1 for a random seed")
    p.add_argument("--sampler", default="Euler a")
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--batch-count", type=int, default=1)
    p.add_argument("--device", help="cuda, mps or cpu (default: the best present)")
    p.add_argument("--dtype", help="float16, bfloat16 or float32 (default: fp16 on GPU, fp32 on CPU)")
    p.add_argument("--mask-blur", type=int, default=4)
    p.add_argument("--only-masked", action="store_true", help="inpaint only the masked area, at full size")
    p.add_argument("--padding", type=int, default=32, help="masked area padding (with --only-masked)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow .ckpt/.pt checkpoints (they can run arbitrary code)")
    p.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    return p


def main(argv: list[str] | None = None) -> int:
    # Library chatter and their progress bars would break the one progress bar here.
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        args = build_parser().parse_args(argv)
        request = request_from_args(args)
        args.out.mkdir(parents=True, exist_ok=True)
        if not os.access(args.out, os.W_OK):
            raise UsageError(f"cannot write to {args.out}")
    except (UsageError, OSError) as exc:
        print(f"sdstudio generate: error: {exc}", file=sys.stderr)
        return 2
    return run(request, args.out)


def request_from_args(args: argparse.Namespace) -> GenerationRequest:
    """The GenerationRequest the arguments describe; UsageError for unreadable images or an
    unknown sampler (the engine checks the rest)."""
    from sdstudio.engine.schedulers import available_samplers

    samplers = available_samplers()
    if args.sampler not in samplers:
        raise UsageError(f"unknown sampler {args.sampler!r}; choose one of: {', '.join(samplers)}")
    mode = Mode(args.mode) if args.mode else Mode.INPAINT if args.mask else Mode.IMG2IMG if args.init else Mode.TXT2IMG
    return GenerationRequest(
        prompt=args.prompt, negative_prompt=args.negative, mode=mode, steps=args.steps,
        cfg_scale=args.cfg, seed=args.seed, width=args.width, height=args.height,
        batch_size=args.batch_size, batch_count=args.batch_count, sampler=args.sampler,
        strength=args.strength, init_image=_read_image(args.init, "init image"),
        mask=_read_image(args.mask, "mask"), mask_blur=args.mask_blur,
        inpaint_only_masked=args.only_masked, inpaint_padding=args.padding,
        model=ModelRef(args.model, device=args.device, dtype=args.dtype, allow_pickle=args.allow_pickle),
    )


def _read_image(path: Path | None, what: str) -> Image | None:
    if path is None:
        return None
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(path) as image:
            image.load()
            return image
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from exc


def run(request: GenerationRequest, out: Path) -> int:
    """Run `request` on a fresh Engine, drawing progress, and save the images into `out`."""
    from diffusers.utils import logging as diffusers_logging

    from sdstudio.engine.runner import Engine

    diffusers_logging.disable_progress_bar()  # its "Loading pipeline components" bar, not ours
    engine = Engine()
    events: queue.Queue[Event] = queue.Queue()
    job = engine.submit(request, events.put)
    bar = _ProgressBar()
    try:
        while True:
            try:
                event = events.get(timeout=0.2)  # a timeout keeps Ctrl-C responsive
            except queue.Empty:
                continue
            bar.show(event)
            if isinstance(event, TERMINAL_EVENTS):
                break
    except KeyboardInterrupt:
        engine.cancel(job)
        job.wait()
        print("\nsdstudio generate: cancelled", file=sys.stderr)
        return 130
    finally:
        engine.shutdown()
    if isinstance(event, Cancelled):
        print("sdstudio generate: cancelled", file=sys.stderr)
        return 130
    if isinstance(event, Failed):
        print(f"sdstudio generate: error: {' '.join(event.message.split())}", file=sys.stderr)
        return 1
    return _save_all(event, request, engine, out)


def _save_all(finished: Finished, request: GenerationRequest, engine: Engine, out: Path) -> int:
    from sdstudio.engine import params
    from sdstudio.engine.images import checked_size
    from sdstudio.engine.pngmeta import save_png

    width, height, _ = checked_size(request.width, request.height)
    used = dataclasses.replace(request, width=width, height=height)
    number = next_number(out)
    for image, seed, info in zip(finished.images, finished.seeds, finished.infos, strict=True):
        path = out / f"{number:05d}-{seed}.png"
        while path.exists():
            number += 1
            path = out / f"{number:05d}-{seed}.png"
        try:
            save_png(image, path, info, params.request_json(used, seed, engine.model_info))
        except OSError as exc:
            print(f"sdstudio generate: error: cannot write {path}: {exc}", file=sys.stderr)
            return 1
        print(path)
        number += 1
    return 0


def next_number(folder: Path) -> int:
    """One more than the highest `<number>-` prefix of the files in `folder` (A1111 style)."""
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _NUMBERED.match(p.name))]
    return max(numbers, default=0) + 1


class _ProgressBar:
    """A one-line `\\r` progress bar and the engine's messages, on stderr."""

    def __init__(self) -> None:
        self.drawn = False

    def show(self, event: Event) -> None:
        if isinstance(event, ModelLoading):
            self._line(event.message)
        elif isinstance(event, ModelLoaded):
            self._line(f"Model: {event.info.name} ({event.info.family}, {event.info.device}, {event.info.dtype})")
        elif isinstance(event, Notice):
            self._line(f"Note: {event.message}")
        elif isinstance(event, Started):
            self._bar(0, event.total)
        elif isinstance(event, Step):
            self._bar(event.index, event.total)
        elif self.drawn:
            sys.stderr.write("\n")
            self.drawn = False

    def _line(self, text: str) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            self.drawn = False
        print(text, file=sys.stderr)

    def _bar(self, done: int, total: int) -> None:
        filled = BAR_WIDTH * done // max(total, 1)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} steps")
        sys.stderr.flush()
        self.drawn = True
