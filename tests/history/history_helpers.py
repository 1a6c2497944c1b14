"""PNG files as users put them into a history folder (copied from A1111, another tool, anywhere)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, PngImagePlugin


def write_png(path: Path, parameters: str | None = None, json_text: str | None = None, size: int = 16) -> Path:
    """A PNG with an A1111 "parameters" chunk and/or a raw "sdstudio" JSON chunk."""
    info = PngImagePlugin.PngInfo()
    if parameters is not None:
        info.add_itxt("parameters", parameters)
    if json_text is not None:
        info.add_itxt("sdstudio", json_text)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), "orange").save(path, pnginfo=info)
    return path


def a1111_text(prompt: str, seed: int = 1, size: str = "16x16") -> str:
    return f"{prompt}\nNegative prompt: ugly\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: {seed}, Size: {size}, Model: m1"
