"""Outpainting's pictures: grow a picture by some pixels on each side, fill the new area with a
first guess (the infill) and make the mask that repaints the new area with a feathered seam.

Pure PIL/numpy (OpenCV for the Telea and Navier-Stokes infills), no torch and no Qt, so the
canvas and the command line share it. The old picture's pixels farther than `seam` from the new
area are black in the mask: an "only masked" inpaint leaves them exactly as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from PIL import Image, ImageFilter

MAX_SIDE = 4096  # the engine's largest side
SEAM = 16  # pixels of the old picture the mask fades over, so the new area blends in
MIN_GENERATION_SIDE = 64


class Infill(StrEnum):
    EDGE = "edge"  # the border pixels stretched outward, then blurred
    TELEA = "telea"  # OpenCV's fast marching inpainting
    NAVIER_STOKES = "navier-stokes"  # OpenCV's fluid-dynamics inpainting
    NOISE = "noise"  # random colours: the model invents everything


@dataclass(frozen=True)
class Growth:
    """Pixels added on each side."""

    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0

    @classmethod
    def parse(cls, text: str) -> Growth:
        """From "LEFT,TOP,RIGHT,BOTTOM" (whole pixels, not negative, at least one above 0);
        ValueError with a sentence otherwise."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            raise ValueError(f"outpaint takes LEFT,TOP,RIGHT,BOTTOM in whole pixels, not {text!r}")
        growth = cls(*(int(p) for p in parts))
        if growth.is_empty():
            raise ValueError("outpaint needs at least one side above 0 pixels")
        return growth

    def is_empty(self) -> bool:
        return not (self.left or self.top or self.right or self.bottom)

    def grown_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return size[0] + self.left + self.right, size[1] + self.top + self.bottom

    def check(self, size: tuple[int, int]) -> None:
        """ValueError when the grown picture would pass the largest side."""
        width, height = self.grown_size(size)
        if max(width, height) > MAX_SIDE:
            raise ValueError(f"outpainting {size[0]}x{size[1]} makes {width}x{height}, past the largest side ({MAX_SIDE})")


def grow(image: Image.Image, growth: Growth, infill: Infill = Infill.EDGE, seed: int = 0) -> Image.Image:
    """`image` (RGB) on a larger canvas at (left, top), the new area filled by `infill`; the
    old pixels are copied unchanged."""
    growth.check(image.size)
    pixels = np.asarray(image.convert("RGB"))
    pad = ((growth.top, growth.bottom), (growth.left, growth.right), (0, 0))
    if infill is Infill.EDGE:
        stretched = Image.fromarray(np.pad(pixels, pad, mode="edge"))
        # Blur by the growth's size: stretched edges turn into soft colour fields, not streaks.
        radius = max(growth.left, growth.top, growth.right, growth.bottom) / 4
        filled = np.asarray(stretched.filter(ImageFilter.GaussianBlur(radius)))
    elif infill is Infill.NOISE:
        filled = np.random.default_rng(seed).integers(0, 256, (*_hw(growth.grown_size(image.size)), 3), dtype=np.uint8)
    else:
        import cv2

        method = cv2.INPAINT_TELEA if infill is Infill.TELEA else cv2.INPAINT_NS
        new_area = np.asarray(new_area_mask(image.size, growth))
        filled = cv2.inpaint(np.pad(pixels, pad), new_area, 3, method)
    out = np.array(filled, dtype=np.uint8)
    out[growth.top : growth.top + image.height, growth.left : growth.left + image.width] = pixels
    return Image.fromarray(out)


def new_area_mask(size: tuple[int, int], growth: Growth) -> Image.Image:
    """The grown canvas's mask (L): white on the new area, black on the old picture."""
    mask = Image.new("L", growth.grown_size(size), 255)
    mask.paste(0, (growth.left, growth.top, growth.left + size[0], growth.top + size[1]))
    return mask


def outpaint_mask(size: tuple[int, int], growth: Growth, seam: int = SEAM) -> Image.Image:
    """The inpaint mask of the grown canvas (L): white on the new area, fading to black over
    `seam` pixels into the old picture along each grown side; black elsewhere."""
    width, height = size
    x = np.arange(width, dtype=np.float32)
    y = np.arange(height, dtype=np.float32)
    # Distance of each old pixel from the nearest grown side (sides not grown are far away).
    far = seam + 1
    dx = np.minimum(x + 1 if growth.left else far, width - x if growth.right else far) * np.ones_like(x)
    dy = np.minimum(y + 1 if growth.top else far, height - y if growth.bottom else far) * np.ones_like(y)
    distance = np.minimum(dx[None, :], dy[:, None])
    ramp = np.clip(1 - (distance - 1) / max(seam, 1), 0, 1) if seam > 0 else np.zeros_like(distance)
    mask = np.asarray(new_area_mask(size, growth)).copy()
    mask[growth.top : growth.top + height, growth.left : growth.left + width] = np.round(ramp * 255).astype(np.uint8)
    return Image.fromarray(mask)


def generation_size(mask: Image.Image, margin: int) -> tuple[int, int]:
    """The size to draw an "only masked" crop at so its cost follows the masked area: the
    mask's box plus `margin` each side (the inpaint padding and the mask blur's reach), within
    the picture, in multiples of 8 and at least MIN_GENERATION_SIDE a side."""
    left, top, right, bottom = mask.getbbox() or (0, 0, *mask.size)
    width = min(right - left + 2 * margin, mask.width)
    height = min(bottom - top + 2 * margin, mask.height)
    return _snap(width), _snap(height)


def _snap(side: int) -> int:
    return max(MIN_GENERATION_SIDE, (side + 7) // 8 * 8)


def _hw(size: tuple[int, int]) -> tuple[int, int]:
    return size[1], size[0]
