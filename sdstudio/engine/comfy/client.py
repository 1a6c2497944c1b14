"""Transport to one ComfyUI server: its HTTP API and its websocket, on a private asyncio loop.

`ComfyClient` owns a thread running an asyncio loop with one aiohttp session, so callers on
any thread (the Qt loop, a backend's worker) never block on the network while holding
their own loop; the blocking methods here are for worker threads. The websocket stays
connected and reconnects by itself; each JSON message, binary frame and connection change
goes to `on_message` (called on the client's loop thread: hand it on, never block there).

Every failure is a `ComfyError` whose text a person understands and whose `kind` is the
`ErrorKind` a backend reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import struct
import threading
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from sdstudio.engine.events import ErrorKind

log = logging.getLogger(__name__)
T = TypeVar("T")

# Websocket binary frames: a 4-byte big-endian event type; for PREVIEW_IMAGE a 4-byte image
# format follows (1 JPEG: live previews, 2 PNG: SaveImageWebsocket's final images).
PREVIEW_IMAGE = 1
PNG = 2
_RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


class ComfyError(Exception):
    """A server request failed; str(e) is a sentence for a person."""

    def __init__(self, kind: ErrorKind, message: str, details: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.details = details


@dataclass(frozen=True)
class Message:
    """A JSON websocket message: `type` ("progress", "executing", …) and its `data`."""

    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class BinaryFrame:
    event: int
    image_format: int
    data: bytes


@dataclass(frozen=True)
class ConnectionChange:
    """The websocket connected (`connected`) or was lost (`reason`)."""

    connected: bool
    reason: str = ""


Incoming = Message | BinaryFrame | ConnectionChange


def normalized_url(url: str) -> str:
    """`url` as http(s)://host[:port][/path] without a trailing slash; a bare host gets http."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not a server address; use http://host:port or https://host.")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def normalized_urls(text: str) -> list[str]:
    """Several server addresses separated by commas or spaces, each `normalized_url`."""
    return [normalized_url(url) for url in re.split(r"[,\s]+", text.strip()) if url]


def auth_headers(token: str | None) -> dict[str, str]:
    """The header a reverse proxy wants: a bare token is sent as a Bearer token; a
    "Name: value" line is sent as that header."""
    if not token:
        return {}
    name, sep, value = token.partition(":")
    if sep and " " not in name.strip():
        return {name.strip(): value.strip()}
    return {"Authorization": f"Bearer {token.strip()}"}


class ComfyClient:
    """HTTP + websocket to the ComfyUI server at `url` (see module doc)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        on_message: Callable[[Incoming], None] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = normalized_url(url)
        self.client_id = uuid.uuid4().hex
        self.timeout = timeout
        self._headers = auth_headers(token)
        self._on_message = on_message or (lambda _: None)
        self._connected = threading.Event()
        # Prompts in the server's queue (every client's), from its last `status` message.
        self.queue_remaining: int | None = None
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sdstudio-comfy", daemon=True)
        self._thread.start()
        self._session: aiohttp.ClientSession = self._run(self._open_session())
        self._ws_task = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)

    # ---- lifetime -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ws_task.cancel()
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._session.close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    # ---- the HTTP API (blocking; call from a worker thread) ---------------------------

    def system_stats(self) -> dict[str, Any]:
        return self._run(self._request("GET", "/system_stats"))

    def object_info(self, node: str) -> dict[str, Any]:
        """The server's description of node class `node` ({} when it lacks the node)."""
        return self._run(self._request("GET", f"/object_info/{node}")).get(node, {})

    def embeddings(self) -> list[str]:
        """The server's embedding names (file names without extension, as prompts use them)."""
        answer = self._run(self._request("GET", "/embeddings"))
        return [name for name in answer if isinstance(name, str)] if isinstance(answer, list) else []

    def checkpoint_metadata(self, name: str) -> dict[str, Any]:
        """The `__metadata__` of the checkpoint's safetensors header; {} when it has none (the
        server answers 404 for that, and for a file that is no .safetensors)."""
        answer = self._run(self._request("GET", "/view_metadata/checkpoints", params={"filename": name}, missing={}))
        return answer if isinstance(answer, dict) else {}

    def upload_image(self, data: bytes, name: str) -> str:
        """Put a PNG into the server's input folder; returns the name to load it by."""
        form = aiohttp.FormData()
        form.add_field("image", data, filename=name, content_type="image/png")
        form.add_field("type", "input")
        form.add_field("overwrite", "true")
        answer = self._run(self._request("POST", "/upload/image", data=form))
        subfolder = answer.get("subfolder") or ""
        return f"{subfolder}/{answer['name']}" if subfolder else str(answer["name"])

    def queue_prompt(self, graph: dict[str, Any]) -> str:
        """Queue a graph for this client's websocket; returns its prompt id. A graph the
        server refuses raises ComfyError(BAD_INPUT) naming the node and the problem."""
        answer = self._run(self._request("POST", "/prompt", json={"prompt": graph, "client_id": self.client_id}))
        return str(answer["prompt_id"])

    def history(self, prompt_id: str) -> dict[str, Any]:
        return self._run(self._request("GET", f"/history/{prompt_id}")).get(prompt_id, {})

    def view(self, filename: str, subfolder: str, kind: str) -> bytes:
        params = {"filename": filename, "subfolder": subfolder, "type": kind}
        return self._run(self._request("GET", "/view", params=params, read=True))

    def queue(self) -> tuple[list[str], list[str]]:
        """(running, pending) prompt ids."""
        answer = self._run(self._request("GET", "/queue"))
        ids = lambda items: [str(item[1]) for item in items]  # noqa: E731
        return ids(answer.get("queue_running", [])), ids(answer.get("queue_pending", []))

    def stop_prompt(self, prompt_id: str) -> None:
        """Drop `prompt_id` from the server's queue and stop it if it runs (at its next step).
        Does not wait: a cancel from a job's listener must not stall its events."""
        async def stop() -> None:
            for path, body in (("/queue", {"delete": [prompt_id]}), ("/interrupt", {"prompt_id": prompt_id})):
                try:
                    await self._request("POST", path, json=body)
                except ComfyError as exc:
                    log.warning("could not stop prompt %s: %s", prompt_id, exc)

        if not self._closed:
            asyncio.run_coroutine_threadsafe(stop(), self._loop)

    # ---- internals (the loop thread) -------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._closed:
            coro.close()
            raise ComfyError(ErrorKind.CONNECTION, f"The connection to {self.url} is closed.")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _open_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(headers=self._headers, timeout=aiohttp.ClientTimeout(total=self.timeout))

    async def _request(self, method: str, path: str, read: bool = False, missing: Any = None, **kwargs: Any) -> Any:
        """The answer to `path` (JSON, or bytes with `read`); `missing` when given is the answer
        to a 404, which is otherwise an error."""
        try:
            async with self._session.request(method, self.url + path, **kwargs) as response:
                if response.status == 404 and missing is not None:
                    return missing
                if response.status == 400 and path == "/prompt":
                    raise _refused(await response.json(content_type=None))
                if response.status in (401, 403):
                    raise ComfyError(
                        ErrorKind.CONNECTION,
                        f"The server at {self.url} refused access (HTTP {response.status}): check the token.",
                    )
                if response.status >= 400:
                    text = (await response.text())[:500]
                    raise ComfyError(
                        ErrorKind.INTERNAL, f"The server at {self.url} answered {path} with HTTP {response.status}.", text
                    )
                if read:
                    return await response.read()
                text = await response.text()
                return json.loads(text) if text.strip() else {}
        except aiohttp.ClientConnectorError as exc:
            raise ComfyError(
                ErrorKind.CONNECTION,
                f"Cannot reach the server at {self.url}: is ComfyUI running there? ({exc.os_error or exc})",
            ) from exc
        except TimeoutError as exc:
            raise ComfyError(
                ErrorKind.CONNECTION, f"The server at {self.url} did not answer within {self.timeout:g} s."
            ) from exc
        except (aiohttp.ClientError, json.JSONDecodeError) as exc:
            raise ComfyError(ErrorKind.CONNECTION, f"The connection to {self.url} failed: {exc}") from exc

    async def _listen(self) -> None:
        """Keep the websocket open; reconnect after a loss, with growing pauses."""
        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        failures = 0
        while True:
            try:
                async with self._session.ws_connect(ws_url, heartbeat=20, max_msg_size=0) as ws:
                    failures = 0
                    self._connected.set()
                    self._deliver(ConnectionChange(True))
                    async for frame in ws:
                        self._frame(frame)
                reason = "the server closed the connection"
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
            self.queue_remaining = None
            if self._connected.is_set():
                self._connected.clear()
                self._deliver(ConnectionChange(False, reason))
            await asyncio.sleep(_RECONNECT_DELAYS[min(failures, len(_RECONNECT_DELAYS) - 1)])
            failures += 1

    def _frame(self, frame: aiohttp.WSMessage) -> None:
        if frame.type is aiohttp.WSMsgType.TEXT:
            try:
                message = Message(str((raw := json.loads(frame.data))["type"]), dict(raw.get("data") or {}))
                if message.type == "status":
                    self.queue_remaining = int(message.data["status"]["exec_info"]["queue_remaining"])
                self._deliver(message)
            except (ValueError, KeyError, TypeError):
                log.warning("unreadable websocket message from %s: %.200s", self.url, frame.data)
        elif frame.type is aiohttp.WSMsgType.BINARY and len(frame.data) >= 8:
            event, image_format = struct.unpack(">II", frame.data[:8])
            self._deliver(BinaryFrame(event, image_format, bytes(frame.data[8:])))

    def _deliver(self, item: Incoming) -> None:
        try:
            self._on_message(item)
        except Exception:  # noqa: BLE001 - a broken consumer must not end the listener
            log.exception("websocket consumer of %s failed", self.url)


def _refused(answer: Any) -> ComfyError:
    """The ComfyError for a graph the server refused (HTTP 400 with `node_errors`)."""
    error = answer.get("error", {}) if isinstance(answer, dict) else {}
    problems = []
    for node in (answer.get("node_errors") or {}).values() if isinstance(answer, dict) else ():
        for item in node.get("errors", []):
            problems.append(f"{node.get('class_type', 'a node')}: {item.get('message', '')} ({item.get('details', '')})")
    summary = "; ".join(problems) or f"{error.get('message', 'invalid prompt')} {error.get('details', '')}".strip()
    return ComfyError(ErrorKind.BAD_INPUT, f"The server refused the job: {summary}", json.dumps(answer)[:4000])
