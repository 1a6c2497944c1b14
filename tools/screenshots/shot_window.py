"""Screenshots of the studio window: empty, generating with a live preview, a finished batch.

Usage: python tools/screenshots/shot_window.py OUTDIR   (run under xvfb-run by `make screenshots`)
Uses the built-in model when it is installed, else a tiny random-weight model (noise images).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QTimer  # noqa: E402

from sdstudio.ui.launch import open_studio  # noqa: E402
from sdstudio.ui.model_menu import builtin_model_available  # noqa: E402

PROMPT = "a lighthouse on a cliff at dusk, warm light, oil painting"


def main(outdir: Path) -> int:
    outdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sdstudio-shots-"))
    if builtin_model_available():
        model, size = "builtin", 128
    else:
        from tools.tiny_models import save_tiny_model

        model, size = str(save_tiny_model(work / "tiny-sd1", "sd1")), 128
    studio = open_studio(["--settings", str(work / "settings.json"), "--model", model, "--device", "cpu"])
    window, controller = studio.window, studio.window.controller
    window.resize(1400, 900)
    window.apply_fields({"prompt": PROMPT, "negative_prompt": "blurry, text, watermark"})
    window.apply_fields({"width": size, "height": size, "steps": 24, "batch_size": 4, "seed": 42})
    shots: list[str] = []

    def save(name: str) -> None:
        path = outdir / f"window_{name}.png"
        window.grab().save(str(path))
        shots.append(str(path))

    def on_loaded(*_args: object) -> None:
        controller.model_loaded.disconnect(on_loaded)
        QTimer.singleShot(300, lambda: (save("empty"), window.generate()))

    def on_step(index: int, total: int, _preview: object) -> None:
        if index == total // 2:
            controller.step.disconnect(on_step)
            save("generating")

    def on_finished(*_args: object) -> None:
        QTimer.singleShot(400, lambda: (save("batch"), studio.app.quit()))

    def give_up() -> None:
        save("timeout")
        print("screenshots: gave up waiting; problems:", window.banner.problems(), file=sys.stderr)
        studio.app.exit(1)

    controller.model_loaded.connect(on_loaded)
    controller.step.connect(on_step)
    controller.job_finished.connect(on_finished)
    controller.problem.connect(lambda message, _details: print("problem:", message, file=sys.stderr))
    QTimer.singleShot(300_000, give_up)
    try:
        with studio.loop:
            code = studio.loop.run_forever()
    finally:
        studio.shutdown()
    print("\n".join(shots))
    return code or 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
