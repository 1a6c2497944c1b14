"""Several ComfyUI servers as one backend: jobs go to idle servers side by side, each job's
batches stay in order on one server, pending jobs cancel at once (two real servers)."""

from __future__ import annotations

import time

import pytest

from sdstudio.engine.comfy.backend import ComfyBackend
from sdstudio.engine.comfy.routing import MultiBackend
from sdstudio.engine.events import Cancelled, Finished, JobState, Started
from sdstudio.engine.request import GenerationRequest, ModelRef
from tests.contract.comfy_server import CHECKPOINT, shared_server

TIMEOUT = 180


def request(**fields) -> GenerationRequest:
    fields = {"prompt": "a fig", "steps": 4, "width": 64, "height": 64, "seed": 1} | fields
    return GenerationRequest.create(model=ModelRef(CHECKPOINT), **fields)


@pytest.fixture(scope="module")
def multi():
    backend = MultiBackend([ComfyBackend(shared_server().url), ComfyBackend(shared_server(1).url)])
    yield backend
    backend.shutdown()


@pytest.mark.slow
def test_jobs_run_side_by_side_on_idle_servers_and_batches_keep_their_order(multi):
    spans: dict[int, list[float]] = {}
    events: dict[int, list] = {}

    def listener(k: int):
        def on_event(event) -> None:
            events[k].append(event)
            if isinstance(event, Started | Finished):
                spans[k].append(time.monotonic())
        return on_event

    jobs = []
    for k in range(4):
        spans[k], events[k] = [], []
        jobs.append(multi.submit(request(seed=10 * k, batch_count=2), listener(k)))
    assert all(job.wait(TIMEOUT) for job in jobs)
    for k, job in enumerate(jobs):
        assert isinstance(events[k][-1], Finished) and job.state is JobState.DONE
        assert events[k][-1].seeds == (10 * k, 10 * k + 1)
    servers = {job.server.url for job in jobs}
    assert len(servers) == 2
    # Two jobs on different servers ran at the same time.
    a, b = next((i, j) for i in range(4) for j in range(4) if jobs[i].server is not jobs[j].server)
    assert spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]
    states = multi.server_states()
    assert [s.name for s in states] == [s.url for s in multi.servers] and all(s.connected for s in states)


def test_a_pending_job_cancels_at_once_and_a_seed_makes_the_same_image_on_every_server(multi):
    outcomes: list[list] = [[] for _ in multi.servers]
    first = [multi.submit(request(seed=5, steps=6), outcomes[k].append) for k in range(len(multi.servers))]
    waiting: list = []
    pending = multi.submit(request(), waiting.append)
    assert pending in multi.pending_jobs()
    multi.cancel(pending)
    assert [type(e) for e in waiting] == [Cancelled] and pending.state is JobState.CANCELLED
    assert all(job.wait(TIMEOUT) for job in first)
    assert {job.server.url for job in first} == {s.url for s in multi.servers}
    images = [events[-1].images[0].tobytes() for events in outcomes]
    assert images[0] == images[1]


def test_several_addresses_make_one_backend_over_all_of_them(multi):
    from sdstudio.engine.comfy import comfy_backend, probe

    urls = [s.url for s in multi.servers]
    backend = comfy_backend(" , ".join(urls))
    try:
        assert isinstance(backend, MultiBackend) and [s.url for s in backend.servers] == urls
    finally:
        backend.shutdown()
    line = probe(",".join(urls))
    assert all(f"{url}: ComfyUI 0.3.64" in line for url in urls), line


def test_upscale_jobs_go_through_the_routing_wrappers(multi):
    from PIL import Image

    from sdstudio.engine.backend import LANCZOS, Upscale
    from sdstudio.engine.comfy.routing import SwitchableBackend
    from sdstudio.engine.events import JobKind
    from sdstudio.engine.request import ImageData

    order = Upscale(ImageData.from_pil(Image.new("RGB", (40, 24), (9, 99, 199))), 2.0, LANCZOS, request(), "a fig")
    for backend in (multi, SwitchableBackend(multi)):
        events: list = []
        job = backend.upscale(order, events.append)
        assert job.wait(TIMEOUT) and job.kind is JobKind.UPSCALE and job.state is JobState.DONE
        (result,) = events[-1].results
        assert result.image.size == (80, 48) and result.infotext.endswith("Postprocess upscaler: Lanczos")
