"""The canvas in the real studio window: paint a mask, inpaint with the real engine on the tiny
model, pixels outside the (blurred) mask stay exactly as they were; results go back to the canvas."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from sdstudio.canvas import Brush
from sdstudio.engine.request import Mode
from tests.canvas.canvas_helpers import drag_image

FIELDS = {"width": 64, "height": 64, "steps": 2, "batch_size": 1, "batch_count": 1, "seed": 5, "prompt": "repaint"}


@pytest.fixture
def studio(make_window):  # noqa: F811
    from sdstudio.ui.canvas_panel import install_canvas

    window = make_window()
    install_canvas(window)
    window.apply_fields(FIELDS)
    return window


def noise(size=64, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), np.uint8), "RGB")


def test_painted_mask_inpaints_only_inside(studio, qtbot):
    canvas = studio.canvas
    studio.center.setCurrentWidget(canvas)
    picture = noise()
    canvas.set_image(picture)
    assert studio.params.current_mode() is Mode.IMG2IMG  # a picture on the canvas leaves txt2img
    studio.apply_fields({"mode": Mode.INPAINT, "mask_blur": 4, "inpaint_only_masked": False, "strength": 1.0})
    canvas.view.set_brush(Brush(size=10))
    drag_image(canvas.view, [(16.5, 32.5), (48.5, 32.5)])
    painted = canvas.mask()
    assert np.asarray(painted)[32, 16:49].min() == 255

    with qtbot.waitSignal(studio.controller.job_finished, timeout=120_000) as finished:
        studio.generate()
    event = finished.args[0]
    request = event.results[0].request
    assert request.mode is Mode.INPAINT
    assert request.inputs.mask.open().tobytes() == painted.tobytes()
    assert request.inputs.init_image.open().tobytes() == picture.tobytes()
    result = np.asarray(event.images[0].convert("RGB"))
    # Far enough from the painted stroke that no blur reaches: the input pixels, exactly.
    reach = np.asarray(painted.filter(ImageFilter.MaxFilter(2 * 12 + 1))) > 0
    before = np.asarray(picture)
    assert reach.sum() < 64 * 64  # there is an outside to check
    np.testing.assert_array_equal(result[~reach], before[~reach])
    assert not np.array_equal(result[32, 16:49], before[32, 16:49])  # inside was repainted

    # Another round: the result goes onto the canvas, the mask stays.
    studio.results.actions_by_name["inpaint"].trigger()
    assert studio.center.currentWidget() is canvas
    assert canvas.image().tobytes() == event.images[0].convert("RGB").tobytes()
    assert canvas.mask().tobytes() == painted.tobytes()


def test_canvas_errors_reach_the_banner_and_init_image_goes_to_canvas(studio, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    assert not studio.canvas.open_file(broken)
    assert "broken.png" in studio.banner.message.text()
    good = tmp_path / "init.png"
    Image.new("RGB", (60, 40), (1, 2, 3)).save(good)
    studio.open_init_image(str(good))  # File ▸ Open init image
    assert studio.canvas.image().size == (60, 40)
    assert "60×40" in studio.banner.message.text() and "resizes" in studio.banner.message.text()
    request = studio.build_request()
    assert request.mode is Mode.IMG2IMG and request.inputs.init_image.open().size == (60, 40)
    assert request.inputs.mask is None  # nothing painted: no mask
    studio.canvas.document.fill_mask()
    assert studio.build_request().inputs.mask is None  # img2img takes no mask
    studio.apply_fields({"mode": Mode.INPAINT})
    assert studio.build_request().inputs.mask.open().size == (60, 40)


def test_size_from_image_uses_the_canvas_picture(studio):
    studio.canvas.set_image(Image.new("RGB", (150, 100), "white"))
    studio.params.from_image.click()
    fields = studio.request_fields()
    assert (fields["width"], fields["height"]) == (152, 104)
