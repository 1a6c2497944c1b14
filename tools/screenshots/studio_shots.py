"""What the screenshot scripts share: the real studio opened on the built-in model (or, where
it is missing, on a tiny random-weight model), window grabs saved by name, and the event loop
run until the script quits or a time-out gives up with what the banner said."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QTimer

from sdstudio.app import open_studio
from sdstudio.engine.backend import builtin_model_available
from sdstudio.settings import Settings, SettingsStore


class StudioShots:
    """One studio window under a screenshot script's control."""

    def __init__(self, outdir: Path, prefix: str, tiny_size: int = 128, server: str = "", model: str = "") -> None:
        """`server` and `model`: start on that ComfyUI server with that checkpoint of it."""
        outdir.mkdir(parents=True, exist_ok=True)
        self.outdir, self.prefix = outdir, prefix
        self.work = Path(tempfile.mkdtemp(prefix="sdstudio-shots-"))
        self.builtin = builtin_model_available() and not server
        if server:
            SettingsStore(self.work / "settings.json").save(Settings(server=server, model=model))
            self.size = tiny_size
        elif self.builtin:
            model, self.size = "builtin", 128
        else:
            from tools.tiny_models import save_tiny_model

            model, self.size = str(save_tiny_model(self.work / "tiny-sd1", "sd1")), tiny_size
        self.studio = open_studio(
            ["--settings", str(self.work / "settings.json"), "--history", str(self.work / "history"),
             "--model", model, "--device", "cpu"]
        )
        self.window = self.studio.window
        self.controller = self.window.controller
        self.window.resize(1400, 900)
        self.paths: list[str] = []

    def prompt(self, builtin: str, other: str) -> str:
        """The prompt to use: the built-in model knows only its own scene words."""
        return builtin if self.builtin else other

    def save(self, name: str) -> None:
        path = self.outdir / f"{self.prefix}_{name}.png"
        self.window.grab().save(str(path))
        self.paths.append(str(path))

    def save_screen(self, name: str) -> None:
        """Save the screen where the window is, so popups (menus, completions) show too."""
        path = self.outdir / f"{self.prefix}_{name}.png"
        geometry = self.window.frameGeometry()
        picture = self.window.screen().grabWindow(0, geometry.x(), geometry.y(), geometry.width(), geometry.height())
        picture.save(str(path))
        self.paths.append(str(path))

    def quit_after(self, ms: int, name: str | None = None) -> None:
        """Save `name` (if given) after `ms` milliseconds, then end the run."""

        def finish() -> None:
            if name:
                self.save(name)
            self.studio.app.quit()

        QTimer.singleShot(ms, finish)

    def run(self, timeout_ms: int = 300_000) -> int:
        """Run the loop until the script quits; a time-out saves what is on screen and fails."""

        def give_up() -> None:
            self.save("timeout")
            print("screenshots: gave up waiting; problems:", self.window.banner.problems(), file=sys.stderr)
            self.studio.app.exit(1)

        self.controller.problem.connect(lambda message, _details: print("problem:", message, file=sys.stderr))
        QTimer.singleShot(timeout_ms, give_up)
        try:
            with self.studio.loop:
                code = self.studio.loop.run_forever()
        finally:
            self.studio.shutdown()
        print("\n".join(self.paths))
        return code or 0
