"""Live previews: the predicted clean latent (x0) of each step, turned into RGB.

Two ways, chosen per VAE by `preview_for`:
- a linear latent-to-RGB map (a 3x4 matrix and a bias) at latent resolution: the published
  table for the standard SD/SDXL autoencoders, a fit to the decoder for others. Nearly free.
- the model's own decoder (`DecoderPreview`), for VAEs the linear map cannot follow (the
  built-in model's decoder normalises over the whole picture, so a pixel's colour depends on
  the others). It decodes only as often as PREVIEW_BUDGET of the step time allows.

A step's x0 is not handed to `callback_on_step_end`, but most schedulers compute it in
`step()` (`pred_original_sample`) and the pipeline drops it; `X0Capture` wraps the job's
scheduler to keep it. Multistep DPM-Solver++/UniPC keep it as their last model output.
Where neither exists (e.g. PNDM), the preview shows the current noisy latents.

torch is imported inside functions: importing this module stays cheap.
"""

from __future__ import annotations

import functools
import time
import weakref
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import torch
    from PIL.Image import Image

# Rows: latent channel; columns: R, G, B. Applied to latents in the diffusion space (scaled by
# the VAE's scaling factor); output is in -1..1. Source: ComfyUI, comfy/latent_formats.py
# (classes SD15, which SD2.x shares, and SDXL), https://github.com/comfyanonymous/ComfyUI
SD15_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
SD15_BIAS = (0.0, 0.0, 0.0)
SDXL_FACTORS = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
SDXL_BIAS = (0.1084, -0.0175, -0.0011)

# The published tables only hold for the real SD/SDXL autoencoder (this shape and scale).
_STANDARD_VAE_BLOCKS = (128, 256, 512, 512)
_TABLES = {0.18215: (SD15_FACTORS, SD15_BIAS), 0.13025: (SDXL_FACTORS, SDXL_BIAS)}

# Previews may cost this share of the sampling time; a decoder dearer than that decodes every
# few steps rather than every step.
PREVIEW_BUDGET = 0.05
# A pause longer than this (and than ten steps) between two previews means a new job began.
NEW_JOB_GAP = 1.0
# A fitted map explaining at least this share of the decoder's colour variance is trusted.
FAITHFUL_FIT = 0.9


class FittedMap(NamedTuple):
    factors: torch.Tensor  # (C, 3)
    bias: torch.Tensor  # (3,)
    r2: float  # share of the decoded colours' variance the map explains on the fit pictures


_fitted: weakref.WeakKeyDictionary[Any, FittedMap] = weakref.WeakKeyDictionary()


class LatentPreview:
    """Latents (N, C, h, w) -> a small RGB PIL image of the first latent, computed on the
    latents' device; only the h x w x 3 bytes travel to the CPU."""

    def __init__(self, factors: torch.Tensor, bias: torch.Tensor, source: str) -> None:
        self.factors = factors  # (C, 3) float32
        self.bias = bias  # (3,) float32
        self.source = source  # "table" or "fitted", for tests and the benchmark

    def start(self) -> None:
        """A job begins (nothing to reset: a map costs nothing)."""

    def image(self, latents: torch.Tensor) -> Image:
        import torch
        from PIL import Image as PILImage

        x = latents[0].to(torch.float32)
        if self.factors.device != x.device:
            self.factors, self.bias = self.factors.to(x.device), self.bias.to(x.device)
        rgb = torch.einsum("chw,cr->hwr", x, self.factors) + self.bias
        pixels = ((rgb + 1.0) * 127.5).clamp_(0, 255).to(torch.uint8).cpu().numpy()
        return PILImage.fromarray(pixels, "RGB")


class DecoderPreview:
    """Previews decoded by the VAE itself, within PREVIEW_BUDGET of the step time.

    The time between two calls is the step's own work; each call earns PREVIEW_BUDGET of it,
    a decode spends what it took. A cheap decoder thus decodes every step, a dear one every
    few steps; in between the faithful fitted map is shown, or nothing (None: the last
    preview stays up) when the map would show wrong colours. A decode runs once the credit is
    back to zero and credit never goes above zero. A job starts one decode in debt: idle time
    is not saved up, and the first previews, whose x0 is still shapeless, are not the ones
    decoded. (The very first call decodes, to learn what decoding costs.)
    """

    source = "decoder"

    def __init__(self, vae: Any, fallback: LatentPreview | None) -> None:
        self.vae = vae
        self.fallback = fallback  # the fitted map, when it is faithful enough to fill in
        self.decode_seconds = 0.0  # the last decode's cost
        self.last_source = ""  # "decoder", "fitted" or "" (no preview), for tests and bench
        self._credit = 0.0
        self._step_seconds = 0.0  # the last time between two previews within a job
        self._last_return: float | None = None

    def start(self) -> None:
        """A job begins: its first step decodes, whatever the jobs before it spent."""
        self._credit = 0.0
        self._last_return = None

    def image(self, latents: torch.Tensor) -> Image | None:
        now = time.perf_counter()
        if self._last_return is not None:
            gap = now - self._last_return
            if gap > max(NEW_JOB_GAP, 10 * self._step_seconds):
                self._credit = -self.decode_seconds
            else:
                self._step_seconds = gap
                self._credit = min(self._credit + PREVIEW_BUDGET * gap, 0.0)
        if self._credit >= 0.0:
            picture = self._decode(latents)
            self.decode_seconds = time.perf_counter() - now
            self._credit -= self.decode_seconds
            self.last_source = "decoder"
        elif self.fallback is not None:
            picture, self.last_source = self.fallback.image(latents), "fitted"
        else:
            picture, self.last_source = None, ""
        self._last_return = time.perf_counter()
        return picture

    def _decode(self, latents: torch.Tensor) -> Image:
        import torch
        from PIL import Image as PILImage

        config = self.vae.config
        param = next(self.vae.parameters())
        x = latents[:1].to(param.device, param.dtype) / float(config.scaling_factor)
        x = x + float(getattr(config, "shift_factor", None) or 0.0)
        rgb = torch.nan_to_num(self.vae.decode(x).sample[0].float())
        pixels = ((rgb + 1.0) * 127.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return PILImage.fromarray(pixels, "RGB")


def preview_for(vae: Any) -> LatentPreview | DecoderPreview:
    """The previewer for a model's VAE: the published table for the standard SD1.x/SD2.x and
    SDXL autoencoders (their decoders cost about a step), otherwise the VAE's own decoder
    within the time budget, filling in with a least-squares fit to it (cached per VAE)
    where that fit is faithful."""
    import torch

    config = vae.config
    scale = round(float(config.scaling_factor), 5)
    standard = tuple(config.block_out_channels) == _STANDARD_VAE_BLOCKS and config.latent_channels == 4
    if standard and scale in _TABLES:
        factors, bias = _TABLES[scale]
        return LatentPreview(torch.tensor(factors), torch.tensor(bias), "table")
    if vae not in _fitted:
        _fitted[vae] = fit_latent_rgb(vae)
    fit = _fitted[vae]
    fitted = LatentPreview(fit.factors.clone(), fit.bias.clone(), "fitted")
    return DecoderPreview(vae, fitted if fit.r2 >= FAITHFUL_FIT else None)


def fit_latent_rgb(vae: Any, size: int = 64) -> FittedMap:
    """Fit RGB ~ latent @ factors + bias on this VAE: encode a few structured pictures
    (colour ramps, flat colours, a checkerboard) plus some random latents, decode them, average
    the decoded pixels down to latent resolution and solve by least squares."""
    import torch

    param = next(vae.parameters())
    device, dtype = param.device, param.dtype
    scale = float(vae.config.scaling_factor)
    shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    pictures = _fit_pictures(size).to(device, dtype)
    with torch.no_grad():
        encoded = vae.encode(pictures).latent_dist.mean
        latents = (encoded - shift) * scale
        generator = torch.Generator("cpu").manual_seed(0)
        noise = torch.randn((2, *latents.shape[1:]), generator=generator).to(device, dtype)
        latents = torch.cat([latents, noise])
        decoded = vae.decode(latents / scale + shift).sample
        small = torch.nn.functional.avg_pool2d(decoded.float(), factor)
    x = latents.float().permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).cpu()
    y = small.permute(0, 2, 3, 1).reshape(-1, 3).cpu()
    x1 = torch.cat([x, torch.ones(len(x), 1)], dim=1)
    solution = torch.linalg.lstsq(x1, y).solution
    residual = ((x1 @ solution - y) ** 2).mean()
    variance = ((y - y.mean(dim=0)) ** 2).mean()
    r2 = float(1 - residual / variance) if variance > 0 else 0.0
    return FittedMap(solution[:-1].contiguous(), solution[-1].contiguous(), r2)


def _fit_pictures(size: int) -> torch.Tensor:
    """Eight pictures in -1..1 that span colours and spatial structure."""
    import torch

    ramp = torch.linspace(-1, 1, size)
    horizontal, vertical = ramp.expand(size, size), ramp[:, None].expand(size, size)
    checker = ((torch.arange(size)[:, None] // 8 + torch.arange(size) // 8) % 2) * 2.0 - 1
    flat = lambda r, g, b: torch.tensor([r, g, b]).view(3, 1, 1).expand(3, size, size)  # noqa: E731
    return torch.stack([
        torch.stack([horizontal, vertical, -horizontal]),
        torch.stack([vertical, -horizontal, horizontal * vertical]),
        torch.stack([checker, -checker, checker * horizontal]),
        flat(1.0, -1.0, -1.0) * 0.8 + 0.1 * vertical,
        flat(-1.0, 1.0, -1.0) * 0.8 + 0.1 * horizontal,
        flat(-1.0, -1.0, 1.0) * 0.8 + 0.1 * checker,
        flat(0.9, 0.9, 0.9) - 0.2 * checker.abs() * vertical,
        flat(-0.9, -0.8, -0.7) + 0.3 * horizontal,
    ])


def with_known_area(x0: torch.Tensor, mask: torch.Tensor | None, known: torch.Tensor | None) -> torch.Tensor:
    """For inpainting: x0 inside the mask (1 = repaint), the latents of the init image outside
    it, as the final picture will be. The inpaint pipelines hand both to the step callback
    (`mask`, `masked_image_latents`, doubled under CFG); without them x0 is shown as is."""
    if mask is None or known is None:
        return x0
    inside = mask[:1].to(x0.dtype)
    return x0[:1] * inside + known[:1].to(x0.dtype) * (1 - inside)


class X0Capture:
    """Wraps one scheduler's `step` to keep the latest predicted clean latent (x0).

    `functools.wraps` keeps `step`'s signature visible, which matters: pipelines inspect it to
    decide whether to pass `generator` (seeded ancestral noise) and `eta`."""

    def __init__(self, scheduler: Any) -> None:
        self.x0: torch.Tensor | None = None
        original = scheduler.step

        @functools.wraps(original)
        def step(*args: Any, return_dict: bool = True, **kwargs: Any) -> Any:
            output = original(*args, return_dict=True, **kwargs)
            self.x0 = _x0_of(scheduler, output)
            return output if return_dict else output.to_tuple()

        scheduler.step = step

    def latest(self, latents: torch.Tensor) -> torch.Tensor:
        """The x0 of the last step, or `latents` where the scheduler gave none."""
        return self.x0 if self.x0 is not None else latents


def _x0_of(scheduler: Any, output: Any) -> torch.Tensor | None:
    for name in ("pred_original_sample", "denoised"):  # "denoised": LCM's name for x0
        x0 = getattr(output, name, None)
        if x0 is not None:
            return x0
    config = scheduler.config
    predicts_data = config.get("algorithm_type") in ("dpmsolver++", "sde-dpmsolver++") or config.get("predict_x0")
    outputs = getattr(scheduler, "model_outputs", None)
    if predicts_data and outputs and outputs[-1] is not None:
        return outputs[-1]
    return None
