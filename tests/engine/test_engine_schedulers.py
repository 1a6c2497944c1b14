"""A1111 sampler names -> diffusers schedulers: each available one runs; missing packages hide."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from sdstudio.engine import schedulers
from sdstudio.engine.parameters import BY_NAME
from sdstudio.engine.request import Mode, ModelRef
from sdstudio.engine.schedulers import SAMPLERS, available_samplers, make_scheduler

A1111_NAMES = ["Euler a", "Euler", "Heun", "LMS", "LMS Karras", "DPM2", "DPM2 a", "DPM++ 2M",
               "DPM++ 2M Karras", "DPM++ 2M SDE", "DPM++ 2M SDE Karras", "DPM++ SDE",
               "DPM++ SDE Karras", "DDIM", "PNDM", "UniPC", "LCM", "DPM++ 3M SDE"]


@pytest.fixture(scope="module")
def txt2img(tiny_sd1):
    from sdstudio.engine.models import load_model

    model = load_model(ModelRef(str(tiny_sd1)))
    return model, model.pipeline(Mode.TXT2IMG)


def test_names_and_default():
    assert set(A1111_NAMES) <= set(SAMPLERS)
    # The table's default sampler leads the menu and runs everywhere.
    assert available_samplers()[0] == BY_NAME["sampler"].default == "Euler a"


@pytest.mark.parametrize("name", available_samplers())
def test_each_available_sampler_runs(txt2img, name):
    import torch

    model, pipe = txt2img
    scheduler = make_scheduler(name, model.base_scheduler_config)
    assert type(scheduler).__name__ == SAMPLERS[name].scheduler
    for flag, value in SAMPLERS[name].flags.items():
        assert scheduler.config[flag] == value
    if "use_karras_sigmas" in scheduler.config:
        assert scheduler.config["use_karras_sigmas"] == name.endswith("Karras")
    assert scheduler.config["beta_schedule"] == model.base_scheduler_config["beta_schedule"]
    pipe.scheduler = scheduler
    images = pipe("a fox", num_inference_steps=3, height=64, width=64, output_type="np",
                  generator=torch.Generator().manual_seed(0)).images
    assert images.shape == (1, 64, 64, 3) and np.isfinite(images).all()


def test_prediction_type_is_kept(txt2img):
    model, _ = txt2img
    config = model.base_scheduler_config | {"prediction_type": "v_prediction"}
    assert make_scheduler("DPM++ 2M Karras", config).config["prediction_type"] == "v_prediction"


def test_unknown_sampler():
    with pytest.raises(ValueError, match="Unknown sampler 'Euler b'"):
        make_scheduler("Euler b", {})


def test_missing_package_hides_the_sampler(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(schedulers.importlib.util, "find_spec",
                        lambda name: None if name in ("scipy", "torchsde") else real(name))
    names = available_samplers()
    assert "LMS" not in names and "LMS Karras" not in names and "DPM++ SDE Karras" not in names
    assert "Euler a" in names and "DPM++ 2M SDE" in names  # diffusers' own noise, no torchsde
    with pytest.raises(ValueError, match="needs the Python package scipy"):
        make_scheduler("LMS", {})
    with pytest.raises(ValueError, match="needs the Python package torchsde"):
        make_scheduler("DPM++ SDE Karras", {})


@pytest.mark.parametrize("name", ["Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras", "DPM2 a"])
def test_k_diffusion_samplers_start_from_full_noise_like_a1111(name):
    import json

    from sdstudio.engine.models import CONFIG_ROOT

    config = json.loads((CONFIG_ROOT / "sd15" / "scheduler" / "scheduler_config.json").read_text())
    scheduler = make_scheduler(name, config)
    scheduler.set_timesteps(20)
    assert round(float(scheduler.timesteps[0])) == 999
