"""The one interface the window and the CLI use to make images: a `Backend`.

A backend takes `GenerationRequest`s and model loads as jobs, runs them in submission order,
and reports each job's progress to the job's callback as `events.py` events, ending with
exactly one terminal event. The local diffusers engine (`runner.Engine`, made by
`local_backend()`) is the first implementation; a remote one must pass the same contract
suite (`tests/contract/`).

Callbacks may be called from any thread (the local engine calls them from its worker);
callers hop to their own loop. The UI and the CLI import this module, `request.py`,
`events.py` and `parameters.py` only, never the engine's internals (checked by lint-imports).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from sdstudio.engine.events import OUTCOMES, Event, JobKind, JobState, ResultImage, is_last_event
from sdstudio.engine.parameters import BY_NAME
from sdstudio.engine.params import postprocess_text
from sdstudio.engine.request import Family, GenerationRequest, ImageData, ModelInfo, ModelRef

if TYPE_CHECKING:
    from PIL.Image import Image

    from sdstudio.engine.networks import NetworkFolders

Callback = Callable[[Event], None]
log = logging.getLogger(__name__)


class Feature(StrEnum):
    PREVIEWS = "previews"  # Step events carry a preview image
    INPAINT = "inpaint"
    ONLY_MASKED = "only_masked"  # "inpaint only the masked area" with exact paste-back
    LOCAL_FILES = "local_files"  # models open from paths on this machine


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, for the window's menus and the CLI's checks."""

    name: str  # for a person: "this computer", or a server's address
    samplers: tuple[str, ...]
    families: frozenset[Family]
    features: frozenset[Feature]
    min_side: int = int(BY_NAME["width"].minimum or 64)
    max_side: int = int(BY_NAME["width"].maximum or 4096)
    max_batch_size: int = int(BY_NAME["batch_size"].maximum or 1)
    # Installed upscaler models: besides the built-in methods, what `hires_upscaler` may name.
    upscalers: tuple[str, ...] = ()
    # LoRA files a prompt's `<lora:name:weight>` tags may name (as the backend lists them).
    loras: tuple[str, ...] = ()
    # Embeddings a prompt may name by their bare names (textual inversion, as A1111 reads them).
    embeddings: tuple[str, ...] = ()
    # VAE files a model may decode with instead of its own (`ModelRef.vae`).
    vaes: tuple[str, ...] = ()


# The upscaler every backend has; the others are model files (`Capabilities.upscalers`).
LANCZOS = "Lanczos"
UPSCALE_FACTORS = (2.0, 4.0)  # what the window offers
MAX_UPSCALE = 8.0


@dataclass(frozen=True)
class Upscale:
    """An upscale job: `image` (encoded) enlarged `scale` times by `upscaler` (LANCZOS or a model
    file name). `source` is the request that made the picture, its lineage (`inputs.source`) set
    to the picture itself, and `infotext` its A1111 text: the result carries both, the text with
    A1111's `Postprocess upscale by` / `Postprocess upscaler` added."""

    image: ImageData
    scale: float
    upscaler: str
    source: GenerationRequest
    infotext: str = ""

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The result's size for a picture of `width` x `height`."""
        return round(width * self.scale), round(height * self.scale)

    def result(self, image: Image, model: ModelInfo | None = None) -> ResultImage:
        return ResultImage(image, self.source, model, postprocess_text(self.infotext, self.scale, self.upscaler))


@dataclass(frozen=True)
class ServerState:
    """One machine a backend generates on, as the queue view shows it."""

    name: str  # for a person: "this computer", or a server's address
    connected: bool
    running: JobHandle | None = None  # the job it works on now; None: idle
    waiting: int = 0  # this app's jobs queued for this machine alone
    # Prompts in the server's own queue, the running one and other clients' included (None: unknown).
    server_queue: int | None = None


class JobHandle(Protocol):
    """A submitted job. `request` is None for a model load (`kind` says which)."""

    id: int
    kind: JobKind
    request: GenerationRequest | None
    model_ref: ModelRef
    state: JobState

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job's last event was delivered; False on timeout."""
        ...


class Backend(Protocol):
    def submit(self, request: GenerationRequest, callback: Callback) -> JobHandle:
        """Queue a generation; raises RuntimeError when the backend can take no more jobs."""
        ...

    def load_model(self, ref: ModelRef, callback: Callback) -> JobHandle:
        """Queue a model load; later generations for `ref` use it."""
        ...

    def upscale(self, order: Upscale, callback: Callback) -> JobHandle:
        """Queue an upscale (kind UPSCALE, `request` = `order.source`), in line with the
        generations: Started, a Step per tile, Finished with one ResultImage (`order.result`)."""
        ...

    def cancel(self, job: JobHandle) -> None:
        """A pending job leaves the queue (Cancelled at once, from the caller's thread); the
        running one stops at its next step. Ended jobs are left alone."""
        ...

    def cancel_all_pending(self) -> None: ...

    def pending_jobs(self) -> list[JobHandle]: ...

    def server_states(self) -> list[ServerState]:
        """Each machine the jobs run on and what it does now; answers at once (no network)."""
        ...

    def list_models(self) -> list[ModelRef]:
        """Models this backend offers without a path from the person (e.g. the built-in one)."""
        ...

    def capabilities(self) -> Capabilities: ...

    @property
    def model_info(self) -> ModelInfo | None:
        """The loaded model, or None before the first successful load."""
        ...

    def shutdown(self, wait: bool = True) -> None:
        """Cancel pending jobs, stop the running one and release the backend."""
        ...


def local_backend(device: str | None = None, dtype: str | None = None, folders: NetworkFolders | None = None) -> Backend:
    """The diffusers engine on this machine; `folders` (default: NetworkFolders.default()) hold
    its LoRAs, embeddings, VAEs and upscaler models. Starts its worker thread, imports no torch yet."""
    from sdstudio.engine.runner import Engine

    return Engine(device=device, dtype=dtype, folders=folders)


def builtin_model_available() -> bool:
    """Whether the built-in model's files are installed."""
    from sdstudio.engine.models import builtin_model_path

    return (builtin_model_path() / "model_index.json").is_file()


class ListenerError(Exception):
    """A job's event callback raised: the job fails, the backend goes on."""


def deliver(job: JobHandle, event: Event, callback: Callback, done: threading.Event) -> None:
    """Give `event` to a job's `callback`, the one way every backend does it: the final event
    sets the job's state and `done`; a callback that raises anything (even SystemExit) on an
    earlier event fails its job through ListenerError, on the final one it is only logged.
    Nothing reaches a job after its final event."""
    if done.is_set():
        return
    last = is_last_event(event, job.kind)
    if last:
        job.state = OUTCOMES.get(type(event), JobState.DONE)
    try:
        callback(event)
    except BaseException as exc:  # noqa: BLE001 - a broken listener must not end the backend
        log.error("event callback of job %s raised on %s", job.id, type(event).__name__, exc_info=exc)
        if not last:
            raise ListenerError(f"The job's listener failed on {type(event).__name__}: {exc!r}") from exc
    finally:
        if last:
            done.set()
