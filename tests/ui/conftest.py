"""The whole studio window (canvas page, history dock) without an engine, for tests of the
window's own behaviour: keys, layout, banners, the viewer."""

from __future__ import annotations

import pytest
from PIL import Image

from sdstudio.engine.request import GenerationRequest
from tests.jobs import finished


@pytest.fixture
def studio(qtbot, tmp_path):
    """A shown MainWindow with the canvas and an open history; its engine is never started."""
    from sdstudio.settings import SettingsStore
    from sdstudio.ui.canvas_panel import install_canvas
    from sdstudio.ui.history_dock import install_history
    from sdstudio.ui.main_window import MainWindow

    window = MainWindow(SettingsStore(tmp_path / "settings.json"), backend_factory=lambda: None)
    qtbot.addWidget(window)
    install_canvas(window)
    window.history = install_history(window, tmp_path / "history")
    window.resize(1024, 700)
    window.show()
    window.activateWindow()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: window.history.gallery is not None, timeout=5000)
    yield window
    window.history.close()


def finish_job(window, colours=((200, 10, 10),), seeds=(4,), size=(64, 64), prompt="a red square",
               networks=()) -> GenerationRequest:
    """Pretend the engine finished a job: the window shows it and the history saves it."""
    request = GenerationRequest.create(prompt=prompt, width=size[0], height=size[1])
    images = tuple(Image.new("RGB", size, colour) for colour in colours)
    window.controller.job_finished.emit(finished(request, images, seeds, networks=networks))
    return request
