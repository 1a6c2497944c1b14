"""Shared test setup: offline hub, offscreen Qt, tiny models built once per session, and the
window fixtures (one qasync loop over pytest-qt's QApplication, one real Engine shared by every
window test, and a window factory with its own settings file)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

import asyncio  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_sd1(tmp_path_factory):
    """Path of a tiny random-weight SD1.x diffusers folder."""
    from tools.tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-sd1"), "sd1")


@pytest.fixture(scope="session")
def tiny_sd1_inpaint(tmp_path_factory):
    """Path of a tiny SD1.x folder with a dedicated 9-channel inpainting UNet."""
    from tools.tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-sd1-inpaint"), "sd1", inpaint_unet=True)


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory):
    """Path of a tiny random-weight SDXL diffusers folder."""
    from tools.tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-sdxl"), "sdxl")


@pytest.fixture(scope="session")
def qloop(qapp):
    """The asyncio loop is Qt's loop: qtbot.waitUntil/waitSignal run it.

    One loop for the session: stopping a qasync loop calls QApplication.exit(), after which
    every later qtbot.wait returns at once, so it is stopped only when all tests are done."""
    import qasync

    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    loop.stop()
    loop.close()
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)


@pytest.fixture(scope="session")
def ui_engine():
    from sdstudio.engine.runner import Engine

    engine = Engine(device="cpu", dtype="float32")
    yield engine
    engine.shutdown(wait=True)


@pytest.fixture
def make_window(qtbot, qloop, ui_engine, tiny_sd1, tmp_path):
    """make_window(settings_path=None, start=True) -> a shown MainWindow on the tiny model."""
    from sdstudio.settings import SettingsStore
    from sdstudio.ui.main_window import MainWindow

    windows = []

    def make(settings_path=None, start=True, model=None):
        store = SettingsStore(settings_path or tmp_path / "settings.json")
        window = MainWindow(store, lambda: ui_engine, startup_model=model or str(tiny_sd1))
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        if start:
            window.start()
            qtbot.waitUntil(lambda: window.controller.model_info is not None, timeout=60_000)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.controller.close()
    ui_engine.cancel_all_pending()
