"""One banner per cause, gone when the cause is; nothing stale comes back on Dismiss; a failed
model load leaves no progress bar; a folder that cannot be opened says so."""

from __future__ import annotations

from PIL import Image
from PySide6.QtGui import QDesktopServices

from sdstudio.engine.request import Mode, ModelRef
from sdstudio.ui.errors import Level
from tests.jobs import MODEL
from tests.ui.conftest import finish_job


def messages(window) -> list[str]:
    return [p.message for p in window.banner.problems()]


def test_one_banner_per_cause_and_it_goes_with_the_cause(studio):
    studio.report("first try failed", cause="thing")
    studio.report("second try failed", cause="thing")
    assert messages(studio) == ["second try failed"]
    studio.banner.clear("thing")
    assert not studio.banner.isVisibleTo(studio)


def test_dismiss_never_brings_back_a_stale_message(studio):
    studio.report("Could not open a.png")
    studio.report("Could not open b.png")  # supersedes the older one-off
    studio.report("No model is loaded.", cause="model", level=Level.WARNING)
    studio.report("Could not save settings")
    studio.banner.dismiss()
    assert studio.banner.message.text() == "No model is loaded."  # still true, so still shown
    studio.banner.dismiss()
    assert messages(studio) == [] and not studio.banner.isVisibleTo(studio)


def test_a_failed_model_load_leaves_no_progress_bar_and_its_banner_goes_on_the_next_load(studio):
    c = studio.controller
    c.model_loading.emit("Loading builtin", 0.02)
    assert studio.status.progress.isVisibleTo(studio)
    c.problem.emit("Could not load broken: no such file", "Traceback ...")
    c.model_failed.emit(ModelRef("builtin"))
    assert not studio.status.progress.isVisibleTo(studio)
    assert messages(studio).count("Could not load broken: no such file") == 1
    c.model_loaded.emit(ModelRef("builtin"), MODEL)
    assert "Could not load broken: no such file" not in messages(studio)


def test_canvas_picture_size_gives_one_banner_while_it_differs(studio):
    studio.apply_fields({"width": 128, "height": 128})
    studio.canvas.set_image(Image.new("RGB", (150, 130)))
    assert studio.request_fields()["mode"] is Mode.IMG2IMG
    size_notes = [m for m in messages(studio) if "150×130" in m]
    assert size_notes == [studio.banner.message.text()] and "128×128" in size_notes[0]
    studio.canvas.set_image(Image.new("RGB", (128, 128)))
    assert not [m for m in messages(studio) if "×" in m]


def test_the_canvas_size_banner_offers_the_pictures_own_size(studio):
    studio.apply_fields({"width": 128, "height": 128})
    studio.canvas.set_image(Image.new("RGB", (150, 130)))
    assert studio.banner.action_button.text() == "Use 152×128"  # multiples of 8, as the VAE needs
    studio.banner.action_button.click()
    assert (studio.request_fields()["width"], studio.request_fields()["height"]) == (152, 128)
    assert not [m for m in messages(studio) if "150×130" in m]


def test_open_folder_without_a_file_manager_says_so(qtbot, studio, monkeypatch):
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda _url: False))
    finish_job(studio)
    gallery = studio.history.gallery
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 1, timeout=5000)
    gallery.select_row(0)
    gallery.details.buttons["folder"].click()
    assert "No file manager" in studio.banner.message.text()
    assert str(studio.history.store.root) in studio.banner.message.text()
