"""The ComfyUI backend against real local servers (installed as the tests do).

- client overhead per job: wall time from submit to Finished minus the server's own
  execution time (its execution_start -> execution_success messages, as they arrive);
- preview latency: from a preview frame's arrival on the websocket to its Step event;
- throughput: jobs per minute for 8 small jobs on one server and on two (goal: >= 1.8x).
Each job has its own seed, so the server's cache never answers for it.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

JOBS = 8
SIZE = 128
STEPS = 8


def request(seed: int):
    from sdstudio.engine.request import GenerationRequest, ModelRef
    from tests.contract.comfy_server import CHECKPOINT

    return GenerationRequest.create(
        model=ModelRef(CHECKPOINT), prompt="a lighthouse", steps=STEPS, width=SIZE, height=SIZE, seed=seed
    )


def overhead_and_preview_latency(url: str) -> tuple[float, float]:
    """(median client overhead per job, median preview latency) in seconds."""
    from sdstudio.engine.comfy.backend import ComfyBackend
    from sdstudio.engine.comfy.client import BinaryFrame, Message
    from sdstudio.engine.events import Step

    backend = ComfyBackend(url)
    frames: list[float] = []
    latencies: list[float] = []
    marks: dict[str, float] = {}
    deliver = backend._client._on_message

    def timed(item) -> None:
        if isinstance(item, BinaryFrame) and item.image_format == 1:
            frames.append(time.perf_counter())
        elif isinstance(item, Message) and item.type in ("execution_start", "execution_success"):
            marks[item.type] = time.perf_counter()
        deliver(item)

    backend._client._on_message = timed

    def on_event(event) -> None:
        if isinstance(event, Step) and event.preview is not None and frames:
            latencies.append(time.perf_counter() - frames[-1])

    backend.submit(request(999), lambda e: None).wait(300)  # the model is loaded
    overheads = []
    for k in range(JOBS):
        start = time.perf_counter()
        assert backend.submit(request(1000 + k), on_event).wait(300)
        server_time = marks["execution_success"] - marks["execution_start"]
        overheads.append(time.perf_counter() - start - server_time)
    backend.shutdown()
    return statistics.median(overheads), statistics.median(latencies)


def jobs_per_minute(urls: list[str]) -> float:
    from sdstudio.engine.comfy.backend import ComfyBackend
    from sdstudio.engine.comfy.routing import MultiBackend

    multi = MultiBackend([ComfyBackend(url) for url in urls])
    for server in multi.servers:  # load the model on each first
        server.submit(request(7), lambda e: None).wait(300)
    start = time.perf_counter()
    jobs = [multi.submit(request(2000 + len(urls) * 100 + k), lambda e: None) for k in range(JOBS)]
    assert all(job.wait(600) for job in jobs)
    elapsed = time.perf_counter() - start
    multi.shutdown()
    return JOBS / elapsed * 60


def main() -> None:
    from tests.contract.comfy_server import start_server

    try:
        servers = [start_server(), start_server()]
    except BaseException as exc:  # noqa: BLE001 - pytest.skip outside pytest: no server here
        print(f"skipped: no ComfyUI server ({exc})")
        return
    try:
        print(f"server start: {servers[0].started_in:.1f} s, {servers[1].started_in:.1f} s")
        overhead, latency = overhead_and_preview_latency(servers[0].url)
        print(f"client overhead per job ({SIZE}x{SIZE}, {STEPS} steps): {overhead * 1000:.0f} ms (median of {JOBS})")
        print(f"preview latency, frame arrival -> Step event: {latency * 1000:.2f} ms (median)")
        one = jobs_per_minute([servers[0].url])
        two = jobs_per_minute([s.url for s in servers])
        print(f"{JOBS} jobs: one server {one:.1f} jobs/min, two servers {two:.1f} jobs/min: {two / one:.2f}x (goal >= 1.8x)")
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
