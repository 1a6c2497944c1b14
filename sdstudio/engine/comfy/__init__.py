"""A Backend on remote ComfyUI servers: `client` (transport), `graphs` (requests as ComfyUI
graphs), `backend` (`ComfyBackend`, the Backend contract over them).

Importing this package imports no network library; `comfy_backend()` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sdstudio.engine.comfy.backend import ComfyBackend
    from sdstudio.engine.comfy.routing import MultiBackend


def comfy_backend(url: str, token: str | None = None) -> ComfyBackend | MultiBackend:
    """A backend generating on the ComfyUI server at `url` (http(s)://host:port), or on
    several, their addresses separated by commas, each job going to an idle one. Raises
    ValueError for an address that is no server URL; connects in the background."""
    from sdstudio.engine.comfy.backend import ComfyBackend
    from sdstudio.engine.comfy.client import normalized_urls
    from sdstudio.engine.comfy.routing import MultiBackend

    urls = normalized_urls(url)
    if not urls:
        raise ValueError("No server address was given.")
    if len(urls) == 1:
        return ComfyBackend(urls[0], token)
    return MultiBackend([ComfyBackend(u, token) for u in urls])


def connect(url: str, token: str | None = None) -> ComfyBackend | MultiBackend:
    """`comfy_backend`, once the server has answered. Raises ConnectionError with a sentence
    for a person when the address is wrong or the server cannot be reached."""
    from sdstudio.engine.comfy.client import ComfyError

    try:
        backend = comfy_backend(url, token)
    except ValueError as exc:
        raise ConnectionError(str(exc)) from exc
    try:
        backend.check_connection()
    except ComfyError as exc:
        backend.shutdown()
        raise ConnectionError(str(exc)) from exc
    return backend


def probe(url: str, token: str | None = None) -> str:
    """A line about the server at `url` (version, device, checkpoints), for a connection test.
    Raises ConnectionError with a sentence for a person."""
    from sdstudio.engine.comfy.client import ComfyError

    backend = connect(url, token)
    try:
        line = backend.check_connection()
        count = len(backend.list_models())
    except ComfyError as exc:
        raise ConnectionError(str(exc)) from exc
    finally:
        backend.shutdown()
    return f"{line}, {count} checkpoint{'s' if count != 1 else ''}."
