"""The files a ComfyUI server lists by name (LoRAs, VAEs, upscaler models), found as a prompt
or a setting names them (`networks.find_listed`). A name not listed is looked for once more in
a fresh list, since a file copied in since the last look counts; then it is refused naming the
server and what it has."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdstudio.engine.comfy.graphs import Lora, server_loras, server_upscalers, server_vaes
from sdstudio.engine.images import InputError
from sdstudio.engine.networks import (
    NetworkKind,
    find_listed,
    listed_name,
    not_found_message,
    request_tags,
)
from sdstudio.engine.request import GenerationRequest, ModelRef

# (refresh) -> the server's node lists and embeddings (`ComfyBackend._server_info`).
ServerInfo = Callable[[bool], dict[str, Any]]


class ServerFiles:
    def __init__(self, url: str, server_info: ServerInfo) -> None:
        self.url = url
        self._server_info = server_info

    def loras(self, request: GenerationRequest) -> tuple[list[Lora], list[str]]:
        """The server's LoRA files the prompts' `<lora:name:weight>` tags name (both prompts, as
        A1111 and the local engine read them), and a notice per other tag (hypernetworks and the
        like run nowhere here). A name the server lacks, even after a fresh look, fails the job
        naming the server and close matches."""
        tags = request_tags(request)
        loras = []
        for tag in (t for t in tags if t.kind == "lora"):
            found, names = self._listed(server_loras, tag.name)
            if found is None:
                known = [listed_name(n) for n in names]
                raise InputError(not_found_message(NetworkKind.LORA, tag.name, known, f"the server at {self.url}"))
            loras.append(Lora(found, model_strength=tag.unet_weight, clip_strength=tag.weight))
        skipped = [f"{t.text}: {t.kind} tags do nothing on a ComfyUI server; it was left out." for t in tags if t.kind != "lora"]
        return loras, skipped

    def vae(self, ref: ModelRef) -> str | None:
        """The server's VAE file `ref.vae` names (None: the checkpoint's own); one the server
        lacks, even after a fresh look, fails naming the server and close matches."""
        if not ref.vae:
            return None
        found, names = self._listed(server_vaes, ref.vae)
        if found is None:
            known = [listed_name(n) for n in names]
            raise InputError(not_found_message(NetworkKind.VAE, ref.vae, known, f"the server at {self.url}"))
        return found

    def upscaler(self, name: str, methods: tuple[str, ...]) -> str:
        """The server's upscaler model `name` names; one it lacks, even after a fresh look, is
        refused naming the server's own and the built-in `methods`."""
        found, names = self._listed(server_upscalers, name)
        if found is None:
            raise InputError(
                f"The server at {self.url} has no upscaler model {name!r} (it has: {', '.join(names) or 'none'}); "
                f"use one of its models or {', '.join(methods)}."
            )
        return found

    def _listed(self, listing: Callable[[dict[str, Any]], list[str]], wanted: str) -> tuple[str | None, list[str]]:
        """(the name of the server's list `wanted` means or None, that list), looking once more
        at a fresh list when it is not there: a file copied in since the last look counts."""
        for refresh in (False, True):
            names = listing(self._server_info(refresh))
            found = find_listed(names, wanted)
            if found is not None:
                break
        return found, names

