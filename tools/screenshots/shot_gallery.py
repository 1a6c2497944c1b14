"""Screenshots of the history gallery in the real window: the grid full of images, an image
selected with its details, and a search. Usage: shot_gallery.py OUTDIR (run under xvfb-run)."""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from sdstudio.engine.request import Inputs

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SUBJECTS = ("a lighthouse", "a red fox", "a small cabin", "an old windmill", "a sailing boat", "a castle")
PLACES = ("on a hill at sunset", "by a misty lake", "under a starry sky", "in golden hour light", "in the snow")
STYLES = ("oil painting", "watercolor", "cinematic photo", "flat illustration")


def landscape(rng: random.Random, size: int = 256):
    """A small procedural landscape: sky gradient, sun, three layers of hills."""
    from PIL import Image, ImageDraw

    top = tuple(rng.randrange(40, 256) for _ in range(3))
    bottom = tuple(min(255, c + rng.randrange(0, 90)) for c in top)
    sky = Image.linear_gradient("L").resize((size, size))
    image = Image.composite(Image.new("RGB", (size, size), bottom), Image.new("RGB", (size, size), top), sky)
    draw = ImageDraw.Draw(image)
    sx, sy, r = rng.randrange(30, size - 30), rng.randrange(20, size // 2), rng.randrange(12, 30)
    draw.ellipse((sx - r, sy - r, sx + r, sy + r), fill=(255, rng.randrange(160, 240), 90))
    for layer in range(3):
        base = size * (0.55 + 0.15 * layer)
        shade = tuple(int(c * (0.55 - 0.15 * layer)) for c in bottom)
        points = [(0, size)] + [(x, base - rng.randrange(0, 45)) for x in range(0, size + 32, 32)] + [(size, size)]
        draw.polygon(points, fill=shade)
    return image


def fill_history(root: Path, count: int = 36) -> None:
    from sdstudio.engine.params import result_image
    from sdstudio.engine.request import Family, GenerationRequest, Mode, ModelInfo
    from sdstudio.history import HistoryStore

    rng = random.Random(3)
    model = ModelInfo("builtin", Family.SD1, False, "cpu", "float32", "builtin")
    store = HistoryStore.open(root)
    previous = None
    for n in range(count):
        prompt = f"{rng.choice(SUBJECTS)} {rng.choice(PLACES)}, {rng.choice(STYLES)}"
        mode = Mode.IMG2IMG if previous is not None and n % 7 == 0 else Mode.TXT2IMG
        request = GenerationRequest.create(
            prompt=prompt, negative_prompt="blurry, lowres", mode=mode, steps=rng.choice((20, 25, 30)),
            cfg_scale=rng.choice((5.0, 6.5, 7.0)), width=256, height=256, sampler="DPM++ 2M Karras",
            seed=rng.randrange(2**31),
            inputs=Inputs.from_pil(landscape(rng) if mode is Mode.IMG2IMG else None),
        )  # fmt: skip
        init_file, _ = store.save_inputs(request)
        parent = previous if mode is Mode.IMG2IMG else None
        image = store.save(result_image(landscape(rng), request, model), init_file=init_file, parent=parent)
        if n % 5 == 0:
            store.set_favourite(image.id)
        previous = image
    store.close()


def settle(app, seconds: float = 0.6) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main(out: Path) -> int:
    from PySide6.QtCore import Qt

    from sdstudio.settings import SettingsStore
    from sdstudio.ui.history_dock import install_history
    from sdstudio.ui.launch import create_app
    from sdstudio.ui.main_window import MainWindow

    out.mkdir(parents=True, exist_ok=True)
    app = create_app([])
    with tempfile.TemporaryDirectory(prefix="sdstudio-shot-") as tmp:
        fill_history(Path(tmp) / "history")
        window = MainWindow(SettingsStore(Path(tmp) / "settings.json"), backend_factory=lambda: None)
        panel = install_history(window, Path(tmp) / "history")
        window.resize(1600, 1000)
        window.show()
        window.resizeDocks([panel.dock], [760], Qt.Orientation.Horizontal)
        while panel.gallery is None:
            settle(app, 0.1)
        gallery = panel.gallery
        settle(app, 1.5)
        window.grab().save(str(out / "gallery.png"))

        gallery.select_row(2)
        gallery.details.buttons["reuse"].click()  # the panels show the image's parameters
        settle(app, 1.0)
        window.grab().save(str(out / "gallery_details.png"))
        gallery.grab().save(str(out / "gallery_panel.png"))

        gallery.search.setText("fox sunset")
        gallery.apply_filters()
        gallery.grouping.setCurrentIndex(1)
        settle(app, 1.0)
        gallery.grab().save(str(out / "gallery_search.png"))
        panel.close()
        window.close()
    print(f"wrote {', '.join(p.name for p in sorted(out.glob('gallery*.png')))} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")))
