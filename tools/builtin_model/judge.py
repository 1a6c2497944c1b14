"""Judging a picture of a scene: which colour dominates the foreground, and which shape it is.

The shape judge is a template matcher "trained" on the generator's own renderings: the
foreground mask is cropped to its bounding box, resized to a small square, and compared
(IoU) with templates of every shape rendered by `scenes.py` at several sizes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from tools.builtin_model.scenes import COLOURS, SHAPES, SIZE, _shape_mask

GRID = 24
PALETTE = np.array(list(COLOURS.values()), np.float32)
NAMES = list(COLOURS)


def nearest_colours(img: np.ndarray) -> np.ndarray:
    """Index of the nearest palette colour for every pixel (HxW)."""
    d = ((img[..., None, :].astype(np.float32) - PALETTE) ** 2).sum(-1)
    return d.argmin(-1)


def border_colour(img: np.ndarray, width: int = 4) -> str:
    """The palette colour most frequent on the picture's outer ring: its actual background."""
    idx = nearest_colours(img)
    ring = np.concatenate([idx[:width].ravel(), idx[-width:].ravel(), idx[:, :width].ravel(),
                           idx[:, -width:].ravel()])
    return NAMES[int(np.bincount(ring, minlength=len(NAMES)).argmax())]


def foreground_mask(img: np.ndarray, background: str) -> np.ndarray:
    """Pixels that are not the background colour (nor its darker gradient end)."""
    return nearest_colours(img) != NAMES.index(background)


def dominant_colour(img: np.ndarray, background: str, mask: np.ndarray | None = None) -> str | None:
    """The most frequent non-background palette colour (None if almost nothing is there)."""
    idx = nearest_colours(img)
    keep = idx != NAMES.index(background)
    if mask is not None:
        keep &= mask
    counts = np.bincount(idx[keep], minlength=len(NAMES))
    if counts.sum() < 0.005 * idx.size:
        return None
    return NAMES[int(counts.argmax())]


def _normalise(mask: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(mask)
    if len(ys) < 12:
        return None
    crop = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.uint8) * 255
    small = Image.fromarray(crop).resize((GRID, GRID), Image.BILINEAR)
    return np.asarray(small) > 127


@lru_cache(maxsize=1)
def _templates() -> list[tuple[str, np.ndarray]]:
    out = []
    for kind in SHAPES:
        for r in (16.0, 20.0, 26.0, 32.0):
            t = _normalise(_shape_mask(kind, SIZE / 2, SIZE / 2, r) > 0.5)
            if t is not None:
                out.append((kind, t))
    return out


def classify_shape(mask: np.ndarray) -> str | None:
    """The shape whose template best overlaps the largest foreground blob's normalised mask."""
    norm = _normalise(_largest_component(mask))
    if norm is None:
        return None
    best, best_iou = None, -1.0
    for kind, t in _templates():
        iou = (norm & t).sum() / max(1, (norm | t).sum())
        if iou > best_iou:
            best, best_iou = kind, iou
    return best


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region (stray specks must not stretch the bounding box)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    return labels == (1 + int(np.argmax(sizes)))
