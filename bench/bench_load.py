"""Big models on a modest machine: the memory a single-file load takes, and fp32 vs bf16 speed.

Builds full-size random-weight checkpoints from the shipped configs (SD 1.5 in float32, and
SDXL in float16 when the machine has the RAM), then loads each in a fresh subprocess and
reads that process's peak RSS (ru_maxrss), next to the size of the weights in the dtype used:
- "before": diffusers' own from_single_file (reads the whole file, then converts);
- "after": load_model, which streams one component at a time (goal: peak <= 1.25x weights);
- "folder": the same weights saved as a diffusers folder, through load_model.
"imports" is the RSS of torch + diffusers before anything is loaded; "peak - imports" is
what the load itself added; "after first use" is the peak once every weight was read once,
as the first generation does (a memory-mapped load only looks small until then).
Then the UNet step time and peak RSS in float32 and bfloat16 (batch 2, as with CFG) on UNets
from the tiny test one to the full-size SD 1.5 one: where bf16 starts to pay off on a CPU.

    .venv/bin/python bench/bench_load.py            # everything this machine can run
    .venv/bin/python bench/bench_load.py --quick    # SD 1.5 only, no SDXL, no folder
"""

from __future__ import annotations

import copy
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import rss_mib  # noqa: E402  (bench/measure.py, beside this script)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

GIB = 2**30
GOAL = 1.25


# ---- children: one measurement per process, so each peak RSS is its own ---------------------


def _child(task: dict) -> dict:
    import diffusers
    import torch
    import transformers

    # Every path imports these: the baseline holds the code, the peak adds the weights.
    _ = diffusers.StableDiffusionPipeline, diffusers.StableDiffusionXLPipeline, transformers.CLIPTextModel

    from sdstudio.engine.families import pipeline_classes
    from sdstudio.engine.models import CONFIG_ROOT, load_model
    from sdstudio.engine.request import Mode, ModelRef

    base = rss_mib()
    start = time.perf_counter()
    kind = task["kind"]
    if kind == "before":
        from sdstudio.engine.devices import dtype_kwarg

        family = task["family"]
        cls = pipeline_classes(family)[Mode.TXT2IMG]
        extra = {} if family == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
        pipe = cls.from_single_file(task["path"], config=str(CONFIG_ROOT / task["config"]), local_files_only=True,
                                    **dtype_kwarg(getattr(torch, task["dtype"])), **extra)
    elif kind in ("after", "folder"):
        pipe = load_model(ModelRef(task["path"], device="cpu", dtype=task["dtype"])).base
        if task.get("save_to"):
            pipe.save_pretrained(task["save_to"])
    elif kind == "step":
        return {**_unet_steps(task["size"], task["dtypes"], task["rounds"]), "base_mib": base}
    seconds = time.perf_counter() - start
    loaded = _peak_mib()
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            for tensor in component.state_dict().values():
                tensor.sum()
    return {"peak_mib": loaded, "used_mib": _peak_mib(), "base_mib": base, "seconds": seconds}


def _unet(size: str, dtype_name: str):
    """(UNet, latent side, text width) for one of the step benchmark's sizes, its weights made
    in `dtype_name` from the start (a float32 build first would set the peak RSS)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype_name))
    try:
        return _build_unet(size)
    finally:
        torch.set_default_dtype(previous)


def _build_unet(size: str):
    import math

    import torch
    from diffusers import UNet2DConditionModel

    from sdstudio.engine.models import CONFIG_ROOT, builtin_model_path
    from tools.tiny_models import tiny_sd1_components

    torch.manual_seed(0)
    if size == "tiny":
        return tiny_sd1_components()["unet"].eval(), 8, 32
    if size == "builtin":
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(builtin_model_path() / "unet"))
        return unet.eval(), 16, unet.config.cross_attention_dim
    # SD 1.5's UNet at full width, or narrowed to 1/2 or 1/4 of its channels
    config = UNet2DConditionModel.load_config(CONFIG_ROOT / "sd15" / "unet")
    divide = {"full": 1, "half": 2, "quarter": 4}[size]
    config["block_out_channels"] = [c // divide for c in config["block_out_channels"]]
    config["norm_num_groups"] = math.gcd(32, min(config["block_out_channels"]))
    return UNet2DConditionModel.from_config(config).eval(), 32, 768


def _unet_steps(size: str, dtypes: list[str], rounds: int) -> dict:
    """Seconds per step in each dtype: the fastest of `rounds` steps, the dtypes taking turns,
    so that other load on the machine slows both alike. One dtype alone also gives its RSS."""
    import torch

    unet, latent, context = _unet(size, dtypes[0])
    weights = sum(p.numel() for p in unet.parameters())
    models = {name: unet if name == dtypes[0] else copy.deepcopy(unet).to(getattr(torch, name)) for name in dtypes}
    x, cond = torch.randn(2, 4, latent, latent), torch.randn(2, 77, context)
    best = dict.fromkeys(dtypes, float("inf"))
    finite = True
    with torch.no_grad():
        for round_ in range(rounds + 1):
            for name, model in models.items():
                dtype = getattr(torch, name)
                start = time.perf_counter()
                out = model(x.to(dtype), 999, encoder_hidden_states=cond.to(dtype)).sample
                if round_:  # round 0 only warms up: kernels chosen, buffers allocated
                    best[name] = min(best[name], time.perf_counter() - start)
                finite = finite and bool(torch.isfinite(out).all())
    return {"step_s": best, "peak_mib": _peak_mib(), "finite": finite, "weights": weights}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_child(task: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(task)], capture_output=True,
                          text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the benchmark --------------------------------------------------------------------------


def weights_gib(shapes: dict, family: str, dtype: str) -> float:
    from sdstudio.engine.single_file import component_numels

    itemsize = 4 if dtype == "float32" else 2
    return sum(component_numels(shapes, family).values()) * itemsize / GIB


def load_rows(name: str, path: Path, shapes: dict, family: str, config: str, runs: list[tuple[str, str]],
              folder: Path | None = None) -> None:
    for kind, dtype in runs:
        task = {"kind": kind, "path": str(folder if kind == "folder" else path), "dtype": dtype,
                "family": family, "config": config}
        result = run_child(task)
        weights = weights_gib(shapes, family, dtype)
        if "error" in result:
            print(f"| {name} | {kind} | {dtype} | {weights:.2f} | failed: {result['error'][:80]} | | | | |")
            continue
        peak, base, used = result["peak_mib"] / 1024, result["base_mib"] / 1024, result["used_mib"] / 1024
        print(f"| {name} | {kind} | {dtype} | {weights:.2f} | {peak:.2f} | {peak / weights:.2f}x "
              f"| {(peak - base) / weights:.2f}x | {used:.2f} | {result['seconds']:.0f} s |")


def step_table(quick: bool) -> None:
    """fp32 vs bf16 UNet step time and RSS, from the tiny test UNet to the full SD 1.5 one."""
    print("\nUNet step time (fastest step, the two precisions taking turns in one process) and "
          "peak RSS (each precision alone), CPU, batch 2.\n")
    print("| UNet | weights | fp32 s/step | bf16 s/step | bf16 speed-up | fp32 peak RSS | bf16 peak RSS |")
    print("|---|---|---|---|---|---|---|")
    sizes = (("tiny", "tiny test UNet, 64x64"), ("builtin", "built-in model, 128x128"),
             ("quarter", "SD 1.5 at 1/4 width, 256x256"), ("half", "SD 1.5 at 1/2 width, 256x256"),
             ("full", "SD 1.5, 256x256"))
    for size, label in sizes[:2] + sizes[-1:] if quick else sizes:
        rounds = 3 if size in ("half", "full") else 15
        both = run_child({"kind": "step", "size": size, "dtypes": ["float32", "bfloat16"], "rounds": rounds})
        alone = [run_child({"kind": "step", "size": size, "dtypes": [d], "rounds": 1})
                 for d in ("float32", "bfloat16")]
        failed = [r["error"] for r in (both, *alone) if "error" in r]
        if failed:
            print(f"| {label} | failed: {failed[0][:80]} | | | | | |")
            continue
        fp32, bf16 = both["step_s"]["float32"], both["step_s"]["bfloat16"]
        print(f"| {label} | {both['weights'] / 1e6:.1f} M | {fp32:.3f} | {bf16:.3f} | {fp32 / bf16:.2f}x "
              f"| {alone[0]['peak_mib'] / 1024:.2f} | {alone[1]['peak_mib'] / 1024:.2f} |")
    from sdstudio.engine.devices import CPU_BF16_MIN_WEIGHTS, cpu_runs_bf16_well

    print(f"\nThis CPU has bf16 arithmetic: {cpu_runs_bf16_well()}; then the automatic CPU precision "
          f"is bfloat16 for models of {CPU_BF16_MIN_WEIGHTS / 1e6:.0f} M weights and more.")


def main() -> None:
    from sdstudio.engine.memory import free_ram_bytes
    from sdstudio.engine.models import CONFIG_ROOT
    from tools.ldm_checkpoint import full_size_shapes, write_random_checkpoint

    quick = "--quick" in sys.argv
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        print("Peak RSS of a single-file load in a fresh process (GiB); goal: after <= "
              f"{GOAL}x the weights in the dtype used.\n")
        print("| model | path | dtype | weights | peak RSS | peak / weights | (peak - imports) / weights "
              "| peak after first use | load time |")
        print("|---|---|---|---|---|---|---|---|---|")
        sd15 = full_size_shapes(CONFIG_ROOT / "sd15")
        sd15_file = write_random_checkpoint(sd15, work / "sd15.safetensors", "float32")
        folder = work / "sd15-folder"
        if not quick:
            run_child({"kind": "after", "path": str(sd15_file), "dtype": "float32", "save_to": str(folder)})
        runs = [("before", "float32"), ("after", "float32"), ("before", "bfloat16"), ("after", "bfloat16")]
        if not quick:
            runs += [("folder", "float32"), ("folder", "bfloat16")]
        load_rows("SD 1.5 (fp32 file)", sd15_file, sd15, "sd1", "sd15", runs, folder)
        sd15_file.unlink()
        shutil.rmtree(folder, ignore_errors=True)

        sdxl = full_size_shapes(CONFIG_ROOT / "sdxl")
        need = weights_gib(sdxl, "sdxl", "bfloat16") * GIB
        free = free_ram_bytes() or 0
        if quick or free < 1.6 * need:
            print(f"| SDXL | skipped: {free / GIB:.1f} GiB free, {1.6 * need / GIB:.1f} needed | | | | | | | |")
        else:
            sdxl_file = write_random_checkpoint(sdxl, work / "sdxl.safetensors", "float16")
            runs = [("after", "bfloat16")]
            if free > 2.3 * need:  # the old path holds the file and the converted copy at once
                runs.insert(0, ("before", "bfloat16"))
            load_rows("SDXL (fp16 file)", sdxl_file, sdxl, "sdxl", "sdxl", runs)
            sdxl_file.unlink()

        step_table(quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(_child(json.loads(sys.argv[2]))))
    else:
        main()
