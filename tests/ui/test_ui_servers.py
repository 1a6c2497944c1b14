"""The queue view lists each machine jobs run on, with its state: two real ComfyUI servers (one
busy with a job, one idle) and an address where nothing listens (lost), and this computer."""

from __future__ import annotations

import pytest

from sdstudio.engine.backend import ServerState
from sdstudio.engine.request import GenerationRequest, ModelRef
from sdstudio.ui.controller import GenerationController
from sdstudio.ui.queue_view import QueueButton, server_line

TIMEOUT_MS = 120_000


def lines(button: QueueButton) -> list[str]:
    return [a.text() for a in button.menu().actions() if not a.isSeparator() and a.text().startswith("http")]


@pytest.mark.slow
def test_the_queue_view_shows_each_server_its_connection_and_its_job(qtbot):
    from sdstudio.engine.comfy.backend import ComfyBackend
    from sdstudio.engine.comfy.routing import MultiBackend
    from tests.contract.comfy_server import CHECKPOINT, free_port, shared_server

    urls = [shared_server().url, shared_server(1).url]
    dead = f"http://127.0.0.1:{free_port()}"
    multi = MultiBackend([ComfyBackend(url) for url in urls] + [ComfyBackend(dead, timeout=2)])
    try:
        controller = GenerationController(lambda: multi)
        controller.jobs  # noqa: B018 - starts the backend
        button = QueueButton(controller)
        qtbot.addWidget(button)
        qtbot.waitUntil(lambda: lines(button)[:2] == [f"{u}: connected, idle (server queue 0)" for u in urls],
                        timeout=TIMEOUT_MS)
        assert lines(button)[2] == f"{dead}: connection lost"
        assert button.text() == "&Queue: empty · 1 lost"

        request = GenerationRequest.create(model=ModelRef(CHECKPOINT), prompt="a slow quince", steps=40, width=128,
                                           height=128, seed=3)
        job = multi.submit(request, lambda event: None)
        qtbot.waitUntil(lambda: any(line.endswith("connected, busy: a slow quince, seed 3 (server queue 1)")
                                    for line in lines(button)), timeout=TIMEOUT_MS)
        busy = next(line for line in lines(button) if "busy" in line)
        idle = next(line for line in lines(button)[:2] if line != busy)
        assert busy.startswith(job.server.url) and idle.endswith("connected, idle (server queue 0)")
        multi.cancel(job)
        assert job.wait(60)
        qtbot.waitUntil(lambda: all("idle" in line for line in lines(button)[:2]), timeout=TIMEOUT_MS)
    finally:
        multi.shutdown()


def test_this_computer_is_one_entry_with_its_job_and_its_waiting_ones():
    from types import SimpleNamespace

    from sdstudio.engine.backend import local_backend

    engine = local_backend()
    try:
        assert engine.server_states() == [ServerState("this computer", True, None, 0)]
    finally:
        engine.shutdown()

    request = GenerationRequest.create(prompt="a pear", steps=5, width=64, height=64, seed=1)
    running = SimpleNamespace(request=request, model_ref=request.model)
    assert server_line(ServerState("this computer", True)) == "this computer: connected, idle"
    assert server_line(ServerState("this computer", True, running, 2)) == (
        "this computer: connected, busy: a pear, seed 1 (2 waiting)")
    loading = SimpleNamespace(request=None, model_ref=ModelRef("/m/dream.safetensors"))
    assert server_line(ServerState("http://gpu:8188", True, loading, 0, 1)) == (
        "http://gpu:8188: connected, busy: loading dream (server queue 1)")
