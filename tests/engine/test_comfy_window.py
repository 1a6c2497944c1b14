"""The window on a ComfyUI server: the connect dialog, the status bar, the remembered servers,
and the composition root starting on the server a person chose."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sdstudio.settings import Settings, SettingsStore
from tests.contract.comfy_server import CHECKPOINT, free_port, shared_server

ROOT = Path(__file__).resolve().parents[2]

START_ON_SERVER = """
import os, sys
from PySide6.QtCore import QTimer
from sdstudio.app import open_studio
from sdstudio.ui.launch import when_exposed
studio = open_studio(["--settings", sys.argv[1]])
window = studio.window
def poll():
    if window.controller.model_info is None:
        return
    timer.stop()
    print("loaded", window.controller.model_info.name, "|", window.status.where.text(), flush=True)
    print("samplers", window.params.sampler.count(), flush=True)
    window.model_menu.server_chosen.emit("", "")
    print("after", window.status.where.text(), "|", repr(window.settings.server), flush=True)
    os._exit(0)
timer = QTimer()
timer.timeout.connect(poll)
timer.start(100)
when_exposed(window, window.start)
with studio.loop:
    studio.loop.run_forever()
"""


def test_the_studio_starts_on_the_remembered_server_and_switches_back(tmp_path):
    url = shared_server().url
    settings = Settings(model=CHECKPOINT)
    settings.remember_server(url)
    SettingsStore(tmp_path / "s.json").save(settings)
    out = subprocess.run([sys.executable, "-c", START_ON_SERVER, str(tmp_path / "s.json")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert f"loaded sd15-reduced | Remote: {url}" in out.stdout, out.stdout + out.stderr
    assert "after Local | ''" in out.stdout, out.stdout + out.stderr


def test_recent_servers_are_remembered_newest_first(tmp_path):
    settings = Settings()
    for url in ("http://a:1", "http://b:2", "http://a:1"):
        settings.remember_server(url, "secret")
    settings.remember_server("")
    store = SettingsStore(tmp_path / "s.json")
    store.save(settings)
    loaded, notice = store.load()
    assert notice is None and loaded.recent_servers == ["http://a:1", "http://b:2"]
    assert loaded.server == "" and loaded.server_token == ""
    (tmp_path / "s.json").write_text(json.dumps({"recent_servers": [1]}))
    assert "recent_servers" in (store.load()[1] or "")


@pytest.mark.parametrize("reachable", [True, False])
def test_the_dialog_tests_the_connection_without_blocking(qtbot, reachable):
    from sdstudio.ui.server_dialog import ServerDialog

    url = shared_server().url if reachable else f"http://127.0.0.1:{free_port()}"
    dialog = ServerDialog(["http://old:8188"], url=url)
    qtbot.addWidget(dialog)
    assert dialog.url.itemText(0) == "http://old:8188" and dialog.values() == (url, "")
    with qtbot.waitSignal(dialog.tested, timeout=60_000):
        dialog.test()
    text = dialog.result.text()
    if reachable:
        assert text.startswith("Connected: ComfyUI 0.3.64") and "1 checkpoint." in text
    else:
        assert "Cannot reach" in text and url in text
    assert dialog.test_button.isEnabled()


def test_the_status_bar_says_local_or_which_server(qtbot):
    from sdstudio.ui.status import StudioStatusBar

    bar = StudioStatusBar()
    qtbot.addWidget(bar)
    assert bar.where.text() == "Local"
    bar.set_server("http://gpu:8188")
    assert bar.where.text() == "Remote: http://gpu:8188"
