"""Real ComfyUI 0.3.64 servers for tests: installed once into a cache folder with
`../shared/comfyui/install.sh`, given the reduced random-weight SD1.5 checkpoint, started on
free loopback ports and stopped by PID.

`shared_server()` is one server for the whole test process (stopped at exit), and
`shared_server(1)` a second one for the tests of several servers and of a server lost. Outside CI a machine that cannot install
ComfyUI skips these tests; with CI=true they fail instead.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "comfyui"
CACHE = Path(os.environ.get("SDSTUDIO_COMFYUI_CACHE", Path.home() / ".cache" / "sdstudio-test" / "comfyui"))
CHECKPOINT = "sd15-reduced.safetensors"
START_TIMEOUT = 180.0


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    started_in: float  # seconds from launch to /system_stats answering

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def kill(self) -> None:
        """Die at once, as a crashed or unplugged server does."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"ComfyUI test server unavailable in CI: {reason}")
    pytest.skip(f"ComfyUI test server unavailable: {reason}")


def install() -> Path:
    """The ComfyUI folder in the cache, installed and given the test checkpoint (idempotent)."""
    if not (SHARED / "install.sh").is_file():
        _unavailable(f"{SHARED} is missing")
    if not (CACHE / ".installed").is_file():
        done = subprocess.run(["bash", str(SHARED / "install.sh"), str(CACHE)], capture_output=True, text=True)
        if done.returncode != 0:
            _unavailable(f"install.sh failed: {done.stderr[-2000:]}")
    checkpoint = CACHE / "ComfyUI" / "models" / "checkpoints" / CHECKPOINT
    if not checkpoint.is_file():
        partial = checkpoint.with_suffix(".partial")
        command = [sys.executable, str(SHARED / "make_sd15_checkpoint.py"), str(partial), "--preset", "reduced",
                   "--converter", str(REPO / "tools" / "ldm_checkpoint.py")]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            _unavailable(f"the checkpoint could not be built: {done.stderr[-2000:]}")
        partial.rename(checkpoint)  # only a complete file carries the final name
    return CACHE / "ComfyUI"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int | None = None, cpu: int | None = None) -> Server:
    """A new server on `port` (default: a free one), pinned to core `cpu` when given (the
    benchmark's stand-in for a machine of its own); the caller stops it."""
    root = install()
    work = Path(tempfile.mkdtemp(prefix="sdstudio-comfy-"))
    port = port or free_port()
    dirs = {name: work / name for name in ("input", "output", "temp", "user")}
    for path in dirs.values():
        path.mkdir()
    command = [
        str(CACHE / "venv" / "bin" / "python"), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
        "--preview-method", "latent2rgb", "--disable-auto-launch", "--database-url", "sqlite:///:memory:",
        *[arg for name, path in dirs.items() for arg in (f"--{name}-directory", str(path))],
    ]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    log = work / "server.log"
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() - start < START_TIMEOUT:
        if process.poll() is not None:
            _unavailable(f"the server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/system_stats", timeout=2) as answer:
                json.load(answer)
                return Server(url, process, log, time.monotonic() - start)
        except OSError:
            time.sleep(0.25)
    os.kill(process.pid, signal.SIGKILL)
    _unavailable(f"no answer from {url} within {START_TIMEOUT:g} s: {log.read_text()[-2000:]}")
    raise AssertionError("unreachable")


_shared: dict[int, Server] = {}


def shared_server(slot: int = 0) -> Server:
    """Server number `slot` shared by every test of this process (a second one for the tests
    of several servers), started on first use and stopped at exit. A test that kills one
    hands its replacement back with `replace_shared`."""
    if slot not in _shared or _shared[slot].process.poll() is not None:
        _shared[slot] = start_server()
        atexit.register(lambda: _shared[slot].stop())
    return _shared[slot]


def replace_shared(slot: int, server: Server) -> None:
    _shared[slot] = server
