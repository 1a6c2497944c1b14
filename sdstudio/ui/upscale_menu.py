""""Upscale ×2 / ×4" on a picture: the menu (the result view's and the history's share it) and
the backend job's order for a fresh result or a PNG file.

The job runs on the backend like a generation (`Backend.upscale`), so the window never waits;
its result is saved to the history as a child of the picture (`inputs.source`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtWidgets import QMenu, QWidget

from sdstudio.engine.backend import LANCZOS, UPSCALE_FACTORS, Upscale
from sdstudio.engine.events import ResultImage
from sdstudio.engine.parameters import upscaler_label
from sdstudio.engine.pngmeta import read_png_text
from sdstudio.engine.request import GenerationRequest, ImageData, Inputs
from sdstudio.history.metadata import request_fields

# The upscaler models a backend offers (file names), asked when a menu opens.
UpscalerList = Callable[[], Sequence[str]]
# A choice: (factor, upscaler: LANCZOS or a model's file name).
Chosen = Callable[[float, str], None]


def upscale_menu(parent: QWidget, upscalers: Sequence[str], chosen: Chosen) -> QMenu:
    """"Upscale" with one entry per factor and upscaler: Lanczos first, then the models."""
    menu = QMenu("&Upscale", parent)
    for scale in UPSCALE_FACTORS:
        for name in (LANCZOS, *upscalers):
            action = menu.addAction(f"×{scale:g} {upscaler_label(name)}")
            action.triggered.connect(lambda _=False, scale=scale, name=name: chosen(scale, name))
        menu.addSeparator()
    return menu


def result_order(result: ResultImage, scale: float, upscaler: str, source: str | None) -> Upscale:
    """The order for a fresh result: its request (its init image and mask left behind: the
    child is made from the result) with `source`, its history file, as the lineage."""
    request = dataclasses.replace(result.request, inputs=Inputs(source=source))
    return Upscale(ImageData.from_pil(result.image), scale, upscaler, request, result.infotext)


def file_order(path: Path, scale: float, upscaler: str, source: str | None) -> Upscale:
    """The order for a PNG file: its bytes, the request its JSON chunk (or A1111 text) gives,
    its A1111 text. Raises OSError when the file cannot be read."""
    text, settings = read_png_text(path)
    fields = request_fields(text, settings) or {}
    model = fields.pop("model", None)
    fields.pop("networks", None)  # the upscale uses none; the request's prompt still names them
    request = GenerationRequest.create(model=model, inputs=Inputs(source=source), **fields)
    return Upscale(ImageData(path.read_bytes()), scale, upscaler, request, text or "")
