"""How the ComfyUI backend fails: each failure a `Failed` with an ErrorKind and a sentence, and
the backend goes on (against real servers, see tests/contract/comfy_server.py)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from sdstudio.engine.comfy.backend import CAPABILITIES_WAIT, ComfyBackend
from sdstudio.engine.comfy.client import ComfyError
from sdstudio.engine.events import ErrorKind, Failed, Finished, ModelLoaded, Step
from sdstudio.engine.request import GenerationRequest, ModelRef
from tests.contract.comfy_server import (
    CHECKPOINT,
    free_port,
    replace_shared,
    shared_server,
    start_server,
)

TIMEOUT = 120


def request(model: str = CHECKPOINT, **fields) -> GenerationRequest:
    fields = {"prompt": "a pear", "steps": 2, "width": 64, "height": 64, "seed": 7} | fields
    return GenerationRequest.create(model=ModelRef(model), **fields)


def run(backend: ComfyBackend, req: GenerationRequest) -> list:
    events: list = []
    assert backend.submit(req, events.append).wait(TIMEOUT)
    return events


@pytest.fixture(scope="module")
def server():
    return shared_server()


@pytest.fixture
def backend(server):
    backend = ComfyBackend(server.url)
    yield backend
    backend.shutdown()


def test_connection_refused_is_a_connection_failure_naming_the_server():
    url = f"http://127.0.0.1:{free_port()}"
    backend = ComfyBackend(url, timeout=5)
    try:
        events = run(backend, request())
        assert isinstance(events[-1], Failed) and events[-1].error is ErrorKind.CONNECTION
        assert url in events[-1].message and "Cannot reach" in events[-1].message
        assert backend.list_models() == [] and backend.capabilities().samplers == ()
    finally:
        backend.shutdown()


def test_a_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    backend = ComfyBackend(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=1)
    try:
        events = run(backend, request())
        assert isinstance(events[-1], Failed) and events[-1].error is ErrorKind.CONNECTION
        assert "did not answer within 1 s" in events[-1].message
    finally:
        backend.shutdown()
        for sock in (*accepted, listener):
            sock.close()


def test_an_unknown_model_names_the_server_and_the_model(backend, server):
    events = run(backend, request(model="dreamshaper_8.safetensors"))
    assert isinstance(events[-1], Failed) and events[-1].error is ErrorKind.MODEL_LOAD
    assert server.url in events[-1].message and "dreamshaper_8" in events[-1].message
    assert CHECKPOINT in events[-1].message  # what it does have


def test_a_graph_the_server_refuses_says_which_node_and_why(backend):
    from sdstudio.engine.comfy.graphs import Uploaded, batch_graph

    req = request().replace(cfg_scale=7.0)
    graph = batch_graph(req, CHECKPOINT, [1], (64, 64), Uploaded()).graph
    graph["sample0"]["inputs"]["sampler_name"] = "no_such_sampler"
    with pytest.raises(ComfyError) as caught:
        backend._client.queue_prompt(graph)
    assert caught.value.kind is ErrorKind.BAD_INPUT
    assert "refused the job" in str(caught.value) and "KSampler" in str(caught.value)
    assert "no_such_sampler" in str(caught.value)


def test_an_execution_error_on_the_server_fails_the_job_and_the_backend_goes_on(backend, monkeypatch):
    from sdstudio.engine.comfy import backend as module
    from sdstudio.engine.comfy.graphs import BatchGraph

    name = backend._client.upload_image(b"not a picture", "sdstudio-broken.png")
    graph = {
        "load": {"class_type": "LoadImage", "inputs": {"image": name}},
        "save": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["load", 0]}},
    }
    with monkeypatch.context() as patch:
        patch.setattr(module, "batch_graph", lambda *args, **kwargs: BatchGraph(graph, (), ("save",)))
        events = run(backend, request(steps=1))
    assert isinstance(events[-1], Failed) and events[-1].error is ErrorKind.INTERNAL
    assert "failed in LoadImage" in events[-1].message and events[-1].details
    assert isinstance(run(backend, request(steps=1))[-1], Finished)


def test_images_can_come_by_history_and_view(server):
    backend = ComfyBackend(server.url, websocket_images=False)
    try:
        by_file = run(backend, request(seed=11))[-1]
    finally:
        backend.shutdown()
    websocket = ComfyBackend(server.url)
    try:
        by_socket = run(websocket, request(seed=11))[-1]
    finally:
        websocket.shutdown()
    assert isinstance(by_file, Finished) and isinstance(by_socket, Finished)
    assert by_file.images[0].tobytes() == by_socket.images[0].tobytes()


@pytest.mark.slow
def test_a_server_lost_mid_job_fails_it_and_the_backend_reconnects_to_the_restarted_one():
    server = shared_server(1)
    backend = ComfyBackend(server.url)
    try:
        assert isinstance(run(backend, request(steps=1))[-1], Finished)  # the model is loaded
        events: list = []

        def kill_at_first_step(event) -> None:
            events.append(event)
            if isinstance(event, Step) and event.index == 1:
                server.kill()

        assert backend.submit(request(steps=30, seed=99), kill_at_first_step).wait(TIMEOUT)
        assert isinstance(events[-1], Failed) and events[-1].error is ErrorKind.CONNECTION
        assert "Lost the connection" in events[-1].message and server.url in events[-1].message

        server = start_server(port=int(server.url.rsplit(":", 1)[1]))
        replace_shared(1, server)
        assert isinstance(run(backend, request(steps=1, seed=5))[-1], Finished)
    finally:
        backend.shutdown()


def test_capabilities_of_a_server_that_never_answers_do_not_block_the_window():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    backend = ComfyBackend(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=20)
    try:
        start = time.monotonic()
        assert backend.capabilities().samplers == ()
        assert time.monotonic() - start < CAPABILITIES_WAIT + 1
    finally:
        backend.shutdown(wait=False)
        listener.close()


def test_a_history_record_that_comes_after_execution_success_is_waited_for():
    # ComfyUI sends execution_success before it stores the prompt in /history.
    from sdstudio.engine.comfy.prompt_run import recorded_outputs

    class LateHistory:
        calls = 0

        def history(self, prompt_id: str) -> dict:
            self.calls += 1
            return {} if self.calls < 3 else {"outputs": {"save": {"images": [{"filename": "a.png"}]}}}

    client = LateHistory()
    assert recorded_outputs(client, "p", wait=5)["save"]["images"][0]["filename"] == "a.png"
    assert client.calls == 3
    assert recorded_outputs(type("Never", (), {"history": lambda self, p: {}})(), "p", wait=0.2) == {}


def test_a_loaded_model_is_the_backends_model_and_its_first_job_does_not_load_it_again(server):
    backend = ComfyBackend(server.url)
    try:
        events: list = []
        assert backend.load_model(ModelRef(CHECKPOINT), events.append).wait(TIMEOUT)
        assert isinstance(events[-1], ModelLoaded) and backend.model_info == events[-1].info
        generated = run(backend, request(steps=1))
        assert isinstance(generated[-1], Finished) and not any(isinstance(e, ModelLoaded) for e in generated)
    finally:
        backend.shutdown()
