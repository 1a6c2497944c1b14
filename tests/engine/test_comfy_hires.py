"""The hires fix on a real ComfyUI server: a second pass at the larger size, counted in the
job's steps, by latents or by pixels; an upscaler model the server lacks is refused."""

from __future__ import annotations

import pytest

from sdstudio.engine.comfy.backend import ComfyBackend
from sdstudio.engine.events import ErrorKind, Failed, Finished, Started, Step
from sdstudio.engine.request import GenerationRequest, ModelRef
from tests.contract.comfy_server import CHECKPOINT, shared_server


@pytest.fixture(scope="module")
def backend():
    backend = ComfyBackend(shared_server().url)
    yield backend
    backend.shutdown()


def run(backend: ComfyBackend, **fields) -> list:
    fields = {"prompt": "a kite", "steps": 2, "width": 64, "height": 64, "seed": 3, "hires_scale": 1.5} | fields
    events: list = []
    assert backend.submit(GenerationRequest.create(model=ModelRef(CHECKPOINT), **fields), events.append).wait(120)
    return events


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_a_hires_pass_makes_the_larger_image_and_counts_its_steps(backend, upscaler):
    events = run(backend, hires_upscaler=upscaler, hires_denoise=0.7, hires_steps=4)
    assert isinstance(events[-1], Finished), events[-1]
    result = events[-1].results[0]
    assert result.image.size == (96, 96) and "Hires upscale: 1.5" in result.infotext
    started = next(e for e in events if isinstance(e, Started))
    assert started.total == 2 + 2  # the first pass, then int(4 * 0.7) steps of the second
    assert [e.index for e in events if isinstance(e, Step)] == [1, 2, 3, 4]


def test_an_upscaler_model_the_server_lacks_is_refused_with_the_choices(backend):
    events = run(backend, hires_upscaler="4x-UltraSharp.pth")
    assert isinstance(events[-1], Failed) and events[-1].error is ErrorKind.BAD_INPUT
    assert "4x-UltraSharp.pth" in events[-1].message and "Lanczos" in events[-1].message
