"""Screenshots of bigger pictures: a hires-fix result beside its first pass, the upscale menu on a
result, and outpainting by dragging the canvas frame (while dragging, and the outpainted result
on its grown canvas).

Usage: python tools/screenshots/shot_bigger.py OUTDIR   (run under xvfb-run by `make screenshots`)
Uses the built-in model when it is installed, else a tiny random-weight model. The upscaler menu
lists a random-weight Real-ESRGAN Compact ×4 saved as an example model.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PIL import Image, ImageDraw  # noqa: E402
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt, QTimer  # noqa: E402

from sdstudio.engine.request import Mode  # noqa: E402
from sdstudio.engine.upscalers import FOLDER_ENV  # noqa: E402
from tests.canvas.canvas_helpers import send_mouse  # noqa: E402
from tools.screenshots.studio_shots import StudioShots  # noqa: E402

PROMPT = ("a large red circle in the centre on a blue background", "a lighthouse on a cliff at dusk")
OUTPAINT = ("a large red circle on the left on a blue background", "a lighthouse on a cliff at dusk, wide view")
EXAMPLE_UPSCALER = "4x-example-model.safetensors"
GROW = 64  # image pixels the frame drag adds on the right


def save_example_upscaler(folder: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from sdstudio.engine.upscalers import _spandrel

    _spandrel()
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    net = Compact(num_feat=16, num_conv=4, upscale=4)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / EXAMPLE_UPSCALER))


def side_by_side(first: Image.Image, hires: Image.Image) -> Image.Image:
    """The first pass (enlarged by Lanczos to the same size, as a plain upscale would) beside the
    hires result, each captioned."""
    pad, caption = 16, 28
    left = first.resize(hires.size, Image.Resampling.LANCZOS)
    sheet = Image.new("RGB", (hires.width * 2 + pad * 3, hires.height + pad * 2 + caption), (40, 40, 44))
    draw = ImageDraw.Draw(sheet)
    for k, (picture, text) in enumerate(((left, f"first pass {first.width}x{first.height}, enlarged"),
                                         (hires, f"hires fix {hires.width}x{hires.height}"))):
        x = pad + k * (hires.width + pad)
        sheet.paste(picture, (x, pad + caption))
        draw.text((x, pad), text, fill=(230, 230, 235))
    return sheet


def main(outdir: Path) -> int:
    upscalers = Path(tempfile.mkdtemp(prefix="sdstudio-upscalers-"))
    save_example_upscaler(upscalers)
    os.environ[FOLDER_ENV] = str(upscalers)  # the engine lists this folder's models
    shots = StudioShots(outdir, "bigger", tiny_size=128)
    window, controller, size = shots.window, shots.controller, shots.size
    canvas = window.canvas
    pick = lambda pair: shots.prompt(*pair)  # noqa: E731
    window.apply_fields({"prompt": pick(PROMPT), "negative_prompt": shots.prompt("", "blurry, text, watermark")})
    window.apply_fields({"width": size, "height": size, "steps": 16, "batch_size": 1, "seed": 11, "sampler": "Euler a"})
    finished: list = []

    def first_pass() -> None:
        window.apply_fields({"mode": Mode.TXT2IMG, "hires_scale": 1.0})
        window.generate()

    def hires() -> None:
        window.apply_fields({"hires_scale": 1.5, "hires_upscaler": "Lanczos", "hires_denoise": 0.4, "hires_steps": 12})
        window.generate()

    def upscale_menu() -> None:
        menu = window.results.context_menu()
        at = window.results.view.mapToGlobal(QPoint(window.results.view.width() // 2 - 160, 120))
        menu.popup(at)
        (upscale,) = [a for a in menu.actions() if a.menu() is not None]
        menu.setActiveAction(upscale)
        upscale.menu().popup(at + QPoint(menu.sizeHint().width() - 4, menu.actionGeometry(upscale).top()))

        def close() -> None:
            shots.save_screen("upscale_menu")
            upscale.menu().close()
            menu.close()
            QTimer.singleShot(200, drag_frame)

        QTimer.singleShot(500, close)

    def drag_frame() -> None:
        """The first pass on the canvas, its right edge dragged outward by GROW pixels."""
        window.center.setCurrentWidget(canvas)
        canvas.set_image(finished[0].results[0].image, keep_mask=False)
        window.apply_fields({"prompt": pick(OUTPAINT), "mode": Mode.INPAINT, "strength": 1.0, "mask_blur": 4})
        view = canvas.view
        scale = min(view.width() / (size + GROW) * 0.8, view.height() / size * 0.8)
        left = (view.width() - (size + GROW) * scale) / 2
        view.set_view(scale, QPointF(round(left), round((view.height() - size * scale) / 2)))
        edge = view.image_to_widget(QPointF(size, size / 2)) + QPointF(4, 0)
        send_mouse(view, QEvent.Type.MouseMove, edge, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
        send_mouse(view, QEvent.Type.MouseButtonPress, edge, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
        end = edge + QPointF(GROW * scale, 0)
        send_mouse(view, QEvent.Type.MouseMove, end, Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton)

        def release() -> None:
            shots.save("outpaint_drag")
            send_mouse(view, QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)
            window.apply_fields({"hires_scale": 1.0, "width": size + GROW, "height": size})
            QTimer.singleShot(300, window.generate)

        QTimer.singleShot(300, release)

    def on_finished(event: object) -> None:
        finished.append(event)
        if len(finished) == 1:
            QTimer.singleShot(300, hires)
        elif len(finished) == 2:
            first, second = finished[0].results[0].image, finished[1].results[0].image
            path = outdir / "bigger_hires.png"
            side_by_side(first, second).save(path)
            shots.paths.append(str(path))
            QTimer.singleShot(300, upscale_menu)
        elif len(finished) == 3:
            def send_back() -> None:
                window.results.actions_by_name["inpaint"].trigger()  # the outpainted picture on its canvas
                canvas.view.set_mask_visible(False)  # the new area's mask would tint what was drawn there
                QTimer.singleShot(400, lambda: (canvas.view.fit(), shots.quit_after(300, "outpaint")))

            QTimer.singleShot(400, send_back)

    def on_loaded(*_args: object) -> None:
        controller.model_loaded.disconnect(on_loaded)
        QTimer.singleShot(300, first_pass)

    controller.model_loaded.connect(on_loaded)
    controller.job_finished.connect(on_finished)
    return shots.run()


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
