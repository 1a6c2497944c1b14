"""The engine: one worker thread that owns every pipeline, fed by a FIFO job queue.

`submit()` and `load_model()` return a Job at once; the job's events go to its callback, called
from the worker thread (the window hops back to its own loop with `call_soon_threadsafe`).
The one exception: cancelling a job that has not started yet delivers its `Cancelled` at once,
from the thread that cancelled it, so the queue the person sees changes immediately.

Importing this module does not import torch or diffusers: the worker does, on its first job.
"""

from __future__ import annotations

import atexit
import gc
import itertools
import logging
import threading
import traceback
import weakref
from typing import TYPE_CHECKING

from sdstudio.engine.backend import (
    LANCZOS,
    Callback,
    Capabilities,
    Feature,
    ServerState,
    Upscale,
    deliver,
)
from sdstudio.engine.events import (
    Cancelled,
    ErrorKind,
    Event,
    Failed,
    Finished,
    JobKind,
    JobState,
    ModelLoaded,
    ModelLoading,
    Notice,
    Started,
    Step,
)
from sdstudio.engine.generate import JobInterrupted, plan_generation, run_generation
from sdstudio.engine.hires import hires_size
from sdstudio.engine.images import (
    BadOutputError,
    InputError,
    check_request,
    prepare_inputs,
    upscale_input,
)
from sdstudio.engine.job_queue import SerialQueue
from sdstudio.engine.networks import NetworkFolders, NetworkKind, file_version, list_networks
from sdstudio.engine.request import BUILTIN_MODEL, Family, GenerationRequest, ModelInfo, ModelRef

if TYPE_CHECKING:
    from sdstudio.engine.models import LoadedModel
    from sdstudio.engine.preview import DecoderPreview, LatentPreview

log = logging.getLogger(__name__)


class Job:
    """A handle on one queued generation (`request`), model load (`request` None, `model_ref`)
    or upscale (`order`; `request` is its source's)."""

    def __init__(
        self, job_id: int, request: GenerationRequest | None, model_ref: ModelRef, callback: Callback,
        order: Upscale | None = None,
    ) -> None:
        self.id = job_id
        self.kind = JobKind.of(request, order)
        self.request = request
        self.order = order
        self.model_ref = model_ref
        self.state = JobState.PENDING
        self._callback = callback
        self._cancel = threading.Event()
        self._done = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job's last event was delivered; False on timeout."""
        return self._done.wait(timeout)

    def __repr__(self) -> str:
        kind = self.request.mode.value if self.kind is JobKind.GENERATE and self.request else self.kind.value
        return f"<Job {self.id} {kind} {self.state.value}>"


class Engine:
    """The local Backend: runs generation and model-load jobs one at a time, in submission
    order, on one worker thread that owns every pipeline.

    `device` and `dtype` are the defaults for models whose ModelRef leaves them unset.
    `folders` says where LoRAs, embeddings, VAEs and upscaler models are found (None: the
    defaults, $SDSTUDIO_LORAS etc. read when each job starts); a settings change may replace the
    attribute at any time (each job reads it once, when it starts).
    """

    def __init__(self, device: str | None = None, dtype: str | None = None, folders: NetworkFolders | None = None) -> None:
        self._device = device
        self._dtype = dtype
        self._folders = folders
        self._model: LoadedModel | None = None  # touched by the worker thread only
        self._previewer: LatentPreview | DecoderPreview | None = None
        self._model_info: ModelInfo | None = None
        # `run` looks the method up per job, so a test may replace it on the instance.
        self._jobs: SerialQueue[Job] = SerialQueue(
            "sdstudio-engine", run=lambda job: self._run(job), stop=lambda job: job._cancel.set(),
            cancelled=lambda job: self._emit(job, Cancelled()), after=self._release,
        )
        # A worker still inside torch while the interpreter exits aborts the process.
        atexit.register(_shutdown_if_alive, weakref.ref(self))

    # ---- public API (any thread) --------------------------------------------------------

    def submit(self, request: GenerationRequest, callback: Callback) -> Job:
        return self._enqueue(request, request.model, callback)

    def load_model(self, ref: ModelRef, callback: Callback) -> Job:
        return self._enqueue(None, ref, callback)

    def upscale(self, order: Upscale, callback: Callback) -> Job:
        return self._enqueue(order.source, order.source.model, callback, order)

    def cancel(self, job: Job) -> None:
        """A pending job leaves the queue (Cancelled at once); the running one stops at its next
        step (Cancelled from the worker). Finished jobs are left alone."""
        self._jobs.cancel(job)

    def cancel_all_pending(self) -> None:
        self._jobs.cancel_all_pending()

    def pending_jobs(self) -> list[Job]:
        return self._jobs.pending()

    def server_states(self) -> list[ServerState]:
        return [ServerState("this computer", True, self._jobs.running, len(self._jobs.pending()))]

    def list_models(self) -> list[ModelRef]:
        from sdstudio.engine.backend import builtin_model_available

        return [ModelRef(BUILTIN_MODEL)] if builtin_model_available() else []

    def capabilities(self) -> Capabilities:
        from sdstudio.engine.schedulers import available_samplers
        from sdstudio.engine.upscalers import list_upscalers

        folders = self.folders
        return Capabilities(
            name="this computer",
            samplers=tuple(available_samplers()),
            families=frozenset(Family),
            features=frozenset(Feature),
            upscalers=tuple(list_upscalers(folders.upscalers)),
            loras=tuple(f.name for f in list_networks(NetworkKind.LORA, folders.loras)),
            embeddings=tuple(f.name for f in list_networks(NetworkKind.EMBEDDING, folders.embeddings)),
            vaes=tuple(f.name for f in list_networks(NetworkKind.VAE, folders.vaes)),
        )

    @property
    def folders(self) -> NetworkFolders:
        return self._folders or NetworkFolders.default()

    @folders.setter
    def folders(self, folders: NetworkFolders | None) -> None:
        self._folders = folders

    @property
    def model_info(self) -> ModelInfo | None:
        """The loaded model, or None before the first successful load."""
        return self._model_info

    def shutdown(self, wait: bool = True) -> None:
        """Cancel pending jobs, stop the running one at its next step and end the worker."""
        self._jobs.shutdown(wait)

    # ---- queue --------------------------------------------------------------------------

    def _enqueue(
        self, request: GenerationRequest | None, ref: ModelRef, callback: Callback, order: Upscale | None = None
    ) -> Job:
        return self._jobs.add(lambda job_id: Job(job_id, request, ref, callback, order), "the engine was shut down")

    def _release(self) -> None:
        """The worker's last act: the pipelines go with it."""
        self._model = self._previewer = None
        gc.collect()

    def _emit(self, job: Job, event: Event) -> None:
        deliver(job, event, job._callback, job._done)

    # ---- jobs (worker thread) -----------------------------------------------------------

    def _run(self, job: Job) -> None:
        emit = lambda event: self._emit(job, event)  # noqa: E731
        try:
            if job._cancel.is_set():
                raise JobInterrupted
            if job.order is not None:
                self._upscale(job, job.order, emit)
                return
            if job.request is None:
                model, fresh = self._ensure_model(job.model_ref, emit)
                if not fresh:  # already loaded: nothing to do, but the caller still hears so
                    emit(ModelLoaded(model.info))
                return
            check_request(job.request)
            model, _ = self._ensure_model(job.model_ref, emit)
            if job._cancel.is_set():
                raise JobInterrupted
            self._generate(job, model, emit)
        except JobInterrupted:
            emit(Cancelled())
        except BaseException as exc:  # noqa: BLE001 - every failure, even SystemExit, fails the job only
            emit(_failure(exc, job))

    def _generate(self, job: Job, model: LoadedModel, emit: Callback) -> None:
        request = _with_model_defaults(job.request, model.info)
        width, height = hires_size(request) or (request.extent.width, request.extent.height)
        model.apply_job_memory(width, height, request.extent.batch_size)
        plan = plan_generation(model, request, prepare_inputs(request), self.folders)
        emit(Started(total=plan.total))
        for message in plan.notices:
            emit(Notice(message))
        emit(run_generation(model, plan, emit, job._cancel.is_set, self._previewer))

    def _upscale(self, job: Job, order: Upscale, emit: Callback) -> None:
        """One picture through an upscaler model (a Step per tile, cancellable between tiles)
        or Lanczos (one Step), on this engine's device."""
        from sdstudio.engine.devices import pick_device
        from sdstudio.engine.upscalers import UpscalerError, load_upscaler, tile_count, upscale

        image = upscale_input(order)
        try:
            model = None
            if order.upscaler != LANCZOS:
                device = str(pick_device(order.source.model.device or self._device))
                model = load_upscaler(order.upscaler, order.source.model.allow_pickle, self.folders.upscalers, device)
        except UpscalerError as exc:
            raise InputError(str(exc)) from exc
        size = order.size(*image.size)
        tiles = tile_count(image.size, size, model)
        total = tiles or 1
        emit(Started(total=total))
        steps = itertools.count(1)

        def step() -> None:
            if job._cancel.is_set():
                raise JobInterrupted
            emit(Step(next(steps), total))

        result = upscale(image, size, model, step)
        if not tiles:
            step()
        emit(Finished((order.result(result),)))

    def _ensure_model(self, ref: ModelRef, emit: Callback) -> tuple[LoadedModel, bool]:
        """(model, freshly loaded): the loaded model if it matches `ref`, else `ref` loaded now.
        A failed load raises ModelLoadError and keeps the previous model."""
        from sdstudio.engine.models import load_model
        from sdstudio.engine.preview import preview_for

        ref = self._with_defaults(ref)
        loaded = self._model
        # Tiling and slicing switch per job; only another offload needs the model loaded again.
        if loaded is not None and _same_model(ref, loaded.info) and ref.memory.offload == loaded.memory.offload:
            loaded.memory = ref.memory
            self._use_vae(ref, loaded)
            return loaded, False
        emit(ModelLoading(f"Loading {ref.name}", 0.0))
        model = load_model(ref, lambda message, fraction: emit(ModelLoading(message, fraction)), memory=ref.memory)
        self._model = self._previewer = None
        gc.collect()
        self._model = model
        try:
            self._previewer = preview_for(model.vae)
        except Exception:  # noqa: BLE001 - no live preview is better than no model
            log.exception("no latent preview for %s", ref.name)
        self._model_info = model.info
        for warning in model.warnings:  # memory short, offload chosen: worth a banner
            emit(Notice(warning))
        self._use_vae(ref, model)
        emit(ModelLoaded(model.info))  # last: it ends a load job
        return model, True

    def _use_vae(self, ref: ModelRef, model: LoadedModel) -> None:
        """Swap in the VAE `ref.vae` names (the model's own for ""), unless it is the one in use
        (the same version of the same file); the live preview follows the VAE. Raises
        ModelLoadError for a VAE that is missing or does not fit, keeping the one in use."""
        from sdstudio.engine.preview import preview_for
        from sdstudio.engine.vaes import find_vae, load_vae, used_vae

        path = find_vae(ref.vae, self.folders.vaes, ref.allow_pickle) if ref.vae else None
        key = file_version(path) if path is not None else None
        if key == model.vae_key:
            return
        if path is None:
            model.use_vae(None)
        else:
            model.use_vae(load_vae(path, model.own_vae, model.dtype, ref.allow_pickle), used_vae(path), key)
        try:
            self._previewer = preview_for(model.vae)
        except Exception:  # noqa: BLE001 - no live preview is better than no picture
            self._previewer = None
            log.exception("no latent preview for the VAE of %s", ref.name)

    def _with_defaults(self, ref: ModelRef) -> ModelRef:
        from dataclasses import replace

        return replace(ref, device=ref.device or self._device, dtype=ref.dtype or self._dtype)


def _shutdown_if_alive(engine_ref: weakref.ref[Engine]) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.shutdown()


def _with_model_defaults(request: GenerationRequest, info: ModelInfo) -> GenerationRequest:
    """The request with every parameter left to the model (None) set to the model's value."""
    missing = {name: info.model_default(name) for name, value in request.fields().items() if value is None}
    return request.replace(**missing)


def _same_model(ref: ModelRef, info: ModelInfo) -> bool:
    from sdstudio.engine.devices import DTYPE_NAMES

    if ref.source != info.source:
        return False
    if ref.device and ref.device.split(":")[0] != info.device:
        return False
    return not ref.dtype or DTYPE_NAMES.get(ref.dtype.lower(), ref.dtype) == info.dtype


def _failure(exc: BaseException, job: Job) -> Failed:
    """The Failed event for an exception: a kind, a sentence for the person, the traceback."""
    from sdstudio.engine.devices import is_out_of_memory
    from sdstudio.engine.families import ModelLoadError

    details = "".join(traceback.format_exception(exc))
    if isinstance(exc, InputError):
        return Failed(ErrorKind.BAD_INPUT, str(exc), details)
    if isinstance(exc, ModelLoadError):
        return Failed(ErrorKind.MODEL_LOAD, str(exc), details)
    if isinstance(exc, BadOutputError):
        return Failed(ErrorKind.BAD_OUTPUT, str(exc), details)
    if is_out_of_memory(exc):
        _free_accelerator_memory()
        return Failed(ErrorKind.OUT_OF_MEMORY, _oom_message(job, exc), details)
    log.error("job %s failed:\n%s", job.id, details)
    return Failed(ErrorKind.INTERNAL, f"Generation failed: {type(exc).__name__}: {exc}", details)


def _oom_message(job: Job, exc: BaseException) -> str:
    """What to lower: loading's own advice (what helps, RAM needed vs free) when memory ran out
    while loading, even inside a generation job; else the generation's size and batch."""
    from sdstudio.engine.memory import LoadOutOfMemory

    request = job.request
    if isinstance(exc, LoadOutOfMemory):
        return str(exc)
    if job.order is not None:
        return "Out of memory while upscaling: use a smaller factor or Lanczos (or close other programs using the GPU)."
    if request is None:
        return f"Out of memory while loading {job.model_ref.name}: close other programs or use a smaller model."
    return (
        f"Out of memory at {request.extent.width}x{request.extent.height} with batch size {request.extent.batch_size}. "
        "Lower the width and height or the batch size (or close other programs using the GPU)."
    )


def _free_accelerator_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif torch.backends.mps.is_available():
        torch.mps.empty_cache()
