"""Finished jobs made without an engine, for tests of what consumes them (window, history)."""

from __future__ import annotations

from collections.abc import Sequence

from PIL.Image import Image

from sdstudio.engine.events import Finished, ResultImage, UsedNetwork
from sdstudio.engine.params import result_image
from sdstudio.engine.request import Family, GenerationRequest, ModelInfo

MODEL = ModelInfo("tiny", Family.SD1, False, "cpu", "float32", "/models/tiny")


def result(image: Image, request: GenerationRequest, seed: int, model: ModelInfo | None = MODEL,
           networks: tuple[UsedNetwork, ...] = ()) -> ResultImage:
    """`image` as the engine would hand it out for `request` made with `seed`."""
    return result_image(image, request.replace(seed=seed), model, networks)


def finished(
    request: GenerationRequest, images: Sequence[Image], seeds: Sequence[int], model: ModelInfo | None = MODEL,
    networks: tuple[UsedNetwork, ...] = (),
) -> Finished:
    return Finished(tuple(result(image, request, seed, model, networks) for image, seed in zip(images, seeds, strict=True)))
