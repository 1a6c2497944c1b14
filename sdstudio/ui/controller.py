"""The generation controller: submits jobs, reads their events in order, tells the widgets.

The engine runs one job at a time in FIFO order, so one asyncio task reads the job streams
in the same order (`async for event in stream`). Pressing Generate while a job runs just
submits another; pending ones can be cancelled without touching the running job.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from sdstudio.canvas.convert import to_qimage
from sdstudio.engine.events import (
    Cancelled,
    ErrorKind,
    Event,
    Failed,
    Finished,
    JobState,
    ModelLoaded,
    ModelLoading,
    Notice,
    Started,
    Step,
)
from sdstudio.engine.request import GenerationRequest, ModelInfo, ModelRef
from sdstudio.ui.jobs import Jobs, JobStream

if TYPE_CHECKING:
    from sdstudio.engine.backend import Backend, Capabilities, ServerState, Upscale

log = logging.getLogger(__name__)


class GenerationController(QObject):
    """Owns the job queue as the window sees it. The backend is made on first use by
    `backend_factory`, so the window can show before anything heavy happens."""

    # Pending or running jobs changed (a job was queued, started, ended or cancelled).
    queue_changed = Signal()
    # A generation job started: (GenerationRequest, total number of steps).
    job_started = Signal(object, int)
    # A step finished: (index from 1, total, QImage preview or None).
    step = Signal(int, int, object)
    # A generation job finished: (Finished event: each image with the request that made it,
    # its model and its lineage). The history store listens here to save every result.
    job_finished = Signal(object)
    # A generation job ended in any way: (GenerationRequest, JobState DONE | FAILED | CANCELLED).
    job_ended = Signal(object, object)
    # A model is loading: (message for a person, progress 0..1 or None).
    model_loading = Signal(str, object)
    # A model is ready: (ModelRef it was loaded from, ModelInfo).
    model_loaded = Signal(object, object)
    # Loading a model failed (the previous model stays loaded): (ModelRef that failed).
    model_failed = Signal(object)
    # Something went wrong: (message for a person, technical details / traceback).
    problem = Signal(str, str)
    # Something the person should know that is not an error: (message).
    notice = Signal(str)
    # The backend answered `known_capabilities()` with something new: (Capabilities). Lists of
    # installed files in the window (upscaler models) follow it.
    capabilities_changed = Signal(object)

    def __init__(self, backend_factory: Callable[[], Backend], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._backend_factory = backend_factory
        self._jobs: Jobs | None = None
        self._streams: deque[JobStream] = deque()
        self._reader: asyncio.Task[None] | None = None
        # What new generations use; reverts to the last good model when a load fails.
        self.model_ref: ModelRef | None = None
        self.model_info: ModelInfo | None = None
        self._loaded_ref: ModelRef | None = None
        self._known: Capabilities | None = None
        self._asking = False
        self._asked_of = 0  # bumped when the backend switches: older answers are dropped

    @property
    def backend_started(self) -> bool:
        return self._jobs is not None

    @property
    def jobs(self) -> Jobs:
        if self._jobs is None:
            self._jobs = Jobs(self._backend_factory())
            self.known_capabilities()  # the first answer is on its way before a menu asks
        return self._jobs

    def capabilities(self) -> Capabilities:
        """What the backend can do (starts it when it has not started yet). It may list folders
        or wait for a server: on the UI thread, prefer `known_capabilities()`."""
        return self.jobs.backend.capabilities()

    def known_capabilities(self) -> Capabilities | None:
        """The backend's capabilities as last answered (None before the first answer or before
        the backend started), asking afresh on a thread: the window never waits for a folder
        listing or a server, and what it offers is at most one look old. The answer comes back
        on the asyncio loop, as job events do (no loop running: nothing is asked)."""
        if self._jobs is not None and not self._asking:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return self._known
            self._asking = True
            asked_of = self._asked_of
            asking = loop.run_in_executor(None, self._ask, self._jobs.backend)
            asking.add_done_callback(lambda done: self._answered(asked_of, done.result()))
        return self._known

    def forget_capabilities(self) -> None:
        """The backend now runs elsewhere (another server, or this computer): drop what the
        last one answered and ask the new one."""
        self._asked_of += 1
        self._known, self._asking = None, False
        self.known_capabilities()

    @staticmethod
    def _ask(backend: Backend) -> Capabilities | None:
        try:
            return backend.capabilities()
        except Exception:  # noqa: BLE001 - a failed look keeps the last answer
            log.exception("asking the backend's capabilities failed")
            return None

    def _answered(self, asked_of: int, answer: Capabilities | None) -> None:
        if asked_of != self._asked_of:
            return  # of the backend before a switch
        self._asking = False
        if answer is not None and answer != self._known:
            self._known = answer
            try:
                self.capabilities_changed.emit(answer)
            except RuntimeError:  # the window was closed while the backend answered
                pass

    # ---- commands ---------------------------------------------------------------------

    def load_model(self, ref: ModelRef) -> None:
        """Queue a model load; generations asked for from now on use `ref`."""
        self.model_ref = ref
        self._follow(self.jobs.load_model(ref))

    def generate(self, request: GenerationRequest) -> JobStream:
        stream = self.jobs.submit(request)
        self._follow(stream)
        return stream

    def upscale(self, order: Upscale) -> JobStream:
        """Queue an upscale behind the generations; its result arrives as a job's (`job_finished`)."""
        stream = self.jobs.upscale(order)
        self._follow(stream)
        return stream

    def running(self) -> JobStream | None:
        """The generation job the engine is working on, if any."""
        for stream in self._streams:
            if stream.started and not stream.ended:
                return stream if stream.request is not None else None
        return None

    def server_states(self) -> list[ServerState]:
        """Each machine jobs run on and what it does now ([] until the backend has started)."""
        return self.jobs.backend.server_states() if self.backend_started else []

    def pending(self) -> list[JobStream]:
        """Generation jobs still waiting in the engine's queue, oldest first."""
        return [s for s in self._streams if s.request is not None and s.pending]

    def cancel_running(self) -> bool:
        """Stop the running generation at its next step. False when none runs."""
        stream = self.running()
        if stream is None or stream.job is None:
            return False
        self.jobs.backend.cancel(stream.job)
        return True

    def cancel_pending(self, stream: JobStream) -> None:
        if stream.pending and stream.job is not None:
            self.jobs.backend.cancel(stream.job)

    def cancel_all_pending(self) -> None:
        for stream in self.pending():
            self.cancel_pending(stream)

    def close(self) -> None:
        """Cancel this window's jobs and stop reading (the engine's owner shuts it down)."""
        if self._jobs is not None:
            self.cancel_all_pending()
            self.cancel_running()
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        self._streams.clear()

    # ---- reading events ---------------------------------------------------------------

    def _follow(self, stream: JobStream) -> None:
        stream.on_event = self._on_stream_event
        self._streams.append(stream)
        self.queue_changed.emit()
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read_all())

    def _on_stream_event(self, stream: JobStream, event: Event) -> None:
        """Runs as soon as an event reaches the loop, before the reader gets to it, so the
        queue indicator is right even while the reader is busy with an older job."""
        if isinstance(event, Started) or stream.ended:
            self.queue_changed.emit()

    async def _read_all(self) -> None:
        while self._streams:
            stream = self._streams[0]
            async for event in stream:
                self._handle(stream, event)
            if self._streams and self._streams[0] is stream:
                self._streams.popleft()
            self.queue_changed.emit()

    def _handle(self, stream: JobStream, event: Event) -> None:
        request = stream.request
        match event:
            case ModelLoading(message=message, progress=progress):
                self.model_loading.emit(message, progress)
            case ModelLoaded(info=info):
                self.model_info = info
                self._loaded_ref = stream.model
                self.model_loaded.emit(stream.model, info)
            case Started(total=total) if request is not None:
                self.job_started.emit(request, total)
            case Step(index=index, total=total, preview=preview):
                self.step.emit(index, total, to_qimage(preview) if preview is not None else None)
            case Notice(message=message):
                self.notice.emit(message)
            case Finished() if request is not None:
                self.job_finished.emit(event)
                self.job_ended.emit(request, JobState.DONE)
            case Failed(error=error, message=message, details=details):
                self.problem.emit(message, details)
                if error == ErrorKind.MODEL_LOAD:
                    if self.model_ref == stream.model:
                        self.model_ref = self._loaded_ref
                    self.model_failed.emit(stream.model)
                if request is not None:
                    self.job_ended.emit(request, JobState.FAILED)
            case Cancelled() if request is not None:
                self.job_ended.emit(request, JobState.CANCELLED)
