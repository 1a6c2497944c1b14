"""Settings survive a restart; a broken settings file falls back to defaults with a notice."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from sdstudio.engine.request import Mode
from sdstudio.settings import Settings, SettingsStore


def test_settings_round_trip_and_recent_models(tmp_path):
    store = SettingsStore(tmp_path / "deep" / "settings.json")
    settings = Settings(prompt="a cat", params={"steps": 7})
    for source in ["a", "b", "a", *[str(i) for i in range(10)]]:
        settings.remember_model(source)
    store.save(settings)
    loaded, notice = store.load()
    assert notice is None
    assert loaded == settings
    assert loaded.model == "9" and len(loaded.recent_models) == 8 and loaded.recent_models[0] == "9"


def test_corrupt_or_wrongly_typed_file_gives_defaults_and_a_notice(tmp_path):
    path = tmp_path / "settings.json"
    for text in ["{not json", "[1, 2]", json.dumps({"prompt": 3}), json.dumps({"recent_models": [1]})]:
        path.write_text(text)
        settings, notice = SettingsStore(path).load()
        assert settings == Settings()
        assert notice and str(path) in notice


def test_restart_restores_prompt_parameters_and_geometry(make_window, tmp_path):
    path = tmp_path / "restart.json"
    first = make_window(settings_path=path, start=False)
    first.apply_fields({"prompt": "a lighthouse", "negative_prompt": "blur", "steps": 33, "cfg_scale": 4.5,
                        "width": 640, "height": 384, "mode": Mode.IMG2IMG, "strength": 0.4, "seed": 1234})
    first.resize(720, 540)  # the offscreen screen is 800x600
    first.params_dock.setFloating(False)
    first.close()
    assert path.exists()

    second = make_window(settings_path=path, start=False)
    fields = second.request_fields()
    assert fields["prompt"] == "a lighthouse" and fields["negative_prompt"] == "blur"
    assert (fields["steps"], fields["cfg_scale"], fields["width"], fields["height"]) == (33, 4.5, 640, 384)
    assert fields["mode"] is Mode.IMG2IMG and fields["strength"] == 0.4 and fields["seed"] == 1234
    assert (second.width(), second.height()) == (720, 540)


def test_corrupt_settings_file_opens_window_with_notice(make_window, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("\x00garbage")
    window = make_window(settings_path=path, start=False)
    assert window.banner.isVisibleTo(window)
    assert "could not be read" in window.banner.message.text()
    assert window.request_fields()["steps"] == 20


def _next_tab_stop(widget):
    widget = widget.nextInFocusChain()
    while not widget.focusPolicy() & Qt.FocusPolicy.TabFocus:
        widget = widget.nextInFocusChain()
    return widget


def test_keyboard_tab_order_and_mnemonic_buddies(make_window):
    window = make_window(start=False)
    panel = window.prompt_panel
    assert _next_tab_stop(panel.prompt) is panel.negative_prompt
    assert _next_tab_stop(panel.negative_prompt) is panel.generate
    buddies = {label.text(): label.buddy() for label in window.params.findChildren(QLabel)}
    assert buddies["&Steps:"] is window.params.controls["steps"] and buddies["S&eed:"] is window.params.seed
    prompt_buddies = {label.text(): label.buddy() for label in panel.findChildren(QLabel)}
    assert prompt_buddies["&Prompt:"] is panel.prompt


def test_a_new_model_starts_at_its_native_size_and_a_restart_keeps_the_persons(make_window, tmp_path):
    path = tmp_path / "settings.json"
    first = make_window(settings_path=path)  # fresh settings, tiny model trained at 64x64
    assert first.controller.model_info.native_size == 64
    assert (first.request_fields()["width"], first.request_fields()["height"]) == (None, None)  # the model's
    assert first.params.controls["width"].value() == 64 and first.build_request().extent.width is None
    first.apply_fields({"width": 96, "height": 128})
    first.close()

    second = make_window(settings_path=path)  # same model again: the person's size stays
    assert (second.request_fields()["width"], second.request_fields()["height"]) == (96, 128)


def test_memory_menu_choices_reach_the_model_and_the_settings_file(make_window, tmp_path):
    from sdstudio.engine.memory import MemoryOptions

    path = tmp_path / "mem.json"
    window = make_window(settings_path=path)
    tiling_on = next(a for (field, value), a in window.memory_menu._actions.items() if field == "vae_tiling" and value is True)
    tiling_on.trigger()
    assert window.controller.model_ref.memory == MemoryOptions(vae_tiling=True)
    window.close()
    again = make_window(settings_path=path, start=False)
    assert again.memory_menu.options() == MemoryOptions(vae_tiling=True)
