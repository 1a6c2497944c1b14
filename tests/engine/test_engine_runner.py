"""The local Engine on tiny random-weight models: what only it does (previews, the 9-channel
inpaint UNet, SDXL, step totals, cancel without decoding, NaN and out-of-memory, shutdown).
What every backend must do is in tests/contract/."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sdstudio.engine.events import (
    TERMINAL_EVENTS,
    BatchDone,
    Cancelled,
    ErrorKind,
    Failed,
    Finished,
    JobState,
    ModelLoaded,
    ModelLoading,
    Notice,
    Started,
    Step,
)
from sdstudio.engine.request import GenerationRequest, Inputs, Mode, ModelRef
from sdstudio.engine.runner import Engine

TIMEOUT = 120


@pytest.fixture(scope="module")
def engine():
    # No linear map follows the tiny random VAEs, so their previews are decoded, within a time
    # budget; an unbounded one gives every step its preview to check, whatever decoding costs,
    # and no gap between steps counts as a new job (a loaded machine makes steps slow).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sdstudio.engine.preview.PREVIEW_BUDGET", 1e9)
        patch.setattr("sdstudio.engine.preview.NEW_JOB_GAP", float("inf"))
        eng = Engine(device="cpu")
        yield eng
        eng.shutdown()


@pytest.fixture(scope="module")
def init_image():
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def square_mask():
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (20, 20, 44, 44))
    return mask


def make(model, **fields) -> GenerationRequest:
    fields.setdefault("prompt", "a red apple")
    fields.setdefault("steps", 3)
    fields.setdefault("width", 64)
    fields.setdefault("height", 64)
    fields.setdefault("seed", 42)
    return GenerationRequest.create(model=ModelRef(str(model)), **fields)


def run(engine: Engine, request: GenerationRequest) -> list:
    events: list = []
    job = engine.submit(request, events.append)
    assert job.wait(TIMEOUT), "job did not finish"
    return events


def finished(events: list) -> Finished:
    last = events[-1]
    assert isinstance(last, Finished), last
    return last


def assert_well_ordered(events: list) -> None:
    """[ModelLoading*, ModelLoaded]?, Started, Notice*, Step 1..n, exactly one terminal."""
    kinds = [type(e) for e in events]
    assert sum(k in TERMINAL_EVENTS for k in kinds) == 1 and kinds[-1] in TERMINAL_EVENTS
    body = [e for e in events if not isinstance(e, ModelLoading | ModelLoaded | Notice | BatchDone)][:-1]
    if isinstance(events[-1], Finished):
        started, steps = body[0], body[1:]
        assert isinstance(started, Started)
        assert [s.index for s in steps] == list(range(1, started.total + 1))
        assert all(s.total == started.total for s in steps)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


# ---- every mode ------------------------------------------------------------------------------


def test_txt2img_with_a_preview_every_step(engine, tiny_sd1):
    events = run(engine, make(tiny_sd1, steps=4, sampler="Euler a"))
    assert_well_ordered(events)
    assert isinstance(events[0], ModelLoading) and any(isinstance(e, ModelLoaded) for e in events)
    steps = [e for e in events if isinstance(e, Step)]
    assert len(steps) == 4
    assert all(isinstance(s.preview, Image.Image) and s.preview.mode == "RGB" for s in steps)
    assert steps[0].preview.size == (64, 64)  # decoded: the image's own size
    result = finished(events)
    assert [im.size for im in result.images] == [(64, 64)]
    assert result.seeds == (42,)
    assert "Seed: 42" in result.results[0].infotext
    assert engine.model_info.family == "sd1"


@pytest.mark.parametrize("model", ["tiny_sd1", "tiny_sd1_inpaint"])
def test_inpaint_previews_show_the_init_image_outside_the_mask(engine, model, request):
    flat = Image.new("RGB", (64, 64), (200, 40, 40))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (24, 24, 40, 40))
    events = run(engine, make(request.getfixturevalue(model), mode=Mode.INPAINT,
                              strength=1.0, mask_blur=0, inputs=Inputs.from_pil(init_image=flat, mask=mask)))
    steps = [e for e in events if isinstance(e, Step)]
    first, last = pixels(steps[0].preview), pixels(steps[-1].preview)
    px = first.shape[0] // 8  # preview pixels per latent pixel (decoded previews: 8)
    known = np.abs(first[: 2 * px, : 2 * px] - last[: 2 * px, : 2 * px]).mean()
    masked = np.abs(first[3 * px : 5 * px, 3 * px : 5 * px] - last[3 * px : 5 * px, 3 * px : 5 * px]).mean()
    # Known area: the init image's latents, steady (a decoder's reach moves it a little);
    # masked area: the evolving x0.
    assert known < 2 and masked > 4 * known


def test_9_channel_inpaint_model_in_every_mode(engine, tiny_sd1_inpaint, init_image, square_mask):
    for mode in Mode:
        events = run(engine, make(tiny_sd1_inpaint, mode=mode, inputs=Inputs.from_pil(init_image=init_image, mask=square_mask)))
        assert_well_ordered(events)
        assert finished(events).images[0].size == (64, 64)
    assert engine.model_info.inpaint_unet


def test_sdxl_txt2img(engine, tiny_sdxl):
    events = run(engine, make(tiny_sdxl, steps=2, sampler="DPM++ 2M"))
    assert_well_ordered(events)
    assert finished(events).images[0].size == (64, 64)
    assert engine.model_info.family == "sdxl"
    assert sum(isinstance(e, Step) and e.preview is not None for e in events) == 2


# ---- step totals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "total"),
    [
        ({"mode": Mode.IMG2IMG, "steps": 4, "strength": 0.5, "sampler": "Euler"}, 2),
        ({"steps": 3, "sampler": "Heun"}, 5),  # second order: 2 * 3 - 1 model calls
        ({"mode": Mode.IMG2IMG, "steps": 4, "strength": 0.5, "sampler": "Heun"}, 3),
        ({"steps": 2, "batch_count": 2, "sampler": "DDIM"}, 4),
    ],
)
def test_step_total_is_the_real_callback_count(engine, tiny_sd1, init_image, fields, total):
    events = run(engine, make(tiny_sd1, **fields, inputs=Inputs.from_pil(init_image=init_image)))
    assert_well_ordered(events)
    assert next(e for e in events if isinstance(e, Started)).total == total
    assert [e.index for e in events if isinstance(e, Step)][-1] == total


# ---- cancel and queue ------------------------------------------------------------------------


def test_cancel_running_job_stops_early_without_decoding(engine, tiny_sd1, monkeypatch):
    run(engine, make(tiny_sd1, steps=1))  # the model is loaded
    monkeypatch.setattr(engine, "_previewer", None)  # previews may decode: only the result's decode counts
    vae = engine._model.vae
    decodes = []
    original = vae.decode
    monkeypatch.setattr(vae, "decode", lambda *a, **k: decodes.append(1) or original(*a, **k))
    events: list = []
    holder: list = []

    def on_event(event):
        events.append(event)
        if isinstance(event, Step) and event.index == 2:
            engine.cancel(holder[0])

    job = engine.submit(make(tiny_sd1, steps=10), on_event)
    holder.append(job)
    assert job.wait(TIMEOUT)
    assert isinstance(events[-1], Cancelled) and not any(isinstance(e, Finished) for e in events)
    assert [e.index for e in events if isinstance(e, Step)] == [1, 2]
    assert job.state is JobState.CANCELLED
    assert decodes == []
    assert isinstance(run(engine, make(tiny_sd1, steps=1))[-1], Finished)


# ---- failures the local engine detects ------------------------------------------


def test_nan_output_is_reported_not_saved(engine, tiny_sd1, monkeypatch):
    run(engine, make(tiny_sd1, steps=1))
    vae = engine._model.vae
    original = vae.decode

    def nan_decode(*args, **kwargs):
        out = original(*args, **kwargs)
        out[0].fill_(float("nan"))
        return out

    monkeypatch.setattr(vae, "decode", nan_decode)
    events = run(engine, make(tiny_sd1, steps=1))
    assert isinstance(events[-1], Failed) and events[-1].error == ErrorKind.BAD_OUTPUT
    assert "float32" in events[-1].message


def test_out_of_memory_says_what_to_lower(engine, tiny_sd1, monkeypatch):
    run(engine, make(tiny_sd1, steps=1))

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(engine._model.unet, "forward", oom)
    events = run(engine, make(tiny_sd1, steps=1, batch_size=2))
    assert isinstance(events[-1], Failed) and events[-1].error == ErrorKind.OUT_OF_MEMORY
    assert "batch size" in events[-1].message and "64x64" in events[-1].message
    monkeypatch.undo()
    assert isinstance(run(engine, make(tiny_sd1, steps=1))[-1], Finished)


def test_shutdown_cancels_pending_and_refuses_new_jobs(tiny_sd1):
    eng = Engine(device="cpu")
    events: list = []
    job = eng.submit(make(tiny_sd1, steps=50), lambda e: None)
    pending = eng.submit(make(tiny_sd1, steps=1), events.append)
    eng.shutdown()
    assert job.wait(TIMEOUT) and job.state in (JobState.CANCELLED, JobState.DONE)
    assert [type(e) for e in events] == [Cancelled] and pending.state is JobState.CANCELLED
    with pytest.raises(RuntimeError):
        eng.submit(make(tiny_sd1), lambda e: None)


def test_a_long_prompt_is_read_whole(engine, tiny_sd1):
    long_prompt = " ".join(["red apple"] * 60)  # 120 tokens: two 75-token chunks, as in A1111
    events = run(engine, make(tiny_sd1, steps=1, prompt=long_prompt, negative_prompt="blurry"))
    tail_changed = run(engine, make(tiny_sd1, steps=1, prompt=long_prompt + " green", negative_prompt="blurry"))
    assert not [e for e in events if isinstance(e, Notice)]
    image, other = (np.asarray(finished(e).results[0].image) for e in (events, tail_changed))
    assert not np.array_equal(image, other)  # a word past the 77th token still counts


def test_extra_network_tags_are_left_out_with_a_notice(engine, tiny_sd1):
    tagged = run(engine, make(tiny_sd1, steps=1, prompt="a red apple <hypernet:film_grain:0.8>"))
    plain = run(engine, make(tiny_sd1, steps=1, prompt="a red apple "))
    notices = [e.message for e in tagged if isinstance(e, Notice)]
    assert len(notices) == 1 and notices[0].startswith("<hypernet:film_grain:0.8>: only LoRA"), notices
    image, other = (np.asarray(finished(e).results[0].image) for e in (tagged, plain))
    assert np.array_equal(image, other)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_refuses_jobs_instead_of_queueing_them(tiny_sd1, monkeypatch):
    eng = Engine(device="cpu")

    def die(job):
        raise SystemExit("the worker's own code failed")

    monkeypatch.setattr(eng, "_run", die)
    eng.submit(make(tiny_sd1, steps=1), lambda e: None)
    eng._jobs.thread.join(TIMEOUT)
    assert not eng._jobs.thread.is_alive()
    with pytest.raises(RuntimeError, match="worker has stopped"):
        eng.submit(make(tiny_sd1, steps=1), lambda e: None)


def test_memory_settings_switch_per_job_without_a_reload(engine, tiny_sd1):
    from sdstudio.engine.memory import MemoryOptions

    run(engine, make(tiny_sd1, steps=1))
    tiled = ModelRef(str(tiny_sd1), memory=MemoryOptions(vae_tiling=True))
    events = run(engine, GenerationRequest.create(prompt="x", steps=1, width=64, height=64, model=tiled))
    assert isinstance(events[-1], Finished) and not any(isinstance(e, ModelLoading) for e in events)
    assert engine._model.vae.use_tiling
    run(engine, GenerationRequest.create(prompt="x", steps=1, width=64, height=64,
                                         model=ModelRef(str(tiny_sd1), memory=MemoryOptions(vae_tiling=False))))
    assert not engine._model.vae.use_tiling
