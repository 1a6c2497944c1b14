""""Upscale ×2 / ×4" in the window: from a fresh result's menu and from a history image's menu,
run as a job on the real local backend (the window goes on meanwhile), the result saved as
the picture's child with its parameters and A1111's postprocess keys."""

from __future__ import annotations

import pytest
from PIL import Image
from PySide6.QtWidgets import QMenu

from sdstudio.engine.backend import local_backend
from sdstudio.engine.pngmeta import read_png_text
from sdstudio.engine.request import GenerationRequest
from sdstudio.engine.upscalers import FOLDER_ENV
from sdstudio.settings import SettingsStore
from sdstudio.ui.main_window import MainWindow
from tests.engine.test_upscalers import _esrgan, save_model
from tests.jobs import finished

TIMEOUT_MS = 60_000


@pytest.fixture
def window(qtbot, qloop, tmp_path, monkeypatch):
    """A window whose own engine (made after the upscaler folder is set) has no model loaded:
    upscaling needs none."""
    monkeypatch.setenv(FOLDER_ENV, str(tmp_path / "upscalers"))
    save_model(tmp_path / "upscalers", "2x-tiny.safetensors", _esrgan(2))
    engine = local_backend("cpu", "float32")
    w = MainWindow(SettingsStore(tmp_path / "settings.json"), backend_factory=lambda: engine)
    qtbot.addWidget(w)
    w.show()
    assert w.controller.jobs.backend is engine  # started, as the window's start() does
    yield w
    w.controller.close()
    engine.shutdown()


def _finish(window, prompt: str) -> None:
    request = GenerationRequest.create(prompt=prompt, steps=9, seed=5, width=32, height=24)
    window.controller.job_finished.emit(finished(request, (Image.new("RGB", (32, 24), (200, 30, 30)),), (5,)))


def _choose(menu: QMenu, entry: str) -> list[str]:
    """Trigger `entry` of the menu's Upscale submenu; the entries it offered."""
    (upscale,) = [a.menu() for a in menu.actions() if a.menu() is not None and a.text() == "&Upscale"]
    entries = {a.text(): a for a in upscale.actions() if not a.isSeparator()}
    entries[entry].trigger()
    return list(entries)


def test_upscale_a_fresh_result_from_its_menu_saves_a_child(qtbot, window, panel):
    _finish(window, "a small apple")
    qtbot.waitUntil(lambda: panel.gallery.model.rowCount() == 1, timeout=5000)
    qtbot.waitUntil(lambda: panel.saver.files.get(window.results.current().result) is not None, timeout=5000)
    source = panel.gallery.model.image_at(0)
    offered = _choose(window.results.context_menu(), "×2 Lanczos")
    assert offered == ["×2 Lanczos", "×2 2x-tiny", "×4 Lanczos", "×4 2x-tiny"]
    qtbot.waitUntil(lambda: panel.gallery.model.rowCount() == 2, timeout=TIMEOUT_MS)
    child = panel.gallery.model.image_at(0)
    assert (child.width, child.height, child.parent_id, child.prompt) == (64, 48, source.id, "a small apple")
    text, settings = read_png_text(panel.store.path(child))
    assert text.startswith("a small apple\nSteps: 9, ") and "Seed: 5, Size: 32x24, Model: tiny" in text
    assert text.endswith("Mode: txt2img, Postprocess upscale by: 2, Postprocess upscaler: Lanczos")
    assert GenerationRequest.from_json(settings).sampling.steps == 9
    assert window.results.current().image.size().width() == 64  # the result view shows it


def test_a_result_upscaled_before_its_save_ended_is_still_its_parent(qtbot, window, panel, monkeypatch):
    import time

    save = panel.store.save_finished
    monkeypatch.setattr(panel.store, "save_finished", lambda finished: (time.sleep(0.5), save(finished))[1])
    _finish(window, "a small apple")
    assert panel.gallery.model.rowCount() == 0  # still being saved
    _choose(window.results.context_menu(), "×2 Lanczos")
    qtbot.waitUntil(lambda: panel.gallery.model.rowCount() == 2, timeout=TIMEOUT_MS)
    child, source = panel.gallery.model.image_at(0), panel.gallery.model.image_at(1)
    assert (child.width, source.width) == (64, 32) and child.parent_id == source.id


def test_upscale_a_history_image_with_a_model_from_the_gallery_menu(qtbot, window, panel):
    _finish(window, "a history apple")
    qtbot.waitUntil(lambda: panel.gallery.model.rowCount() == 1, timeout=5000)
    panel.gallery.select_row(0)
    qtbot.waitUntil(lambda: panel.gallery.details.image is not None, timeout=5000)
    source = panel.gallery.details.image
    _choose(panel.gallery.context_menu(), "×4 2x-tiny")
    qtbot.waitUntil(lambda: panel.gallery.model.rowCount() == 2, timeout=TIMEOUT_MS)
    child = panel.gallery.model.image_at(0)
    assert (child.width, child.height, child.parent_id) == (128, 96, source.id)
    text, _ = read_png_text(panel.store.path(child))
    assert text.startswith("a history apple\n")
    assert text.endswith("Postprocess upscale by: 4, Postprocess upscaler: 2x-tiny")
