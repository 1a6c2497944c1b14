"""`sdstudio generate`: the headless command line, on the same Backend as the window.

Writes one PNG per image as soon as its batch is done, named `<number>-<seed>.png` (never
overwriting a file, even one another process writes at the same moment), each with the A1111
"parameters" text and the app's JSON; prints the written paths on stdout and a progress bar on
stderr. Bad input ends with exit status 2 and one line on stderr (before the output folder is
created), a failed job with status 1, Ctrl-C with 130 (the images already written stay).
The options come from the parameter table (`engine/parameters.py`).
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import sys
from pathlib import Path

from sdstudio.engine.backend import Backend, Capabilities, local_backend
from sdstudio.engine.events import (
    TERMINAL_EVENTS,
    BatchDone,
    Cancelled,
    Event,
    Failed,
    ModelLoaded,
    ModelLoading,
    Notice,
    Started,
    Step,
)
from sdstudio.engine.memory import OFFLOAD_MODES, MemoryOptions
from sdstudio.engine.networks import NetworkFolders, NetworkKind
from sdstudio.engine.parameters import PARAMETERS, Mode, Param, check
from sdstudio.engine.request import BUILTIN_MODEL, GenerationRequest, ImageData, Inputs, ModelRef
from sdstudio.imaging_outpaint import Growth, Infill

BAR_WIDTH = 30
# --vae-tiling / --attention-slicing: MemoryOptions' None means automatic.
_SWITCH = {"auto": None, "on": True, "off": False}
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
    p.add_argument("--server", metavar="URL",
                   help="generate on this ComfyUI server (http://host:port); --model names one of its checkpoints")
    p.add_argument("--token", help="with --server: a bearer token, or 'Header: value', for a proxy in front of it")
    for param in PARAMETERS:
        if param.cli:
            _add_option(p, param)
    p.add_argument("--init", type=Path, help="init image for img2img and inpaint")
    p.add_argument("--mask", type=Path, help="inpaint mask, white = repaint")
    p.add_argument("--outpaint", metavar="LEFT,TOP,RIGHT,BOTTOM", type=_growth,
                   help="grow the --init picture by these pixels and paint the new area (inpaint, only masked)")
    p.add_argument("--infill", choices=[i.value for i in Infill], default=Infill.EDGE.value,
                   help="first guess for the new area with --outpaint (default: edge)")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best present)")
    p.add_argument("--dtype", help="float16, bfloat16 or float32 (default: fp16 on GPU, fp32 on CPU)")
    p.add_argument("--vae-tiling", choices=_SWITCH, default="auto", help="decode in tiles (auto: when the image needs it)")
    p.add_argument("--attention-slicing", choices=_SWITCH, default="auto", help="attention a slice at a time")
    p.add_argument("--offload", choices=OFFLOAD_MODES, default="auto",
                   help="keep model parts in RAM, on the GPU only while they run (CUDA)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow .ckpt/.pt checkpoints (they can run arbitrary code)")
    for kind, flag, what in ((NetworkKind.LORA, "--lora-dir", "LoRAs (<lora:name:weight> in the prompt)"),
                             (NetworkKind.EMBEDDING, "--embeddings-dir", "textual-inversion embeddings"),
                             (NetworkKind.VAE, "--vae-dir", "VAE files")):
        p.add_argument(flag, type=Path, metavar="DIR", dest=f"{kind.value}_dir",
                       help=f"folder of {what} (default: ${kind.env}, else the app's data folder)")
    p.add_argument("--vae", default="", metavar="NAME",
                   help="a VAE file's name in the VAE folder (with --server: of the server), or a path (default: the model's own VAE)")
    p.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    return p


def _add_option(parser: argparse.ArgumentParser, param: Param) -> None:
    """One option from the table: its flag, type, default and help; bounds are checked later
    with the engine's own words."""
    dest = {"dest": param.name, "help": param.cli_help}
    if param.kind is bool:
        parser.add_argument(param.cli, action="store_true", **dest)
    elif param.kind is Mode:
        parser.add_argument(param.cli, choices=[m.value for m in Mode], **dest)
    elif param.choices and param.also is None:  # open lists are checked by check()
        parser.add_argument(param.cli, choices=param.choices, default=param.default, **dest)
    elif param.name == "prompt":
        parser.add_argument(param.cli, required=True, **dest)
    else:
        default = None if param.from_model else param.default
        parser.add_argument(param.cli, type=param.kind, default=default, **dest)


def main(argv: list[str] | None = None) -> int:
    # Library chatter and their progress bars would break the one progress bar here.
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    backend: Backend | None = None
    try:
        args = build_parser().parse_args(argv)
        backend = make_backend(args)
        request = request_from_args(args, backend.capabilities())
        args.out.mkdir(parents=True, exist_ok=True)
        if not os.access(args.out, os.W_OK):
            raise UsageError(f"cannot write to {args.out}")
    except (UsageError, OSError) as exc:
        if backend is not None:
            backend.shutdown()
        print(f"sdstudio generate: error: {exc}", file=sys.stderr)
        return 2
    return run(request, args.out, backend)


def make_backend(args: argparse.Namespace) -> Backend:
    """The local engine, or the ComfyUI server of --server (OSError when it cannot be reached)."""
    if not args.server:
        return local_backend(folders=folders_from_args(args))
    from sdstudio.engine.comfy import connect

    return connect(args.server, args.token)


def folders_from_args(args: argparse.Namespace) -> NetworkFolders:
    """The add-on folders: --lora-dir, --embeddings-dir and --vae-dir where given, else the defaults."""
    return NetworkFolders.default(loras=args.lora_dir, embeddings=args.embedding_dir, vaes=args.vae_dir)


def request_from_args(args: argparse.Namespace, capabilities: Capabilities) -> GenerationRequest:
    """The GenerationRequest the arguments describe, checked: UsageError for any value the
    engine would refuse, an unreadable image or a sampler the backend lacks."""
    fields = {p.name: getattr(args, p.name) for p in PARAMETERS if p.cli and getattr(args, p.name) is not None}
    for name in ("prompt", "negative_prompt"):
        try:
            fields[name].encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"the {name.replace('_', ' ')} is not valid UTF-8 text") from None
    fields["mode"] = Mode(args.mode) if args.mode else Mode.INPAINT if args.mask else Mode.IMG2IMG if args.init else Mode.TXT2IMG
    if args.outpaint:
        if fields["mode"] is not Mode.INPAINT and args.mode:
            raise UsageError(f"--outpaint inpaints; it cannot run in {args.mode} mode")
        fields |= {"mode": Mode.INPAINT, "inpaint_only_masked": True}
    problems = check(fields)
    if problems:
        raise UsageError(" ".join(problems))
    samplers = capabilities.samplers
    if fields["sampler"] not in samplers:
        raise UsageError(f"unknown sampler {fields['sampler']!r}; choose one of: {', '.join(samplers)}")
    if args.outpaint:
        inputs = _outpaint_inputs(args, fields)
    else:
        inputs = Inputs(_read_image(args.init, "init image"), _read_image(args.mask, "mask"))
    memory = MemoryOptions(_SWITCH[args.vae_tiling], _SWITCH[args.attention_slicing], args.offload)
    model = ModelRef(args.model, device=args.device, dtype=args.dtype, allow_pickle=args.allow_pickle, memory=memory,
                     vae=args.vae)
    return GenerationRequest.create(model=model, inputs=inputs, **fields)


def _growth(text: str) -> Growth:
    try:
        return Growth.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _outpaint_inputs(args: argparse.Namespace, fields: dict) -> Inputs:
    """The grown, infilled picture and its seam mask; without --width/--height the crop is
    drawn at its own size, so the cost follows the new area (sets them in `fields`)."""
    from sdstudio.imaging import to_rgb
    from sdstudio.imaging_outpaint import generation_size, grow, outpaint_mask

    if args.init is None or args.mask is not None:
        raise UsageError("--outpaint needs --init and makes its own mask (leave out --mask)")
    init = to_rgb(_read_image(args.init, "init image").open())
    try:
        args.outpaint.check(init.size)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    seed = fields.get("seed", -1)
    grown = grow(init, args.outpaint, Infill(args.infill), seed=max(seed, 0))
    mask = outpaint_mask(init.size, args.outpaint)
    # The engine blurs the mask (reaching about 3 radii) and adds the padding around it.
    margin = fields["inpaint_padding"] + 3 * fields["mask_blur"]
    width, height = generation_size(mask, margin)
    fields.setdefault("width", width)
    fields.setdefault("height", height)
    return Inputs(ImageData.from_pil(grown), ImageData.from_pil(mask))


def _read_image(path: Path | None, what: str) -> ImageData | None:
    """The file's bytes as they are, once they are known to open as a picture of sane size."""
    if path is None:
        return None
    try:
        data = ImageData(path.read_bytes())
        data.open()
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from exc
    return data


def run(request: GenerationRequest, out: Path, backend: Backend) -> int:
    """Run `request` on `backend`, drawing progress, and save every batch into `out` as soon
    as it is done; shuts the backend down at the end."""
    events: queue.Queue[Event] = queue.Queue()
    job = backend.submit(request, events.put)
    bar = _ProgressBar()
    status = 0
    try:
        while True:
            try:
                event = events.get(timeout=0.2)  # a timeout keeps Ctrl-C responsive
            except queue.Empty:
                continue
            bar.show(event)
            if isinstance(event, BatchDone) and status == 0:
                status = _save_batch(event, out)
                if status:
                    backend.cancel(job)
            if isinstance(event, TERMINAL_EVENTS):
                break
    except KeyboardInterrupt:
        backend.cancel(job)
        job.wait()
        print("\nsdstudio generate: cancelled; the images already written are kept", file=sys.stderr)
        return 130
    finally:
        backend.shutdown()
    if status:
        return status
    if isinstance(event, Cancelled):
        print("sdstudio generate: cancelled", file=sys.stderr)
        return 130
    if isinstance(event, Failed):
        print(f"sdstudio generate: error: {' '.join(event.message.split())}", file=sys.stderr)
        return 1
    return 0


def _save_batch(batch: BatchDone, out: Path) -> int:
    from sdstudio.engine import params
    from sdstudio.engine.pngmeta import png_writer
    from sdstudio.fileio import write_new

    number = next_number(out)
    for result in batch.results:
        path = out / f"{number:05d}-{result.seed}.png"
        try:
            written = write_new(path, png_writer(result.image, result.infotext, params.result_json(result)))
        except OSError as exc:
            print(f"sdstudio generate: error: cannot write {path}: {exc}", file=sys.stderr)
            return 1
        print(written, flush=True)
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
