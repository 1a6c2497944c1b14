"""The history wired into the real studio window: finished jobs saved and shown, reuse,
and image files dropped on the window."""

from __future__ import annotations

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from sdstudio.engine.pngmeta import read_png_text
from sdstudio.engine.request import GenerationRequest, Inputs, Mode, ModelRef
from sdstudio.settings import SettingsStore
from sdstudio.ui.history_dock import install_history
from sdstudio.ui.main_window import MainWindow
from tests.jobs import finished


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(SettingsStore(tmp_path / "settings.json"), backend_factory=lambda: None)
    qtbot.addWidget(w)
    w.show()
    return w


def _finish(window, prompt: str, seeds=(11, 12)) -> GenerationRequest:
    request = GenerationRequest.create(prompt=prompt, negative_prompt="lowres", steps=9, cfg_scale=4.5, width=128, height=96)
    images = tuple(Image.new("RGB", (128, 96), (s * 10, 0, 0)) for s in seeds)
    window.controller.job_finished.emit(finished(request, images, seeds))
    return request


def test_jobs_finished_while_the_history_opens_are_saved_once_it_is(qtbot, window, tmp_path):
    panel = install_history(window, tmp_path / "history")
    _finish(window, "early bird", seeds=(3,))
    qtbot.waitUntil(lambda: panel.gallery is not None and panel.gallery.model.rowCount() == 1, timeout=5000)
    assert panel.dock.widget() is panel.gallery
    assert panel.gallery.model.image_at(0).prompt == "early bird"
    panel.close()


def test_a_history_that_cannot_open_is_reported_and_the_window_goes_on(qtbot, window, tmp_path):
    (tmp_path / "a-file").write_text("x")
    panel = install_history(window, tmp_path / "a-file" / "history")
    qtbot.waitUntil(lambda: bool(window.banner.problems()), timeout=5000)
    assert "history folder" in window.banner.problems()[-1].message
    assert "not available" in panel.dock.widget().text()
    _finish(window, "not kept")  # nothing to save it to, and nothing breaks
    panel.close()


def test_finished_images_are_saved_and_appear_at_the_top(qtbot, window, panel):
    assert panel.dock.widget() is panel.gallery
    _finish(window, "a finished job")
    qtbot.waitUntil(lambda: panel.gallery.model.rowCount() == 2, timeout=5000)
    top = panel.gallery.model.image_at(0)
    assert (top.prompt, top.seed) == ("a finished job", 12)
    parameters, settings = read_png_text(panel.store.path(top))
    assert parameters.startswith("a finished job\nNegative prompt: lowres\nSteps: 9, ")
    assert "CFG scale: 4.5, Seed: 12, Size: 128x96, Model: tiny" in parameters
    made = GenerationRequest.from_json(settings)
    assert (made.sampling.cfg_scale, made.sampling.seed, made.extent.width, made.prompt.prompt) == (
        4.5, 12, 128, "a finished job")  # fmt: skip


def test_reuse_parameters_fills_the_window_panels(qtbot, window, panel):
    _finish(window, "reuse me\nplease", seeds=(321,))
    qtbot.waitUntil(lambda: panel.gallery.model.rowCount() == 1, timeout=5000)
    window.apply_fields({"prompt": "something else", "steps": 30})
    panel.gallery.select_row(0)
    panel.gallery.details.buttons["reuse"].click()
    fields = window.request_fields()
    assert (fields["prompt"], fields["negative_prompt"]) == ("reuse me\nplease", "lowres")
    assert (fields["steps"], fields["cfg_scale"], fields["seed"], fields["width"]) == (9, 4.5, 321, 128)
    window.controller.model_ref = ModelRef("/models/other.safetensors")
    panel.gallery.details.buttons["reuse"].click()
    assert "made with the model builtin; other is loaded" in window.banner.problems()[-1].message


def _drop(widget, path) -> None:
    """Drag `path` over `widget` and drop it, as the window system delivers it."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    window = widget.window()
    pos = QPointF(widget.mapTo(window, QPoint(4, 4)))
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window.windowHandle(), QDragEnterEvent(pos.toPoint(), *args))
    QApplication.sendEvent(window.windowHandle(), QDropEvent(pos, *args))


def test_dropping_an_a1111_png_on_the_prompt_box_reads_its_parameters(tmp_path, window, panel):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a dropped castle\nNegative prompt: fog\nSteps: 17, Sampler: Euler, CFG scale: 6, Seed: 99, Size: 64x80, Model: x")
    Image.new("RGB", (64, 80)).save(tmp_path / "a1111.png", pnginfo=info)
    _drop(window.prompt_panel.prompt, tmp_path / "a1111.png")
    fields = window.request_fields()
    assert (fields["prompt"], fields["negative_prompt"], fields["steps"], fields["seed"]) == ("a dropped castle", "fog", 17, 99)
    assert (fields["width"], fields["height"]) == (64, 80)


def test_dropping_a_png_without_parameters_gives_a_notice(tmp_path, window, panel):
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    window.apply_fields({"prompt": "kept"})
    _drop(window.prompt_panel.prompt, tmp_path / "plain.png")
    assert "plain.png has no generation parameters" in window.banner.message.text()
    _drop(panel.gallery.search, tmp_path / "broken.png")
    assert "broken.png" in window.banner.message.text()  # the newer drop's note replaces the older
    assert window.request_fields()["prompt"] == "kept"


def test_send_to_img2img_links_the_next_result_to_its_parent(qtbot, window, panel):
    _finish(window, "the parent", seeds=(1,))
    qtbot.waitUntil(lambda: panel.gallery.model.rowCount() == 1, timeout=5000)
    panel.gallery.select_row(0)
    parent = panel.gallery.details.image
    panel.gallery.details.buttons["img2img"].click()
    assert window.request_fields()["mode"].value == "img2img"
    window.controller.model_ref = ModelRef("tiny")
    window.apply_fields({"prompt": "the child", "width": 128, "height": 96})
    request = window.build_request()
    assert request.inputs.source == parent.file  # the lineage the window passes to the backend
    assert request.inputs.init_image.open().size == (parent.width, parent.height)
    window.controller.job_finished.emit(finished(request, [Image.new("RGB", (128, 96), "white")], [2]))
    qtbot.waitUntil(lambda: panel.gallery.model.rowCount() == 2, timeout=5000)
    saved = panel.gallery.model.image_at(0)
    assert (saved.prompt, saved.parent_id, saved.mode) == ("the child", parent.id, "img2img")
    assert (panel.store.root / saved.init_file).is_file()


def test_a_new_picture_on_the_canvas_ends_the_lineage(qtbot, window, panel, tmp_path):
    """A later, unrelated job is never recorded as a child of an image sent to img2img long ago."""
    _finish(window, "the parent", seeds=(1,))
    qtbot.waitUntil(lambda: panel.gallery.model.rowCount() == 1, timeout=5000)
    panel.gallery.select_row(0)
    panel.gallery.details.buttons["img2img"].click()
    other = tmp_path / "other.png"
    Image.new("RGB", (64, 64), "green").save(other)
    window.open_init_image(str(other))
    window.controller.model_ref = ModelRef("tiny")
    window.apply_fields({"prompt": "unrelated"})
    assert window.build_request().inputs.source is None


def test_copy_puts_the_image_on_the_clipboard(qtbot, window, panel):
    _finish(window, "copy me", seeds=(5,))
    qtbot.waitUntil(lambda: panel.gallery.model.rowCount() == 1, timeout=5000)
    panel.gallery.select_row(0)
    panel.gallery.details.buttons["copy"].click()
    copied = QApplication.clipboard().image()
    assert (copied.width(), copied.height()) == (128, 96)


def test_a_save_that_fails_is_reported_in_the_banner(qtbot, window, panel, monkeypatch):
    import errno

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("sdstudio.history.store.write_new", full)
    _finish(window, "no room", seeds=(1,))
    qtbot.waitUntil(lambda: any("disk is full" in p.message for p in window.banner.problems()), timeout=5000)
    assert panel.gallery.model.rowCount() == 0


def test_reusing_an_img2img_image_restores_its_init_image(qtbot, window, panel):
    init = Image.new("RGB", (128, 96), (10, 200, 30))
    request = GenerationRequest.create(prompt="from an init", mode=Mode.IMG2IMG, strength=0.4, width=128, height=96, inputs=Inputs.from_pil(init_image=init))
    window.controller.job_finished.emit(finished(request, [Image.new("RGB", (128, 96))], [8]))
    qtbot.waitUntil(lambda: panel.gallery.model.rowCount() == 1, timeout=5000)
    window.apply_fields({"mode": Mode.TXT2IMG})
    panel.gallery.select_row(0)
    panel.gallery.details.buttons["reuse"].click()
    fields = window.request_fields()
    assert (fields["mode"], fields["strength"]) == (Mode.IMG2IMG, 0.4)
    restored, _mask = window._image_provider()
    assert restored.size == (128, 96) and restored.getpixel((5, 5)) == (10, 200, 30)


def test_reusing_an_image_whose_lora_is_gone_says_which_file_is_missing(tmp_path, window, panel):
    from PIL.PngImagePlugin import PngInfo

    from sdstudio.ui.addons import Addons

    loras = tmp_path / "loras"
    loras.mkdir()
    window.settings.folders = {"loras": str(loras)}
    Addons(window)  # it checks the files a reused image names
    info = PngInfo()
    info.add_text("parameters", 'a castle <lora:film_grain:0.7>\nSteps: 17, Sampler: Euler, Seed: 99, Size: 64x80, '
                                'Lora hashes: "film_grain: 0123456789ab"')
    Image.new("RGB", (64, 80)).save(tmp_path / "a1111.png", pnginfo=info)
    (loras / "film_grain_v2.safetensors").write_bytes(b"x")
    _drop(window.prompt_panel.prompt, tmp_path / "a1111.png")
    assert window.request_fields()["prompt"] == "a castle <lora:film_grain:0.7>"  # the tag re-applies it
    problem = window.banner.problems()[-1]
    assert "No LoRA called 'film_grain'" in problem.message and "film_grain_v2" in problem.message

    (loras / "film_grain.safetensors").write_bytes(b"x")
    _drop(window.prompt_panel.prompt, tmp_path / "a1111.png")
    assert not any("No LoRA" in p.message for p in window.banner.problems())  # its banner went with its cause
