"""Canvas figures: time to paint one stroke segment on a 4096x4096 image, and memory after
200 strokes of undo history on that image."""

from __future__ import annotations

import os
import random
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from measure import rss_mib  # noqa: E402  (bench/measure.py, beside this script)
from PIL import Image  # noqa: E402
from PySide6.QtCore import QPointF  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from sdstudio.canvas import Brush, Canvas  # noqa: E402

SIZE = 4096
SEGMENTS_PER_STROKE = 40
STROKES = 200



def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    app = QApplication.instance() or QApplication([])
    canvas = Canvas()
    canvas.resize(1400, 900)
    canvas.show()
    app.processEvents()
    rss_before = rss_mib()
    canvas.set_image(Image.new("RGB", (SIZE, SIZE), (120, 130, 140)))
    view, doc = canvas.view, canvas.document
    view.set_view(1.0, QPointF(-1500, -1500))  # 100%: the segments are on screen
    view.set_brush(Brush(size=64, hardness=0.7))
    rss_loaded = rss_mib()
    rng = random.Random(0)
    paint_ms: list[float] = []
    repaint_ms: list[float] = []
    for _ in range(STROKES):
        x, y = rng.uniform(1600, 2800), rng.uniform(1600, 2300)
        doc.begin_stroke(QPointF(x, y), view.brush)
        for _ in range(SEGMENTS_PER_STROKE):
            x, y = x + rng.uniform(-12, 12), y + rng.uniform(-12, 12)
            t0 = time.perf_counter()
            doc.stroke_to(QPointF(x, y))  # paints the mask and posts the dirty viewport rect
            t1 = time.perf_counter()
            app.processEvents()  # draws only the posted dirty region
            t2 = time.perf_counter()
            paint_ms.append((t1 - t0) * 1000)
            repaint_ms.append((t2 - t0) * 1000)
        doc.end_stroke()
    rss_after = rss_mib()
    print(f"canvas {SIZE}x{SIZE}, brush 64 px hardness 0.7, {len(paint_ms)} segments of ~12 px")
    print(
        f"  paint one segment (mask only):        median {statistics.median(paint_ms):.2f} ms, "
        f"p95 {percentile(paint_ms, 0.95):.2f} ms"
    )
    print(
        f"  paint + redraw dirty region (100%):   median {statistics.median(repaint_ms):.2f} ms, "
        f"p95 {percentile(repaint_ms, 0.95):.2f} ms   (goal < 8 ms)"
    )
    print(f"  RSS: {rss_before:.0f} MB before image, {rss_loaded:.0f} MB with image + mask, "
          f"{rss_after:.0f} MB after {STROKES} strokes")
    print(f"  undo history: {doc.undo_byte_count() / 2**10:.0f} KiB for {STROKES} strokes")
    for label, show in (("fit", view.fit), ("100%", view.actual_size)):
        show()
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            view.repaint()  # the whole widget, image and mask overlay
            times.append((time.perf_counter() - t0) * 1000)
        print(f"  full redraw {view.width()}x{view.height()} at {label}: median {statistics.median(times):.1f} ms")
    view.fit()
    big = Brush(size=300, hardness=0.5)
    big_ms: list[float] = []
    x, y = 2048.0, 2048.0
    doc.begin_stroke(QPointF(x, y), big)
    for _ in range(400):
        x, y = min(max(x + rng.uniform(-40, 40), 0), SIZE), min(max(y + rng.uniform(-40, 40), 0), SIZE)
        t0 = time.perf_counter()
        doc.stroke_to(QPointF(x, y))
        app.processEvents()
        big_ms.append((time.perf_counter() - t0) * 1000)
    doc.end_stroke()
    print(
        f"  big brush 300 px, ~40 px segments, at fit: median {statistics.median(big_ms):.2f} ms, "
        f"p95 {percentile(big_ms, 0.95):.2f} ms (paint + redraw)"
    )
    t0 = time.perf_counter()
    doc.undo()
    doc.redo()
    print(f"  undo + redo of that big stroke: {(time.perf_counter() - t0) * 1000:.2f} ms")
    t0 = time.perf_counter()
    doc.invert_mask()
    print(f"  invert whole mask (undoable): {(time.perf_counter() - t0) * 1000:.0f} ms, "
          f"undo history now {doc.undo_byte_count() / 2**10:.0f} KiB")


if __name__ == "__main__":
    main()
