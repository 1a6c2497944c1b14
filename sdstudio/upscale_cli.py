"""`sdstudio upscale IMAGE --scale 2 [--model FILE] --out DIR`: enlarge a picture with an
upscaler model (tiled, see `engine/upscalers.py`) or Lanczos, on this machine.

Writes `<number>-upscaled.png` (never overwriting) with the source's A1111 text followed by
`Postprocess upscale by` and `Postprocess upscaler`, as A1111's extras tab writes them, and
prints its path. Bad input ends with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sdstudio.cli import UsageError, _Parser, next_number
from sdstudio.engine.backend import LANCZOS, MAX_UPSCALE


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sdstudio upscale", description="Enlarge a picture with an upscaler model or Lanczos.")
    p.add_argument("image", type=Path, help="the picture to enlarge")
    p.add_argument("--scale", type=float, default=2.0, help=f"factor, above 1 and up to {MAX_UPSCALE} (default 2)")
    p.add_argument("--model", help="an upscaler model: a file name in the upscaler folder or a path (default: Lanczos)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    p.add_argument("--allow-pickle", action="store_true", help="allow .pth models (they can run arbitrary code)")
    p.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    return p


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    from sdstudio.engine.params import postprocess_text
    from sdstudio.engine.pngmeta import png_writer, read_png_text
    from sdstudio.engine.upscalers import UpscalerError, load_upscaler, upscale
    from sdstudio.fileio import write_new
    from sdstudio.imaging import to_rgb

    try:
        args = build_parser().parse_args(argv)
        if not 1 < args.scale <= MAX_UPSCALE:
            raise UsageError(f"--scale must be above 1 and at most {MAX_UPSCALE}, not {args.scale}")
        try:
            with Image.open(args.image) as opened:
                image = to_rgb(opened)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise UsageError(f"cannot read image {args.image}: {exc}") from exc
        model = load_upscaler(args.model, args.allow_pickle, device=args.device) if args.model else None
        args.out.mkdir(parents=True, exist_ok=True)
    except (UsageError, UpscalerError, OSError) as exc:
        print(f"sdstudio upscale: error: {exc}", file=sys.stderr)
        return 2
    size = (round(image.width * args.scale), round(image.height * args.scale))
    result = upscale(image, size, model)
    source_text, _ = read_png_text(args.image)
    text = postprocess_text(source_text, args.scale, model.name if model else LANCZOS)
    path = args.out / f"{next_number(args.out):05d}-upscaled.png"
    try:
        written = write_new(path, png_writer(result, text))
    except OSError as exc:
        print(f"sdstudio upscale: error: cannot write {path}: {exc}", file=sys.stderr)
        return 1
    print(written, flush=True)
    return 0
