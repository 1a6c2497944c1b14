"""PNG files that carry their parameters: the A1111 "parameters" text chunk, plus the app's
own JSON chunk ("sdstudio") with everything needed to reproduce the image exactly.

Writes are atomic (temp file in the same folder, fsync, rename), so a crash mid-save never
leaves a half-written PNG under the final name.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image

PARAMETERS_KEY = "parameters"
JSON_KEY = "sdstudio"


def save_png(image: Image, path: str | os.PathLike, parameters: str, extra: dict[str, Any] | None = None) -> Path:
    """Write `image` to `path` with its metadata, atomically. Returns the final path."""
    from PIL.PngImagePlugin import PngInfo

    path = Path(path)
    info = PngInfo()
    info.add_itxt(PARAMETERS_KEY, parameters)
    if extra is not None:
        info.add_itxt(JSON_KEY, json.dumps(extra, ensure_ascii=False, sort_keys=True))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format="PNG", pnginfo=info)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_png_text(path: str | os.PathLike) -> tuple[str | None, dict[str, Any] | None]:
    """The parameters text and the app's JSON of an image file; (None, None) where absent,
    unreadable or not an image at all. Never raises for a bad file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            # Chunks before the pixel data are in `info` without decoding; `text` decodes the
            # whole image to find chunks after it, so it is read only when `info` lacks them.
            text = {k: v for k, v in im.info.items() if isinstance(v, str)}
            if PARAMETERS_KEY not in text and im.format == "PNG":
                text.update(getattr(im, "text", {}) or {})
            parameters = text.get(PARAMETERS_KEY) or im.info.get(PARAMETERS_KEY)
            if parameters is None and "exif" in im.info:
                parameters = _exif_user_comment(im)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None, None
    extra = None
    if text.get(JSON_KEY):
        try:
            extra = json.loads(text[JSON_KEY])
        except json.JSONDecodeError:
            extra = None
    return (parameters if isinstance(parameters, str) else None), extra


def _exif_user_comment(im: Image) -> str | None:
    """A1111 writes JPEG/WebP parameters into EXIF UserComment (UTF-16 with a charset tag)."""
    try:
        raw = im.getexif().get_ifd(0x8769).get(0x9286)
    except Exception:  # noqa: BLE001 - malformed EXIF is "no parameters", never a crash
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
