"""Running one GenerationRequest on a LoadedModel, in the engine's worker thread.

How each mode picks its pipeline (see LoadedModel.pipeline):
- regular 4-channel model: txt2img -> the text-to-image pipeline, img2img -> the image-to-image
  pipeline, inpaint -> the inpaint pipeline (which blends the known latents back in at every
  step for a 4-channel UNet), all sharing one set of weights;
- dedicated 9-channel inpainting model: the inpaint pipeline for every mode, with
  `LoadedModel.stand_in_inputs` (whole image masked) for txt2img and img2img.
A fresh scheduler is built for every job from the sampler name, so no state leaks between jobs.

Cancelling raises `JobInterrupted` out of `callback_on_step_end`: the pipeline stops at once
and its half-noisy latents are never decoded.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sdstudio.engine import params
from sdstudio.engine.events import BatchDone, Event, Finished, ResultImage, Step, UsedNetwork
from sdstudio.engine.hires import HiresPass, plan_hires
from sdstudio.engine.images import InputError, PasteBack, PreparedInputs, check_output
from sdstudio.engine.parameters import MAX_SEED, seeds_for
from sdstudio.engine.request import GenerationRequest, Mode

if TYPE_CHECKING:
    from sdstudio.engine.embeddings import PromptEmbeddings
    from sdstudio.engine.models import LoadedModel
    from sdstudio.engine.networks import NetworkFolders
    from sdstudio.engine.preview import DecoderPreview, LatentPreview

# What the inpaint pipelines' step callback can see of the known area, for previews.
_INPAINT_PREVIEW_TENSORS = ("mask", "masked_image_latents")


class JobInterrupted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The job was cancelled: raised at a step boundary (from the step callback), between
    batches, or by the runner before the job's work starts."""


@dataclass
class GenerationPlan:
    """A request bound to a pipeline: the call arguments, the step total and the seeds."""

    request: GenerationRequest  # as used: the snapped size and the model's defaults filled in
    pipe: Any
    call_kwargs: dict[str, Any]
    steps_per_batch: int
    seeds: list[int]
    paste_back: PasteBack | None
    notices: list[str] = field(default_factory=list)
    hires: HiresPass | None = None  # the second, larger pass of a hires-fix txt2img
    networks: tuple[UsedNetwork, ...] = ()  # add-on files the job uses (LoRAs, ...), for its results

    @property
    def total(self) -> int:
        return self.steps_per_batch * self.request.extent.batch_count


def plan_generation(
    model: LoadedModel, request: GenerationRequest, prepared: PreparedInputs, folders: NetworkFolders
) -> GenerationPlan:
    """Pick the pipeline and scheduler, apply the prompt's LoRAs (from `folders`), build the call
    arguments and count the steps. `request` has the model's defaults filled in. Raises
    InputError for an unknown sampler or LoRA, or a strength too low to leave any step."""
    from sdstudio.engine.loras import apply_loras
    from sdstudio.engine.schedulers import make_scheduler

    request = request.replace(width=prepared.width, height=prepared.height)
    sampling, extent = request.sampling, request.extent
    pipe = model.pipeline(request.mode)
    try:
        pipe.scheduler = make_scheduler(sampling.sampler, model.base_scheduler_config)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    # Before the prompts are encoded: a LoRA changes the text encoders too.
    networks = apply_loras(model, pipe, request, folders.loras)
    embeddings = _embeddings(pipe, request, folders)
    kwargs = _call_kwargs(model, pipe, request, prepared, embeddings)
    steps = count_steps(pipe, sampling.steps, kwargs.get("strength"), model.device)
    if steps < 1:
        raise InputError(
            f"Denoising strength {sampling.strength} with {sampling.steps} steps leaves no step to run: "
            "raise the strength or the steps."
        )
    hires = plan_hires(model, request, kwargs, count_steps, folders.upscalers)
    if hires is not None:
        kwargs["output_type"] = hires.first_pass_output()
        steps += hires.steps * extent.batch_size
    first = sampling.seed if sampling.seed >= 0 else random.randint(0, MAX_SEED)
    seeds = seeds_for(first, extent.batch_size * extent.batch_count)
    notices = [*prepared.notices, *_extra_network_notices(request)]
    networks = (*networks, *_used_networks(model, embeddings))
    return GenerationPlan(request, pipe, kwargs, steps, seeds, prepared.paste_back, notices, hires, networks)


def _call_kwargs(
    model: LoadedModel, pipe: Any, request: GenerationRequest, prepared: PreparedInputs,
    embeddings: PromptEmbeddings | None = None,
) -> dict[str, Any]:
    sampling, extent = request.sampling, request.extent
    kwargs: dict[str, Any] = {
        **_prompt_kwargs(pipe, request, embeddings),
        "num_inference_steps": sampling.steps,
        "guidance_scale": sampling.cfg_scale,
        "num_images_per_prompt": extent.batch_size,
        # float pixels, so NaN from an overflowing VAE is still visible to check_output
        "output_type": "np",
    }
    if request.mode is not Mode.TXT2IMG:
        kwargs["strength"] = sampling.strength
        kwargs["image"] = prepared.init_image
    if request.mode is Mode.INPAINT:
        kwargs["mask_image"] = prepared.mask
        kwargs["callback_on_step_end_tensor_inputs"] = ["latents", *_INPAINT_PREVIEW_TENSORS]
    kwargs.update(model.stand_in_inputs(request.mode, extent.width, extent.height, prepared.init_image))
    if "mask_image" in kwargs and extent.batch_size > 1:
        # The inpaint pipelines VAE-encode a single init image with the first generator only,
        # which shifts that image's noise; one copy per image keeps image k == a run with seed+k.
        kwargs["image"] = [kwargs["image"]] * extent.batch_size
        kwargs["mask_image"] = [kwargs["mask_image"]] * extent.batch_size
    # The inpaint pipeline would otherwise default to the UNet's native size, not the image's.
    if "height" in inspect.signature(pipe.__call__).parameters:
        kwargs["height"], kwargs["width"] = extent.height, extent.width
    return kwargs


def _extra_network_notices(request: GenerationRequest) -> list[str]:
    """Tags of other A1111 extensions (`<hypernet:…>`, …) name files, not words: the encoder
    never reads them, and the person is told they had no effect rather than left to guess."""
    from sdstudio.engine.networks import NetworkKind, request_tags

    tags = [tag.text for tag in request_tags(request) if tag.kind != NetworkKind.LORA.value]
    if not tags:
        return []
    return [f"{', '.join(tags)}: only LoRA tags load here; these were left out."]


def _prompt_kwargs(pipe: Any, request: GenerationRequest, embeddings: PromptEmbeddings | None) -> dict[str, Any]:
    """The prompts as embeddings in A1111's syntax and chunking (see conditioning.py), or as
    plain text for a pipeline without CLIP text encoders."""
    from sdstudio.engine import conditioning

    prompt = request.prompt
    if conditioning.supports(pipe):
        return conditioning.prompt_embeddings(pipe, prompt.prompt, prompt.negative_prompt, prompt.clip_skip, embeddings)
    return {"prompt": prompt.prompt, "negative_prompt": prompt.negative_prompt}


def _embeddings(pipe: Any, request: GenerationRequest, folders: NetworkFolders) -> PromptEmbeddings | None:
    """The textual-inversion embeddings the prompts name (see embeddings.py), checked against
    the pipeline's text encoders. Raises InputError for one this model cannot use."""
    from sdstudio.engine import conditioning
    from sdstudio.engine.embeddings import EmbeddingError, prompt_embeddings

    if not conditioning.supports(pipe):
        return None
    prompt = request.prompt
    widths = [e.text_encoder.get_input_embeddings().embedding_dim for e in conditioning.text_encoders(pipe)]
    try:
        return prompt_embeddings(folders.embeddings, (prompt.prompt, prompt.negative_prompt), widths,
                                 request.model.allow_pickle)
    except EmbeddingError as exc:
        raise InputError(str(exc)) from exc


def _used_networks(model: LoadedModel, embeddings: PromptEmbeddings | None) -> tuple[UsedNetwork, ...]:
    """The embeddings the prompts used and the VAE file, as the results record them."""
    used = [UsedNetwork("embedding", e.name, e.hash) for e in (embeddings.used if embeddings else [])]
    return (*used, *([model.vae_file] if model.vae_file else []))


def count_steps(pipe: Any, steps: int, strength: float | None, device: Any) -> int:
    """How many times the pipeline will call `callback_on_step_end`: once per timestep, which
    second-order samplers (Heun, DPM2) nearly double and img2img strength cuts, computed by the
    pipeline's own logic on the job's scheduler (the pipeline sets the timesteps again itself)."""
    pipe.scheduler.set_timesteps(steps, device=device)
    if strength is None:
        return len(pipe.scheduler.timesteps)
    timesteps, _ = pipe.get_timesteps(steps, strength, device)
    return len(timesteps)


def run_generation(
    model: LoadedModel,
    plan: GenerationPlan,
    emit: Callable[[Event], None],
    cancelled: Callable[[], bool],
    previewer: LatentPreview | DecoderPreview | None,
) -> Finished:
    """Run every batch of `plan`, emitting one Step per callback and a BatchDone per batch.
    Raises JobInterrupted when `cancelled()` turns true, BadOutputError for NaN/black
    pictures."""
    import numpy as np
    import torch
    from PIL import Image as PILImage

    from sdstudio.engine.preview import X0Capture, with_known_area

    if previewer is not None:
        previewer.start()
    # One capture per scheduler, wrapped before the first step: the hires pass has its own.
    schedulers = [plan.pipe.scheduler] + ([plan.hires.pipe.scheduler] if plan.hires else [])
    captures = {id(s): X0Capture(s) for s in {id(s): s for s in schedulers}.values()}
    done = 0

    def on_step(pipe: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        nonlocal done
        if cancelled():
            raise JobInterrupted
        done += 1
        preview = None
        if previewer is not None:
            x0 = captures[id(pipe.scheduler)].latest(tensors["latents"])
            preview = previewer.image(with_known_area(x0, *(tensors.get(k) for k in _INPAINT_PREVIEW_TENSORS)))
        emit(Step(done, plan.total, preview))
        return {}

    results: list[ResultImage] = []
    batch_size = plan.request.extent.batch_size
    for start in range(0, len(plan.seeds), batch_size):
        if cancelled():
            raise JobInterrupted
        seeds = plan.seeds[start : start + batch_size]
        # One CPU generator per image: image k depends on its own seed only, and the same seed
        # gives the same starting noise on every device.
        generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
        with torch.inference_mode():
            pixels = plan.pipe(**plan.call_kwargs, generator=generators, callback_on_step_end=on_step).images
            if plan.hires is not None:
                pixels = plan.hires.run(pixels, generators, on_step)
        check_output(pixels)
        batch = []
        for array, seed in zip(pixels, seeds, strict=True):
            image = PILImage.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8))
            if plan.paste_back:
                image = plan.paste_back.apply(image)
            batch.append(params.result_image(image, plan.request.replace(seed=seed), model.info, plan.networks))
        emit(BatchDone(tuple(batch)))
        results.extend(batch)
    return Finished(tuple(results))
