"""The Backend contract, written once and run against every backend (`BACKENDS` below).

A backend passes when: every mode makes images of the requested size; a seed reproduces its
image and image k of a batch is the single run with seed + k; events arrive in order with
exactly one terminal event; each result carries the request actually used and the caller's
lineage; running and pending jobs can be cancelled; failures map to an ErrorKind; a broken
listener fails its own job only. A new backend adds its factory to `BACKENDS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from sdstudio.engine.backend import LANCZOS, Backend, Upscale
from sdstudio.engine.events import (
    TERMINAL_EVENTS,
    BatchDone,
    Cancelled,
    ErrorKind,
    Failed,
    Finished,
    JobKind,
    JobState,
    ModelLoaded,
    ModelLoading,
    Notice,
    Started,
    Step,
)
from sdstudio.engine.parameters import MAX_SEED, Mode
from sdstudio.engine.request import GenerationRequest, ImageData, Inputs, ModelRef

TIMEOUT = 120


@dataclass
class Subject:
    backend: Backend
    model: ModelRef  # a model the backend has
    upscalers: Path  # where the backend finds upscaler models by name


def _local(request: pytest.FixtureRequest) -> Iterator[Subject]:
    from sdstudio.engine.backend import local_backend
    from sdstudio.engine.upscalers import FOLDER_ENV

    upscalers = request.getfixturevalue("tmp_path_factory").mktemp("upscalers")
    backend = local_backend(device="cpu", dtype="float32")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FOLDER_ENV, str(upscalers))
        yield Subject(backend, ModelRef(str(request.getfixturevalue("tiny_sd1"))), upscalers)
    backend.shutdown()


def _comfy(request: pytest.FixtureRequest) -> Iterator[Subject]:
    """A real ComfyUI server (conftest.py) with the reduced SD1.5 checkpoint."""
    from sdstudio.engine.comfy import comfy_backend
    from tests.contract.comfy_server import CHECKPOINT, install

    backend = comfy_backend(request.getfixturevalue("comfy_server").url)
    yield Subject(backend, ModelRef(CHECKPOINT), install() / "models" / "upscale_models")
    backend.shutdown()


# Each factory takes pytest's request, to get the fixtures it needs.
BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Iterator[Subject]]] = {"local": _local, "comfy": _comfy}


@pytest.fixture(scope="module", params=list(BACKENDS))
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    yield from BACKENDS[request.param](request)


@pytest.fixture(scope="module")
def init_image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def square_mask() -> Image.Image:
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (20, 20, 44, 44))
    return mask


def make(subject: Subject, init=None, mask=None, source=None, **fields) -> GenerationRequest:
    fields = {"prompt": "a red apple", "steps": 3, "width": 64, "height": 64, "seed": 42} | fields
    return GenerationRequest.create(model=subject.model, inputs=Inputs.from_pil(init, mask, source), **fields)


def run(subject: Subject, request: GenerationRequest) -> list:
    events: list = []
    job = subject.backend.submit(request, events.append)
    assert job.wait(TIMEOUT), "job did not finish"
    return events


def finished(events: list) -> Finished:
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1]


def assert_well_ordered(events: list) -> None:
    """[ModelLoading*, ModelLoaded]?, Started, Notice*, (Step* BatchDone)*, exactly one terminal."""
    kinds = [type(e) for e in events]
    assert sum(k in TERMINAL_EVENTS for k in kinds) == 1 and kinds[-1] in TERMINAL_EVENTS
    if not isinstance(events[-1], Finished):
        return
    body = [e for e in events if not isinstance(e, ModelLoading | ModelLoaded | Notice)][:-1]
    started, rest = body[0], body[1:]
    assert isinstance(started, Started)
    steps = [e for e in rest if isinstance(e, Step)]
    assert [s.index for s in steps] == list(range(1, started.total + 1))
    assert all(s.total == started.total for s in steps)
    batches = [e for e in rest if isinstance(e, BatchDone)]
    assert isinstance(rest[-1], BatchDone)
    assert [r.image for b in batches for r in b.results] == list(events[-1].images)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


# ---- modes and sizes ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(Mode))
def test_every_mode_makes_images_of_the_requested_size(subject, init_image, square_mask, mode):
    events = run(subject, make(subject, init_image, square_mask, mode=mode, width=64, height=72, strength=1.0))
    assert_well_ordered(events)
    assert [im.size for im in finished(events).images] == [(64, 72)]


def test_a_size_off_the_grid_is_snapped_and_said(subject):
    events = run(subject, make(subject, steps=1, width=64, height=70))
    assert any("64x70 -> 64x72" in e.message for e in events if isinstance(e, Notice))
    result = finished(events).results[0]
    assert result.image.size == (64, 72)
    assert (result.request.extent.width, result.request.extent.height) == (64, 72)
    assert "Size: 64x72" in result.infotext


# ---- results carry what was made ----------------------------------------------------------------


def test_each_result_carries_the_request_used_and_the_lineage(subject):
    request = make(subject, seed=-1, batch_size=2, cfg_scale=None, source="images/2026-01-01/parent.png")
    result = finished(run(subject, request))
    first, second = result.results
    assert 0 <= first.seed <= MAX_SEED and second.seed == (first.seed + 1) % (MAX_SEED + 1)
    for r in result.results:
        info = r.model
        assert info is not None and r.request.model == subject.model
        assert r.request.sampling.cfg_scale == info.default_cfg  # the model's default, filled in
        assert r.request.inputs.source == "images/2026-01-01/parent.png"
        assert f"Seed: {r.seed}" in r.infotext and r.infotext.startswith("a red apple")
        # Reusing a result makes the same request again: it round-trips through JSON.
        assert GenerationRequest.from_json(r.request.to_json()) == r.request


@pytest.mark.slow  # a server's SD1.5 checkpoint is native at 512x512
def test_a_size_left_to_the_model_is_its_native_size(subject):
    result = finished(run(subject, make(subject, steps=1, width=None, height=None))).results[0]
    native = result.model.native_size
    assert result.image.size == (native, native) and result.request.extent.width == native


# ---- seeds ------------------------------------------------------------------------------------


def test_same_request_twice_gives_identical_pixels(subject):
    request = make(subject, seed=1234, sampler="Euler a")
    assert finished(run(subject, request)).images[0].tobytes() == finished(run(subject, request)).images[0].tobytes()


@pytest.mark.parametrize("mode", list(Mode))
def test_batch_image_k_is_the_single_run_with_seed_plus_k(subject, init_image, square_mask, mode):
    common = {"mode": mode, "init": init_image, "mask": square_mask, "sampler": "Euler a"}
    batch = finished(run(subject, make(subject, seed=100, batch_size=2, batch_count=2, **common)))
    assert batch.seeds == (100, 101, 102, 103)
    for k in (1, 3):
        single = finished(run(subject, make(subject, seed=100 + k, **common)))
        # Batched float math on the CPU may differ in the last bit: at most one 8-bit level.
        assert np.abs(pixels(batch.images[k]) - pixels(single.images[0])).max() <= 1


def test_batch_seeds_wrap_within_32_bits(subject):
    assert finished(run(subject, make(subject, steps=1, seed=MAX_SEED, batch_size=2))).seeds == (MAX_SEED, 0)


# ---- inpaint keeps what is not masked ---------------------------------------------------------


@pytest.mark.parametrize("only_masked", [False, True])
def test_unmasked_pixels_are_exactly_the_input(subject, only_masked):
    big = Image.fromarray(np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8))
    mask = Image.new("L", big.size, 0)
    mask.paste(255, (100, 30, 120, 50))
    size = {"width": 64, "height": 64} if only_masked else {"width": 160, "height": 120}
    request = make(subject, big, mask, mode=Mode.INPAINT, mask_blur=2, inpaint_only_masked=only_masked,
                   inpaint_padding=8, strength=1.0, **size)
    result = finished(run(subject, request)).images[0]
    assert result.size == big.size
    outside = np.asarray(mask.filter(ImageFilter.GaussianBlur(2))) == 0
    assert np.array_equal(pixels(result)[outside], pixels(big)[outside])
    assert not np.array_equal(pixels(result)[~outside], pixels(big)[~outside])


# ---- cancel and queue ------------------------------------------------------------------------


def test_cancel_the_running_job(subject):
    backend, events, holder = subject.backend, [], []

    def on_event(event):
        events.append(event)
        if isinstance(event, Step) and event.index == 2:
            backend.cancel(holder[0])

    holder.append(backend.submit(make(subject, steps=10), on_event))
    assert holder[0].wait(TIMEOUT)
    assert isinstance(events[-1], Cancelled) and not any(isinstance(e, Finished | BatchDone) for e in events)
    assert [e.index for e in events if isinstance(e, Step)] == [1, 2]
    assert holder[0].state is JobState.CANCELLED
    assert isinstance(run(subject, make(subject, steps=1))[-1], Finished)


def test_cancel_a_pending_job_leaves_the_running_one_alone(subject):
    backend, first, second, jobs = subject.backend, [], [], {}

    def on_first(event):
        first.append(event)
        if isinstance(event, Step) and event.index == 1:
            assert jobs["second"] in backend.pending_jobs()
            backend.cancel(jobs["second"])

    jobs["first"] = backend.submit(make(subject, steps=3), on_first)
    jobs["second"] = backend.submit(make(subject, steps=3), second.append)
    assert jobs["first"].wait(TIMEOUT) and jobs["second"].wait(TIMEOUT)
    assert [type(e) for e in second] == [Cancelled] and jobs["second"].state is JobState.CANCELLED
    assert isinstance(first[-1], Finished) and jobs["first"].state is JobState.DONE


def test_server_states_name_the_running_job_and_count_the_waiting_ones(subject):
    backend, seen, jobs = subject.backend, [], {}

    def on_first(event):
        if isinstance(event, Step) and not seen:
            seen.extend(backend.server_states())

    jobs["first"] = backend.submit(make(subject, steps=3), on_first)
    jobs["second"] = backend.submit(make(subject, steps=1), lambda event: None)
    assert jobs["first"].wait(TIMEOUT) and jobs["second"].wait(TIMEOUT)
    [state] = seen
    assert state.connected and state.running is jobs["first"] and state.waiting == 1
    deadline = time.monotonic() + 5  # the worker lets go of the job just after its last event
    while backend.server_states()[0].running is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    [idle] = backend.server_states()
    assert idle.connected and idle.running is None and idle.waiting == 0


def test_cancel_all_pending_and_submission_order(subject):
    backend, order, events = subject.backend, [], [[], [], []]

    def on_first(event):
        events[0].append(event)
        if isinstance(event, Started):
            order.append(0)
            backend.cancel_all_pending()

    jobs = [backend.submit(make(subject, steps=1), on_first)]
    jobs += [backend.submit(make(subject, steps=1), events[i].append) for i in (1, 2)]
    assert [j.id for j in jobs] == sorted(j.id for j in jobs)
    assert all(j.wait(TIMEOUT) for j in jobs)
    assert isinstance(events[0][-1], Finished) and order == [0]
    assert [type(e) for e in events[1]] == [type(e) for e in events[2]] == [Cancelled]
    assert backend.pending_jobs() == []


# ---- failures map to an ErrorKind, and the backend goes on ------------------------------------


@pytest.mark.parametrize(
    ("fields", "kind", "words"),
    [
        ({"width": 5000}, ErrorKind.BAD_INPUT, "Width"),
        ({"height": 32}, ErrorKind.BAD_INPUT, "Height"),
        ({"mode": Mode.IMG2IMG}, ErrorKind.BAD_INPUT, "init image"),
        ({"mode": Mode.INPAINT, "init": "image"}, ErrorKind.BAD_INPUT, "mask"),
        ({"mode": Mode.INPAINT, "init": "image", "mask": "black"}, ErrorKind.BAD_INPUT, "empty"),
        ({"mode": Mode.IMG2IMG, "init": "image", "strength": 0.1}, ErrorKind.BAD_INPUT, "strength"),
        ({"sampler": "No Such Sampler"}, ErrorKind.BAD_INPUT, "No Such Sampler"),
        ({"steps": "20"}, ErrorKind.BAD_INPUT, "Steps must be a whole number"),
        ({"batch_size": 0}, ErrorKind.BAD_INPUT, "Batch size"),
        ({"seed": 2**63}, ErrorKind.BAD_INPUT, "Seed"),
    ],
)
def test_bad_input_fails_clearly_and_the_backend_goes_on(subject, init_image, fields, kind, words):
    images = {"image": init_image, "black": Image.new("L", (64, 64), 0)}
    fields = {k: images.get(v, v) if k in ("init", "mask") else v for k, v in fields.items()}
    events = run(subject, make(subject, **fields))
    assert isinstance(events[-1], Failed) and events[-1].error == kind and words in events[-1].message
    assert not any(isinstance(e, Step) for e in events)
    assert isinstance(run(subject, make(subject, steps=1))[-1], Finished)


def test_a_missing_model_fails_and_keeps_the_loaded_one(subject, tmp_path):
    run(subject, make(subject, steps=1))
    before = subject.backend.model_info
    events = run(subject, GenerationRequest.create(prompt="x", model=ModelRef(str(tmp_path / "no-such-model"))))
    assert isinstance(events[-1], Failed) and events[-1].error == ErrorKind.MODEL_LOAD
    assert subject.backend.model_info == before
    assert isinstance(run(subject, make(subject, steps=1))[-1], Finished)


def test_a_load_job_ends_with_model_loaded(subject):
    events: list = []
    job = subject.backend.load_model(subject.model, events.append)
    assert job.wait(TIMEOUT) and job.request is None
    assert isinstance(events[-1], ModelLoaded) and job.state is JobState.DONE


@pytest.mark.parametrize("error", [RuntimeError("listener bug"), SystemExit(3), KeyboardInterrupt()])
def test_a_raising_listener_fails_its_own_job_only(subject, error):
    def broken(event):
        if isinstance(event, Step):
            raise error

    job = subject.backend.submit(make(subject, steps=2), broken)
    assert job.wait(TIMEOUT) and job.state is JobState.FAILED
    assert isinstance(run(subject, make(subject, steps=1))[-1], Finished)


# ---- upscaling ----------------------------------------------------------------------------------


def upscale(subject: Subject, picture: Image.Image, scale: float, upscaler: str) -> tuple[list, object]:
    source = make(subject, source="images/2026-01-01/parent.png")
    order = Upscale(ImageData.from_pil(picture), scale, upscaler, source, "a red apple\nSteps: 3, Seed: 42")
    events: list = []
    job = subject.backend.upscale(order, events.append)
    assert job.wait(TIMEOUT), "job did not finish"
    assert job.kind is JobKind.UPSCALE and job.request == source
    return events, job


@pytest.mark.parametrize(("scale", "upscaler"), [(2.0, LANCZOS), (4.0, "model")])
def test_an_upscale_job_makes_one_picture_scale_times_the_size(subject, init_image, scale, upscaler):
    if upscaler == "model":  # a ×2 ESRGAN of random weights; ×4 runs it and finishes with Lanczos
        from tests.engine.test_upscalers import _esrgan, save_model

        upscaler = save_model(subject.upscalers, "sdstudio-test-x2.safetensors", _esrgan(2)).name
    events, job = upscale(subject, init_image.crop((0, 0, 64, 48)), scale, upscaler)
    assert sum(isinstance(e, TERMINAL_EVENTS) for e in events) == 1 and job.state is JobState.DONE
    started, steps = events[0], [e for e in events if isinstance(e, Step)]
    assert isinstance(started, Started) and [s.index for s in steps] == list(range(1, started.total + 1))
    (result,) = finished(events).results
    assert result.image.size == (64 * scale, 48 * scale) and result.image.mode == "RGB"
    assert result.request.inputs.source == "images/2026-01-01/parent.png"
    label = upscaler.removesuffix(".safetensors")
    assert result.infotext == f"a red apple\nSteps: 3, Seed: 42, Postprocess upscale by: {scale:g}, Postprocess upscaler: {label}"


@pytest.mark.parametrize(
    ("scale", "upscaler", "words"),
    [(2.0, "no-such-upscaler.safetensors", "no-such-upscaler"), (1.0, LANCZOS, "above 1"), (200.0, LANCZOS, "at most")],
)
def test_a_bad_upscale_fails_clearly_and_the_backend_goes_on(subject, init_image, scale, upscaler, words):
    events, job = upscale(subject, init_image, scale, upscaler)
    assert isinstance(events[-1], Failed) and events[-1].error == ErrorKind.BAD_INPUT and words in events[-1].message
    assert len(events) == 1
    assert isinstance(upscale(subject, init_image, 2.0, LANCZOS)[0][-1], Finished)


def test_a_hires_pass_can_enlarge_by_an_upscaler_model(subject):
    from tests.engine.test_upscalers import _esrgan, save_model

    label = save_model(subject.upscalers, "sdstudio-test-x2.safetensors", _esrgan(2)).stem
    request = make(subject, hires_scale=1.5, hires_upscaler=label, hires_steps=2, hires_denoise=0.5)
    events = run(subject, request)
    assert_well_ordered(events)
    (result,) = finished(events).results
    assert result.image.size == (96, 96) and f"Hires upscaler: {label}," in result.infotext
    by_lanczos = finished(run(subject, request.replace(hires_upscaler=LANCZOS))).results[0]
    assert not np.array_equal(pixels(result.image), pixels(by_lanczos.image))
    assert label in [name.removesuffix(".safetensors") for name in subject.backend.capabilities().upscalers]


def test_capabilities_name_what_the_backend_runs(subject):
    caps = subject.backend.capabilities()
    assert "Euler a" in caps.samplers and caps.max_side >= 1024 and caps.min_side <= 64
    finished(run(subject, make(subject, steps=1, sampler=caps.samplers[-1])))
