"""Input hygiene and inpaint compositing: what goes into a pipeline and what comes out.

Everything here is PIL and numpy only (no torch), so it is cheap to import and to test.
A problem with the person's input raises `InputError`, whose text is shown to them as is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sdstudio.engine.request import GenerationRequest, Mode

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

MIN_SIDE = 64
MAX_SIDE = 4096
MAX_INIT_SIDE = 8192  # an init image is only ever cropped or resized, so it may exceed MAX_SIDE
MAX_BATCH_SIZE = 16
MAX_STEPS = 500
MAX_MASK_BLUR = 256
# Transparent pixels of an init image become white: A1111 flattens RGBA onto white by default
# (its img2img background colour is #ffffff), so the same file gives the same init image here,
# and a cut-out with transparency is usually meant to be seen on a light page.
ALPHA_BACKGROUND = (255, 255, 255)


class InputError(ValueError):
    """The request or its images cannot be used; str(e) is a sentence for the person."""


def to_rgb(image: Image) -> Image:
    """An 8-bit RGB copy of any PIL image: EXIF rotation applied, transparency flattened onto
    white, 16-bit and float greyscale scaled down instead of clipped."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        image = _high_depth_to_l(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return PILImage.alpha_composite(background, rgba).convert("RGB")
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise InputError(f"Images in mode {image.mode} are not supported; save it as RGB PNG or JPEG.") from exc


def to_mask(mask: Image) -> Image:
    """A mode "L" mask (white = repaint). Transparent pixels count as "keep" (black), so a
    stroke layer with transparency works as well as a black-and-white picture."""
    from PIL import ImageChops, ImageOps

    mask = ImageOps.exif_transpose(mask)
    if mask.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return _high_depth_to_l(mask)
    if mask.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in mask.info:
        rgba = mask.convert("RGBA")
        return ImageChops.multiply(rgba.convert("L"), rgba.getchannel("A"))
    return mask.convert("L")


def _high_depth_to_l(image: Image) -> Image:
    """16-bit/32-bit/float greyscale to 8-bit L by scaling, where PIL's convert would clip."""
    import numpy as np
    from PIL import Image as PILImage

    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        scale = 255.0 if values.size and np.nanmax(values) <= 1.0 else 1.0
    elif image.mode.startswith("I;16") or (values.size and values.max() > 255):
        scale = 255.0 / 65535.0
    else:
        scale = 1.0
    values = np.nan_to_num(values * scale).clip(0, 255).round().astype(np.uint8)
    return PILImage.fromarray(values, mode="L")


def snap_to_8(value: int) -> int:
    """The nearest multiple of 8 (halves round up), as the VAE needs."""
    return max(8, (int(value) + 4) // 8 * 8)


def checked_size(width: int, height: int) -> tuple[int, int, str | None]:
    """(width, height) snapped to multiples of 8, and a notice when that changed them.
    Raises InputError for sizes outside MIN_SIDE..MAX_SIDE."""
    for name, value in (("width", width), ("height", height)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise InputError(f"The {name} {value} is out of range: use {MIN_SIDE} to {MAX_SIDE} pixels.")
    w, h = snap_to_8(width), snap_to_8(height)
    notice = None
    if (w, h) != (width, height):
        notice = f"Size {width}x{height} -> {w}x{h} (width and height must be multiples of 8)"
    return w, h, notice


@dataclass
class PasteBack:
    """How a generated inpaint image goes back into the original: inside `box` of
    `original`, blended by `alpha` (the blurred mask, original size). Where alpha is 0 the
    result keeps the original pixels exactly."""

    original: Image
    alpha: Image
    box: tuple[int, int, int, int]

    def apply(self, generated: Image) -> Image:
        from PIL import Image as PILImage

        left, top, right, bottom = self.box
        size = (right - left, bottom - top)
        if generated.size != size:
            generated = generated.resize(size, PILImage.Resampling.LANCZOS)
        region = PILImage.composite(generated.convert("RGB"), self.original.crop(self.box), self.alpha.crop(self.box))
        result = self.original.copy()
        result.paste(region, (left, top))
        return result


@dataclass
class PreparedInputs:
    """A request's inputs, checked and ready for the pipeline."""

    width: int
    height: int
    init_image: Image | None = None  # RGB at width x height
    mask: Image | None = None  # L at width x height, blurred (what the pipeline repaints)
    paste_back: PasteBack | None = None
    notices: list[str] = field(default_factory=list)


def prepare_inputs(request: GenerationRequest) -> PreparedInputs:
    """Check every field and image of `request`; normalise the images. Raises InputError."""
    _check_numbers(request)
    width, height, notice = checked_size(request.width, request.height)
    prepared = PreparedInputs(width, height, notices=[notice] if notice else [])
    if request.mode is Mode.TXT2IMG:
        return prepared
    if request.init_image is None:
        raise InputError(f"{request.mode.value} needs an init image: add one, or switch to txt2img.")
    init = to_rgb(request.init_image)
    if max(init.size) > MAX_INIT_SIDE or min(init.size) < 8:
        raise InputError(f"The init image is {init.width}x{init.height}; use one between 8 and {MAX_INIT_SIDE} pixels a side.")
    if request.mode is Mode.IMG2IMG:
        prepared.init_image = _resized(init, (width, height), "Init image", prepared.notices)
        return prepared

    if request.mask is None:
        raise InputError("Inpaint needs a mask: paint the area to repaint.")
    mask = to_mask(request.mask)
    if mask.size != init.size:
        prepared.notices.append(f"Mask {mask.width}x{mask.height} resized to the image, {init.width}x{init.height}")
        mask = mask.resize(init.size)
    if mask.getbbox() is None:
        raise InputError("The mask is empty (all black): paint the area to repaint in white.")
    if not request.inpaint_only_masked:
        init = _resized(init, (width, height), "Init image", prepared.notices)
        mask = mask.resize((width, height)) if mask.size != init.size else mask
    alpha = _blurred(mask, request.mask_blur)
    box = (0, 0, init.width, init.height)
    if request.inpaint_only_masked:
        box = crop_box(alpha, request.inpaint_padding, (width, height), init.size)
    prepared.paste_back = PasteBack(original=init, alpha=alpha, box=box)
    prepared.init_image = _resized(init.crop(box), (width, height), None, prepared.notices)
    prepared.mask = alpha.crop(box).resize((width, height))
    return prepared


def _check_numbers(request: GenerationRequest) -> None:
    if not isinstance(request.prompt, str) or not isinstance(request.negative_prompt, str):
        raise InputError("The prompt and the negative prompt must be text.")
    if not 1 <= request.steps <= MAX_STEPS:
        raise InputError(f"Steps must be 1 to {MAX_STEPS}, not {request.steps}.")
    if not 1 <= request.batch_size <= MAX_BATCH_SIZE:
        raise InputError(f"Batch size must be 1 to {MAX_BATCH_SIZE}, not {request.batch_size}.")
    if request.batch_count < 1:
        raise InputError(f"Batch count must be at least 1, not {request.batch_count}.")
    if not math.isfinite(request.cfg_scale) or not 0 <= request.cfg_scale <= 100:
        raise InputError(f"CFG scale must be 0 to 100, not {request.cfg_scale}.")
    if request.mode is not Mode.TXT2IMG and not 0 < request.strength <= 1:
        raise InputError(f"Denoising strength must be above 0 and at most 1, not {request.strength}.")
    if not 0 <= request.mask_blur <= MAX_MASK_BLUR:
        raise InputError(f"Mask blur must be 0 to {MAX_MASK_BLUR}, not {request.mask_blur}.")
    if request.inpaint_padding < 0:
        raise InputError(f"Masked area padding cannot be negative ({request.inpaint_padding}).")
    if not -1 <= request.seed < 2**63:
        raise InputError(f"The seed must be -1 (random) or a number from 0 to 2^63, not {request.seed}.")


def _resized(image: Image, size: tuple[int, int], label: str | None, notices: list[str]) -> Image:
    from PIL import Image as PILImage

    if image.size == size:
        return image
    if label:
        notices.append(f"{label} {image.width}x{image.height} resized to {size[0]}x{size[1]}")
    return image.resize(size, PILImage.Resampling.LANCZOS)


def _blurred(mask: Image, radius: int) -> Image:
    from PIL import ImageFilter

    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else mask


def crop_box(
    alpha: Image, padding: int, target: tuple[int, int], image_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The "inpaint only masked" region: the mask's bounding box plus `padding`, widened to the
    aspect of `target` (so the resize to the generation size does not distort), and kept
    inside the image (where it would not fit, the image's own side is used)."""
    left, top, right, bottom = alpha.getbbox() or (0, 0, *image_size)
    left, top = left - padding, top - padding
    right, bottom = right + padding, bottom + padding
    img_w, img_h = image_size
    w, h = right - left, bottom - top
    aspect = target[0] / target[1]
    if w / h < aspect:
        w = round(h * aspect)
    else:
        h = round(w / aspect)
    w, h = min(w, img_w), min(h, img_h)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    left = int(min(max(round(cx - w / 2), 0), img_w - w))
    top = int(min(max(round(cy - h / 2), 0), img_h - h))
    return left, top, left + w, top + h


def check_output(images: np.ndarray) -> None:
    """Refuse decoded images (float, 0..1, NHWC) that are NaN or entirely black: that is what
    an fp16 VAE overflow produces, and a black picture would otherwise be saved silently."""
    import numpy as np

    if np.isnan(images).any():
        raise BadOutputError(
            "The VAE produced NaN (not a number) pixels, usually a float16 overflow. "
            "Try a fp32 VAE or run with dtype float32 (--dtype float32)."
        )
    if images.size and float(images.max()) <= 0.0:
        raise BadOutputError(
            "The image came out entirely black, usually a float16 VAE overflow. "
            "Try a fp32 VAE or run with dtype float32 (--dtype float32)."
        )


class BadOutputError(RuntimeError):
    """The pipeline ran but its pictures are unusable (NaN or black); str(e) is for a person."""
