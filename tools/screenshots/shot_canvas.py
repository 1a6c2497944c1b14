"""Screenshots of the masking canvas: an image with a painted mask, and the inpaint result sent
back onto the canvas (mask kept) for another round.

Usage: python tools/screenshots/shot_canvas.py OUTDIR   (run under xvfb-run by `make screenshots`)
Uses the built-in model when it is installed, else a tiny random-weight model (noise inside the mask).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PIL import Image, ImageDraw  # noqa: E402
from PySide6.QtCore import QEvent, QPointF, Qt, QTimer  # noqa: E402

from sdstudio.canvas import Brush  # noqa: E402
from sdstudio.engine.request import Mode  # noqa: E402
from tests.canvas.canvas_helpers import drag_image, send_mouse  # noqa: E402
from tools.screenshots.studio_shots import StudioShots  # noqa: E402

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


def scene_picture(size: int) -> Image.Image:
    """A red circle on blue: the built-in model's own world, so its inpaint result makes sense."""
    from tools.builtin_model.scenes import Scene, Shape, render

    scene = Scene((Shape("circle", "red", "large", "centre"),), "blue", False)
    return Image.fromarray(render(scene)).resize((size, size))


def main(outdir: Path) -> int:
    shots = StudioShots(outdir, "canvas", tiny_size=256)
    window, controller, size = shots.window, shots.controller, shots.size
    canvas = window.canvas
    window.apply_fields({
        "prompt": shots.prompt("a large yellow star in the centre on a blue background", PROMPT),
        "negative_prompt": shots.prompt("", "blurry, text, watermark"),
    })
    window.apply_fields({"width": size, "height": size, "steps": 16, "batch_size": 1, "seed": 7})

    def paint_mask() -> None:
        window.center.setCurrentWidget(canvas)
        canvas.set_image(scene_picture(size) if shots.builtin else landscape(size), keep_mask=False)
        window.apply_fields({"mode": Mode.INPAINT, "strength": 1.0 if shots.builtin else 0.9, "mask_blur": 4})
        s = size / 256  # the strokes are laid out for a 256 px image
        if shots.builtin:
            canvas.view.set_brush(Brush(size=150 * s, hardness=0.8))
            drag_image(canvas.view, [(x * s, 128 * s) for x in (90, 128, 166)])
        else:
            canvas.view.set_brush(Brush(size=34 * s, hardness=0.6))
            drag_image(canvas.view, [(x * s, y * s) for x, y in ((70, 185), (100, 178), (130, 182), (160, 190))])
            canvas.view.set_brush(Brush(size=22 * s, hardness=0.6))
            drag_image(canvas.view, [(112 * s, 175 * s), (114 * s, 140 * s), (116 * s, 118 * s)])
        # Hover (no button) beside the strokes so the brush outline shows at the current zoom.
        hover = canvas.view.transform().map(QPointF(200 * s, 130 * s))
        send_mouse(canvas.view, QEvent.Type.MouseMove, hover, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
        QTimer.singleShot(300, lambda: (shots.save("mask"), window.generate()))

    def on_loaded(*_args: object) -> None:
        controller.model_loaded.disconnect(on_loaded)
        QTimer.singleShot(300, paint_mask)

    def on_finished(*_args: object) -> None:
        def send_back() -> None:
            shots.save("result")
            window.results.actions_by_name["inpaint"].trigger()  # Send to canvas: the mask stays
            shots.quit_after(300, "sent_back")

        QTimer.singleShot(400, send_back)

    controller.model_loaded.connect(on_loaded)
    controller.job_finished.connect(on_finished)
    return shots.run()


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
