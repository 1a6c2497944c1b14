"""Window figures: time from process start to the window on screen, and the longest stall of
the Qt event loop while a generation runs (5 ms heartbeat timer).

Goals (issue 4): window shown < 1.0 s; no stall over 30 ms during a generation.
Run: QT_QPA_PLATFORM=offscreen python bench/bench_window.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHOW = """
import os, sys
from sdstudio.ui.launch import open_studio, when_exposed
studio = open_studio(["--settings", sys.argv[1], "--model", sys.argv[2]])
def shown():
    heavy = [m for m in ("torch", "diffusers") if m in sys.modules]
    print("exposed", ",".join(heavy) or "no-torch", flush=True)
    os._exit(0)
when_exposed(studio.window, shown)
with studio.loop:
    studio.loop.run_forever()
"""


def time_to_window(runs: int = 5) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            start = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-c", SHOW, f"{tmp}/s.json", f"{tmp}/no-model"],
                stdout=subprocess.PIPE, text=True, cwd=ROOT,
            )
            line = proc.stdout.readline()
            times.append(time.perf_counter() - start)
            proc.wait()
            if "no-torch" not in line:
                raise SystemExit(f"window not shown cleanly: {line!r}")
    return times


def loop_stalls(steps: int, size: int) -> dict[str, float]:
    from PySide6.QtCore import QElapsedTimer, QTimer

    from sdstudio.ui.launch import open_studio
    from tools.tiny_models import save_tiny_model

    work = Path(tempfile.mkdtemp(prefix="sdstudio-bench-"))
    model = save_tiny_model(work / "tiny", "sd1")
    studio = open_studio(["--settings", str(work / "s.json"), "--model", str(model), "--device", "cpu"])
    window, controller = studio.window, studio.window.controller
    window.resize(1280, 860)
    window.apply_fields({"prompt": "a bench", "width": size, "height": size, "steps": steps, "seed": 1})
    clock = QElapsedTimer()
    gaps: list[float] = []
    steps_seen = []
    heartbeat = QTimer()
    heartbeat.setInterval(5)
    last = [0]

    def beat() -> None:
        now = clock.nsecsElapsed()
        gaps.append((now - last[0]) / 1e6)
        last[0] = now

    def started(*_args: object) -> None:
        clock.start()
        last[0] = 0
        heartbeat.start()

    def finished(*_args: object) -> None:
        heartbeat.stop()
        studio.app.quit()

    heartbeat.timeout.connect(beat)
    controller.model_loaded.connect(lambda *_: QTimer.singleShot(200, window.generate))
    controller.job_started.connect(started)
    controller.step.connect(lambda index, total, preview: steps_seen.append(index))
    controller.job_ended.connect(finished)
    controller.problem.connect(lambda message, _d: (print("problem:", message), studio.app.exit(1)))
    with studio.loop:
        studio.loop.run_forever()
    studio.shutdown()
    gaps.sort()
    return {
        "generation_s": clock.nsecsElapsed() / 1e9,
        "beats": len(gaps),
        "max_ms": gaps[-1],
        "p99_ms": gaps[int(len(gaps) * 0.99) - 1],
        "median_ms": statistics.median(gaps),
        "over_30ms": sum(g > 30 for g in gaps),
        "steps_drawn": len(steps_seen),
        "steps_total": steps,
    }


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    times = time_to_window()
    print(f"window shown after process start: median {statistics.median(times):.3f} s, "
          f"min {min(times):.3f} s, max {max(times):.3f} s over {len(times)} runs (goal < 1.0 s); "
          "torch not imported at that point")
    for steps, size in ((20, 128), (20, 256)):
        s = loop_stalls(steps, size)
        print(f"event-loop stalls during a {size}x{size}, {steps}-step generation on the tiny model "
              f"({s['generation_s']:.2f} s, {s['beats']} heartbeats of 5 ms): longest {s['max_ms']:.1f} ms, "
              f"p99 {s['p99_ms']:.1f} ms, median {s['median_ms']:.1f} ms, {s['over_30ms']} over 30 ms "
              f"(goal: none); previews drawn {s['steps_drawn']}/{s['steps_total']}")


if __name__ == "__main__":
    main()
