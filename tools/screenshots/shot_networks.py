"""Screenshots of the LoRA & embedding browser with preview thumbnails and the prompt's
completion popup after `<lora:`, at 1400x900 and at 1024x700.

Usage: shot_networks.py OUTDIR   (run under xvfb-run by `make screenshots`)
The LoRA files are dummies (nothing is generated); their previews are drawn here.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from tools.screenshots.shot_gallery import landscape  # noqa: E402
from tools.screenshots.studio_shots import StudioShots  # noqa: E402

LORAS = {  # name -> has a preview picture
    "add_detail": True, "film_grain": True, "ghibli_background": True, "lineart_v2": False,
    "pixel_art_xl": True, "watercolor_style": True, "analog_film": False, "cyberpunk_city": True,
}
EMBEDDINGS = ("easynegative", "badhandv4", "ng_deepnegative_v1_75t", "bad_prompt_version2")


def make_folders(root: Path) -> dict[str, str]:
    rng = random.Random(7)
    loras, embeddings = root / "loras", root / "embeddings"
    (loras / "styles").mkdir(parents=True)
    embeddings.mkdir()
    for n, (name, preview) in enumerate(LORAS.items()):
        folder = loras / "styles" if n % 3 == 2 else loras  # sub-folders are listed too
        (folder / f"{name}.safetensors").write_bytes(b"\0" * 64)
        if preview:
            landscape(rng, 384).save(folder / f"{name}.preview.png")
    for name in EMBEDDINGS:
        (embeddings / f"{name}.safetensors").write_bytes(b"\0" * 64)
    return {"loras": str(loras), "embeddings": str(embeddings)}


def main(outdir: Path) -> int:
    from sdstudio.engine.networks import NetworkKind
    from sdstudio.ui.addons import Addons

    shots = StudioShots(outdir, "networks")
    window = shots.window
    addons = window.findChild(Addons)
    addons.set_folders(make_folders(shots.work))
    panel = addons.panel

    def save(name: str) -> None:
        # The completion popup is a window of its own: grab the screen where the window is.
        geometry = window.frameGeometry()
        picture = window.screen().grabWindow(0, geometry.x(), geometry.y(), geometry.width(), geometry.height())
        path = outdir / f"{name}.png"
        picture.save(str(path))
        shots.paths.append(str(path))

    def show_completion() -> None:
        addons.dock.raise_()
        panel.weight.setValue(0.8)
        edit = window.prompt_panel.prompt
        edit.setPlainText("a lighthouse on a cliff at dusk, oil painting, ")
        edit.moveCursor(edit.textCursor().MoveOperation.End)
        edit.setFocus()
        QTest.keyClicks(edit, "<lora:")

    def at_1024() -> None:
        window.prompt_panel.prompt.completer.hide()
        window.resize(1024, 700)
        window.reset_layout()
        addons.dock.raise_()
        QTimer.singleShot(600, lambda: (show_completion(), QTimer.singleShot(600, finish)))

    def finish() -> None:
        save("networks_1024x700")
        shots.studio.app.quit()

    def ready() -> None:
        if not panel.has_thumbnail(NetworkKind.LORA, "watercolor_style"):
            QTimer.singleShot(200, ready)
            return
        show_completion()
        QTimer.singleShot(600, lambda: (save("networks"), at_1024()))

    shots.controller.model_loaded.connect(lambda *_: QTimer.singleShot(300, ready))
    return shots.run(timeout_ms=120_000)


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
