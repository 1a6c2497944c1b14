"""Any picture a person brings, as the 8-bit RGB image or L mask the studio works on.

One normalisation for the canvas (what is shown and painted on) and the engine (what is
generated from): EXIF rotation applied, transparency flattened onto white, 16-bit and float
greyscale scaled down instead of clipped. PIL and numpy only: no Qt, no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

# Transparent pixels of an init image become white: A1111 flattens RGBA onto white by default
# (its img2img background colour is #ffffff), so the same file gives the same init image here,
# and a cut-out with transparency is usually meant to be seen on a light page.
ALPHA_BACKGROUND = (255, 255, 255)


def to_rgb(image: Image) -> Image:
    """An 8-bit RGB copy of any PIL image: EXIF rotation applied, transparency flattened onto
    white, 16-bit and float greyscale scaled down instead of clipped."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        image = high_depth_to_l(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return PILImage.alpha_composite(background, rgba).convert("RGB")
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise ValueError(f"Images in mode {image.mode} are not supported; save it as RGB PNG or JPEG.") from exc


def to_mask(mask: Image) -> Image:
    """A mode "L" mask (white = repaint). Transparent pixels count as "keep" (black), so a
    stroke layer with transparency works as well as a black-and-white picture."""
    from PIL import ImageChops, ImageOps

    mask = ImageOps.exif_transpose(mask)
    if mask.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return high_depth_to_l(mask)
    if mask.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in mask.info:
        rgba = mask.convert("RGBA")
        return ImageChops.multiply(rgba.convert("L"), rgba.getchannel("A"))
    return mask.convert("L")


def high_depth_to_l(image: Image) -> Image:
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
