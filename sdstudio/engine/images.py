"""Input hygiene and inpaint compositing: what goes into a pipeline and what comes out.

Everything here is PIL and numpy only (no torch), so it is cheap to import and to test.
A problem with the person's input raises `InputError`, whose text is shown to them as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sdstudio.engine.backend import MAX_UPSCALE
from sdstudio.engine.parameters import check, snap_to_8
from sdstudio.engine.request import MAX_IMAGE_SIDE, GenerationRequest, ImageData, Mode
from sdstudio.imaging import to_mask, to_rgb

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

    from sdstudio.engine.backend import Upscale

class InputError(ValueError):
    """The request or its images cannot be used; str(e) is a sentence for the person."""


def upscale_input(order: Upscale) -> Image:
    """The picture of an upscale job, checked: a factor above 1 and at most MAX_UPSCALE, an
    upscaler named, a result at most MAX_IMAGE_SIDE a side."""
    if not 1 < order.scale <= MAX_UPSCALE:
        raise InputError(f"Upscale by {order.scale:g}: the factor must be above 1 and at most {MAX_UPSCALE:g}.")
    if not order.upscaler:
        raise InputError("No upscaler was chosen.")
    image = _rgb(_decoded(order.image, "picture to upscale"))
    width, height = order.size(*image.size)
    if max(width, height) > MAX_IMAGE_SIDE:
        raise InputError(
            f"{image.width}x{image.height} upscaled by {order.scale:g} is {width}x{height}, past the largest side "
            f"({MAX_IMAGE_SIDE}): use a smaller factor."
        )
    return image


def checked_size(width: int, height: int) -> tuple[int, int, str | None]:
    """(width, height) snapped to multiples of 8, and a notice when that changed them (the
    range was checked with the other parameters, by `check_request`)."""
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


def check_request(request: GenerationRequest) -> None:
    """Refuse unusable parameter values (bounds and types from the parameter table) and
    missing images, before a model is loaded for nothing. Raises InputError."""
    problems = check(request.fields())
    if problems:
        raise InputError(" ".join(problems))
    if request.mode is not Mode.TXT2IMG and request.inputs.init_image is None:
        raise InputError(f"{request.mode.value} needs an init image: add one, or switch to txt2img.")
    if request.mode is Mode.INPAINT and request.inputs.mask is None:
        raise InputError("Inpaint needs a mask: paint the area to repaint.")


def prepare_inputs(request: GenerationRequest) -> PreparedInputs:
    """Normalise the images of a checked request whose model defaults are filled in (see
    `check_request`); raises InputError for images that cannot be used."""
    width, height, notice = checked_size(request.extent.width, request.extent.height)
    prepared = PreparedInputs(width, height, notices=[notice] if notice else [])
    if request.mode is Mode.TXT2IMG:
        return prepared
    init = _rgb(_decoded(request.inputs.init_image, "init image"))
    if min(init.size) < 8:
        raise InputError(f"The init image is {init.width}x{init.height}; use one between 8 and {MAX_IMAGE_SIDE} pixels a side.")
    resize_mode = request.extent.resize_mode
    if request.mode is Mode.IMG2IMG:
        prepared.init_image = fit_to(init, (width, height), resize_mode, "Init image", prepared.notices)
        return prepared

    mask = to_mask(_decoded(request.inputs.mask, "mask"))
    if mask.size != init.size:
        prepared.notices.append(f"Mask {mask.width}x{mask.height} resized to the image, {init.width}x{init.height}")
        mask = mask.resize(init.size)
    if mask.getbbox() is None:
        raise InputError("The mask is empty (all black): paint the area to repaint in white.")
    options = request.inpaint
    if not options.inpaint_only_masked:
        init, mask = (
            fit_to(init, (width, height), resize_mode, "Init image", prepared.notices),
            fit_to(mask, (width, height), resize_mode, None, prepared.notices),
        )
    alpha = _blurred(mask, options.mask_blur)
    box = (0, 0, init.width, init.height)
    if options.inpaint_only_masked:
        box = crop_box(alpha, options.inpaint_padding, (width, height), init.size)
    prepared.paste_back = PasteBack(original=init, alpha=alpha, box=box)
    prepared.init_image = _resized(init.crop(box), (width, height), None, prepared.notices)
    prepared.mask = alpha.crop(box).resize((width, height))
    return prepared


def _decoded(data: ImageData | None, what: str) -> Image:
    if data is None:
        raise InputError(f"The {what} is missing.")
    try:
        return data.open()
    except ValueError as exc:
        raise InputError(f"The {what} cannot be used: {exc}") from exc


def _rgb(image: Image) -> Image:
    try:
        return to_rgb(image)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def fit_to(image: Image, size: tuple[int, int], resize_mode: str, label: str | None, notices: list[str]) -> Image:
    """`image` at `size` by A1111's resize modes: "Just resize" stretches, "Crop and resize"
    scales to cover and crops the centre, "Resize and fill" scales to fit inside and fills the
    rest with the picture stretched underneath (a mask's fill is black: kept, not repainted)."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    if image.size == size or resize_mode == "Just resize":
        return _resized(image, size, label, notices)
    if label:
        notices.append(f"{label} {image.width}x{image.height} {resize_mode.lower()} to {size[0]}x{size[1]}")
    if resize_mode == "Crop and resize":
        return ImageOps.fit(image, size, PILImage.Resampling.LANCZOS)
    inner = ImageOps.contain(image, size, PILImage.Resampling.LANCZOS)
    fill = PILImage.new("L", size, 0) if image.mode == "L" else image.resize(size, PILImage.Resampling.LANCZOS)
    fill.paste(inner, ((size[0] - inner.width) // 2, (size[1] - inner.height) // 2))
    return fill


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
