"""What a backend tells the caller about a job: a stream of events, one terminal event last.

    load job:        ModelLoading* → ModelLoaded | Failed | Cancelled
    generation job:  [ModelLoading* ModelLoaded] Started Notice* (Step* BatchDone)* → Finished
                     | Failed | Cancelled
    upscale job:     Started Step* → Finished (one image) | Failed | Cancelled

Only frozen dataclasses live here, and nothing heavy is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from sdstudio.engine.request import GenerationRequest, ModelInfo

if TYPE_CHECKING:
    from PIL.Image import Image


class JobKind(StrEnum):
    GENERATE = "generate"
    LOAD_MODEL = "load_model"
    UPSCALE = "upscale"  # an existing picture enlarged (`Backend.upscale`)

    @classmethod
    def of(cls, request: object | None, order: object | None) -> JobKind:
        """A job's kind from what every backend's job holds: an upscale order (its `request` is
        the source's), else a request to generate, else neither: a model load."""
        return cls.UPSCALE if order else cls.LOAD_MODEL if request is None else cls.GENERATE


class JobState(StrEnum):
    """Where a job is; the last three are its outcome."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ErrorKind(StrEnum):
    BAD_INPUT = "bad_input"
    MODEL_LOAD = "model_load"
    OUT_OF_MEMORY = "out_of_memory"
    BAD_OUTPUT = "bad_output"  # NaN or all-black images, e.g. fp16 VAE overflow
    DISK = "disk"
    CONNECTION = "connection"  # a remote backend could not be reached or was lost
    INTERNAL = "internal"


@dataclass(frozen=True)
class ModelLoading:
    """A model is being loaded; `progress` is 0..1 or None when unknown."""

    message: str
    progress: float | None = None


@dataclass(frozen=True)
class ModelLoaded:
    info: ModelInfo


@dataclass(frozen=True)
class Started:
    """The job left the queue and runs now; `total` is the number of Step events to expect."""

    total: int


@dataclass(frozen=True, eq=False)
class Step:
    """One denoising step done. `index` counts from 1 to `total` over the whole job."""

    index: int
    total: int
    preview: Image | None = None


@dataclass(frozen=True)
class Notice:
    """Something the person should know that is not an error (e.g. a size was snapped to 8)."""

    message: str


@dataclass(frozen=True)
class UsedNetwork:
    """An add-on file a result used: `kind` a networks.NetworkKind value ("lora", "embedding",
    "vae"), `name` as A1111's text names it, `hash` A1111's short hash, `weight` (LoRAs)."""

    kind: str
    name: str
    hash: str
    weight: float = 1.0


@dataclass(frozen=True, eq=False)
class ResultImage:
    """One image and what made it: the request actually used for this image alone (snapped
    size, the model's defaults filled in, this image's own seed, the caller's lineage in
    `request.inputs.source`), the model, its A1111 "parameters" text, and the add-on files
    (LoRAs, embeddings, a VAE) it used."""

    image: Image
    request: GenerationRequest
    model: ModelInfo | None
    infotext: str
    networks: tuple[UsedNetwork, ...] = ()

    @property
    def seed(self) -> int:
        return self.request.sampling.seed


@dataclass(frozen=True, eq=False)
class BatchDone:
    """One batch is decoded: its images, before the job's other batches (e.g. to save them)."""

    results: tuple[ResultImage, ...]


@dataclass(frozen=True, eq=False)
class Finished:
    """The job's images in order, each with what made it."""

    results: tuple[ResultImage, ...]

    @property
    def images(self) -> tuple[Image, ...]:
        return tuple(r.image for r in self.results)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(r.seed for r in self.results)


@dataclass(frozen=True)
class Failed:
    """The job failed. `error` is an ErrorKind, `message` is for a person, `details` is the
    technical detail (traceback) for a "details" button."""

    error: ErrorKind
    message: str
    details: str = ""


@dataclass(frozen=True)
class Cancelled:
    """The job was cancelled, before it started or at a step boundary."""


Event = ModelLoading | ModelLoaded | Started | Step | Notice | BatchDone | Finished | Failed | Cancelled
TERMINAL_EVENTS = (Finished, Failed, Cancelled)
OUTCOMES = {Finished: JobState.DONE, Failed: JobState.FAILED, Cancelled: JobState.CANCELLED}


def is_last_event(event: Event, kind: JobKind) -> bool:
    """Whether `event` ends its job: Finished / Failed / Cancelled, and for a model-load job
    also ModelLoaded (a generation job goes on to generate after it)."""
    return isinstance(event, TERMINAL_EVENTS) or (kind is JobKind.LOAD_MODEL and isinstance(event, ModelLoaded))
