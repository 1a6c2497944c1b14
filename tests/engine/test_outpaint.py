"""Outpainting: growing a picture, its infills and seam mask (pure), and `--outpaint` end to end
on tiny regular and 9-channel inpaint models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdstudio.app import main as app_main
from sdstudio.cli import build_parser, request_from_args
from sdstudio.engine.backend import Capabilities
from sdstudio.imaging_outpaint import SEAM, Growth, Infill, generation_size, grow, outpaint_mask


def picture(width: int = 64, height: int = 48, seed: int = 2) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_growth_reads_four_whole_pixel_counts():
    assert Growth.parse("8, 0,16,0") == Growth(8, 0, 16, 0)
    for bad in ("8,0,16", "-8,0,0,0", "a,b,c,d", "0,0,0,0", "1.5,0,0,0"):
        with pytest.raises(ValueError):
            Growth.parse(bad)
    with pytest.raises(ValueError, match="largest side"):
        Growth(0, 0, 4000, 0).check((200, 100))


@pytest.mark.parametrize("infill", list(Infill))
def test_every_infill_keeps_the_old_pixels_and_fills_the_new_area(infill):
    image = picture()
    growth = Growth(5, 7, 11, 3)
    grown = grow(image, growth, infill, seed=1)
    assert grown.size == (80, 58)
    assert np.array_equal(np.asarray(grown)[7:55, 5:69], np.asarray(image))


@pytest.mark.parametrize("infill", [Infill.EDGE, Infill.TELEA, Infill.NAVIER_STOKES])
def test_smooth_infills_continue_the_border_colour(infill):
    image = Image.new("RGB", (40, 30), (200, 40, 90))
    grown = np.asarray(grow(image, Growth(0, 0, 24, 10), infill), np.int16)
    assert np.abs(grown - np.array([200, 40, 90])).max() <= 8  # not black, not noise


def test_noise_infill_follows_its_seed():
    image = picture()
    growth = Growth(0, 16, 0, 0)
    assert grow(image, growth, Infill.NOISE, seed=3) == grow(image, growth, Infill.NOISE, seed=3)
    assert grow(image, growth, Infill.NOISE, seed=3) != grow(image, growth, Infill.NOISE, seed=4)


def test_the_mask_covers_the_new_area_and_fades_over_the_seam():
    mask = np.asarray(outpaint_mask((64, 48), Growth(0, 0, 32, 0), seam=8))
    assert mask.shape == (48, 96)
    assert (mask[:, 64:] == 255).all()
    assert (mask[:, : 64 - 8] == 0).all()  # the old picture beyond the seam is kept
    row = mask[20, 56:64]
    assert list(row) == sorted(row) and row[0] > 0 and row[-1] == 255  # a ramp up to the new area
    corner = np.asarray(outpaint_mask((64, 48), Growth(4, 4, 0, 0), seam=8))
    assert (corner[4 + 8 :, 4 + 8 :] == 0).all() and corner[4, 30] == 255 and corner[30, 4] == 255


def test_the_crop_follows_the_new_area():
    mask = outpaint_mask((512, 512), Growth(0, 0, 64, 0))
    assert generation_size(mask, margin=44) == (168, 512)  # 64 + 16 seam + 2 × 44, not 576
    assert generation_size(outpaint_mask((40, 30), Growth(0, 0, 8, 0)), margin=0) == (64, 64)


CAPABILITIES = Capabilities(name="test", samplers=("Euler a", "Euler"), families=frozenset(), features=frozenset())


def _request(*args: str):
    return request_from_args(build_parser().parse_args(["--prompt", "sea", "--out", "x", *args]), CAPABILITIES)


def test_outpaint_options_make_an_only_masked_inpaint_at_the_crop_size(tmp_path):
    init = tmp_path / "in.png"
    picture(256, 256).save(init)
    request = _request("--init", str(init), "--outpaint", "0,0,64,0", "--infill", "telea")
    assert request.mode == "inpaint" and request.inpaint.inpaint_only_masked
    assert request.inputs.init_image.open().size == request.inputs.mask.open().size == (320, 256)
    assert (request.extent.width, request.extent.height) == (64 + SEAM + 2 * (32 + 12), 256)
    assert _request("--init", str(init), "--outpaint", "0,0,64,0", "--width", "128").extent.width == 128


@pytest.mark.parametrize("args", [["--outpaint", "0,0,8,0"], ["--outpaint", "1,2"],
                                  ["--outpaint", "0,0,8,0", "--init", "{init}", "--mask", "{init}"],
                                  ["--outpaint", "0,0,8,0", "--init", "{init}", "--mode", "img2img"]])
def test_outpaint_refuses_what_it_cannot_do(tmp_path, capsys, args):
    init = tmp_path / "in.png"
    picture().save(init)
    args = [a.format(init=init) for a in args]
    assert app_main(["generate", "--prompt", "sea", "--out", str(tmp_path / "out"), *args]) == 2
    assert "outpaint" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tiny_sd1", "tiny_sd1_inpaint"])
def test_outpainting_grows_the_picture_and_keeps_the_old_pixels(model, request, tmp_path, capsys):
    init = tmp_path / "in.png"
    old = picture(64, 64)
    old.save(init)
    status = app_main(["generate", "--model", str(request.getfixturevalue(model)), "--prompt", "sea", "--steps", "2",
                       "--seed", "5", "--init", str(init), "--outpaint", "0,0,32,0", "--mask-blur", "2",
                       "--out", str(tmp_path / "out")])
    assert status == 0, capsys.readouterr().err
    result = np.asarray(Image.open(Path(capsys.readouterr().out.strip())).convert("RGB"))
    assert result.shape == (64, 96, 3)
    band = SEAM + 3 * 2  # the seam and the mask blur's reach
    assert np.array_equal(result[:, : 64 - band], np.asarray(old)[:, : 64 - band])
    infill = np.asarray(grow(old, Growth(0, 0, 32, 0)))
    assert not np.array_equal(result[:, 64:], infill[:, 64:])  # the new area was painted
