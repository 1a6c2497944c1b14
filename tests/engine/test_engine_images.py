"""Input hygiene and inpaint paste-back (PIL and numpy only, no model)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from sdstudio.engine.images import (
    BadOutputError,
    InputError,
    PasteBack,
    check_output,
    check_request,
    checked_size,
    crop_box,
    prepare_inputs,
    snap_to_8,
)
from sdstudio.engine.request import GenerationRequest, Inputs, Mode
from sdstudio.imaging import to_mask, to_rgb


def noise(size=(64, 64), seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def square_mask(size=(64, 64), box=(20, 20, 44, 44)) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


# ---- normalising images ----------------------------------------------------------------------


def test_transparent_pixels_become_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    rgb = to_rgb(rgba)
    assert rgb.mode == "RGB"
    assert rgb.getpixel((1, 1)) == (255, 255, 255)
    assert rgb.getpixel((0, 0)) == (0, 0, 255)


def test_palette_with_transparency_is_flattened():
    image = Image.new("P", (4, 4), 0)
    image.putpalette([10, 20, 30] + [200, 100, 50] * 255)
    image.info["transparency"] = 0
    image.putpixel((2, 2), 1)
    rgb = to_rgb(image)
    assert rgb.getpixel((0, 0)) == (255, 255, 255) and rgb.getpixel((2, 2)) == (200, 100, 50)


def test_16_bit_greyscale_is_scaled_not_clipped():
    values = np.array([[0, 32768], [65535, 1000]], dtype=np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="PNG")  # a real 16-bit PNG
    buffer.seek(0)
    rgb = to_rgb(Image.open(buffer))
    assert rgb.getpixel((0, 0)) == (0, 0, 0)
    assert rgb.getpixel((1, 0))[0] == 128
    assert rgb.getpixel((0, 1)) == (255, 255, 255)


def test_exif_rotation_is_applied():
    wide = Image.new("RGB", (40, 20), (0, 255, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    wide.save(buffer, format="JPEG", exif=exif)
    buffer.seek(0)
    assert to_rgb(Image.open(buffer)).size == (20, 40)


def test_mask_from_strokes_with_transparency():
    strokes = Image.new("RGBA", (8, 8), (255, 255, 255, 0))
    strokes.putpixel((3, 3), (255, 255, 255, 255))
    mask = to_mask(strokes)
    assert mask.mode == "L"
    assert mask.getpixel((3, 3)) == 255 and mask.getpixel((0, 0)) == 0


def test_rgb_mask_becomes_l():
    assert to_mask(Image.new("RGB", (4, 4), (255, 255, 255))).getpixel((0, 0)) == 255


# ---- sizes -----------------------------------------------------------------------------------


def test_sizes_snap_to_the_nearest_multiple_of_8():
    assert [snap_to_8(v) for v in (512, 515, 516, 100)] == [512, 512, 520, 104]
    assert checked_size(512, 512) == (512, 512, None)
    w, h, notice = checked_size(512, 515)
    assert (w, h) == (512, 512) and "512x515 -> 512x512" in notice


@pytest.mark.parametrize(("w", "h"), [(4097, 512), (512, 63), (0, 512), (-8, 64)])
def test_absurd_sizes_are_refused(w, h):
    with pytest.raises(InputError, match=r"(Width|Height) must be 64 to 4096"):
        check_request(request(width=w, height=h))


# ---- whole requests --------------------------------------------------------------------------


def request(**fields) -> GenerationRequest:
    fields.setdefault("prompt", "x")
    fields.setdefault("width", 64)
    fields.setdefault("height", 64)
    images = {k: fields.pop(k) for k in ("init_image", "mask") if k in fields}
    return GenerationRequest.create(inputs=Inputs.from_pil(**images), **fields)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"mode": Mode.IMG2IMG}, "init image"),
        ({"mode": Mode.INPAINT, "init_image": noise()}, "mask"),
        ({"mode": Mode.IMG2IMG, "init_image": noise(), "strength": 1.5}, "Strength must be 0 to 1"),
        ({"cfg_scale": float("nan")}, "CFG scale must be a finite number"),
        ({"steps": 0}, "Steps must be 1 to 150"),
        ({"steps": "20"}, "Steps must be a whole number"),
        ({"batch_count": 0}, "Batch count"),
        ({"batch_size": True}, "Batch size must be a whole number"),
        ({"mode": Mode.INPAINT, "init_image": noise(), "mask": square_mask(), "mask_blur": -1}, "blur"),
        ({"mode": Mode.INPAINT, "init_image": noise(), "mask": square_mask(), "inpaint_padding": -4}, "Padding"),
        ({"seed": -5}, "Seed must be 0 to 4294967295"),
        ({"seed": 2**32}, "Seed must be 0 to 4294967295"),
        ({"mode": "sketch"}, "Mode must be one of"),
    ],
)
def test_bad_requests_are_refused_with_a_sentence(fields, words):
    with pytest.raises(InputError, match=words):
        check_request(request(**fields))


def test_parameters_of_other_modes_are_not_checked():
    """A txt2img request may carry any leftover strength or blur from the panel."""
    check_request(request(strength=7.0, mask_blur=-3))


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"mode": Mode.INPAINT, "init_image": noise(), "mask": Image.new("L", (64, 64), 0)}, "empty"),
        ({"mode": Mode.IMG2IMG, "init_image": Image.new("RGB", (9000, 10))}, "at most 8192"),
    ],
)
def test_unusable_images_are_refused_with_a_sentence(fields, words):
    with pytest.raises(InputError, match=words):
        prepare_inputs(request(**fields))


def test_a_header_declaring_a_huge_image_is_refused_before_decoding():
    """13000x13000 declared in a small file: refused from the header, never decoded."""
    from sdstudio.engine.request import ImageData

    buffer = io.BytesIO()
    Image.new("L", (13000, 13000)).save(buffer, format="PNG")
    data = ImageData(buffer.getvalue())
    assert len(data.data) < 1_000_000
    with pytest.raises(ValueError, match="at most 8192"):
        data.open()



def test_img2img_init_image_is_resized_with_a_notice():
    prepared = prepare_inputs(request(mode=Mode.IMG2IMG, init_image=noise((80, 64)).convert("RGBA")))
    assert prepared.init_image.size == (64, 64) and prepared.init_image.mode == "RGB"
    assert any("80x64 resized to 64x64" in n for n in prepared.notices)


def test_mask_is_resized_to_the_image_with_a_notice():
    prepared = prepare_inputs(request(mode=Mode.INPAINT, init_image=noise(), mask=square_mask((32, 32), (8, 8, 16, 16))))
    assert prepared.mask.size == (64, 64) and prepared.mask.mode == "L"
    assert any("Mask 32x32 resized" in n for n in prepared.notices)


def test_inpaint_mask_is_feathered_by_mask_blur():
    prepared = prepare_inputs(request(mode=Mode.INPAINT, mask_blur=4, init_image=noise(), mask=square_mask()))
    values = set(np.unique(np.asarray(prepared.mask)))
    assert len(values) > 2  # soft edge
    assert prepared.paste_back.box == (0, 0, 64, 64)


# ---- inpaint only masked ---------------------------------------------------------------------


def test_crop_box_has_the_target_aspect_and_stays_inside():
    mask = square_mask((200, 100), (90, 40, 110, 60))
    left, top, right, bottom = crop_box(mask, 10, (64, 64), mask.size)
    assert right - left == bottom - top == 40
    assert (left, top) == (80, 30)
    wide = crop_box(mask, 10, (128, 64), mask.size)
    assert (wide[2] - wide[0]) == 2 * (wide[3] - wide[1])
    corner = crop_box(square_mask((200, 100), (0, 0, 10, 10)), 20, (64, 64), (200, 100))
    assert corner[0] == 0 and corner[1] == 0 and corner[2] - corner[0] == corner[3] - corner[1]
    huge = crop_box(square_mask((200, 100), (0, 0, 200, 100)), 50, (64, 64), (200, 100))
    assert huge == (0, 0, 200, 100)  # bigger than the image: the whole image


def test_only_masked_prepares_a_crop_at_generation_size():
    original = noise((200, 100))
    mask = square_mask((200, 100), (150, 10, 170, 30))
    prepared = prepare_inputs(request(mode=Mode.INPAINT,
                                      inpaint_only_masked=True, inpaint_padding=8, mask_blur=0, init_image=original, mask=mask))
    assert prepared.init_image.size == (64, 64) and prepared.mask.size == (64, 64)
    box = prepared.paste_back.box
    assert box[0] <= 142 and box[2] >= 178 and box[2] - box[0] == box[3] - box[1]


@pytest.mark.parametrize("blur", [0, 6])
def test_paste_back_keeps_every_unmasked_pixel_exactly(blur):
    original = noise((120, 90), seed=3)
    mask = square_mask((120, 90), (50, 30, 80, 60))
    alpha = mask.filter(ImageFilter.GaussianBlur(blur)) if blur else mask
    box = crop_box(alpha, 16, (64, 64), original.size)
    generated = Image.new("RGB", (64, 64), (0, 255, 0))
    result = PasteBack(original, alpha, box).apply(generated)
    outside = np.asarray(alpha) == 0
    assert result.size == original.size
    assert np.array_equal(np.asarray(result)[outside], np.asarray(original)[outside])
    assert np.abs(np.asarray(result, dtype=int)[45, 65] - [0, 255, 0]).max() <= 3


# ---- output checks ---------------------------------------------------------------------------


def test_nan_and_black_outputs_are_refused():
    fine = np.full((1, 8, 8, 3), 0.5, dtype=np.float32)
    check_output(fine)
    with pytest.raises(BadOutputError, match="float32"):
        check_output(np.where(fine > 0, np.nan, fine))
    with pytest.raises(BadOutputError, match="black"):
        check_output(np.zeros_like(fine))


def _bands(size=(160, 80)) -> Image.Image:
    """Green, red, blue vertical bands (a quarter, a half, a quarter): what survives at the
    left edge shows how the picture was placed."""
    image = Image.new("RGB", size, (255, 0, 0))
    image.paste((0, 255, 0), (0, 0, size[0] // 4, size[1]))
    image.paste((0, 0, 255), (size[0] * 3 // 4, 0, size[0], size[1]))
    return image


@pytest.mark.parametrize(
    ("resize_mode", "left_edge"),
    [
        ("Just resize", (0, 255, 0)),  # stretched: every band, squeezed sideways
        ("Crop and resize", (255, 0, 0)),  # covered and cropped: the outer bands are cut off
        ("Resize and fill", (0, 255, 0)),  # fitted inside: every band at its own aspect
    ],
)
def test_resize_modes_place_the_init_image(resize_mode, left_edge):
    prepared = prepare_inputs(request(mode=Mode.IMG2IMG, init_image=_bands(), resize_mode=resize_mode))
    assert prepared.init_image.size == (64, 64)
    pixel = prepared.init_image.getpixel((2, 32))
    assert np.abs(np.subtract(pixel, left_edge)).max() < 40, pixel


def test_resize_and_fill_keeps_the_whole_picture_unsquashed():
    tall = Image.new("RGB", (32, 64), (0, 255, 0))
    tall.paste((255, 0, 0), (0, 0, 32, 8))  # a red band on top, 1/8 of the height
    prepared = prepare_inputs(request(mode=Mode.IMG2IMG, init_image=tall, resize_mode="Resize and fill"))
    pixels = np.asarray(prepared.init_image)
    assert (pixels[10:60, 20:44, 1] > 200).all()  # the picture itself, 32 px wide, in the middle
    assert pixels[2, 32, 0] > 200 and pixels[12, 32, 1] > 200  # its red top kept at 1/8, not stretched
