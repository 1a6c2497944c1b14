"""Composition root: the `sdstudio` command, and the one place the parts are wired together.

`sdstudio generate ...` runs the headless CLI; `sdstudio upscale ...` enlarges a picture; `sdstudio --install-desktop-entry` adds the
app to the Linux launcher; plain `sdstudio` opens the window: the backend (made on first use,
after the window is on screen), the window, the canvas page and the history dock.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

    from PySide6.QtWidgets import QApplication

    from sdstudio.engine.backend import Backend
    from sdstudio.ui.main_window import MainWindow


def main(argv: list[str] | None = None) -> int:
    configure_process()
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "generate":
        from sdstudio.cli import main as cli_main

        return cli_main(args[1:])
    if args and args[0] == "upscale":
        from sdstudio.upscale_cli import main as upscale_main

        return upscale_main(args[1:])
    if args == ["--install-desktop-entry"]:
        from sdstudio.desktop_entry import main as install_main

        return install_main()
    return run_window(args)


def configure_process() -> None:
    """Process-wide settings that must precede the first `import torch`.

    torch's OpenMP threads spin while they wait for each other; when other programs keep the
    cores busy, they spin against the thread doing the work: the 20 steps of a 128x128 image on
    2 busy cores took 21-34 s, and 3-4 s with passive waiting (bench/bench_startup.py). A
    user's own OMP_WAIT_POLICY wins.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def parse_args(args: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="sdstudio", description="SD Studio: a desktop studio for Stable Diffusion.")
    parser.add_argument("--model", help='model to open: "builtin", a diffusers folder, a .safetensors file or a hub id')
    parser.add_argument("--settings", help="settings file to use (default: in the user's config folder)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--dtype", help="float16, bfloat16 or float32 (default: by device)")
    parser.add_argument(
        "--history", help="history folder (default: beside --settings when given, else in the user's data folder)"
    )
    return parser.parse_known_args(args)


@dataclass
class Studio:
    """A started studio: the window is showing and the backend starts once it is exposed."""

    app: QApplication
    loop: asyncio.AbstractEventLoop
    window: MainWindow
    backends: list[Backend] = field(default_factory=list)

    def shutdown(self) -> None:
        for backend in self.backends:
            backend.shutdown(wait=True)


def open_studio(args: list[str]) -> Studio:
    """Parse `args`, make the app and its qasync loop, wire and show the window; no heavy import."""
    import asyncio

    import qasync

    from sdstudio.engine.backend import local_backend
    from sdstudio.settings import SettingsStore
    from sdstudio.ui.addons import Addons
    from sdstudio.ui.canvas_panel import install_canvas
    from sdstudio.ui.errors import route_unexpected
    from sdstudio.ui.history_dock import install_history
    from sdstudio.ui.launch import create_app, when_exposed
    from sdstudio.ui.main_window import MainWindow

    options, qt_args = parse_args(args)
    app = create_app(qt_args)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    backends: list[Backend] = []
    local_engines: list[Backend] = []  # the one on this computer, once made: it follows the folders

    def follow_folders(folders: object) -> None:
        for engine in local_engines:
            engine.folders = folders  # type: ignore[attr-defined]  # runner.Engine reads them per job

    def backend_for(url: str, token: str) -> Backend:
        """The ComfyUI server at `url`, or this computer when `url` is ""."""
        if url:
            from sdstudio.engine.comfy import comfy_backend

            return comfy_backend(url, token or None)
        engine = local_backend(device=options.device, dtype=options.dtype, folders=addons.folders())
        local_engines[:] = [engine]
        return engine

    def make_backend() -> Backend:
        from sdstudio.engine.comfy.routing import SwitchableBackend

        settings = window.settings
        try:
            backend = backend_for(settings.server, settings.server_token)
        except ValueError as exc:  # a settings file with an address that is no URL
            window.report(f"{exc} Generating on this computer instead.", cause="server")
            settings.remember_server("")
            backend = backend_for("", "")
        backends.append(SwitchableBackend(backend))
        window.status.set_server(settings.server)
        return backends[-1]

    def use_server(url: str, token: str) -> None:
        """Model ▸ Connect to server… / Generate on this computer: switch, then load the
        server's first checkpoint (or the built-in model), off the Qt loop."""
        from sdstudio.engine.comfy.client import normalized_urls

        try:
            url = ", ".join(normalized_urls(url))  # several servers share the jobs
        except ValueError as exc:
            window.report(str(exc), cause="server")
            return
        window.settings.remember_server(url, token)
        window.model_menu.set_servers(window.settings.recent_servers, url, token)
        if window.controller.backend_started:  # else make_backend reads the new choice
            backends[-1].switch(backend_for(url, token))  # type: ignore[attr-defined]
            window.controller.forget_capabilities()  # the other machine's lists are not this one's
            window.status.set_server(url)
        loop.create_task(_load_first_model(window, url))

    window = MainWindow(SettingsStore(options.settings), make_backend, startup_model=options.model)
    window.model_menu.set_servers(window.settings.recent_servers, window.settings.server, window.settings.server_token)
    window.model_menu.server_chosen.connect(use_server)
    route_unexpected(window.report, loop)
    install_canvas(window)
    addons = Addons(window)
    addons.folders_changed.connect(follow_folders)
    # A separate settings file is a separate profile: its history sits beside it.
    beside_settings = Path(options.settings).parent / "history" if options.settings else None
    install_history(window, options.history or beside_settings)
    window.show()
    when_exposed(window, window.start)
    return Studio(app, loop, window, backends)


async def _load_first_model(window: MainWindow, url: str) -> None:
    """After a switch: the server's first checkpoint (the built-in model for this computer).
    The listing is asked on a thread; the new backend's samplers follow its capabilities
    (`GenerationController.capabilities_changed`)."""
    import asyncio

    from sdstudio.engine.request import BUILTIN_MODEL, ModelRef

    backend = window.controller.jobs.backend
    models = await asyncio.get_running_loop().run_in_executor(None, backend.list_models)
    if url and not models:
        window.report(f"The server at {url} lists no checkpoints, or cannot be reached.", cause="server")
        return
    window.load_model(models[0] if url else ModelRef(BUILTIN_MODEL))


def run_window(args: list[str]) -> int:
    studio = open_studio(args)
    try:
        with studio.loop:
            studio.loop.run_forever()
    finally:
        studio.shutdown()
    return 0
