"""Two processes saving into one history at once (two windows, or a window and the CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from sdstudio.engine.pngmeta import read_png_text
from sdstudio.history import HistoryStore

ROOT = Path(__file__).resolve().parents[2]
SAVES = 20

# Every image of both savers gets the same seed in the same seconds: the same file name, so
# the names collide all the time. Each saver paints its own colour to tell the pixels apart.
SAVER = """
import json, sys, time
from pathlib import Path
from PIL import Image
from sdstudio.engine.events import ResultImage
from sdstudio.engine.request import GenerationRequest
from sdstudio.history import HistoryStore

root, tag, colour, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = HistoryStore.open(root)
go = Path(root) / "go"
while not go.exists():
    time.sleep(0.005)
for n in range(count):
    prompt = f"{tag} {n}"
    request = GenerationRequest.create(prompt=prompt, seed=7, width=16, height=16)
    result = ResultImage(Image.new("RGB", (16, 16), colour), request, None, prompt + "\\nSeed: 7")
    image = store.save(result)
    print(json.dumps({"id": image.id, "file": image.file, "prompt": prompt}), flush=True)
store.close()
"""


def test_two_processes_saving_at_once_lose_nothing_and_never_share_a_file(tmp_path):
    HistoryStore.open(tmp_path).close()
    colours = {"left": (255, 0, 0), "right": (0, 0, 255)}
    procs = {
        tag: subprocess.Popen(
            [sys.executable, "-c", SAVER, str(tmp_path), tag, f"#{r:02x}{g:02x}{b:02x}", str(SAVES)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for tag, (r, g, b) in colours.items()
    }  # fmt: skip
    time.sleep(0.5)  # both have opened the history and wait
    (tmp_path / "go").touch()
    # Meanwhile a third party opens the history again and again: its re-indexing of files not
    # yet in the index must not get in the savers' way.
    while any(p.poll() is None for p in procs.values()):
        HistoryStore.open(tmp_path).close()
    saved = []
    for tag, proc in procs.items():
        out, err = proc.communicate()
        assert proc.returncode == 0, err
        saved += [(tag, json.loads(line)) for line in out.splitlines()]
    assert len(saved) == 2 * SAVES
    assert len({s["file"] for _, s in saved}) == 2 * SAVES  # every image its own file
    assert any(s["file"].endswith("-7-2.png") for _, s in saved)  # the names did collide

    store = HistoryStore.open(tmp_path)
    assert store.count() == 2 * SAVES and store.notices == []
    for tag, s in saved:
        image = store.get(s["id"])
        assert (image.file, image.prompt) == (s["file"], s["prompt"])
        path = store.path(image)
        assert Image.open(path).getpixel((0, 0)) == colours[tag]  # its own pixels
        assert read_png_text(path)[0].startswith(s["prompt"] + "\n")
    assert not list(tmp_path.rglob("*.tmp"))
    store.close()
