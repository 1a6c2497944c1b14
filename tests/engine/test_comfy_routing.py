"""Which server a MultiBackend gives a job to (fake servers: no ComfyUI needed)."""

from __future__ import annotations

import threading

from sdstudio.engine.backend import Capabilities
from sdstudio.engine.comfy.routing import MultiBackend
from sdstudio.engine.events import Finished
from sdstudio.engine.request import Family, GenerationRequest, ModelRef


class FakeServer:
    """A connected server with some checkpoints and LoRAs; jobs finish when `release` is set."""

    def __init__(self, name: str, models: tuple[str, ...], loras: tuple[str, ...], vaes: tuple[str, ...] = ()) -> None:
        self.name, self.models, self.loras, self.vaes = name, models, loras, vaes
        self.connected = True
        self.model_info = None
        self.ran: list[str] = []
        self.release = threading.Event()

    def list_models(self) -> list[ModelRef]:
        return [ModelRef(m) for m in self.models]

    def capabilities(self) -> Capabilities:
        return Capabilities(self.name, ("Euler",), frozenset(Family), frozenset(), loras=self.loras, vaes=self.vaes)

    def submit(self, request: GenerationRequest, callback) -> threading.Event:
        self.ran.append(request.prompt.prompt)

        def finish() -> None:
            self.release.wait(10)
            callback(Finished(()))

        threading.Thread(target=finish, daemon=True).start()
        return self.release

    def shutdown(self, wait: bool = True) -> None:
        self.release.set()


def job(prompt: str) -> GenerationRequest:
    return GenerationRequest.create(model=ModelRef("sd15.safetensors"), prompt=prompt)


def test_a_job_goes_to_an_idle_server_with_its_loras_and_waits_for_one_when_those_are_busy():
    plain = FakeServer("plain", ("sd15.safetensors",), ())
    styled = FakeServer("styled", ("sd15.safetensors",), ("styles/ink.safetensors",))
    multi = MultiBackend([plain, styled])  # type: ignore[list-item]
    try:
        first = multi.submit(job("a fig <lora:ink:0.7>"), lambda e: None)
        second = multi.submit(job("a pear <lora:ink:1>"), lambda e: None)  # only 'styled' has ink: it waits
        third = multi.submit(job("a plum"), lambda e: None)  # behind it in the queue
        assert not second.wait(0.3)
        assert styled.ran == ["a fig <lora:ink:0.7>"] and plain.ran == []
        styled.release.set()
        plain.release.set()
        assert first.wait(5) and second.wait(5) and third.wait(5)
        assert styled.ran[:2] == ["a fig <lora:ink:0.7>", "a pear <lora:ink:1>"]  # never sent where ink is missing
        assert "a plum" in plain.ran + styled.ran
    finally:
        plain.release.set()
        styled.release.set()
        multi.shutdown()


def test_a_job_with_a_vae_goes_to_a_server_that_has_that_vae():
    plain = FakeServer("plain", ("sd15.safetensors",), ())
    tuned = FakeServer("tuned", ("sd15.safetensors",), (), vaes=("vae-ft-mse.safetensors",))
    multi = MultiBackend([plain, tuned])  # type: ignore[list-item]
    request = GenerationRequest.create(model=ModelRef("sd15.safetensors", vae="vae-ft-mse"), prompt="a fig")
    try:
        plain.release.set()
        tuned.release.set()
        assert multi.submit(request, lambda e: None).wait(5)
        assert tuned.ran == ["a fig"] and plain.ran == []
        assert multi.capabilities().vaes == ()  # only what every server has is offered
    finally:
        multi.shutdown()
