"""Latent previews: the right map per VAE, a fit that tracks the VAE, and x0 capture."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from sdstudio.engine.preview import (
    SD15_FACTORS,
    SDXL_BIAS,
    LatentPreview,
    X0Capture,
    fit_latent_rgb,
    preview_for,
)


def fake_vae(scaling_factor: float) -> SimpleNamespace:
    config = SimpleNamespace(block_out_channels=[128, 256, 512, 512], latent_channels=4, scaling_factor=scaling_factor)
    return SimpleNamespace(config=config)


def test_published_tables_for_the_standard_autoencoders():
    sd = preview_for(fake_vae(0.18215))
    assert sd.source == "table" and torch.allclose(sd.factors, torch.tensor(SD15_FACTORS))
    xl = preview_for(fake_vae(0.13025))
    assert xl.source == "table" and xl.bias.tolist() == pytest.approx(list(SDXL_BIAS))


@pytest.fixture(scope="module")
def tiny_vae(tiny_sd1):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(tiny_sd1 / "vae").eval()


def test_other_vaes_get_a_fitted_map_that_tracks_the_decoder(tiny_vae):
    fit = fit_latent_rgb(tiny_vae)
    preview = LatentPreview(fit.factors, fit.bias, "fitted")
    assert preview.factors.shape == (4, 3)
    # Held-out pictures (smooth random colour fields), not the ones the fit saw.
    g = torch.Generator().manual_seed(5)
    pictures = torch.nn.functional.interpolate(torch.rand((4, 3, 4, 4), generator=g) * 2 - 1, size=64, mode="bilinear")
    scale = tiny_vae.config.scaling_factor
    with torch.no_grad():
        latents = tiny_vae.encode(pictures).latent_dist.mean * scale
        decoded = torch.nn.functional.avg_pool2d(tiny_vae.decode(latents / scale).sample, 8)
    predicted = torch.einsum("nchw,cr->nrhw", latents, preview.factors) + preview.bias[None, :, None, None]
    residual = ((predicted - decoded) ** 2).mean()
    variance = ((decoded - decoded.mean()) ** 2).mean()
    assert 1 - residual / variance > 0.3


def test_fit_is_deterministic(tiny_vae):
    first, second = fit_latent_rgb(tiny_vae), fit_latent_rgb(tiny_vae)
    assert torch.allclose(first[0], second[0], atol=1e-5) and torch.allclose(first[1], second[1], atol=1e-5)


def test_preview_image_is_rgb_at_latent_resolution():
    preview = LatentPreview(torch.tensor(SD15_FACTORS), torch.zeros(3), "table")
    image = preview.image(torch.zeros(2, 4, 8, 12))
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (12, 8)
    assert image.getpixel((0, 0)) == (127, 127, 127)  # latent 0 -> mid grey


def _step_once(scheduler, capture_first: bool = True):
    scheduler.set_timesteps(4)
    capture = X0Capture(scheduler) if capture_first else None
    sample = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    model_output = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    t = scheduler.timesteps[0]
    out = scheduler.step(model_output, t, sample, return_dict=False)
    return capture, out, sample, model_output


def test_x0_capture_keeps_the_step_signature_and_tuple_output():
    from diffusers import EulerAncestralDiscreteScheduler

    scheduler = EulerAncestralDiscreteScheduler()
    X0Capture(scheduler)
    # Pipelines pass the seeded generator only when `step` visibly accepts one.
    assert "generator" in inspect.signature(scheduler.step).parameters


def test_x0_capture_of_euler_is_the_predicted_clean_latent():
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler()
    capture, out, sample, model_output = _step_once(scheduler)
    assert isinstance(out, tuple) and len(out) == 2
    sigma = scheduler.sigmas[0]
    assert torch.allclose(capture.latest(sample), sample - sigma * model_output, atol=1e-5)


def test_x0_capture_of_dpm_solver_uses_its_data_prediction():
    from diffusers import DPMSolverMultistepScheduler

    scheduler = DPMSolverMultistepScheduler(algorithm_type="dpmsolver++")
    capture, out, sample, _ = _step_once(scheduler)
    assert len(out) == 1
    assert capture.x0 is scheduler.model_outputs[-1]


def test_schedulers_without_x0_fall_back_to_the_latents():
    from diffusers import PNDMScheduler

    capture, _, sample, _ = _step_once(PNDMScheduler(skip_prk_steps=True))
    assert capture.x0 is None and capture.latest(sample) is sample
