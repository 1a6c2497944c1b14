"""A backend's thread callbacks, turned into `async for event in ...` on the Qt/asyncio loop.

The backend calls a job's callback on its own thread; `JobStream` hops each event onto
the loop with `call_soon_threadsafe` and buffers it until the reader asks. Previews are
coalesced: when the reader is behind, a new Step replaces a Step still waiting in the
buffer, so a slow paint draws only the newest preview instead of a pile of stale ones.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from sdstudio.engine.events import Event, JobKind, Started, Step, is_last_event
from sdstudio.engine.request import GenerationRequest, ModelRef

if TYPE_CHECKING:
    from sdstudio.engine.backend import Backend, JobHandle, Upscale


class JobStream:
    """The events of one engine job, read with `async for`; ends after its terminal event.

    `request` is None for a model-load job; `model` is the model the job uses or loads.
    `started` turns True when the job leaves the engine's queue, `ended` when its
    last event arrived (Finished / Failed / Cancelled, or ModelLoaded
    for a load), maybe not read yet.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, request: GenerationRequest | None, model: ModelRef,
        kind: JobKind | None = None,
    ) -> None:
        self.request = request
        self.kind = kind or (JobKind.LOAD_MODEL if request is None else JobKind.GENERATE)
        self.model = model
        self.job: JobHandle | None = None
        self.started = False
        self.ended = False
        self.coalesced = 0  # Steps dropped because a newer one replaced them unread
        self._loop = loop
        self._buffer: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._read_terminal = False
        self.on_event: Callable[[JobStream, Event], None] | None = None

    def deliver_threadsafe(self, event: Event) -> None:
        """The engine callback: safe to call from any thread."""
        self._loop.call_soon_threadsafe(self._push, event)

    @property
    def pending(self) -> bool:
        """Waiting in the engine's queue: neither started nor ended."""
        return not self.started and not self.ended

    def _push(self, event: Event) -> None:
        if isinstance(event, Started):
            self.started = True
        elif is_last_event(event, self.kind):
            self.ended = True
        if isinstance(event, Step) and self._buffer and isinstance(self._buffer[-1], Step):
            self._buffer[-1] = event
            self.coalesced += 1
        else:
            self._buffer.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self.on_event is not None:
            self.on_event(self, event)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        while not self._buffer:
            if self._read_terminal:
                raise StopAsyncIteration
            self._waiter = self._loop.create_future()
            await self._waiter
        event = self._buffer.popleft()
        if is_last_event(event, self.kind):
            self._read_terminal = True
            self._buffer.clear()
        return event


class Jobs:
    """Submits to a backend and hands back a `JobStream` per job (call on the loop's thread)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def submit(self, request: GenerationRequest) -> JobStream:
        stream = JobStream(asyncio.get_running_loop(), request, request.model)
        stream.job = self.backend.submit(request, stream.deliver_threadsafe)
        return stream

    def load_model(self, ref: ModelRef) -> JobStream:
        stream = JobStream(asyncio.get_running_loop(), None, ref)
        stream.job = self.backend.load_model(ref, stream.deliver_threadsafe)
        return stream

    def upscale(self, order: Upscale) -> JobStream:
        """An upscale job: read as a generation of its source's request (`request`)."""
        stream = JobStream(asyncio.get_running_loop(), order.source, order.source.model, JobKind.UPSCALE)
        stream.job = self.backend.upscale(order, stream.deliver_threadsafe)
        return stream

    async def run(self, request: GenerationRequest) -> AsyncIterator[Event]:
        """`async for event in jobs.run(request)`: submit and read one job to its end."""
        async for event in self.submit(request):
            yield event
