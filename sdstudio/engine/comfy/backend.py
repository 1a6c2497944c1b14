"""`ComfyBackend`: the `Backend` contract on a stock ComfyUI server.

Jobs queue here, in submission order, and one worker thread sends each batch to the server as
one prompt (`graphs.batch_graph`), followed to its images by `prompt_run.PromptRun`. One
prompt at a time keeps pending jobs on this side, where they cancel at once and keep their
order; the running prompt is stopped on the server (`/queue` delete + `/interrupt`). Requests are checked with the local engine's checks, and
inpaint crops and pastes back here with the same code, so unmasked pixels stay exact.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sdstudio.engine.backend import (
    LANCZOS,
    Callback,
    Capabilities,
    Feature,
    ListenerError,
    ServerState,
    Upscale,
    deliver,
)
from sdstudio.engine.comfy.client import ComfyClient, ComfyError
from sdstudio.engine.comfy.graphs import (
    EMBEDDINGS,
    KNOWN_NODES,
    LATENT_METHODS,
    PIXEL_METHODS,
    BatchGraph,
    Uploaded,
    batch_graph,
    hires_plan,
    sampler_plan,
    server_checkpoints,
    server_embeddings,
    server_loras,
    server_samplers,
    server_upscalers,
    server_vaes,
    upscale_graph,
    used_embeddings,
)
from sdstudio.engine.comfy.prompt_run import PromptCancelled, PromptRun
from sdstudio.engine.comfy.server_files import ServerFiles
from sdstudio.engine.events import (
    BatchDone,
    Cancelled,
    ErrorKind,
    Event,
    Failed,
    Finished,
    JobKind,
    JobState,
    ModelLoaded,
    Notice,
    Started,
    Step,
    UsedNetwork,
)
from sdstudio.engine.hires import hires_size
from sdstudio.engine.images import (
    InputError,
    PreparedInputs,
    check_request,
    prepare_inputs,
    upscale_input,
)
from sdstudio.engine.job_queue import SerialQueue
from sdstudio.engine.networks import (
    listed_name,
)
from sdstudio.engine.parameters import BY_NAME, MAX_SEED, seeds_for
from sdstudio.engine.params import result_image
from sdstudio.engine.request import Family, GenerationRequest, ImageData, ModelInfo, ModelRef

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)
# The longest `capabilities()` waits for a new server's first answer (seconds).
CAPABILITIES_WAIT = 3.0


@dataclass(eq=False)
class ComfyJob:
    """A handle on one job (`request` None: a model check, the "load" of a server model;
    `order`: an upscale, `request` its source's)."""

    id: int
    request: GenerationRequest | None
    model_ref: ModelRef
    callback: Callback
    state: JobState = JobState.PENDING
    prompt_id: str | None = None  # the server's id of the batch that runs now
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    order: Upscale | None = None

    @property
    def kind(self) -> JobKind:
        return JobKind.of(self.request, self.order)

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    def __repr__(self) -> str:
        return f"<ComfyJob {self.id} {self.kind.value} {self.state.value} prompt={self.prompt_id}>"


class ComfyBackend:
    """Generation on the ComfyUI server at `url` (see module doc). `token` is an optional
    bearer token or "Header: value" for a reverse proxy; `timeout` bounds each HTTP call and
    `idle_timeout` the silence of a running prompt. `websocket_images=False` fetches final
    images by `/history` + `/view` (servers without SaveImageWebsocket do so anyway)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        idle_timeout: float = 600.0,
        websocket_images: bool = True,
    ) -> None:
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._client = ComfyClient(url, token, on_message=self._inbox.put, timeout=timeout)
        self.url = self._client.url
        self._idle_timeout = idle_timeout
        self._websocket_images = websocket_images
        self._files = ServerFiles(self.url, self._server_info)
        self._info_lock = threading.Lock()
        self._object_info: dict[str, Any] | None = None
        self._model_info: ModelInfo | None = None
        self._metadata: dict[str, dict[str, Any]] = {}  # per checkpoint, see _checkpoint_metadata
        self._info_asked = threading.Event()
        threading.Thread(target=self._prefetch, name="sdstudio-comfy-info", daemon=True).start()
        self._jobs: SerialQueue[ComfyJob] = SerialQueue(
            "sdstudio-comfy-jobs", run=self._run, stop=self._stop,
            cancelled=lambda job: self._emit(job, Cancelled()), after=self._client.close,
        )

    # ---- the Backend protocol (any thread) --------------------------------------------

    def submit(self, request: GenerationRequest, callback: Callback) -> ComfyJob:
        return self._enqueue(request, request.model, callback)

    def load_model(self, ref: ModelRef, callback: Callback) -> ComfyJob:
        return self._enqueue(None, ref, callback)

    def upscale(self, order: Upscale, callback: Callback) -> ComfyJob:
        return self._enqueue(order.source, order.source.model, callback, order)

    def cancel(self, job: ComfyJob) -> None:
        self._jobs.cancel(job)

    def cancel_all_pending(self) -> None:
        self._jobs.cancel_all_pending()

    def pending_jobs(self) -> list[ComfyJob]:
        return self._jobs.pending()

    def server_states(self) -> list[ServerState]:
        return [ServerState(self.url, self.connected, self._jobs.running, len(self._jobs.pending()),
                            self._client.queue_remaining)]

    def list_models(self) -> list[ModelRef]:
        """The server's checkpoints ([] when it cannot be reached)."""
        try:
            return [ModelRef(name) for name in server_checkpoints(self._server_info())]
        except ComfyError as exc:
            log.warning("no model list from %s: %s", self.url, exc)
            return []

    def capabilities(self) -> Capabilities:
        """What the server runs, as last fetched. The window asks on its own loop, so this waits
        at most CAPABILITIES_WAIT for the first answer: no samplers are offered until the server
        has answered (a job asks again)."""
        self._info_asked.wait(CAPABILITIES_WAIT)
        info = self._object_info
        return Capabilities(
            name=self.url,
            samplers=tuple(server_samplers(info)) if info else (),
            families=frozenset(Family),
            features=frozenset({Feature.PREVIEWS, Feature.INPAINT, Feature.ONLY_MASKED}),
            upscalers=tuple(server_upscalers(info)) if info else (),
            loras=tuple(server_loras(info)) if info else (),
            embeddings=tuple(server_embeddings(info)) if info else (),
            vaes=tuple(server_vaes(info)) if info else (),
        )

    @property
    def model_info(self) -> ModelInfo | None:
        return self._model_info

    @property
    def connected(self) -> bool:
        return self._client.connected

    def check_connection(self) -> str:
        """A line about the server (its ComfyUI version and device), fetching its models and
        samplers afresh; raises ComfyError when it cannot be used."""
        stats = self._client.system_stats()
        self._server_info(refresh=True)
        system = stats.get("system", {}) if isinstance(stats, dict) else {}
        devices = stats.get("devices", []) if isinstance(stats, dict) else []
        device = devices[0].get("name", "?") if devices and isinstance(devices[0], dict) else "?"
        return f"ComfyUI {system.get('comfyui_version', '?')} on {device}"

    @property
    def busy(self) -> bool:
        """Whether a job runs or waits here (for a dispatcher picking an idle server)."""
        return self._jobs.busy

    def shutdown(self, wait: bool = True) -> None:
        self._jobs.shutdown(wait)
        if wait or not self._jobs.thread.is_alive():
            self._client.close()

    # ---- queue ------------------------------------------------------------------------

    def _enqueue(
        self, request: GenerationRequest | None, ref: ModelRef, callback: Callback, order: Upscale | None = None
    ) -> ComfyJob:
        return self._jobs.add(
            lambda job_id: ComfyJob(job_id, request, ref, callback, order=order),
            f"the connection to {self.url} was shut down",
        )

    def _stop(self, job: ComfyJob) -> None:
        """Ask the running job to stop: at its next step here, and on the server at once."""
        job.cancelled.set()
        if job.prompt_id:
            self._client.stop_prompt(job.prompt_id)

    def _emit(self, job: ComfyJob, event: Event) -> None:
        deliver(job, event, job.callback, job.done)

    # ---- jobs (worker thread) ---------------------------------------------------------

    def _run(self, job: ComfyJob) -> None:
        emit = lambda event: self._emit(job, event)  # noqa: E731
        try:
            if job.cancelled.is_set():
                raise PromptCancelled
            if job.order is not None:
                self._upscale(job, job.order, emit)
                return
            if job.request is None:
                info = self._use_model(job.model_ref)
                self._files.vae(job.model_ref)
                self._model_info = info
                emit(ModelLoaded(info))
                return
            check_request(job.request)
            info = self._use_model(job.model_ref)
            if self._model_info != info:
                self._model_info = info
                emit(ModelLoaded(info))
            self._generate(job, info, emit)
        except PromptCancelled:
            emit(Cancelled())
        except BaseException as exc:  # noqa: BLE001 - every failure, even SystemExit, fails the job only
            emit(self._failure(exc, job))

    def _use_model(self, ref: ModelRef) -> ModelInfo:
        """The server's checkpoint `ref` names (as listed, with or without its extension);
        ComfyError(MODEL_LOAD) naming the server and the model when it has none such."""
        for refresh in (False, True):  # a checkpoint copied in since the last look counts
            names = server_checkpoints(self._server_info(refresh))
            for name in names:
                if ref.source in (name, ModelRef(name).name):
                    return _model_info(name, self.url, self._checkpoint_metadata(name))
        listed = ", ".join(names[:20]) or "none"
        raise ComfyError(
            ErrorKind.MODEL_LOAD, f"The server at {self.url} has no checkpoint {ref.source!r}. It has: {listed}."
        )

    def _checkpoint_metadata(self, name: str) -> dict[str, Any]:
        """The checkpoint's safetensors metadata ({} when it has none or is no .safetensors), once
        per checkpoint: the only place ComfyUI 0.3.x tells a model's family without loading it."""
        if name not in self._metadata:
            try:
                self._metadata[name] = self._client.checkpoint_metadata(name)
            except ComfyError as exc:
                log.info("no metadata for %s from %s: %s", name, self.url, exc)
                return {}
        return self._metadata[name]

    def _prefetch(self) -> None:
        try:
            self._server_info()
        except ComfyError as exc:
            log.info("no answer from %s yet: %s", self.url, exc)
        finally:
            self._info_asked.set()

    def _server_info(self, refresh: bool = False) -> dict[str, Any]:
        with self._info_lock:
            if self._object_info is None or refresh:
                info: dict[str, Any] = {node: self._client.object_info(node) for node in KNOWN_NODES}
                info[EMBEDDINGS] = self._client.embeddings()
                self._object_info = info
            return self._object_info

    def _generate(self, job: ComfyJob, info: ModelInfo, emit: Callback) -> None:
        assert job.request is not None
        missing = {name: info.model_default(name) for name, value in job.request.fields().items() if value is None}
        request = job.request.replace(**missing)
        samplers = server_samplers(self._server_info())
        if request.sampling.sampler not in samplers:
            raise InputError(f"Unknown sampler {request.sampling.sampler!r} on {self.url}. Known samplers: {', '.join(samplers)}.")
        steps, _ = sampler_plan(request)
        if steps < 1:
            raise InputError(
                f"Denoising strength {request.sampling.strength} with {request.sampling.steps} steps leaves no step "
                "to run: raise the strength or the steps."
            )
        upscale = hires_size(request)
        hires_model = None
        if upscale is not None:
            if max(upscale) > int(BY_NAME["width"].maximum or 0):
                raise InputError(f"Hires fix to {upscale[0]}x{upscale[1]} is too large: lower the hires upscale or the size.")
            if request.hires.hires_upscaler not in LATENT_METHODS | PIXEL_METHODS:
                hires_model = self._files.upscaler(request.hires.hires_upscaler, (*LATENT_METHODS, *PIXEL_METHODS))
            hires_steps = hires_plan(request)[0]
            if hires_steps < 1:
                raise InputError(
                    f"Hires denoise {request.hires.hires_denoise} with {request.hires.hires_steps or steps} steps "
                    "leaves no step to run: raise either."
                )
            steps += hires_steps
        loras, skipped = self._files.loras(request)
        vae = self._files.vae(request.model)
        embeddings = server_embeddings(self._server_info())
        prompt = request.prompt
        networks = (
            *(UsedNetwork("lora", listed_name(lora.name), "", lora.model_strength) for lora in loras),
            *(UsedNetwork("embedding", name, "") for name in used_embeddings((prompt.prompt, prompt.negative_prompt), embeddings)),
            *((UsedNetwork("vae", listed_name(vae), ""),) if vae else ()),
        )
        prepared = prepare_inputs(request)
        request = request.replace(width=prepared.width, height=prepared.height)
        extent = request.extent
        first = request.sampling.seed if request.sampling.seed >= 0 else random.randint(0, MAX_SEED)
        seeds = seeds_for(first, extent.batch_size * extent.batch_count)
        uploaded = self._upload(prepared)
        total = steps * len(seeds)
        emit(Started(total=total))
        for message in (*prepared.notices, *skipped):
            emit(Notice(message))
        websocket_images = self._websocket_images and bool(self._server_info().get("SaveImageWebsocket"))
        results: list = []
        for start in range(0, len(seeds), extent.batch_size):
            batch_seeds = seeds[start : start + extent.batch_size]
            graph = batch_graph(
                request, info.source, batch_seeds, (prepared.width, prepared.height), uploaded, websocket_images, upscale,
                loras, embeddings, vae, hires_model,
            )
            images = self._prompt_run(job, graph, emit, total, start * steps).run()
            batch = []
            for image, seed in zip(images, batch_seeds, strict=True):
                image = image.convert("RGB")
                if prepared.paste_back is not None:
                    image = prepared.paste_back.apply(image)
                batch.append(result_image(image, request.replace(seed=seed), info, networks))
            emit(BatchDone(tuple(batch)))
            results += batch
        emit(Finished(tuple(results)))

    def _upscale(self, job: ComfyJob, order: Upscale, emit: Callback) -> None:
        """The picture enlarged on the server by one of its upscaler models (`models/upscale_models`)
        or Lanczos; a model the server lacks, even after a fresh look, is refused naming its own."""
        image = upscale_input(order)
        model = self._files.upscaler(order.upscaler, (LANCZOS,)) if order.upscaler != LANCZOS else None
        websocket_images = self._websocket_images and bool(self._server_info().get("SaveImageWebsocket"))
        graph = upscale_graph(self._put(image), order.size(*image.size), model, websocket_images)
        emit(Started(total=1))
        run = self._prompt_run(job, graph, emit, 1, 0)
        result = run.run()[0].convert("RGB")
        if run.step < 1:  # Lanczos, or a model the server ran from its cache: no progress came
            emit(Step(1, 1))
        emit(Finished((order.result(result),)))

    def _prompt_run(self, job: ComfyJob, graph: BatchGraph, emit: Callback, total: int, step_base: int) -> PromptRun:
        return PromptRun(self._client, self._inbox, job, graph, emit, total, step_base,
                         websocket_images=self._websocket_images, idle_timeout=self._idle_timeout)

    def _put(self, image: Image | None) -> str | None:
        """Upload a picture to the server's input folder; its name there."""
        if image is None:
            return None
        data = ImageData.from_pil(image)
        # Named by content: a repeated job re-uses the file, and ComfyUI its cached encode.
        return self._client.upload_image(data.data, f"sdstudio-{data.sha256[:24]}.png")

    def _upload(self, prepared: PreparedInputs) -> Uploaded:
        return Uploaded(self._put(prepared.init_image), self._put(prepared.mask))

    def _failure(self, exc: BaseException, job: ComfyJob) -> Failed:
        details = "".join(traceback.format_exception(exc))
        if isinstance(exc, InputError):
            return Failed(ErrorKind.BAD_INPUT, str(exc), details)
        if isinstance(exc, ComfyError):
            return Failed(exc.kind, str(exc), exc.details or details)
        if isinstance(exc, ListenerError):
            return Failed(ErrorKind.INTERNAL, str(exc), details)
        log.error("job %s on %s failed:\n%s", job.id, self.url, details)
        return Failed(ErrorKind.INTERNAL, f"Generation on {self.url} failed: {type(exc).__name__}: {exc}", details)


# SAI's model spec (`modelspec.architecture`, written by SAI's releases, kohya's and A1111's
# tools) -> family and native side; the longest matching prefix wins.
ARCHITECTURES = {
    "stable-diffusion-v1": (Family.SD1, 512),
    "stable-diffusion-v2-512": (Family.SD2, 512),
    "stable-diffusion-v2-768": (Family.SD2, 768),
    "stable-diffusion-xl": (Family.SDXL, 1024),
}


def _model_info(checkpoint: str, url: str, metadata: dict[str, Any]) -> ModelInfo:
    """What is known of a server checkpoint without loading it. ComfyUI 0.3.x names no model
    family in /object_info or /models (it detects the family from the weights when it loads
    them, and reports nothing back), so the family comes from the file's model-spec header when
    it has one, else is guessed from the name: "xl" in it means SDXL, anything else SD1. The
    family only sets the default size here; a wrong guess is corrected by setting the size."""
    name = ModelRef(checkpoint).name
    architecture = str(metadata.get("modelspec.architecture", "")).lower()
    known = [prefix for prefix in ARCHITECTURES if architecture.startswith(prefix)]
    if known:
        family, side = ARCHITECTURES[max(known, key=len)]
    else:
        family, side = (Family.SDXL, 1024) if "xl" in name.lower() else (Family.SD1, 512)
    return ModelInfo(
        name=name, family=family, inpaint_unet=False, device=url, dtype="server", source=checkpoint,
        native_size=side, default_cfg=7.0,
    )

