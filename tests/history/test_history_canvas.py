"""The gallery and the canvas page: "To inpaint" opens the image on the canvas, and reusing
an inpaint image puts its init image and mask back."""

from __future__ import annotations

import pytest
from PIL import Image

from sdstudio.engine.request import GenerationRequest, Inputs, Mode
from sdstudio.settings import SettingsStore
from sdstudio.ui.canvas_panel import install_canvas
from sdstudio.ui.history_dock import install_history
from sdstudio.ui.main_window import MainWindow
from tests.jobs import finished


@pytest.fixture
def studio(qtbot, tmp_path):
    window = MainWindow(SettingsStore(tmp_path / "settings.json"), backend_factory=lambda: None)
    qtbot.addWidget(window)
    install_canvas(window)
    panel = install_history(window, tmp_path / "history")
    window.show()
    qtbot.waitUntil(lambda: panel.gallery is not None, timeout=5000)
    yield window, panel
    panel.close()


def _finish(window, request: GenerationRequest, image: Image.Image, seed: int = 4) -> None:
    window.controller.job_finished.emit(finished(request, [image], [seed]))


def test_to_inpaint_opens_the_image_on_the_canvas(qtbot, studio):
    window, panel = studio
    _finish(window, GenerationRequest.create(prompt="a house", width=64, height=64), Image.new("RGB", (64, 64), (200, 10, 10)))
    qtbot.waitUntil(lambda: panel.gallery.model.rowCount() == 1, timeout=5000)
    panel.gallery.select_row(0)
    panel.gallery.details.buttons["inpaint"].click()
    assert window.canvas.has_image() and window.canvas.image().getpixel((3, 3)) == (200, 10, 10)
    assert window.center.currentWidget() is window.canvas
    assert window.request_fields()["mode"] is Mode.INPAINT


def test_reusing_an_inpaint_image_puts_init_image_and_mask_on_the_canvas(qtbot, studio):
    window, panel = studio
    init = Image.new("RGB", (64, 64), (0, 0, 255))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    request = GenerationRequest.create(prompt="a window", mode=Mode.INPAINT, width=64, height=64, inputs=Inputs.from_pil(init_image=init, mask=mask))
    _finish(window, request, Image.new("RGB", (64, 64), (0, 255, 0)))
    qtbot.waitUntil(lambda: panel.gallery.model.rowCount() == 1, timeout=5000)
    panel.gallery.select_row(0)
    panel.gallery.details.buttons["reuse"].click()
    assert window.canvas.image().getpixel((1, 1)) == (0, 0, 255)
    restored = window.canvas.mask()
    assert restored.getpixel((32, 32)) == 255 and restored.getpixel((2, 2)) == 0
    assert window.request_fields()["mode"] is Mode.INPAINT
    assert window.request_fields()["prompt"] == "a window"
