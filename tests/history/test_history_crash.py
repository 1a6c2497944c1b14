"""kill -9 while saving: the index stays healthy and at most the image in flight is lost."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sdstudio.history import HistoryStore, Query

ROOT = Path(__file__).resolve().parents[2]

SAVER = """
import sys
from PIL import Image
from sdstudio.engine.request import GenerationRequest
from sdstudio.history import HistoryStore
from tests.jobs import result

store = HistoryStore.open(sys.argv[1])
print("ready", flush=True)
for n in range(100000):
    request = GenerationRequest.create(prompt=f"crash test {n}", width=48, height=48)
    store.save(result(Image.effect_noise((48, 48), 40 + n % 50).convert("RGB"), request, n, None))
    print("saved", flush=True)
"""


def _run_and_kill(root: Path, rng: random.Random) -> int:
    """Start a saver, kill -9 it at a random moment; how many saves it reported done."""
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(root)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert proc.stdout.readline().strip() == "saved"  # a loaded machine still gets some saves in
    time.sleep(rng.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    return 1 + out.count("saved")


def test_kill_during_saves_loses_at_most_the_image_in_flight(tmp_path):
    rng = random.Random(1234)
    done = 0
    for _ in range(5):
        reported = _run_and_kill(tmp_path, rng)
        db = sqlite3.connect(tmp_path / "index.db")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        store = HistoryStore.open(tmp_path)
        images = store.page(Query(), limit=1_000_000)
        assert all(store.path(i).is_file() for i in images)
        # Every save that returned is kept; the one in flight is either lost or, when its
        # file was complete, indexed again from its metadata.
        assert done + reported <= len(images) <= done + reported + 1
        done = len(images)
        assert not list(tmp_path.rglob("*.tmp"))
        assert store.count(Query(text="crash")) == len(images)
        store.close()
    assert done > 5
