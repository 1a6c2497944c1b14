"""Hires fix as a second stage of a txt2img job, on tiny models."""

from __future__ import annotations

import numpy as np
import pytest

from sdstudio.engine.events import ErrorKind, Failed, Finished, Started, Step
from sdstudio.engine.parameters import HIRES_UPSCALERS, Mode
from sdstudio.engine.request import GenerationRequest, ModelRef
from sdstudio.engine.runner import Engine

TIMEOUT = 120


@pytest.fixture(scope="module")
def engine():
    eng = Engine(device="cpu", dtype="float32")
    yield eng
    eng.shutdown()


def run(engine, model, **fields) -> list:
    fields = {"prompt": "a red apple", "steps": 3, "width": 64, "height": 64, "seed": 9, "sampler": "Euler"} | fields
    events: list = []
    assert engine.submit(GenerationRequest.create(model=ModelRef(str(model)), **fields), events.append).wait(TIMEOUT)
    return events


@pytest.mark.parametrize("upscaler", HIRES_UPSCALERS)
def test_every_upscaler_makes_the_larger_image_in_one_job(engine, tiny_sd1, upscaler):
    events = run(engine, tiny_sd1, hires_scale=1.5, hires_upscaler=upscaler, hires_steps=4, hires_denoise=0.5)
    assert isinstance(events[-1], Finished), events[-1]
    result = events[-1].results[0]
    assert result.image.size == (96, 96)
    total = next(e for e in events if isinstance(e, Started)).total
    assert total == 3 + 2  # 4 hires steps at denoise 0.5
    assert [e.index for e in events if isinstance(e, Step)] == list(range(1, total + 1))
    text = result.infotext
    assert "Size: 64x64" in text and "Hires upscale: 1.5" in text and f"Hires upscaler: {upscaler}" in text
    assert "Hires steps: 4" in text and "Denoising strength: 0.5" in text


def test_the_second_pass_changes_the_picture(engine, tiny_sd1):
    plain = run(engine, tiny_sd1)[-1].images[0].resize((96, 96))
    fixed = run(engine, tiny_sd1, hires_scale=1.5, hires_upscaler="Lanczos", hires_denoise=0.9)[-1].images[0]
    assert np.abs(np.asarray(plain, np.int16) - np.asarray(fixed, np.int16)).mean() > 1


def test_scale_1_is_exactly_plain_txt2img(engine, tiny_sd1):
    plain = run(engine, tiny_sd1)[-1]
    off = run(engine, tiny_sd1, hires_scale=1.0, hires_upscaler="Lanczos", hires_steps=9)[-1]
    assert plain.images[0].tobytes() == off.images[0].tobytes()
    assert "Hires" not in off.results[0].infotext


@pytest.mark.parametrize("model", ["tiny_sd1", "tiny_sdxl"])
def test_batch_image_k_is_the_single_run_with_seed_plus_k(engine, model, request):
    folder = request.getfixturevalue(model)
    hires = {"hires_scale": 1.25, "hires_upscaler": "Latent", "hires_steps": 2, "hires_denoise": 0.7}
    batch = run(engine, folder, seed=40, batch_size=2, **hires)[-1]
    single = run(engine, folder, seed=41, **hires)[-1]
    assert batch.seeds == (40, 41)
    diff = np.abs(np.asarray(batch.images[1], np.int16) - np.asarray(single.images[0], np.int16))
    assert diff.max() <= 1


def test_hires_applies_to_txt2img_only(engine, tiny_sd1):
    from PIL import Image

    from sdstudio.engine.request import Inputs

    events: list = []
    request = GenerationRequest.create(
        prompt="x", mode=Mode.IMG2IMG, steps=2, width=64, height=64, strength=1.0, hires_scale=2.0,
        inputs=Inputs.from_pil(Image.new("RGB", (64, 64), "red")), model=ModelRef(str(tiny_sd1)),
    )
    engine.submit(request, events.append).wait(TIMEOUT)
    assert events[-1].images[0].size == (64, 64) and "Hires" not in events[-1].results[0].infotext


def test_a_hires_size_past_the_limit_is_refused(engine, tiny_sd1):
    events = run(engine, tiny_sd1, width=2048, height=2048, hires_scale=2.5)
    assert isinstance(events[-1], Failed) and events[-1].error == ErrorKind.BAD_INPUT
    assert "5120x5120" in events[-1].message and not any(isinstance(e, Step) for e in events)
