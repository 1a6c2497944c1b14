"""The LoRA browser on a big folder: 2000 LoRAs, 1000 with a 512x768 preview picture.

Figures: the idle event loop's longest stall (the machine's floor), the Qt thread's time in
refresh() itself, time until the names are listed, until every
thumbnail shows, and the longest stall of the Qt event loop meanwhile (5 ms heartbeat timer).
Goals: names listed < 1 s; no stall over 30 ms. On a loaded machine the stalls include the
scheduler's (compare the idle floor): the listing is Python and shares the GIL with the Qt
thread; reading the pictures (QImageReader) releases it.
Run: QT_QPA_PLATFORM=offscreen python bench/bench_networks.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LORAS, WITH_PREVIEW = 2000, 1000
GOALS = {"listed_s": 1.0, "max_stall_ms": 30.0}


def make_folder(folder: Path) -> None:
    from PIL import Image

    picture = Image.linear_gradient("L").resize((512, 768)).convert("RGB")
    picture.save(folder / "template.png")
    data = (folder / "template.png").read_bytes()
    (folder / "template.png").unlink()
    for n in range(LORAS):
        (folder / f"lora_{n:04d}.safetensors").write_bytes(b"\0" * 64)
        if n < WITH_PREVIEW:
            (folder / f"lora_{n:04d}.preview.png").write_bytes(data)


def main() -> int:
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from sdstudio.engine.networks import NetworkKind, list_networks
    from sdstudio.ui.networks_panel import NetworksPanel

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_folder(folder)
        panel = NetworksPanel(lambda kind: (list_networks(kind, folder) if kind is NetworkKind.LORA else [], tmp))
        panel.resize(400, 800)
        panel.show()
        gaps: list[float] = []
        clock = QElapsedTimer()
        heartbeat = QTimer(interval=5)
        last = [0.0]

        def beat() -> None:
            now = clock.nsecsElapsed() / 1e6
            gaps.append(now - last[0])
            last[0] = now

        heartbeat.timeout.connect(beat)
        figures: dict[str, float] = {}
        lora_list = panel.lists[NetworkKind.LORA]
        clock.start()
        heartbeat.start()
        idle_until = time.perf_counter() + 1.0  # the floor: stalls of an idle loop on this machine
        while time.perf_counter() < idle_until:
            app.processEvents()
            time.sleep(0.001)
        figures["idle_stall_ms"] = max(gaps) - 5
        gaps.clear()
        start = time.perf_counter()
        panel.refresh()
        figures["refresh_call_ms"] = (time.perf_counter() - start) * 1000
        while lora_list.count() < LORAS:
            app.processEvents()
        figures["listed_s"] = time.perf_counter() - start
        figures["listing_stall_ms"] = max(gaps) - 5
        last_picture = lora_list.item(WITH_PREVIEW - 1)  # read last: the worker goes in order
        while not last_picture.data(Qt.ItemDataRole.UserRole + 1):  # (has_thumbnail scans every row)
            app.processEvents()
            time.sleep(0.001)
        assert panel.has_thumbnail(NetworkKind.LORA, "lora_0000")
        figures["thumbnails_s"] = time.perf_counter() - start
        heartbeat.stop()
        figures["max_stall_ms"] = max(gaps) - 5
        figures["p99_stall_ms"] = sorted(gaps)[int(len(gaps) * 0.99)] - 5
    for name, value in figures.items():
        goal = GOALS.get(name)
        verdict = "" if goal is None else ("  ok" if value <= goal else f"  OVER (goal {goal})")
        print(f"{name:16} {value:8.2f}{verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
