"""Screenshots of the masking canvas: an image with a painted mask, and the inpaint result sent
back onto the canvas (mask kept) for another round.

Usage: python tools/screenshots/shot_canvas.py OUTDIR   (run under xvfb-run by `make screenshots`)
Uses the built-in model when it is installed, else a tiny random-weight model (noise inside the mask).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw  # noqa: E402
from PySide6.QtCore import QEvent, QPointF, Qt, QTimer  # noqa: E402

from sdstudio.canvas import Brush  # noqa: E402
from sdstudio.engine.request import Mode  # noqa: E402
from sdstudio.ui.launch import open_studio  # noqa: E402
from sdstudio.ui.model_menu import builtin_model_available  # noqa: E402
from tests.canvas.canvas_helpers import drag_image, send_mouse  # noqa: E402

PROMPT = "a red sailing boat on a calm sea at sunset"


def landscape(size: int) -> Image.Image:
    """A simple sunset: sky gradient, sun, sea and a hill, so the mask has something to cover."""
    picture = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(picture)
    horizon = int(size * 0.62)
    for y in range(horizon):
        t = y / horizon
        draw.line([(0, y), (size, y)], fill=(int(60 + 190 * t), int(70 + 80 * t), int(150 - 60 * t)))
    for y in range(horizon, size):
        t = (y - horizon) / (size - horizon)
        draw.line([(0, y), (size, y)], fill=(int(30 + 20 * t), int(70 + 30 * t), int(120 + 30 * t)))
    r = size // 9
    draw.ellipse([size * 0.62 - r, horizon - 1.6 * r, size * 0.62 + r, horizon + 0.4 * r], fill=(255, 205, 110))
    draw.polygon([(0, horizon + 4), (size * 0.3, horizon - size * 0.18), (size * 0.55, horizon + 4)], fill=(40, 55, 45))
    return picture


def main(outdir: Path) -> int:
    outdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sdstudio-shots-"))
    if builtin_model_available():
        model, size = "builtin", 128
    else:
        from tools.tiny_models import save_tiny_model

        model, size = str(save_tiny_model(work / "tiny-sd1", "sd1")), 256
    studio = open_studio(["--settings", str(work / "settings.json"), "--model", model, "--device", "cpu"])
    window, controller = studio.window, studio.window.controller
    canvas = window.canvas
    window.resize(1400, 900)
    window.apply_fields({"prompt": PROMPT, "negative_prompt": "blurry, text, watermark"})
    window.apply_fields({"width": size, "height": size, "steps": 16, "batch_size": 1, "seed": 7})
    shots: list[str] = []

    def save(name: str) -> None:
        path = outdir / f"canvas_{name}.png"
        window.grab().save(str(path))
        shots.append(str(path))

    def paint_mask() -> None:
        window.center.setCurrentWidget(canvas)
        canvas.set_image(landscape(size), keep_mask=False)
        window.apply_fields({"mode": Mode.INPAINT, "strength": 0.9, "mask_blur": 4})
        s = size / 256  # the strokes are laid out for a 256 px image
        canvas.view.set_brush(Brush(size=34 * s, hardness=0.6))
        drag_image(canvas.view, [(x * s, y * s) for x, y in ((70, 185), (100, 178), (130, 182), (160, 190))])
        canvas.view.set_brush(Brush(size=22 * s, hardness=0.6))
        drag_image(canvas.view, [(112 * s, 175 * s), (114 * s, 140 * s), (116 * s, 118 * s)])
        # Hover (no button) beside the strokes so the brush outline shows at the current zoom.
        hover = canvas.view.transform().map(QPointF(200 * s, 130 * s))
        send_mouse(canvas.view, QEvent.Type.MouseMove, hover, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
        QTimer.singleShot(300, lambda: (save("mask"), window.generate()))

    def on_loaded(*_args: object) -> None:
        controller.model_loaded.disconnect(on_loaded)
        QTimer.singleShot(300, paint_mask)

    def on_finished(*_args: object) -> None:
        def send_back() -> None:
            save("result")
            window.results.actions()[-1].trigger()  # Send to canvas: the mask stays
            QTimer.singleShot(300, lambda: (save("sent_back"), studio.app.quit()))

        QTimer.singleShot(400, send_back)

    def give_up() -> None:
        save("timeout")
        print("screenshots: gave up waiting; problems:", window.banner.problems(), file=sys.stderr)
        studio.app.exit(1)

    controller.model_loaded.connect(on_loaded)
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
