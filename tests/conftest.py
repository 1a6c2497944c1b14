"""Shared test setup: offline hub, offscreen Qt, and tiny models built once per session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

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
