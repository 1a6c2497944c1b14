"""engine/memory.py: offload and saver choices, fit warnings and out-of-memory advice (pure)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sdstudio.engine.memory import (
    GIB,
    WORKING_BYTES,
    JobMemory,
    LoadOutOfMemory,
    MemoryOptions,
    fit_warning,
    format_bytes,
    load_oom_message,
    plan_job,
    plan_offload,
)
from sdstudio.engine.request import ModelRef

SD15_BF16 = 2 * GIB  # UNet 1.6 GiB of it
SDXL_FP16 = int(6.5 * GIB)  # UNet 4.8 GiB of it
AUTO = MemoryOptions()


def _offload(options=AUTO, device="cuda", weights=SDXL_FP16, largest=int(4.8 * GIB), free=24 * GIB,
             accelerate=True):
    return plan_offload(options, device_type=device, weights_bytes=weights, largest_component_bytes=largest,
                        free_device_bytes=free, accelerate_ok=accelerate)


def test_automatic_offload_is_the_least_that_fits():
    assert _offload(free=24 * GIB) == ("none", None)
    assert _offload(free=SDXL_FP16 + WORKING_BYTES) == ("none", None)
    mode, note = _offload(free=7 * GIB)
    assert mode == "model" and "8.1 GB of GPU memory and 7.5 GB is free" in note and "one part at a time" in note
    mode, note = _offload(free=4 * GIB)
    assert mode == "sequential" and "layer by layer" in note
    assert _offload(free=None) == ("none", None)  # unknown: do not slow the model down on a guess


def test_offload_only_on_cuda_with_accelerate():
    assert _offload(device="cpu", free=None) == ("none", None)
    assert _offload(device="mps", free=None) == ("none", None)
    mode, note = _offload(MemoryOptions(offload="model"), device="cpu", free=None)
    assert mode == "none" and "needs a CUDA GPU" in note
    mode, note = _offload(MemoryOptions(offload="sequential"), accelerate=False)
    assert mode == "none" and "accelerate" in note
    assert _offload(accelerate=False, free=GIB) == ("none", None)


@pytest.mark.parametrize("asked", ["none", "model", "sequential"])
def test_a_chosen_offload_is_kept_on_cuda(asked):
    assert _offload(MemoryOptions(offload=asked), free=GIB) == (asked, None)
    assert _offload(MemoryOptions(offload=asked), free=100 * GIB) == (asked, None)


def test_memory_options_refuse_unknown_offload():
    with pytest.raises(ValueError, match="offload must be one of auto, none, model, sequential"):
        MemoryOptions(offload="disk")


def _job(options=AUTO, device="cuda", pixels=512 * 512, bytes_per_value=2, free=8 * GIB, total=None):
    return plan_job(options, device_type=device, pixels=pixels, bytes_per_value=bytes_per_value,
                    free_bytes=free, total_bytes=total)


def test_vae_tiling_when_the_decode_would_not_fit():
    assert _job() == JobMemory(vae_tiling=False, attention_slicing=False)
    assert not _job(pixels=1024 * 1024, free=8 * GIB).vae_tiling  # ~2 GB decode, 8 free
    assert _job(pixels=2048 * 2048, free=8 * GIB, bytes_per_value=4).vae_tiling  # ~17 GB decode
    assert _job(pixels=1024 * 1024, free=3 * GIB).vae_tiling  # a small GPU at 1024²
    assert not _job(pixels=1024 * 1024, free=None).vae_tiling  # unknown: only huge images tile
    assert _job(pixels=4096 * 4096, free=None).vae_tiling


def test_attention_slicing_on_small_macs_only():
    assert _job(device="mps", total=16 * GIB).attention_slicing
    assert not _job(device="mps", total=128 * GIB).attention_slicing
    assert not _job(device="cuda", total=16 * GIB).attention_slicing
    assert not _job(device="cpu", total=8 * GIB).attention_slicing


def test_chosen_savers_are_kept():
    forced = _job(MemoryOptions(vae_tiling=True, attention_slicing=True), device="cpu")
    assert forced == JobMemory(vae_tiling=True, attention_slicing=True)
    off = _job(MemoryOptions(vae_tiling=False, attention_slicing=False), device="mps", pixels=4096**2, free=GIB,
               total=8 * GIB)
    assert off == JobMemory(vae_tiling=False, attention_slicing=False)


def test_fit_warning_with_the_figures():
    assert fit_warning("sdxl", 7 * 10**9, 8 * 10**9, "RAM", "bfloat16", ["close other programs"]) is None
    assert fit_warning("sdxl", 7 * 10**9, None, "RAM", "bfloat16", ["close other programs"]) is None
    text = fit_warning("sdxl", 14 * 10**9, 9 * 10**9, "RAM", "float32",
                       ["close other programs", "choose bfloat16 (half the memory)"])
    assert text == ("sdxl needs about 14.0 GB of RAM in float32 and 9.0 GB is free: loading may fail or make "
                    "the computer swap. To make room, close other programs or choose bfloat16 (half the memory).")


def test_out_of_memory_advice_per_case():
    cpu = load_oom_message("dreamshaper", needed_bytes=14 * 10**9, free_bytes=6 * 10**9,
                           dtype_name="float32", smaller_dtype="bfloat16", device_type="cpu")
    assert cpu == (
        "Out of memory while loading dreamshaper. It needs about 14.0 GB in float32; 6.0 GB of RAM was free. "
        "What helps: close other programs; choose bfloat16 as the precision (half the memory)."
    )
    cuda = load_oom_message("sdxl", needed_bytes=None, free_bytes=None, dtype_name="float16",
                            smaller_dtype=None, device_type="cuda")
    assert cuda == ("Out of memory while loading sdxl. What helps: close other programs; "
                           "turn on model CPU offload.")


def test_format_bytes():
    assert format_bytes(2_140_000_000) == "2.1 GB"
    assert format_bytes(640_000_000) == "640 MB"
    assert format_bytes(0) == "0 MB"


def test_runner_shows_the_load_advice_even_in_a_generation_job():
    """A generation job that loads its model first must not say "lower the width" when the
    load is what ran out of memory."""
    from sdstudio.engine.runner import _oom_message

    exc = LoadOutOfMemory("Out of memory while loading big. What helps: close other programs.")
    generation_job = SimpleNamespace(request=object(), model_ref=ModelRef("big.safetensors"))
    assert _oom_message(generation_job, exc) == str(exc)
