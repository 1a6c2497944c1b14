"""The add-on files from the window to the engine, on the tiny model: a LoRA picked in the
browser and a folder changed in the window reach the running engine, and the result names
the LoRA it used."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from sdstudio.engine.events import Finished
from sdstudio.engine.networks import NetworkKind


@pytest.fixture
def lora_folder(tmp_path, tiny_sd1):
    from diffusers import DiffusionPipeline

    from tools.tiny_lora import save_kohya_lora

    folder = tmp_path / "loras"
    save_kohya_lora(folder / "film_grain.safetensors", DiffusionPipeline.from_pretrained(tiny_sd1))
    return folder


def test_a_lora_clicked_in_the_browser_is_used_by_the_engine(make_window, ui_engine, lora_folder, qtbot):
    from sdstudio.ui.addons import Addons

    window = make_window()
    addons = Addons(window)
    before = ui_engine.folders
    # What app.py does: the local engine follows the window's folders.
    addons.folders_changed.connect(lambda folders: setattr(ui_engine, "folders", folders))
    try:
        addons.set_folders({"loras": str(lora_folder)})
        assert ui_engine.folders.loras == lora_folder
        lora_list = addons.panel.lists[NetworkKind.LORA]
        qtbot.waitUntil(lambda: lora_list.count() == 1, timeout=5000)
        window.apply_fields({"prompt": "a red square,", "width": 64, "height": 64, "steps": 2})
        rect = lora_list.visualItemRect(lora_list.item(0))
        qtbot.mouseClick(lora_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        assert window.prompt_panel.prompt.toPlainText() == "a red square, <lora:film_grain:1>"
        with qtbot.waitSignal(window.controller.job_finished, timeout=120_000) as done:
            window.generate()
        finished: Finished = done.args[0]
        assert [(n.kind, n.name) for n in finished.results[0].networks] == [("lora", "film_grain")]
    finally:
        ui_engine.folders = before
