"""The window shows before torch/diffusers are imported; the built-in model may be missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SHOW_AND_REPORT = """
import os, sys
from sdstudio.app import open_studio
from sdstudio.ui.launch import when_exposed
studio = open_studio(["--settings", sys.argv[1], "--model", sys.argv[2]])
def shown():
    heavy = [m for m in ("torch", "diffusers", "transformers") if m in sys.modules]
    print("exposed", studio.window.isVisible(), "heavy:", ",".join(heavy) or "none", flush=True)
    os._exit(0)
when_exposed(studio.window, shown)
with studio.loop:
    studio.loop.run_forever()
"""


def test_window_is_exposed_before_torch_is_imported(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", SHOW_AND_REPORT, str(tmp_path / "s.json"), str(tmp_path / "no-model")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert "exposed True heavy: none" in out.stdout, out.stdout + out.stderr


def test_missing_builtin_model_says_how_to_open_another(make_window, monkeypatch):
    import sdstudio.ui.main_window as main_window

    monkeypatch.setattr(main_window, "builtin_model_available", lambda: False)
    window = make_window(start=False, model="builtin")
    window.start()
    assert "built-in model is not installed" in window.banner.message.text()
    assert "Open model folder" in window.banner.message.text()
    window.apply_fields({"prompt": "x"})
    window.generate()
    assert "No model is loaded" in window.banner.message.text()
    assert window.controller.pending() == []


def test_unexpected_exceptions_reach_the_banner(make_window, qloop, monkeypatch):
    from sdstudio.ui.errors import route_unexpected

    window = make_window(start=False)
    monkeypatch.setattr(sys, "excepthook", lambda *exc: None)
    route_unexpected(window.report, qloop)
    try:
        try:
            raise ValueError("slot broke")
        except ValueError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        qloop.set_exception_handler(None)
    assert window.banner.message.text() == "slot broke"
    window.banner.details_button.click()
    assert "Traceback" in window.banner.details.toPlainText() and window.banner.details.isVisibleTo(window)


def test_start_says_the_engine_is_loading_and_generate_waits(make_window, qtbot):
    window = make_window(start=False)
    window.start()
    assert window.status.activity.text().startswith("Loading")
    window.apply_fields({"prompt": "queued early", "width": 64, "height": 64, "steps": 2})
    with qtbot.waitSignal(window.controller.job_finished, timeout=60_000):
        window.generate()  # submitted before the model is ready: it waits in the queue
        assert window.status.activity.text() == "Waiting for the model to load…"
    assert window.status.activity.text() == "Done"


def test_generate_before_the_model_loads_uses_the_models_size_and_cfg(make_window, qtbot):
    """The panel cannot know the size yet (it shows 512): the request leaves it to the model."""
    window = make_window(start=False)
    window.start()
    window.apply_fields({"prompt": "early", "steps": 1})
    assert window.build_request().extent.width is None
    with qtbot.waitSignal(window.controller.job_finished, timeout=60_000) as finished:
        window.generate()
    made = finished.args[0].results[0]
    assert made.image.size == (made.model.native_size,) * 2 == (64, 64)
    assert made.request.sampling.cfg_scale == made.model.default_cfg
    assert window.params.controls["width"].value() == 64  # and the panel shows it now
