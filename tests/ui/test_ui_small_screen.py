"""First start on a small screen: the whole window, status bar included, is on the screen.

The screen is faked by Qt's offscreen platform (a config file gives it 1024x700 and window
frames 2 px wide), in a process of its own: the platform is chosen when Qt starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SHOW_AND_MEASURE = """
import os, sys
from PySide6.QtCore import QTimer
from sdstudio.app import open_studio
from sdstudio.ui.launch import when_exposed
studio = open_studio(["--settings", sys.argv[1], "--model", sys.argv[2]])
window = studio.window
def measure():
    room = window.screen().availableGeometry()
    frame = window.frameGeometry()
    bar = window.statusBar()
    bottom = bar.mapToGlobal(bar.rect().bottomLeft()).y()
    print("room", room.width(), room.height(), "frame", frame.x(), frame.y(), frame.width(), frame.height(),
          "status bottom", bottom, flush=True)
    os._exit(0)
when_exposed(window, lambda: QTimer.singleShot(0, measure))
with studio.loop:
    studio.loop.run_forever()
"""


@pytest.mark.parametrize(("width", "height"), [(1024, 700), (1280, 860)])  # the second: the first size exactly
def test_first_start_on_a_small_screen_fits_the_window_and_its_status_bar(tmp_path, width, height):
    screens = tmp_path / "screens.json"
    screens.write_text(json.dumps({
        "synchronousWindowSystem": True,
        "windowFrameMargins": True,
        "screens": [{"name": "small", "x": 0, "y": 0, "width": width, "height": height,
                     "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}],
    }))
    env = os.environ | {"QT_QPA_PLATFORM": f"offscreen:configfile={screens}", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", SHOW_AND_MEASURE, str(tmp_path / "s.json"), str(tmp_path / "no-model")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )
    words = out.stdout.split()
    assert "room" in words, out.stdout + out.stderr
    room_w, room_h, x, y, w, h, bottom = (int(words[i]) for i in (1, 2, 4, 5, 6, 7, 10))
    assert (room_w, room_h) == (width, height)
    assert x >= 0 and y >= 0 and x + w <= room_w and y + h <= room_h, out.stdout
    assert bottom < room_h, out.stdout


def test_a_long_server_address_model_and_vae_keep_the_status_bar_narrow_enough_for_1024_px(qtbot):
    from sdstudio.engine.request import Family, ModelInfo
    from sdstudio.ui.status import StudioStatusBar

    bar = StudioStatusBar()
    qtbot.addWidget(bar)
    bar.show()  # a hidden bar's size hint leaves its labels out
    qtbot.waitExposed(bar)
    url = "https://gpu-box-number-seven.render-farm.example.org:8188/comfyui/api/v1"
    bar.set_server(url)
    name = "juggernautXL_juggXIByRundiffusion_with_a_very_long_file_name_v11"
    bar.model_ready(ModelInfo(name, Family.SDXL, False, url, "server", name + ".safetensors"),
                    vae="sdxl_vae_fp16_fix_madebyollin_with_another_long_suffix")
    bar.job_started(150)  # the progress bar shows beside them
    bar.set_activity("Generating…")
    assert bar.minimumSizeHint().width() < 1000  # a 1024-px screen, its window frame and some room
    assert url in bar.where.toolTip() and "sdxl_vae_fp16_fix" in bar.model.toolTip()
    assert "…" in bar.model.text() and bar.model.text().startswith("Model: juggernaut")
