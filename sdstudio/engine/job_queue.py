"""Jobs run one at a time, in submission order, on one worker thread: the queue every
single-worker backend shares (the local engine, one ComfyUI server).

The owner says how a job runs (`run`, on the worker), how the running job is asked to stop
(`stop`, under the queue's lock, so a job is always either pending or running for a cancel),
how a job hears that it was cancelled before it started (`cancelled`), and what to do once
the queue is closed and the worker ends (`after`). No torch, no Qt.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from sdstudio.engine.events import JobState


class _Job(Protocol):
    state: JobState


J = TypeVar("J", bound=_Job)


class SerialQueue(Generic[J]):
    def __init__(
        self,
        name: str,
        run: Callable[[J], None],
        stop: Callable[[J], None],
        cancelled: Callable[[J], None],
        after: Callable[[], None] = lambda: None,
    ) -> None:
        self._run, self._stop, self._cancelled, self._after = run, stop, cancelled, after
        self._lock = threading.Condition()
        self._jobs: deque[J] = deque()
        self._running: J | None = None
        self._closed = False
        self._ids = itertools.count(1)
        self.thread = threading.Thread(target=self._work, name=name, daemon=True)
        self.thread.start()

    def add(self, make: Callable[[int], J], closed_message: str) -> J:
        """Queue the job `make(id)` builds; RuntimeError once shut down or if the worker died
        (a job that would never run is refused, not accepted)."""
        with self._lock:
            if self._closed:
                raise RuntimeError(closed_message)
            if not self.thread.is_alive():
                raise RuntimeError("the backend's worker has stopped; restart the app")
            job = make(next(self._ids))
            self._jobs.append(job)
            self._lock.notify()
        return job

    def cancel(self, job: J) -> None:
        """A pending job leaves the queue (Cancelled at once, from this thread); the running one
        is asked to stop. Ended jobs are left alone."""
        with self._lock:
            pending = job in self._jobs
            if pending:
                self._jobs.remove(job)
            elif job is self._running:
                self._stop(job)
        if pending:
            self._cancelled(job)

    def cancel_all_pending(self) -> None:
        with self._lock:
            jobs = list(self._jobs)
            self._jobs.clear()
        for job in jobs:
            self._cancelled(job)

    def pending(self) -> list[J]:
        with self._lock:
            return list(self._jobs)

    @property
    def running(self) -> J | None:
        with self._lock:
            return self._running

    @property
    def busy(self) -> bool:
        """Whether a job runs or waits."""
        with self._lock:
            return self._running is not None or bool(self._jobs)

    def shutdown(self, wait: bool = True) -> None:
        """Cancel the pending jobs, stop the running one and end the worker (one critical
        section, so the worker cannot start a pending job meanwhile)."""
        with self._lock:
            self._closed = True
            pending = list(self._jobs)
            self._jobs.clear()
            if self._running is not None:
                self._stop(self._running)
            self._lock.notify_all()
        for job in pending:
            self._cancelled(job)
        if wait and threading.current_thread() is not self.thread:
            self.thread.join()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._jobs and not self._closed:
                    self._lock.wait()
                if not self._jobs:
                    break
                job = self._running = self._jobs.popleft()
                job.state = JobState.RUNNING
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._running = None
        self._after()
