"""A1111's hires fix: after txt2img, upscale each image and redraw its details in an img2img
pass at the larger size, as a second stage of the same job (one progress bar, previews
throughout, one terminal event).

Latent upscalers ("Latent", "Latent (nearest)", …) enlarge the first pass's latents before any
decode; pixel upscalers ("Lanczos", "Nearest", or an upscaler model's file name, see
`upscalers.py`) decode, enlarge the picture and encode it again in the second pass. A dedicated 9-channel inpainting UNet cannot start img2img from latents, so
it always takes the pixel path. Image k of a batch is redrawn with its own generator, so it
stays equal to a single run with seed + k.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sdstudio.engine.images import InputError
from sdstudio.engine.parameters import BY_NAME, HIRES_UPSCALERS, LATENT_UPSCALERS, snap_to_8
from sdstudio.engine.request import GenerationRequest, Mode

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from sdstudio.engine.models import LoadedModel
    from sdstudio.engine.upscalers import UpscalerModel

_LATENT_MODES = {
    "Latent": ("bilinear", False),
    "Latent (nearest)": ("nearest-exact", False),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (antialiased)": ("bilinear", True),
}


def hires_size(request: GenerationRequest) -> tuple[int, int] | None:
    """The second pass's size, or None when the request has no hires pass."""
    scale = request.hires.hires_scale
    if request.mode is not Mode.TXT2IMG or scale is None or scale <= 1:
        return None
    return snap_to_8(request.extent.width * scale), snap_to_8(request.extent.height * scale)


@dataclass
class HiresPass:
    pipe: Any
    kwargs: dict[str, Any]  # the call arguments besides image and generator
    steps: int  # step callbacks per image
    size: tuple[int, int]
    latent: bool  # upscale latents (else decoded pixels)
    upscaler: str
    upscaler_model: UpscalerModel | None = None  # when `upscaler` names a model file

    def first_pass_output(self) -> str:
        return "latent" if self.latent else "np"

    def run(self, first: Any, generators: list, on_step: Callable[..., dict]) -> Any:
        """The second pass over the first pass's output (latents, or float pixels NHWC);
        returns float pixels NHWC in 0..1, one image per generator."""
        import numpy as np
        import torch

        images = []
        for k, generator in enumerate(generators):
            start = self._enlarge_latents(first[k : k + 1]) if self.latent else self._enlarge_pixels(first[k])
            out = self.pipe(**self.kwargs, image=start, generator=[generator], callback_on_step_end=on_step).images
            images.append(out[0])
        return np.stack(images) if not isinstance(images[0], torch.Tensor) else torch.stack(images)

    def _enlarge_latents(self, latents: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        mode, antialias = _LATENT_MODES[self.upscaler]
        w, h = self.size
        return F.interpolate(latents, size=(h // 8, w // 8), mode=mode, antialias=antialias)

    def _enlarge_pixels(self, pixels: Any) -> Any:
        import numpy as np
        from PIL import Image as PILImage

        picture = PILImage.fromarray((np.clip(pixels, 0, 1) * 255).round().astype(np.uint8))
        if self.upscaler_model is not None:
            from sdstudio.engine.upscalers import upscale

            return upscale(picture, self.size, self.upscaler_model)
        method = PILImage.Resampling.NEAREST if self.upscaler == "Nearest" else PILImage.Resampling.LANCZOS
        return picture.resize(self.size, method)


def plan_hires(
    model: LoadedModel, request: GenerationRequest, first_kwargs: dict[str, Any], count_steps: Callable[..., int],
    upscalers: Path | None = None,
) -> HiresPass | None:
    """The second pass of `request` (None without one): the img2img pipeline with a fresh
    scheduler, its call arguments and its step count; an upscaler model is looked up in
    `upscalers` (default: upscalers.upscaler_folder()). Raises InputError when it has no step."""
    from sdstudio.engine.schedulers import make_scheduler

    size = hires_size(request)
    if size is None:
        return None
    limit = int(BY_NAME["width"].maximum or 0)
    if max(size) > limit:
        raise InputError(
            f"Hires fix to {size[0]}x{size[1]} is past the largest side ({limit}): lower the hires upscale or the size."
        )
    hires = request.hires
    pipe = model.pipeline(Mode.IMG2IMG)
    pipe.scheduler = make_scheduler(request.sampling.sampler, model.base_scheduler_config)
    steps = hires.hires_steps or request.sampling.steps
    kwargs = {k: v for k, v in first_kwargs.items() if k not in ("height", "width", "image", "mask_image")}
    kwargs |= {"num_inference_steps": steps, "strength": hires.hires_denoise, "num_images_per_prompt": 1}
    kwargs["output_type"] = "np"
    latent = hires.hires_upscaler in LATENT_UPSCALERS and not model.info.inpaint_unet
    if not latent:
        from PIL import Image as PILImage

        # A 9-channel UNet redraws through the inpaint pipeline under an all-white mask.
        kwargs |= model.stand_in_inputs(Mode.IMG2IMG, *size, PILImage.new("RGB", size))
        kwargs.pop("image", None)
    count = count_steps(pipe, steps, hires.hires_denoise, model.device)
    if count < 1:
        raise InputError(
            f"Hires denoise {hires.hires_denoise} with {steps} steps leaves no step to run: raise either."
        )
    return HiresPass(pipe, kwargs, count, size, latent, hires.hires_upscaler, _upscaler_model(request, model.device, upscalers))


def _upscaler_model(request: GenerationRequest, device: Any, folder: Path | None) -> UpscalerModel | None:
    """The upscaler model the request names, loaded before the first pass so a missing or
    unusable file fails the job at once; None for the built-in methods."""
    name = request.hires.hires_upscaler
    if name in HIRES_UPSCALERS:
        return None
    from sdstudio.engine.upscalers import UpscalerError, load_upscaler

    try:
        return load_upscaler(name, allow_pickle=request.model.allow_pickle, folder=folder, device=str(device))
    except UpscalerError as exc:
        raise InputError(str(exc)) from exc
