"""Backends made of other backends: one the window can switch (this computer <-> a server), and
one that spreads jobs over several servers.

`SwitchableBackend` hands each call to the current backend; a job stays with the backend
that took it (cancel goes there), and a switch shuts the old one down.

`MultiBackend` keeps one queue in submission order and gives the oldest pending job to the
first idle server that has its model and the LoRAs its prompt names. A whole job runs on one
server, so the batches of a job keep their order and image k still gets seed + k; jobs run
side by side on different servers, so throughput grows with them.
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sdstudio.engine.backend import Backend, Callback, Capabilities, JobHandle, ServerState, Upscale
from sdstudio.engine.comfy.backend import ComfyBackend
from sdstudio.engine.events import OUTCOMES, Cancelled, Event, JobKind, JobState, is_last_event
from sdstudio.engine.networks import find_listed, request_tags
from sdstudio.engine.request import GenerationRequest, ModelInfo, ModelRef

log = logging.getLogger(__name__)


class SwitchableBackend:
    """A Backend whose implementation can be replaced while the window runs."""

    def __init__(self, backend: Backend) -> None:
        self.current = backend
        self._owners: weakref.WeakKeyDictionary[JobHandle, Backend] = weakref.WeakKeyDictionary()

    def switch(self, backend: Backend) -> None:
        """Generate on `backend` from now on; the old one's jobs are cancelled."""
        old, self.current = self.current, backend
        old.shutdown(wait=False)

    def submit(self, request: GenerationRequest, callback: Callback) -> JobHandle:
        return self._owned(self.current.submit(request, callback))

    def load_model(self, ref: ModelRef, callback: Callback) -> JobHandle:
        return self._owned(self.current.load_model(ref, callback))

    def upscale(self, order: Upscale, callback: Callback) -> JobHandle:
        return self._owned(self.current.upscale(order, callback))

    def cancel(self, job: JobHandle) -> None:
        self._owners.get(job, self.current).cancel(job)

    def cancel_all_pending(self) -> None:
        self.current.cancel_all_pending()

    def pending_jobs(self) -> list[JobHandle]:
        return self.current.pending_jobs()

    def server_states(self) -> list[ServerState]:
        return self.current.server_states()

    def list_models(self) -> list[ModelRef]:
        return self.current.list_models()

    def capabilities(self) -> Capabilities:
        return self.current.capabilities()

    @property
    def model_info(self) -> ModelInfo | None:
        return self.current.model_info

    def shutdown(self, wait: bool = True) -> None:
        self.current.shutdown(wait)

    def _owned(self, job: JobHandle) -> JobHandle:
        self._owners[job] = self.current
        return job


@dataclass(eq=False)
class MultiJob:
    """A job of a MultiBackend: waits here, then runs as `inner` on `server` (`order`: an
    upscale, `request` its source's)."""

    id: int
    request: GenerationRequest | None
    model_ref: ModelRef
    callback: Callback
    state: JobState = JobState.PENDING
    server: ComfyBackend | None = None
    inner: JobHandle | None = None
    done: threading.Event = field(default_factory=threading.Event)
    order: Upscale | None = None

    @property
    def kind(self) -> JobKind:
        return JobKind.of(self.request, self.order)

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)


class MultiBackend:
    """Several ComfyUI servers as one Backend (see module doc)."""

    def __init__(self, servers: Sequence[ComfyBackend]) -> None:
        if not servers:
            raise ValueError("a MultiBackend needs at least one server")
        self.servers = list(servers)
        self._lock = threading.Condition()
        self._queue: deque[MultiJob] = deque()
        self._running: dict[ComfyBackend, MultiJob] = {}  # busy servers and their jobs
        self._models: dict[ComfyBackend, set[str]] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._model_info: ModelInfo | None = None
        self._thread = threading.Thread(target=self._dispatch, name="sdstudio-multi", daemon=True)
        self._thread.start()

    def submit(self, request: GenerationRequest, callback: Callback) -> MultiJob:
        return self._enqueue(request, request.model, callback)

    def load_model(self, ref: ModelRef, callback: Callback) -> MultiJob:
        return self._enqueue(None, ref, callback)

    def upscale(self, order: Upscale, callback: Callback) -> MultiJob:
        return self._enqueue(order.source, order.source.model, callback, order)

    def cancel(self, job: MultiJob) -> None:
        with self._lock:
            pending = job in self._queue
            if pending:
                self._queue.remove(job)
            server, inner = job.server, job.inner
        if pending:
            self._finish(job, Cancelled())
        elif server is not None and inner is not None:
            server.cancel(inner)

    def cancel_all_pending(self) -> None:
        with self._lock:
            jobs = list(self._queue)
            self._queue.clear()
        for job in jobs:
            self._finish(job, Cancelled())

    def pending_jobs(self) -> list[MultiJob]:
        with self._lock:
            return list(self._queue)

    def list_models(self) -> list[ModelRef]:
        """Every checkpoint some server has, once."""
        seen: dict[str, ModelRef] = {}
        for server in self.servers:
            for ref in server.list_models():
                seen.setdefault(ref.source, ref)
        return list(seen.values())

    def capabilities(self) -> Capabilities:
        every = [server.capabilities() for server in self.servers]

        def on_all(each: str) -> tuple[str, ...]:
            """What every server has (a job may run on any of them), in the first one's order."""
            return tuple(x for x in getattr(every[0], each) if all(x in getattr(c, each) for c in every[1:]))

        return Capabilities(
            name=", ".join(c.name for c in every),
            samplers=on_all("samplers"),
            families=frozenset.intersection(*(c.families for c in every)),
            features=frozenset.intersection(*(c.features for c in every)),
            upscalers=on_all("upscalers"),
            loras=on_all("loras"),
            embeddings=on_all("embeddings"),
            vaes=on_all("vaes"),
        )

    @property
    def model_info(self) -> ModelInfo | None:
        return self._model_info

    def check_connection(self) -> str:
        """A line per server (see ComfyBackend.check_connection); ComfyError when one fails."""
        return "; ".join(f"{s.url}: {s.check_connection()}" for s in self.servers)

    def server_states(self) -> list[ServerState]:
        """Each server with the job it runs; jobs wait here, not on a server, until one is idle."""
        with self._lock:
            return [replace(state, running=self._running.get(s)) for s in self.servers for state in s.server_states()]

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self.cancel_all_pending()
        for server in self.servers:
            server.shutdown(wait)
        if wait:
            self._thread.join()

    # ---- dispatch ---------------------------------------------------------------------

    def _enqueue(
        self, request: GenerationRequest | None, ref: ModelRef, callback: Callback, order: Upscale | None = None
    ) -> MultiJob:
        with self._lock:
            if self._closed:
                raise RuntimeError("the servers were shut down")
            job = MultiJob(next(self._ids), request, ref, callback, order=order)
            self._queue.append(job)
            self._lock.notify_all()
        return job

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                while not self._closed and not (self._queue and self._idle_server(self._queue[0])):
                    self._lock.wait(1.0)  # also wakes to look at servers that (re)connected
                if self._closed:
                    return
                job = self._queue.popleft()
                server = self._idle_server(job)
                assert server is not None
                self._running[server] = job
                job.server, job.state = server, JobState.RUNNING
                # Submitted under the lock: a cancel sees either the pending job or its inner one.
                job.inner = self._submit(server, job)

    def _idle_server(self, job: MultiJob) -> ComfyBackend | None:
        """The first idle server with everything the job names (its model, LoRAs and VAE), else
        with its model. While only busy servers have them the job waits for one; when no
        connected server has them, any idle one takes it and fails with the server's own words."""
        connected = [s for s in self.servers if s.connected]
        idle = [s for s in connected if s not in self._running]
        everything = lambda s: self._has(s, job.model_ref) and self._has_addons(s, job)  # noqa: E731
        for fits in (everything, lambda s: self._has(s, job.model_ref)):
            if any(fits(s) for s in connected):
                return next((s for s in idle if fits(s)), None)
        return (idle or [None])[0]

    @staticmethod
    def _has_addons(server: ComfyBackend, job: MultiJob) -> bool:
        vae = job.model_ref.vae
        tags = [t for t in request_tags(job.request) if t.kind == "lora"] if job.request is not None else []
        if not vae and not tags:
            return True  # nothing to look up: a server not answering yet is not waited for
        capabilities = server.capabilities()
        return (not vae or find_listed(capabilities.vaes, vae) is not None) and all(
            find_listed(capabilities.loras, tag.name) is not None for tag in tags)

    def _has(self, server: ComfyBackend, ref: ModelRef) -> bool:
        names = self._models.get(server) or {m.source for m in server.list_models()}
        self._models[server] = names  # asked again while empty: the server may be back
        return ref.source in names or any(ModelRef(n).name == ref.source for n in names)

    def _submit(self, server: ComfyBackend, job: MultiJob) -> JobHandle:
        def forward(event: Event) -> None:
            if is_last_event(event, job.kind):
                self._finish(job, event, server)
            else:
                job.callback(event)

        if job.order is not None:
            return server.upscale(job.order, forward)
        if job.request is None:
            return server.load_model(job.model_ref, forward)
        return server.submit(job.request, forward)

    def _finish(self, job: MultiJob, event: Event, server: ComfyBackend | None = None) -> None:
        if server is not None:
            with self._lock:
                self._running.pop(server, None)
                self._lock.notify_all()
            self._model_info = server.model_info or self._model_info
        job.state = OUTCOMES.get(type(event), JobState.DONE)
        try:
            job.callback(event)
        except BaseException:  # noqa: BLE001 - the job has ended; its listener's bug is only logged
            log.exception("event callback of job %s raised on its last event", job.id)
        finally:
            job.done.set()
