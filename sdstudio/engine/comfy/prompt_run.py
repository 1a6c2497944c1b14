"""One prompt on a ComfyUI server, from queueing to its images: the server's websocket
messages become Step events (progress + its JPEG frame: a preview), SaveImageWebsocket's PNG
frames the images (else `/history` + `/view`), `execution_*` the outcome. A silent server, a
lost websocket and a cancel that the server does not answer end it within bounded times.
"""

from __future__ import annotations

import io
import queue
import time
from typing import TYPE_CHECKING, Any

from sdstudio.engine.backend import Callback
from sdstudio.engine.comfy.client import (
    PNG,
    PREVIEW_IMAGE,
    BinaryFrame,
    ComfyClient,
    ComfyError,
    ConnectionChange,
    Message,
)
from sdstudio.engine.comfy.graphs import BatchGraph
from sdstudio.engine.events import ErrorKind, Step

if TYPE_CHECKING:
    from PIL.Image import Image

    from sdstudio.engine.comfy.backend import ComfyJob

# How long a cancelled prompt may take to stop before the job ends anyway.
STOP_GRACE = 30.0
# ComfyUI sends `execution_success` before it records the prompt in `/history`, so the
# record is polled for this long before the images count as missing.
HISTORY_WAIT = 10.0


class PromptCancelled(Exception):
    """The running job was cancelled."""


class PromptRun:
    """One batch's prompt on the server, from queueing to its images, turning its websocket
    messages into Step events (numbered from `step_base`)."""

    def __init__(
        self, client: ComfyClient, inbox: queue.Queue[Any], job: ComfyJob, graph: BatchGraph, emit: Callback,
        total: int, step_base: int, websocket_images: bool, idle_timeout: float,
    ) -> None:
        self.client, self.inbox, self.job, self.graph, self.emit = client, inbox, job, graph, emit
        self.websocket_images, self.idle_timeout = websocket_images, idle_timeout
        self.total, self.step = total, step_base
        self.node: str | None = None  # the node that runs now; binary frames belong to it
        self.started = False
        self.images: dict[str, Image] = {}
        self.pending_step: int | None = None  # a step whose preview frame may follow

    def run(self) -> list[Image]:
        client, job = self.client, self.job
        _drain(self.inbox)
        if not client.wait_connected(0):
            client.system_stats()  # the precise error when the server cannot be reached at all
            if not client.wait_connected(client.timeout):
                raise ComfyError(ErrorKind.CONNECTION, f"No websocket connection to {client.url}.")
        prompt_id = job.prompt_id = client.queue_prompt(self.graph.graph)
        try:
            if job.cancelled.is_set():
                client.stop_prompt(prompt_id)
            self._follow(prompt_id)
        except PromptCancelled:
            raise
        except BaseException:
            client.stop_prompt(prompt_id)  # a lost listener or a timeout must not leave it running
            raise
        finally:
            job.prompt_id = None
        if not self.websocket_images or len(self.images) < len(self.graph.outputs):
            self._fetch_outputs(prompt_id)
        missing = [node for node in self.graph.outputs if node not in self.images]
        if missing:
            raise ComfyError(ErrorKind.BAD_OUTPUT, f"The server at {client.url} finished the job but sent no image.")
        return [self.images[node] for node in self.graph.outputs]

    def _follow(self, prompt_id: str) -> None:
        inbox, job = self.inbox, self.job
        last_heard = time.monotonic()
        cancelled_at: float | None = None
        while True:
            try:
                item = inbox.get(timeout=0.1)
            except queue.Empty:
                self._flush_step()
                now = time.monotonic()
                if job.cancelled.is_set():
                    cancelled_at = cancelled_at or now
                    if now - cancelled_at > STOP_GRACE or (not self.started and self._gone(prompt_id)):
                        raise PromptCancelled from None
                elif now - last_heard > self.idle_timeout:
                    raise ComfyError(
                        ErrorKind.CONNECTION,
                        f"The server at {self.client.url} said nothing about the job for "
                        f"{self.idle_timeout:g} s, so it was stopped.",
                    ) from None
                continue
            if isinstance(item, ConnectionChange):
                if not item.connected:
                    raise ComfyError(
                        ErrorKind.CONNECTION,
                        f"Lost the connection to the server at {self.client.url} during the job ({item.reason}): "
                        "it may have stopped or restarted. It reconnects by itself; run the job again.",
                    )
                continue
            if isinstance(item, BinaryFrame):
                self._binary(item)
                continue
            if item.data.get("prompt_id", prompt_id) != prompt_id:
                continue  # a message of an earlier, abandoned prompt
            last_heard = time.monotonic()
            if self._message(item):
                return

    def _message(self, message: Message) -> bool:
        """Handle one message of this prompt; True when the prompt has ended well."""
        kind, data = message.type, message.data
        self._flush_step()
        if kind == "execution_start":
            self.started = True
        elif kind == "execution_cached":
            # Cached samplers send no progress; their steps count as done at once.
            for node in data.get("nodes") or []:
                if node in self.graph.samplers:
                    for _ in range(self.graph.samplers[node]):
                        self._step_done()
                        self._flush_step()
        elif kind == "executing":
            self.node = data.get("node")
        elif kind == "progress":
            self.node = data.get("node")
            if self.node in self.graph.samplers:
                self._step_done()
        elif kind == "execution_success":
            if self.job.cancelled.is_set():
                raise PromptCancelled
            return True
        elif kind == "execution_interrupted":
            if self.job.cancelled.is_set():
                raise PromptCancelled
            raise ComfyError(ErrorKind.INTERNAL, f"The job was stopped on the server at {self.client.url}.")
        elif kind == "execution_error":
            if self.job.cancelled.is_set():
                raise PromptCancelled
            raise _execution_error(data, self.client.url)
        return False

    def _binary(self, frame: BinaryFrame) -> None:
        if frame.event != PREVIEW_IMAGE or not self.started:
            return
        if frame.image_format == PNG and self.node in self.graph.outputs:
            self.images[self.node] = _decoded(frame.data)
        elif self.pending_step is not None:
            self._flush_step(_decoded(frame.data))

    def _step_done(self) -> None:
        if not self.job.cancelled.is_set() and self.step < self.total:
            self.step += 1
            self.pending_step = self.step

    def _flush_step(self, preview: Image | None = None) -> None:
        """Emit the step waiting for its preview frame, with the preview when it came."""
        if self.pending_step is None:
            return
        index, self.pending_step = self.pending_step, None
        if not self.job.cancelled.is_set():
            self.emit(Step(index, self.total, preview))

    def _gone(self, prompt_id: str) -> bool:
        """Whether a prompt cancelled before it started has left the server's queue."""
        try:
            running, pending = self.client.queue()
        except ComfyError:
            return True
        return prompt_id not in running and prompt_id not in pending

    def _fetch_outputs(self, prompt_id: str) -> None:
        """Final images by `/history` + `/view` (PreviewImage writes them to the temp folder)."""
        outputs = recorded_outputs(self.client, prompt_id, HISTORY_WAIT)
        for node in self.graph.outputs:
            for image in (outputs.get(node) or {}).get("images", [])[:1]:
                data = self.client.view(image["filename"], image.get("subfolder", ""), image.get("type", "temp"))
                self.images[node] = _decoded(data)


def recorded_outputs(client: ComfyClient, prompt_id: str, wait: float) -> dict[str, Any]:
    """A finished prompt's outputs from `/history`, waiting up to `wait` s for the record."""
    deadline = time.monotonic() + wait
    while True:
        record = client.history(prompt_id)
        if record or time.monotonic() >= deadline:
            return record.get("outputs", {})
        time.sleep(0.05)


def _drain(inbox: queue.Queue[Any]) -> None:
    """Drop what earlier prompts left (the connection's state is read from the client)."""
    while True:
        try:
            inbox.get_nowait()
        except queue.Empty:
            return


def _decoded(data: bytes) -> Image:
    from PIL import Image as PILImage

    image = PILImage.open(io.BytesIO(data))
    image.load()
    return image


def _execution_error(data: dict[str, Any], url: str) -> ComfyError:
    exception = str(data.get("exception_type", ""))
    message = str(data.get("exception_message", "")).strip() or exception or "unknown error"
    node = data.get("node_type") or "a node"
    kind = ErrorKind.OUT_OF_MEMORY if "OutOfMemory" in exception else ErrorKind.INTERNAL
    details = "".join(data.get("traceback") or [])
    return ComfyError(kind, f"The server at {url} failed in {node}: {message}", details)
