"""Previews with the VAE's own decoder: right colours on the built-in model (whose decoder a
linear map cannot follow), and never more decoding than the time budget allows."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from sdstudio.engine import preview as preview_module
from sdstudio.engine.preview import (
    PREVIEW_BUDGET,
    DecoderPreview,
    LatentPreview,
    fit_latent_rgb,
    preview_for,
)


@pytest.fixture(scope="module")
def builtin_vae():
    from diffusers import AutoencoderKL

    from sdstudio.engine.models import builtin_model_path

    return AutoencoderKL.from_pretrained(builtin_model_path() / "vae", torch_dtype=torch.float32).eval()


def scene_latents(vae) -> tuple[torch.Tensor, np.ndarray]:
    """A built-in-model scene (red circle on blue) as scaled latents, and the decoder's picture."""
    picture = Image.new("RGB", (128, 128), (30, 60, 200))
    ImageDraw.Draw(picture).ellipse((30, 30, 90, 90), fill=(220, 30, 30))
    pixels = torch.from_numpy(np.array(picture)).permute(2, 0, 1)[None].float() / 127.5 - 1
    scale = vae.config.scaling_factor
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mean * scale
        decoded = vae.decode(latents / scale).sample[0]
    final = ((decoded.clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    return latents, final


def colour_error(preview: Image.Image, final: np.ndarray) -> float:
    """Mean absolute RGB difference (0..255) at the preview's resolution."""
    small = Image.fromarray(final.astype(np.uint8)).resize(preview.size, Image.Resampling.BOX)
    return float(np.abs(np.asarray(preview, float) - np.asarray(small, float)).mean())


@pytest.mark.slow
def test_builtin_model_previews_show_the_colours_of_the_final_image(builtin_vae):
    latents, final = scene_latents(builtin_vae)
    previewer = preview_for(builtin_vae)
    assert isinstance(previewer, DecoderPreview)
    with torch.no_grad():
        shown = previewer.image(latents)
    assert previewer.last_source == "decoder" and colour_error(shown, final) < 3
    # The linear map is far off here (mauve for blue): it must not fill in between decodes.
    fit = fit_latent_rgb(builtin_vae)
    assert colour_error(LatentPreview(fit.factors, fit.bias, "fitted").image(latents), final) > 30
    assert fit.r2 < preview_module.FAITHFUL_FIT and previewer.fallback is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_decoding_vae(clock: FakeClock, seconds: float) -> SimpleNamespace:
    def decode(x):
        clock.now += seconds
        return SimpleNamespace(sample=torch.zeros(1, 3, 16, 16))

    config = SimpleNamespace(scaling_factor=1.0, shift_factor=None)
    return SimpleNamespace(config=config, decode=decode, parameters=lambda: iter([torch.zeros(1)]))


@pytest.mark.parametrize(("decode_seconds", "decodes"), [(0.01, 60), (0.5, 6), (2.0, 2)])
def test_decoding_stays_within_the_budget(monkeypatch, decode_seconds, decodes):
    clock = FakeClock()
    monkeypatch.setattr(preview_module.time, "perf_counter", clock)
    fallback = LatentPreview(torch.zeros(4, 3), torch.zeros(3), "fitted")
    previewer = DecoderPreview(fake_decoding_vae(clock, decode_seconds), fallback)
    sources = []
    for _ in range(60):  # steps of one second each
        previewer.image(torch.zeros(1, 4, 2, 2))
        sources.append(previewer.last_source)
        clock.now += 1.0
    assert sources.count("decoder") == decodes
    assert sources.count("decoder") * decode_seconds <= PREVIEW_BUDGET * 60 + decode_seconds
    assert set(sources) <= {"decoder", "fitted"}  # a faithful map fills in between decodes


def test_a_new_job_earns_its_first_decode_rather_than_spending_idle_time(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(preview_module.time, "perf_counter", clock)
    previewer = DecoderPreview(fake_decoding_vae(clock, 0.1), None)
    previewer.image(torch.zeros(1, 4, 2, 2))  # the first call ever decodes: what does it cost?
    clock.now += 3600  # an hour between two jobs
    sources = []
    for _ in range(40):  # the next job, steps of 0.1 s
        sources.append(previewer.last_source if previewer.image(torch.zeros(1, 4, 2, 2)) else "")
        clock.now += 0.1
    # Not its first, shapeless step: one decode once 20 steps have earned it (float rounding
    # may take one step more).
    decoded = [n for n, source in enumerate(sources) if source == "decoder"]
    assert len(decoded) == 1 and 20 <= decoded[0] <= 21
