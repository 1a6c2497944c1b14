"""The shipped built-in model loads through the app's own path and draws what it is told."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sdstudio.engine.events import Failed, Finished
from sdstudio.engine.models import builtin_model_path
from sdstudio.engine.request import BUILTIN_MODEL, GenerationRequest, Inputs, Mode, ModelRef
from tools.builtin_model.evaluate import held_out_prompts, judge_image

pytestmark = pytest.mark.skipif(
    not (builtin_model_path() / "model_index.json").exists(), reason="built-in model not trained yet"
)


@pytest.fixture(scope="module")
def engine():
    from sdstudio.engine.runner import Engine

    eng = Engine()
    yield eng
    eng.shutdown()


def _run(engine, **fields) -> list[Image.Image]:
    events = []
    job = engine.submit(GenerationRequest.create(model=ModelRef(BUILTIN_MODEL), **fields), events.append)
    assert job.wait(120)
    assert not isinstance(events[-1], Failed), events[-1]
    assert isinstance(events[-1], Finished)
    return list(events[-1].images)


def test_held_out_prompts_show_the_prompted_colour(engine):
    prompts = held_out_prompts(limit=6)
    hits = 0
    for prompt, colour, shape, background in prompts:
        image = _run(engine, prompt=prompt, width=128, height=128, steps=12, cfg_scale=5.0, seed=3,
                     sampler="Euler")[0]
        hits += judge_image(np.asarray(image), colour, shape, background)[0]
    assert hits >= 5, f"{hits}/6 prompted colours"


def test_every_mode_runs_on_the_builtin_model(engine):
    init = _run(engine, prompt="a large red circle in the centre on a blue background", width=128,
                height=128, steps=6, seed=1)[0]
    assert init.size == (128, 128)
    out = _run(engine, prompt="a green square", mode=Mode.IMG2IMG, strength=0.6,
               width=128, height=128, steps=6, seed=1, inputs=Inputs.from_pil(init_image=init))[0]
    assert out.size == (128, 128)
    mask = Image.new("L", (128, 128), 0)
    mask.paste(255, (32, 32, 96, 96))
    painted = _run(engine, prompt="a yellow star", mode=Mode.INPAINT,
                   mask_blur=0, width=128, height=128, steps=6, seed=1, inputs=Inputs.from_pil(init_image=init, mask=mask))[0]
    a, b = np.asarray(painted), np.asarray(init)
    outside = np.asarray(mask) == 0
    assert (a[outside] == b[outside]).all()


@pytest.mark.parametrize("pipeline", ["StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline",
                                      "StableDiffusionInpaintPipeline"])
def test_plain_diffusers_pipelines_load_the_folder_offline(pipeline):
    import diffusers
    import torch

    pipe = getattr(diffusers, pipeline).from_pretrained(builtin_model_path(), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    init = Image.new("RGB", (128, 128), (30, 60, 220))
    extra = {
        "StableDiffusionPipeline": {"height": 128, "width": 128},
        "StableDiffusionImg2ImgPipeline": {"image": init, "strength": 0.7},
        "StableDiffusionInpaintPipeline": {"image": init, "mask_image": Image.new("L", (128, 128), 255),
                                           "height": 128, "width": 128},
    }[pipeline]
    image = pipe("a red circle", num_inference_steps=4, generator=torch.Generator().manual_seed(0),
                 **extra).images[0]
    assert image.size == (128, 128)
