"""Screenshots of the studio window: empty, generating with a live preview, a finished batch.

Usage: python tools/screenshots/shot_window.py OUTDIR   (run under xvfb-run by `make screenshots`)
Uses the built-in model when it is installed, else a tiny random-weight model (noise images).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PySide6.QtCore import QTimer  # noqa: E402

from tools.screenshots.studio_shots import StudioShots  # noqa: E402


def main(outdir: Path) -> int:
    shots = StudioShots(outdir, "window")
    window, controller = shots.window, shots.controller
    prompt = shots.prompt(
        "a large yellow star in the centre on a purple background",
        "a lighthouse on a cliff at dusk, warm light, oil painting",
    )

    def on_loaded(*_args: object) -> None:
        controller.model_loaded.disconnect(on_loaded)
        shots.save("empty")
        window.apply_fields({"prompt": prompt, "negative_prompt": shots.prompt("", "blurry, text, watermark")})
        window.apply_fields({"width": shots.size, "height": shots.size, "steps": 24, "batch_size": 4,
                             "seed": 42, "cfg_scale": 5.0})
        QTimer.singleShot(300, window.generate)

    def on_step(index: int, total: int, _preview: object) -> None:
        if index == total // 2:
            controller.step.disconnect(on_step)
            shots.save("generating")

    controller.model_loaded.connect(on_loaded)
    controller.step.connect(on_step)
    controller.job_finished.connect(lambda *_args: shots.quit_after(400, "batch"))
    return shots.run()


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
