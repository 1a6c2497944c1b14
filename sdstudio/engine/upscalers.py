"""Upscaler models (ESRGAN, Real-ESRGAN, SwinIR, … as spandrel detects them from the weights),
run tile by tile so memory follows the tile size rather than the picture's.

A folder holds the models; a model is named by its file name. `.safetensors` files load as
they are; `.pth` files are pickles, which can run arbitrary code, so they load only with the
same opt-in as checkpoints (`allow_pickle`). Torch and spandrel are imported on first use.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdstudio.engine.networks import (
    NetworkFolders,
    NetworkKind,
    NetworkNotFound,
    file_version,
    find_network,
)
from sdstudio.engine.parameters import UPSCALER_MODEL_SUFFIXES

if TYPE_CHECKING:
    from PIL import Image

FOLDER_ENV = NetworkKind.UPSCALER.env
TILE = 256  # input pixels a side per tile: ESRGAN at 23 blocks holds ~0.5 GB of activations here
OVERLAP = 16  # input pixels of context each side of a tile, cropped from its output
MAX_PASSES = 3  # A1111 runs a ×2 model at most three times for a bigger factor


class UpscalerError(ValueError):
    """A model that cannot be found, opened or used as an upscaler; str(e) is for a person."""


def upscaler_folder() -> Path:
    """Where upscaler models are looked up by name: $SDSTUDIO_UPSCALERS, else the app's data
    folder's `upscalers` (the rule every add-on folder follows, see networks.py)."""
    return NetworkFolders.default().upscalers


def list_upscalers(folder: Path | None = None, allow_pickle: bool = False) -> list[str]:
    """The model file names in `folder` (default: `upscaler_folder()`), sorted; pickles only
    with `allow_pickle`."""
    folder = folder or upscaler_folder()
    suffixes = UPSCALER_MODEL_SUFFIXES if allow_pickle else (".safetensors",)
    try:
        return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    except OSError:
        return []


def find_upscaler(name: str, folder: Path | None = None) -> Path:
    """The file of the model called `name`: its file name or its name without the extension
    in `folder` (default: `upscaler_folder()`) and below, else a path to a file."""
    folder = folder or upscaler_folder()
    try:
        return find_network(NetworkKind.UPSCALER, name, folder, allow_pickle=True).path
    except NetworkNotFound as missing:
        path = Path(name).expanduser()
        if path.is_file():
            return path
        raise UpscalerError(str(missing)) from missing


@dataclass
class UpscalerModel:
    name: str
    scale: int
    descriptor: Any  # spandrel's ImageModelDescriptor

    def __call__(
        self, image: Image.Image, tile: int = TILE, overlap: int = OVERLAP, on_tile: Callable[[], None] | None = None
    ) -> Image.Image:
        """`image` enlarged by the model's own scale, `tile` input pixels a side at a time;
        `on_tile` is called after each tile (it may raise to stop)."""
        import numpy as np
        import torch
        from PIL import Image as PILImage

        pixels = np.asarray(image.convert("RGB"))
        height, width = pixels.shape[:2]
        s = self.scale
        out = np.empty((height * s, width * s, 3), np.uint8)  # the only full-size buffer
        model = self.descriptor
        device, dtype = model.device, model.dtype
        with torch.inference_mode():
            for top in range(0, height, tile):
                for left in range(0, width, tile):
                    bottom, right = min(top + tile, height), min(left + tile, width)
                    # Context around the tile keeps its edges seamless; its output is cropped.
                    t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
                    b0, r0 = min(bottom + overlap, height), min(right + overlap, width)
                    patch = torch.from_numpy(pixels[t0:b0, l0:r0].copy()).to(device, dtype)
                    patch = patch.permute(2, 0, 1).unsqueeze(0) / 255
                    result = model(patch)[0].clamp_(0, 1).mul_(255).round_().byte().permute(1, 2, 0).cpu().numpy()
                    y, x = (top - t0) * s, (left - l0) * s
                    out[top * s : bottom * s, left * s : right * s] = result[y : y + (bottom - top) * s, x : x + (right - left) * s]
                    if on_tile is not None:
                        on_tile()
        return PILImage.fromarray(out)


def load_upscaler(name: str, allow_pickle: bool = False, folder: Path | None = None, device: str = "cpu") -> UpscalerModel:
    """The model called `name` (see `find_upscaler`), on `device` in float32. Raises
    UpscalerError for a missing file, a pickle without the opt-in, or weights that are no
    3-channel image model spandrel knows."""
    path = find_upscaler(name, folder)
    suffix = path.suffix.lower()
    if suffix not in UPSCALER_MODEL_SUFFIXES:
        raise UpscalerError(f"{path.name}: upscaler models are {' or '.join(UPSCALER_MODEL_SUFFIXES)} files.")
    if suffix != ".safetensors" and not allow_pickle:
        raise UpscalerError(
            f"{path.name} is a pickle file, which can run arbitrary code when loaded. "
            "Use a .safetensors version, or allow pickle files (--allow-pickle) if you trust its source."
        )
    key = (file_version(path), device)
    with _LAST_LOCK:
        if _LAST and _LAST[0] == key:
            return _LAST[1]
    model = _load(path, device)
    with _LAST_LOCK:
        _LAST[:] = [key, model]
    return model


# The last model loaded, so upscaling several pictures in a row reads its file once; one only,
# so an idle engine holds at most one upscaler's weights. The key notices a replaced file.
_LAST: list = []
_LAST_LOCK = threading.Lock()


def _load(path: Path, device: str) -> UpscalerModel:
    spandrel = _spandrel()
    try:
        descriptor = spandrel.ModelLoader(device).load_from_file(path)
    except (OSError, ValueError, RuntimeError, KeyError, spandrel.UnsupportedModelError) as exc:
        raise UpscalerError(f"{path.name} is no upscaler model spandrel can open: {exc}") from exc
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.input_channels != 3:
        raise UpscalerError(f"{path.name} is a {descriptor.architecture.name} model, not a 3-channel image upscaler.")
    descriptor.eval().float()
    return UpscalerModel(path.name, descriptor.scale, descriptor)


def upscale(
    image: Image.Image, size: tuple[int, int], model: UpscalerModel | None = None, on_tile: Callable[[], None] | None = None
) -> Image.Image:
    """`image` at `size`: through `model` (as many passes as the factor needs, at most
    MAX_PASSES), then Lanczos to the exact size; Lanczos alone without a model. `on_tile`
    is called after each of the model's tiles (`tile_count` of them)."""
    from PIL import Image as PILImage

    for _ in _passes(image.size, size, model):
        image = model(image, on_tile=on_tile)  # type: ignore[misc]
    return image if image.size == size else image.resize(size, PILImage.Resampling.LANCZOS)


def tile_count(source: tuple[int, int], size: tuple[int, int], model: UpscalerModel | None, tile: int = TILE) -> int:
    """How many tiles `upscale` runs through `model` to take a `source`-sized picture to `size`."""
    return sum(-(-w // tile) * -(-h // tile) for w, h in _passes(source, size, model))


def _passes(source: tuple[int, int], size: tuple[int, int], model: UpscalerModel | None) -> list[tuple[int, int]]:
    """The input size of each pass of `model` (none without one, or for a ×1 model)."""
    if model is None or model.scale <= 1:
        return []
    passes: list[tuple[int, int]] = []
    width, height = source
    while len(passes) < MAX_PASSES and (width < size[0] or height < size[1]):
        passes.append((width, height))
        width, height = width * model.scale, height * model.scale
    return passes


def _spandrel() -> types.ModuleType:
    """spandrel, importable even without torchvision: two of its architectures that are no
    upscalers (LaMa, RestoreFormer) import torchvision at import time, and a CPU-only torch may
    have no matching torchvision build. Those two then fail when run; every upscaler works.
    The stand-ins live only during the import, so other libraries still see no torchvision."""
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    try:
        import torchvision.transforms.functional  # noqa: F401
    except (ImportError, RuntimeError, OSError):
        stand_ins = {n: _Absent(n) for n in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")}
        sys.modules.update(stand_ins)
        try:
            import spandrel
        finally:
            for name, module in stand_ins.items():
                if sys.modules.get(name) is module:
                    del sys.modules[name]
    import spandrel

    return spandrel


class _Absent(types.ModuleType):
    """A stand-in for a missing module: any name imports, and using it raises."""

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _Unusable(f"{self.__name__}.{attribute}")


class _Unusable:
    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *args: object, **kwargs: object) -> Any:
        raise UpscalerError(f"{self._name} needs torchvision, which is not installed.")

    def __getattr__(self, attribute: str) -> Any:
        return _Unusable(f"{self._name}.{attribute}")
