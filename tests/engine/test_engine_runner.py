"""The Engine on tiny random-weight models: modes, previews, cancel, queue, seeds, failures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sdstudio.engine.events import (
    TERMINAL_EVENTS,
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
from sdstudio.engine.request import GenerationRequest, Mode, ModelRef
from sdstudio.engine.runner import Engine

TIMEOUT = 120


@pytest.fixture(scope="module")
def engine():
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
    return GenerationRequest(model=ModelRef(str(model)), **fields)


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
    body = [e for e in events if not isinstance(e, ModelLoading | ModelLoaded | Notice)][:-1]
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
    assert steps[0].preview.size == (8, 8)  # latent resolution of 64x64
    result = finished(events)
    assert [im.size for im in result.images] == [(64, 64)]
    assert result.seeds == (42,)
    assert "Seed: 42" in result.infos[0] and result.infos[0].startswith("a red apple")
    assert engine.model_info.family == "sd1"


def test_img2img_and_4_channel_inpaint(engine, tiny_sd1, init_image, square_mask):
    for mode in (Mode.IMG2IMG, Mode.INPAINT):
        events = run(engine, make(tiny_sd1, mode=mode, init_image=init_image, mask=square_mask, strength=1.0))
        assert_well_ordered(events)
        assert finished(events).images[0].size == (64, 64)
        assert "Denoising strength: 1" in finished(events).infos[0]


@pytest.mark.parametrize("model", ["tiny_sd1", "tiny_sd1_inpaint"])
def test_inpaint_previews_show_the_init_image_outside_the_mask(engine, model, request):
    flat = Image.new("RGB", (64, 64), (200, 40, 40))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (24, 24, 40, 40))
    events = run(engine, make(request.getfixturevalue(model), mode=Mode.INPAINT, init_image=flat, mask=mask,
                              strength=1.0, mask_blur=0))
    steps = [e for e in events if isinstance(e, Step)]
    first, last = pixels(steps[0].preview), pixels(steps[-1].preview)
    assert np.array_equal(first[:2, :2], last[:2, :2])  # known area: the init image's latents
    assert not np.array_equal(first[3:5, 3:5], last[3:5, 3:5])  # masked area: evolving x0


def test_9_channel_inpaint_model_in_every_mode(engine, tiny_sd1_inpaint, init_image, square_mask):
    for mode in Mode:
        events = run(engine, make(tiny_sd1_inpaint, mode=mode, init_image=init_image, mask=square_mask))
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
    events = run(engine, make(tiny_sd1, init_image=init_image, **fields))
    assert_well_ordered(events)
    assert next(e for e in events if isinstance(e, Started)).total == total
    assert [e.index for e in events if isinstance(e, Step)][-1] == total


# ---- seeds -----------------------------------------------------------------------------------


def test_same_request_twice_gives_identical_pixels(engine, tiny_sd1):
    request = make(tiny_sd1, seed=1234, sampler="Euler a")
    first, second = finished(run(engine, request)), finished(run(engine, request))
    assert first.images[0].tobytes() == second.images[0].tobytes()


@pytest.mark.parametrize("mode", list(Mode))
def test_batch_image_k_is_the_single_run_with_seed_plus_k(engine, tiny_sd1, init_image, square_mask, mode):
    common = {"mode": mode, "init_image": init_image, "mask": square_mask, "sampler": "Euler a"}
    batch = finished(run(engine, make(tiny_sd1, seed=100, batch_size=2, batch_count=2, **common)))
    assert batch.seeds == (100, 101, 102, 103)
    assert [f"Seed: {s}" in info for s, info in zip(batch.seeds, batch.infos, strict=True)] == [True] * 4
    for k in (1, 3):
        single = finished(run(engine, make(tiny_sd1, seed=100 + k, **common)))
        # Batched float math on the CPU may differ in the last bit: at most one 8-bit level.
        assert np.abs(pixels(batch.images[k]) - pixels(single.images[0])).max() <= 1


def test_random_seed_is_reported(engine, tiny_sd1):
    result = finished(run(engine, make(tiny_sd1, seed=-1, steps=1, batch_size=2)))
    assert result.seeds[0] >= 0 and result.seeds[1] == result.seeds[0] + 1


# ---- inpaint keeps what is not masked ---------------------------------------------------------


def test_unmasked_pixels_are_exactly_the_input(engine, tiny_sd1, init_image, square_mask):
    from PIL import ImageFilter

    result = finished(run(engine, make(tiny_sd1, mode=Mode.INPAINT, init_image=init_image, mask=square_mask,
                                       mask_blur=4, strength=1.0))).images[0]
    outside = np.asarray(square_mask.filter(ImageFilter.GaussianBlur(4))) == 0
    assert outside.sum() > 1000
    assert np.array_equal(pixels(result)[outside], pixels(init_image)[outside])
    assert not np.array_equal(pixels(result)[~outside], pixels(init_image)[~outside])


def test_only_masked_pastes_back_into_the_full_image(engine, tiny_sd1):
    from PIL import ImageFilter

    big = Image.fromarray(np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8))
    mask = Image.new("L", big.size, 0)
    mask.paste(255, (100, 30, 120, 50))
    events = run(engine, make(tiny_sd1, mode=Mode.INPAINT, init_image=big, mask=mask, mask_blur=2,
                              inpaint_only_masked=True, inpaint_padding=8, strength=1.0))
    result = finished(events).images[0]
    assert result.size == big.size
    outside = np.asarray(mask.filter(ImageFilter.GaussianBlur(2))) == 0
    assert np.array_equal(pixels(result)[outside], pixels(big)[outside])
    assert not np.array_equal(pixels(result)[~outside], pixels(big)[~outside])


# ---- cancel and queue ------------------------------------------------------------------------


def test_cancel_running_job_stops_early_without_decoding(engine, tiny_sd1, monkeypatch):
    run(engine, make(tiny_sd1, steps=1))  # the model is loaded
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


def test_cancel_pending_job_leaves_the_running_one_alone(engine, tiny_sd1):
    first_events: list = []
    second_events: list = []
    jobs: dict = {}

    def on_first(event):
        first_events.append(event)
        if isinstance(event, Step) and event.index == 1:
            assert jobs["second"] in engine.pending_jobs()
            engine.cancel(jobs["second"])

    jobs["first"] = engine.submit(make(tiny_sd1, steps=3), on_first)
    jobs["second"] = engine.submit(make(tiny_sd1, steps=3), second_events.append)
    assert jobs["first"].wait(TIMEOUT) and jobs["second"].wait(TIMEOUT)
    assert [type(e) for e in second_events] == [Cancelled]
    assert jobs["second"].state is JobState.CANCELLED
    assert isinstance(first_events[-1], Finished) and jobs["first"].state is JobState.DONE
    assert sum(isinstance(e, Step) for e in first_events) == 3


def test_jobs_run_in_submission_order(engine, tiny_sd1):
    order: list[int] = []
    jobs = []
    for n in range(3):
        jobs.append(engine.submit(make(tiny_sd1, steps=1, seed=n),
                                  lambda e, n=n: order.append(n) if isinstance(e, Started) else None))
    assert [j.id for j in jobs] == sorted(j.id for j in jobs)
    assert all(j.wait(TIMEOUT) for j in jobs)
    assert order == [0, 1, 2]


def test_cancel_all_pending(engine, tiny_sd1):
    gate: list = []
    events: list[list] = [[], [], []]

    def on_first(event):
        events[0].append(event)
        if isinstance(event, Started):
            gate.append(engine.pending_jobs())
            engine.cancel_all_pending()

    jobs = [engine.submit(make(tiny_sd1, steps=1), on_first)]
    jobs += [engine.submit(make(tiny_sd1, steps=1), events[i].append) for i in (1, 2)]
    assert all(j.wait(TIMEOUT) for j in jobs)
    assert gate[0] == jobs[1:]
    assert isinstance(events[0][-1], Finished)
    assert [type(e) for e in events[1]] == [type(e) for e in events[2]] == [Cancelled]
    assert engine.pending_jobs() == []


# ---- failures: the right kind, and the worker goes on ------------------------------------------


@pytest.mark.parametrize(
    ("fields", "kind", "words"),
    [
        ({"width": 5000}, ErrorKind.BAD_INPUT, "width"),
        ({"height": 32}, ErrorKind.BAD_INPUT, "height"),
        ({"mode": Mode.IMG2IMG}, ErrorKind.BAD_INPUT, "init image"),
        ({"mode": Mode.INPAINT, "init_image": "image"}, ErrorKind.BAD_INPUT, "mask"),
        ({"mode": Mode.INPAINT, "init_image": "image", "mask": "black"}, ErrorKind.BAD_INPUT, "empty"),
        ({"mode": Mode.IMG2IMG, "init_image": "image", "strength": 0.1}, ErrorKind.BAD_INPUT, "strength"),
        ({"sampler": "No Such Sampler"}, ErrorKind.BAD_INPUT, "No Such Sampler"),
        ({"steps": 0}, ErrorKind.BAD_INPUT, "Steps"),
        ({"batch_size": 0}, ErrorKind.BAD_INPUT, "Batch size"),
    ],
)
def test_bad_input_fails_clearly_and_the_worker_survives(engine, tiny_sd1, init_image, fields, kind, words):
    images = {"image": init_image, "black": Image.new("L", (64, 64), 0)}
    fields = {k: images.get(v, v) if isinstance(v, str) and k in ("init_image", "mask") else v
              for k, v in fields.items()}
    events = run(engine, make(tiny_sd1, **fields))
    assert isinstance(events[-1], Failed)
    assert events[-1].error == kind and words in events[-1].message
    assert not any(isinstance(e, Step) for e in events)
    assert isinstance(run(engine, make(tiny_sd1, steps=1))[-1], Finished)


def test_missing_model_fails_and_keeps_the_loaded_one(engine, tiny_sd1, tmp_path):
    run(engine, make(tiny_sd1, steps=1))
    before = engine.model_info
    events = run(engine, make(tmp_path / "no-such-model", steps=1))
    assert isinstance(events[-1], Failed) and events[-1].error == ErrorKind.MODEL_LOAD
    assert engine.model_info == before
    assert isinstance(run(engine, make(tiny_sd1, steps=1))[-1], Finished)


def test_load_job(engine, tiny_sd1, tmp_path):
    events: list = []
    job = engine.load_model(ModelRef(str(tiny_sd1)), events.append)
    assert job.wait(TIMEOUT) and job.request is None
    assert isinstance(events[-1], ModelLoaded) and job.state is JobState.DONE
    failed: list = []
    engine.load_model(ModelRef(str(tmp_path / "nothing.safetensors")), failed.append).wait(TIMEOUT)
    assert isinstance(failed[-1], Failed) and failed[-1].error == ErrorKind.MODEL_LOAD


def test_size_is_snapped_to_8_with_a_notice(engine, tiny_sd1):
    events = run(engine, make(tiny_sd1, steps=1, width=64, height=70))
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("64x70 -> 64x72" in m for m in notices)
    assert finished(events).images[0].size == (64, 72)
    assert "Size: 64x72" in finished(events).infos[0]


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


def test_a_raising_callback_does_not_kill_the_worker(engine, tiny_sd1):
    def broken(event):
        raise RuntimeError("listener bug")

    job = engine.submit(make(tiny_sd1, steps=1), broken)
    assert job.wait(TIMEOUT) and job.state is JobState.DONE
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
