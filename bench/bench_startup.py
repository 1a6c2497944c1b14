"""The first image in seconds: time from process start, on the built-in model, on this machine.

Each figure is a fresh Python process (median of 3), side by side with a bare
`python -c "import torch"`, the floor every figure stands on. Wall seconds are the goal; the
process's CPU seconds (all threads) are shown too: other work on the same cores stretches them
far less than wall time (the load average is printed with the figures):
  model ready   process start -> the engine's ModelLoaded event      (goal < 4 s)
  first image   process start -> Finished, one 128x128 image          (goal < 5 s)
  CLI           `sdstudio generate` 128x128, from start to exit with the PNG written
and two more floors: the text encoder's library alone (transformers' CLIP module, which pulls in
torch._dynamo, torch.distributed and scipy through transformers' core), and diffusers' own: a
process that only imports StableDiffusionPipeline (by its module path) and loads the built-in
model with it; what the engine adds is the rest.
Then where the time goes: one more process under `python -X importtime`, its import time
summed by top-level package (importtime's own overhead inflates these; read them as shares).

Run: python bench/bench_startup.py
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3
TIMEOUT_S = 600  # a process that hangs (a dead engine worker) fails the bench instead of stalling it
GOALS = {"model ready": 4.0, "first image": 5.0}
PROMPT = "a red circle on a blue background"
CLIP_FLOOR = "import transformers.models.clip.modeling_clip"
PIPELINE_FLOOR = """
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import StableDiffusionPipeline
from sdstudio.resources import builtin_model_dir
StableDiffusionPipeline.from_pretrained(builtin_model_dir(), safety_checker=None, requires_safety_checker=False)
"""

# Stamps: time.time() against the parent's clock (read just before it starts the process), and
# the process's own CPU time (all threads) at that moment.
ENGINE = f"""
import json, sys, time
from sdstudio.app import configure_process
configure_process()  # as `sdstudio` does before torch loads
from sdstudio.engine.backend import local_backend
from sdstudio.engine.events import Failed, Finished, ModelLoaded
from sdstudio.engine.request import GenerationRequest

stamps = {{}}
def on_event(event):
    if isinstance(event, ModelLoaded):
        stamps["model ready"] = (time.time(), time.process_time())
    elif isinstance(event, Finished):
        stamps["first image"] = (time.time(), time.process_time())
    elif isinstance(event, Failed):
        print(event.message, file=sys.stderr)

backend = local_backend()
request = GenerationRequest.create(prompt={PROMPT!r}, width=128, height=128, seed=1)
backend.submit(request, on_event).wait()
backend.shutdown()
print(json.dumps(stamps))
"""


def _env() -> dict[str, str]:
    return os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def _process_seconds(argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds from just before the process starts until it has exited."""
    cpu_before = _children_cpu()
    start = time.time()
    subprocess.run(argv, check=True, capture_output=True, env=_env(), timeout=TIMEOUT_S)
    return time.time() - start, _children_cpu() - cpu_before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _engine_stamps() -> dict[str, tuple[float, float]]:
    """{event: (wall, CPU) seconds since process start}."""
    start = time.time()
    done = subprocess.run([sys.executable, "-c", ENGINE], check=True, capture_output=True, text=True, env=_env(),
                          timeout=TIMEOUT_S)
    stamps = json.loads(done.stdout.strip().splitlines()[-1])
    if set(stamps) != set(GOALS):
        raise RuntimeError(f"the engine did not report {sorted(GOALS)}: {done.stderr[-2000:]}")
    return {name: (wall - start, cpu) for name, (wall, cpu) in stamps.items()}


def _median(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def _import_shares() -> list[tuple[str, float]]:
    """Seconds of import time per top-level package on the engine path (self times summed)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", ENGINE], check=True,
                          capture_output=True, text=True, env=_env(), timeout=TIMEOUT_S)
    totals: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        totals[name.strip().split(".")[0]] += int(self_us) / 1e6
    return totals.most_common(10)


def main() -> None:
    torch_s, torch_cpu = _median([_process_seconds([sys.executable, "-c", "import torch"]) for _ in range(REPEATS)])
    clip_s, clip_cpu = _median([_process_seconds([sys.executable, "-c", CLIP_FLOOR]) for _ in range(REPEATS)])
    floor_s, floor_cpu = _median([_process_seconds([sys.executable, "-c", PIPELINE_FLOOR]) for _ in range(REPEATS)])
    runs = [_engine_stamps() for _ in range(REPEATS)]
    with tempfile.TemporaryDirectory() as out:
        cli = [sys.executable, "-m", "sdstudio", "generate", "--prompt", PROMPT, "--width", "128",
               "--height", "128", "--seed", "1", "--out", out]
        cli_s, cli_cpu = _median([_process_seconds(cli) for _ in range(REPEATS)])

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"median of {REPEATS} fresh processes from process start; {os.cpu_count()} CPU cores, load average {load}")
    print(f"  python -c 'import torch'      {torch_s:6.2f} s wall {torch_cpu:6.2f} s CPU   (the floor)")
    print(f"  import the CLIP text encoder  {clip_s:6.2f} s wall {clip_cpu:6.2f} s CPU   (transformers' module alone)")
    print(f"  diffusers: import + load      {floor_s:6.2f} s wall {floor_cpu:6.2f} s CPU   (StableDiffusionPipeline alone)")
    for name, goal in GOALS.items():
        seconds, cpu = _median([run[name] for run in runs])
        verdict = "ok" if seconds < goal else "MISSED"
        print(f"  {name:<12} (engine)       {seconds:6.2f} s wall {cpu:6.2f} s CPU   goal < {goal:.0f} s wall: {verdict}")
    print(f"  sdstudio generate 128x128     {cli_s:6.2f} s wall {cli_cpu:6.2f} s CPU   (start to exit, PNG written)")
    print("import time on the engine path, by package (under -X importtime):")
    for package, seconds in _import_shares():
        print(f"  {package:<16} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
