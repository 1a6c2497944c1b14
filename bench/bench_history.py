"""History gallery figures on a synthetic history of 10,000 images.

    time to open the gallery (model + view, first screen painted)   goal < 300 ms
    longest UI stall while scrolling from top to bottom              goal < 16 ms
    longest UI stall while a batch of 8 is saved and shown           goal < 16 ms
    RSS with the gallery open (after scrolling) above the empty app  goal < 250 MB
    search time (full-text, newest first, model reset)               goal < 50 ms

Stalls are reported as wall time and as the UI thread's own CPU time per event loop turn: on a
shared, busy machine the wall figures carry the other programs' share (see the empty loop's gap).

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_history.py [--images N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from measure import rss_mib  # noqa: E402  (bench/measure.py, beside this script)

WORDS = [
    "cat",
    "dog",
    "fox",
    "owl",
    "castle",
    "forest",
    "river",
    "mountain",
    "city",
    "neon",
    "portrait",
    "landscape",
    "sunset",
    "night",
    "snow",
    "desert",
    "ocean",
    "robot",
    "dragon",
    "flower",
    "garden",
    "cyberpunk",
    "watercolor",
    "oil",
    "painting",
    "photo",
    "cinematic",
    "detailed",
    "golden",
    "hour",
    "misty",
    "ancient",
    "futuristic",
    "cozy",
]


def make_history(root: Path, count: int) -> None:
    """PNG files with both metadata chunks and their thumbnails, spread over 60 days, written
    straight to disk: opening the store then indexes them (which is timed too)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from sdstudio.engine.params import image_json, request_infotext
    from sdstudio.engine.request import Family, GenerationRequest, ModelInfo
    from sdstudio.history.layout import image_name, thumbnail_name
    from sdstudio.history.metadata import HISTORY_KEY

    rng = random.Random(7)
    model = ModelInfo("synthetic", Family.SD1, False, "cpu", "float32", "bench")
    now = time.time()
    base = Image.linear_gradient("L").resize((128, 128))
    for n in range(count):
        prompt = " ".join(rng.choices(WORDS, k=rng.randint(4, 12)))
        seed = rng.randrange(2**32)
        request = GenerationRequest.create(
            prompt=prompt, negative_prompt="blurry, lowres", width=128, height=128, seed=seed
        )
        created = now - (count - n) * (60 * 86400 / count)
        settings = image_json(request, model) | {HISTORY_KEY: {"created": created}}
        info = PngInfo()
        info.add_itxt("parameters", request_infotext(request, model))
        info.add_itxt("sdstudio", json.dumps(settings))
        tint = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        image = Image.merge("RGB", (base, base.rotate(90), Image.new("L", base.size, tint[2])))
        file = image_name(created, seed)
        path = root / file
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, pnginfo=info, compress_level=1)
        thumb = root / thumbnail_name(file)
        thumb.parent.mkdir(parents=True, exist_ok=True)
        image.save(thumb, quality=85)


def save_while_idle(app, store, gallery) -> tuple[float, Turns]:
    """Save a batch through the window's saver thread while the UI thread turns its event
    loop: (ms per saved image, longest gap between event loop turns)."""
    from PIL import Image

    from sdstudio.engine.events import Finished
    from sdstudio.engine.params import result_image
    from sdstudio.engine.request import GenerationRequest
    from sdstudio.ui.history_dock import HistorySaver

    rng = random.Random(1)
    request = GenerationRequest.create(prompt="a saved batch", width=512, height=512)
    images = tuple(Image.effect_noise((512, 512), 30 + 5 * n).convert("RGB") for n in range(8))
    seeds = tuple(rng.randrange(2**31) for _ in images)
    finished = Finished(tuple(result_image(im, request.replace(seed=s), None) for im, s in zip(images, seeds, strict=True)))
    saver = HistorySaver(store)
    saver.saved.connect(gallery.add_images)
    t = time.perf_counter()
    future = saver.save(finished)
    turns = Turns()
    while not future.done():
        with turns:
            app.processEvents()
        time.sleep(0.001)  # an idle loop waits for events; a busy one would only add empty turns
    saved_ms = (time.perf_counter() - t) * 1000 / len(images)
    settle = time.perf_counter() + 0.5  # the gallery shows the new images: its grid lays them out
    while time.perf_counter() < settle:
        with turns:
            app.processEvents()
        time.sleep(0.001)
    saver.close()
    return saved_ms, turns


class Turns:
    """Event loop turns, timed: `with turns: app.processEvents()`. Wall time is what a person
    sees; the UI thread's own CPU time is the work done on it, which the other programs on a
    busy machine do not stretch (their share shows as wall time beyond it)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __enter__(self) -> None:
        self._start = (time.perf_counter(), time.thread_time())

    def __exit__(self, *_exc: object) -> None:
        self.wall.append((time.perf_counter() - self._start[0]) * 1000)
        self.cpu.append((time.thread_time() - self._start[1]) * 1000)

    @property
    def count(self) -> int:
        return len(self.wall)

    def summary(self) -> str:
        return f"wall {_stats(self.wall)}; UI thread CPU {_stats(self.cpu)}"


def _stats(ms: list[float]) -> str:
    ms = sorted(ms)
    over = sum(1 for m in ms if m > 16)
    return f"max {ms[-1]:.1f} ms, p99 {ms[int(len(ms) * 0.99)]:.1f} ms, median {statistics.median(ms):.2f} ms, {over} over 16 ms"


def machine_noise_ms(seconds: float) -> float:
    """The longest gap in a loop that does nothing: what the OS alone costs on this machine."""
    last = end = time.perf_counter()
    end += seconds
    worst = 0.0
    while last < end:
        now = time.perf_counter()
        worst = max(worst, now - last)
        last = now
    return worst * 1000



def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()

    from PySide6.QtCore import QElapsedTimer
    from PySide6.QtWidgets import QApplication, QMainWindow

    from sdstudio.history import HistoryStore, Query
    from sdstudio.ui.gallery import GalleryWidget

    app = QApplication.instance() or QApplication([])
    window = QMainWindow()
    window.resize(1280, 860)
    window.show()
    app.processEvents()
    empty_rss = rss_mib()

    with tempfile.TemporaryDirectory(prefix="sdstudio-bench-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        make_history(root, args.images)
        print(
            f"synthetic history: {args.images} PNGs + thumbnails written in {time.perf_counter() - t:.1f} s"
        )

        t = time.perf_counter()
        store = HistoryStore.open(root)
        print(
            f"index rebuilt from the files: {time.perf_counter() - t:.2f} s ({store.count()} rows)"
        )
        store.close()
        t = time.perf_counter()
        store = HistoryStore.open(root)
        print(f"store open (index present, disk check): {(time.perf_counter() - t) * 1000:.0f} ms")

        clock = QElapsedTimer()
        clock.start()
        gallery = GalleryWidget(store)
        window.setCentralWidget(gallery)
        gallery.grid.viewport().repaint()
        app.processEvents()
        open_ms = clock.nsecsElapsed() / 1e6
        print(
            f"open the gallery (model + view + first screen painted): {open_ms:.0f} ms   goal < 300 ms"
        )

        bar = gallery.grid.verticalScrollBar()
        step = max(1, bar.pageStep() // 4)
        turns = Turns()
        t = time.perf_counter()
        while bar.value() < bar.maximum():
            with turns:
                bar.setValue(bar.value() + step)  # as dragging the scroll bar: Qt scrolls and paints
                app.processEvents()
        # Let the last thumbnails arrive, counting those event turns as stalls too.
        deadline = time.perf_counter() + 1.0
        while time.perf_counter() < deadline:
            with turns:
                app.processEvents()
            time.sleep(0.005)
        scroll_s = time.perf_counter() - t
        print(f"scroll top to bottom, {turns.count} event turns in {scroll_s:.1f} s (goal: no stall > 16 ms):")
        print(f"  {turns.summary()}")
        load = os.getloadavg()[0]
        print(
            f"  (machine: load average {load:.1f} on {os.cpu_count()} cores; an empty loop's "
            f"longest gap over {scroll_s:.0f} s: {machine_noise_ms(scroll_s):.1f} ms)"
        )
        cached = len(gallery.thumbnails._cache)
        print(
            f"RSS: empty window {empty_rss:.0f} MB, with the gallery open and scrolled {rss_mib():.0f} MB "
            f"(+{rss_mib() - empty_rss:.0f} MB, {cached} thumbnails cached)   goal < +250 MB"
        )

        times = []
        for text in ("cat", "golden hour", "cyber", "neon city night", "zzz", "d"):
            clock.restart()
            gallery.search.setText(text)
            gallery.apply_filters()
            gallery.grid.viewport().repaint()
            times.append((clock.nsecsElapsed() / 1e6, text, gallery.model.rowCount()))
        for ms, text, n in times:
            print(f"  search {text!r:18} {n:6} hits  {ms:5.1f} ms")
        print(
            f"search (FTS + model reset + repaint): longest {max(t[0] for t in times):.1f} ms   goal < 50 ms"
        )
        clock.restart()
        store.ids(Query(text="cat"))
        print(f"  store query alone ('cat'): {clock.nsecsElapsed() / 1e6:.1f} ms")
        gallery.search.setText("")
        for index, label in ((1, "by day"), (2, "by prompt"), (0, "ungrouped")):
            clock.restart()
            gallery.grouping.setCurrentIndex(index)
            app.processEvents()
            print(f"  group {label:10} {gallery.groups.count():4} groups listed  {clock.nsecsElapsed() / 1e6:5.1f} ms")

        saved_ms, turns = save_while_idle(app, store, gallery)
        print(
            f"saving a finished batch of 8 images of 512x512 in the background: {saved_ms:.0f} ms per "
            f"image; {turns.count} event turns meanwhile (goal: no stall > 16 ms):"
        )
        print(f"  {turns.summary()}")
        gallery.close_loader()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
