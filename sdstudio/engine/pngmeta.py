"""PNG files that carry their parameters: the A1111 "parameters" text chunk, plus the app's
own JSON chunk ("sdstudio") with everything needed to reproduce the image exactly.

Writes go through sdstudio.fileio (temp file, fsync, rename), so a crash mid-save never
leaves a half-written PNG under the final name. Reads trust nothing: the files may come from
anywhere, and a hostile one must cost little time and memory and never raise.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sdstudio.fileio import write_atomic

if TYPE_CHECKING:
    from PIL.Image import Image

PARAMETERS_KEY = "parameters"
JSON_KEY = "sdstudio"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
# Real files have a few dozen chunks (IDAT split in 8-64 KB pieces); this bounds the walk of a
# file made of millions of empty ones.
_MAX_CHUNKS = 1 << 16


def png_writer(
    image: Image, parameters: str, extra: dict[str, Any] | None = None
) -> Callable[[IO[bytes]], None]:
    """A function writing `image` as PNG with its metadata into an open binary file."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_itxt(PARAMETERS_KEY, parameters)
    if extra is not None:
        info.add_itxt(JSON_KEY, json.dumps(extra, ensure_ascii=False, sort_keys=True))
    return lambda f: image.save(f, format="PNG", pnginfo=info)


def save_png(
    image: Image, path: str | os.PathLike, parameters: str, extra: dict[str, Any] | None = None
) -> Path:
    """Write `image` to `path` with its metadata, atomically. Returns the final path."""
    return write_atomic(path, png_writer(image, parameters, extra))


def read_png_text(path: str | os.PathLike) -> tuple[str | None, dict[str, Any] | None]:
    """The parameters text and the app's JSON object of an image file; (None, None) where
    absent, unreadable or not an image at all. Never raises for a bad file.

    Text chunks are capped by Pillow's limits (PngImagePlugin.MAX_TEXT_CHUNK per chunk,
    compressed or not, and MAX_TEXT_MEMORY in all); a chunk over them is skipped, the others
    are still read. The pixels are never decoded.
    """
    text = _png_text_chunks(path)
    parameters = text.get(PARAMETERS_KEY)
    if parameters is None:
        parameters = _exif_parameters(path)
    return parameters, _json_object(text.get(JSON_KEY))


def _png_text_chunks(path: str | os.PathLike) -> dict[str, str]:
    """Every text chunk of a PNG, before or after the pixel data; {} for any other file."""
    from PIL import PngImagePlugin

    try:
        with open(path, "rb") as fp:
            if fp.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
                return {}
            png = PngImagePlugin.PngStream(fp)
            for _ in range(_MAX_CHUNKS):
                try:
                    cid, pos, length = png.read()
                except (struct.error, SyntaxError, ValueError):
                    break  # truncated or garbage: keep what was read
                if cid == b"IEND":
                    break
                if cid in _TEXT_CHUNKS and length <= PngImagePlugin.MAX_TEXT_CHUNK:
                    try:
                        png.call(cid, pos, length)
                    except (ValueError, SyntaxError, EOFError, UnicodeError):
                        pass  # a bomb, a broken chunk or too much text in all: skip this one
                fp.seek(pos + length + 4)  # past the data and its CRC
            return {k: str(v) for k, v in png.im_text.items()}
    except OSError:
        return {}


def _exif_parameters(path: str | os.PathLike) -> str | None:
    """A1111 writes JPEG/WebP parameters into EXIF UserComment (UTF-16 with a charset tag)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if "exif" not in im.info:
                return None
            raw = im.getexif().get_ifd(0x8769).get(0x9286)
    except Exception:  # noqa: BLE001 - Pillow raises many kinds on a malformed file: no parameters
        return None
    if isinstance(raw, bytes):
        head, body = raw[:8], raw[8:]
        if head.startswith(b"UNICODE"):
            for enc in ("utf-16-be", "utf-16-le"):
                try:
                    return body.decode(enc)
                except UnicodeDecodeError:
                    continue
        return body.decode("utf-8", errors="replace")
    return raw if isinstance(raw, str) else None


def _json_object(text: str | None) -> dict[str, Any] | None:
    """The app's JSON chunk as a dict; None when it is not a JSON object. NaN, Infinity and
    numbers too large for a float read as null, so no non-finite float leaves this function."""
    if not text:
        return None
    try:
        data = json.loads(text, parse_constant=lambda _: None, parse_float=_finite_float)
    except (ValueError, RecursionError):  # bad JSON, a 5000-digit int, nesting 10^5 deep
        return None
    return data if isinstance(data, dict) else None


def _finite_float(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None
