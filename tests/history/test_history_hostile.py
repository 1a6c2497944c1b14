"""Foreign and hostile files in a history folder: the history always opens, every file gets a
row typed and in range as far as it can be read, and no path from a file leaves the folder."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import struct
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from sdstudio.engine.pngmeta import read_png_text
from sdstudio.history import HistoryStore, Query
from sdstudio.history.metadata import describe, fields_from_file, history_links
from sdstudio.history.schema import SCHEMA
from tests.history.history_helpers import a1111_text, write_png

INT64 = 2**63


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _with_chunks_before_iend(path: Path, *chunks: bytes) -> None:
    """Add raw chunks to a PNG just before IEND (after the pixels, where some tools put text)."""
    data = path.read_bytes()
    end = data.rindex(b"IEND") - 4
    path.write_bytes(data[:end] + b"".join(chunks) + data[end:])


def _bomb(path: Path) -> None:
    write_png(path, a1111_text("bomb"))
    payload = zlib.compress(b"a" * 50_000_000, 9)  # 50 MB of text in a 49 KB chunk
    _with_chunks_before_iend(path, _chunk(b"zTXt", b"parameters\0\0" + payload))


def _huge_text(path: Path) -> None:
    write_png(path, a1111_text("huge text"))
    _with_chunks_before_iend(path, _chunk(b"tEXt", b"Comment\0" + b"x" * 3_000_000))


def _text_after_pixels(path: Path) -> None:
    write_png(path)
    _with_chunks_before_iend(path, _chunk(b"tEXt", b"parameters\0" + a1111_text("after idat").encode()))


def _declares_13000_square(path: Path) -> None:
    ihdr = struct.pack(">IIBBBBB", 13000, 13000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b""))


def _truncated(path: Path) -> None:
    write_png(path, a1111_text("truncated"))
    path.write_bytes(path.read_bytes()[:60])


def _jpeg_with_bad_exif(path: Path) -> None:
    Image.new("RGB", (16, 16)).save(path.with_suffix(".jpg"), exif=b"Exif\0\0garbage-garbage")


def _json(text: str):
    return lambda path: write_png(path, None, text)


def _text(text: str):
    return lambda path: write_png(path, text)


def _both(text: str, settings: object):
    return lambda path: write_png(path, text, json.dumps(settings))


# id -> (writes the file, the prompt the index must show: as far as the file can be read)
HOSTILE = {
    "seed 2^63 (A1111 text)": (_text(a1111_text("s1", seed=INT64)), "s1"),
    "seed 1e30 (A1111 text)": (_text(a1111_text("s2").replace("Seed: 1", "Seed: 1e30")), "s2"),
    "seed Infinity (A1111 text)": (_text(a1111_text("s3").replace("Seed: 1", "Seed: Infinity")), "s3"),
    "seed NaN (A1111 text)": (_text(a1111_text("s4").replace("Seed: 1", "Seed: NaN")), "s4"),
    "size 1e400x5 (A1111 text)": (_text(a1111_text("s5", size="1e400x5")), "s5"),
    "size -3x0 (A1111 text)": (_text(a1111_text("s6", size="-3x0")), "s6"),
    "seed 2^63 (JSON)": (_json('{"prompt": "j1", "seed": 9223372036854775808}'), "j1"),
    "seed 1e30 (JSON)": (_json('{"prompt": "j2", "seed": 1e30}'), "j2"),
    "seed Infinity (JSON)": (_json('{"prompt": "j3", "seed": Infinity}'), "j3"),
    "seed NaN (JSON)": (_json('{"prompt": "j4", "seed": NaN}'), "j4"),
    "seed of 5000 digits (JSON)": (_both(a1111_text("j5"), None), "j5"),  # JSON replaced below
    "width 1e400 (JSON)": (_json('{"prompt": "j6", "width": 1e400, "height": -5}'), "j6"),
    "JSON is a list": (_json("[1, 2, 3]"), ""),
    "JSON is a string": (_json('"a string"'), ""),
    "JSON is a number": (_json("5"), ""),
    "JSON nested 100000 deep": (_json("[" * 100_000 + "]" * 100_000), ""),
    "JSON not JSON": (_json("{not json"), ""),
    "prompt is a number (JSON)": (_json('{"prompt": 5, "seed": 3}'), ""),
    "model.source: 5 (JSON)": (_json('{"prompt": "j7", "model": {"source": 5}}'), "j7"),
    "model_info.name: 5 (JSON)": (_json('{"prompt": "j8", "model_info": {"name": 5}}'), "j8"),
    "mode: nope (JSON)": (_json('{"prompt": "j9", "mode": "nope"}'), "j9"),
    "mode: nope, seed 2^64 (JSON v2)": (_json('{"version": 2, "prompt": {"prompt": "j11"}, "mode": "nope", "sampling": {"seed": 18446744073709551616}}'), "j11"),
    "version: 99 (JSON)": (_both(a1111_text("j10"), {"prompt": "x", "version": 99}), "j10"),
    "created NaN (JSON)": (_json('{"prompt": "c1", "history": {"created": NaN}}'), "c1"),
    "created 1e300 (JSON)": (_json('{"prompt": "c2", "history": {"created": 1e300}}'), "c2"),
    "created 'yesterday' (JSON)": (_json('{"prompt": "c3", "history": {"created": "yesterday"}}'), "c3"),
    "history is a list (JSON)": (_json('{"prompt": "c4", "history": [1]}'), "c4"),
    "parent: 7, mask: [] (JSON)": (_json('{"prompt": "c5", "history": {"parent": 7, "mask": []}}'), "c5"),
    "lone surrogate in prompt (JSON)": (_json('{"prompt": "bad \\ud800 text"}'), "bad ? text"),
    "zTXt bomb (50 MB inflated)": (_bomb, "bomb"),
    "3 MB text chunk": (_huge_text, "huge text"),
    "parameters after the pixels": (_text_after_pixels, "after idat"),
    "PNG declaring 13000x13000": (_declares_13000_square, ""),
    "truncated PNG": (_truncated, ""),
    "empty file": (lambda p: p.write_bytes(b""), ""),
    "text file named .png": (lambda p: p.write_text("hello"), ""),
    "JPEG with garbage EXIF": (_jpeg_with_bad_exif, ""),
}


def _write_hostile(folder: Path, case: str) -> None:
    make, _ = HOSTILE[case]
    path = folder / f"{abs(hash(case))}.png"
    make(path)
    if case.startswith("seed of 5000 digits"):
        _with_chunks_before_iend(path, _chunk(b"tEXt", b"sdstudio\0" + b'{"prompt": "x", "seed": 1' + b"0" * 5000 + b"}"))


def _assert_storable(image) -> None:
    """What SQLite holds is what a row must be: typed, finite, in range."""
    assert isinstance(image.prompt, str) and isinstance(image.model, str)
    for value in (image.seed, image.width, image.height):
        assert value is None or (isinstance(value, int) and -INT64 <= value < INT64)
    assert math.isfinite(image.created) and 0 <= image.created < 253402300800
    assert image.init_file is None and image.mask_file is None


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_file_never_stops_the_history_and_is_read_as_far_as_it_can_be(tmp_path, case):
    folder = tmp_path / "images" / "2024-05-06"
    good = write_png(folder / "good.png", a1111_text("a good image", seed=5))
    _write_hostile(folder, case)
    store = HistoryStore.open(tmp_path)
    images = {i.file.rsplit("/", 1)[1]: i for i in store.page(limit=10)}
    assert len(images) == 2 and images.pop(good.name).prompt == "a good image"
    (hostile,) = images.values()
    _assert_storable(hostile)
    assert hostile.prompt == HOSTILE[case][1]
    if case.startswith("seed ") and "5000" not in case:
        assert hostile.seed is None  # not -1 ("random") nor a wrapped or clipped number
    assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_dropped_hostile_file_gives_a_reason_never_an_exception(tmp_path):
    for case in HOSTILE:
        _write_hostile(tmp_path, case)
    for path in tmp_path.iterdir():
        fields, reason = fields_from_file(path)
        assert (fields is None) == bool(reason)


@pytest.mark.skipif(os.name != "posix", reason="byte file names and pipes are POSIX")
def test_a_pipe_or_an_undecodable_name_never_blocks_or_breaks_the_opening(tmp_path, drop_png):
    drop_png("good.png", a1111_text("good"))
    folder = os.fsencode(tmp_path / "images" / "2024-05-06")
    write_png(Path(os.fsdecode(folder + b"/bad-\xff-name.png")), a1111_text("bad name"))
    os.mkfifo(tmp_path / "images" / "2024-05-06" / "pipe.png")  # reading it would wait forever
    store = HistoryStore.open(tmp_path)
    assert [i.prompt for i in store.page()] == ["good"]
    assert store.notices[-1].startswith(f"1 image files in {tmp_path / 'images'} were skipped")
    store.close()


def test_text_caps_do_not_hide_the_parameters_of_the_same_file(tmp_path):
    path = tmp_path / "x.png"
    _bomb(path)
    _with_chunks_before_iend(path, _chunk(b"tEXt", b"Comment\0" + b"y" * 3_000_000))
    parameters, _ = read_png_text(path)
    assert parameters is not None and parameters.startswith("bomb")


# ---- paths from metadata ---------------------------------------------------------------------


@pytest.fixture
def victim(tmp_path_factory):
    path = tmp_path_factory.mktemp("outside") / "victim.png"
    Image.new("RGB", (4, 4)).save(path)
    return path


def test_paths_named_in_metadata_never_leave_the_history_folder(tmp_path, drop_png, victim):
    other = drop_png("other.png", a1111_text("another history image"))
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "link.png").symlink_to(victim)
    Image.new("RGB", (4, 4)).save(tmp_path / "inputs" / "good.png")
    hostile = {
        "absolute": str(victim),
        "dot-dot": "../" * 12 + str(victim).lstrip("/"),
        "inputs-dot-dot": f"inputs/../../{victim.parent.name}/{victim.name}",
        "link-out": "inputs/link.png",
        "history-image": "images/2024-05-06/other.png",  # inside, but not an input
        "backslashes": "inputs\\..\\..\\victim.png",
        "windows-drive": "C:/Windows/win.ini",
    }
    for name, path in hostile.items():
        drop_png(f"{name}.png", a1111_text(name), {"history": {"init_image": path, "mask": path, "parent": path}})
    drop_png("fine.png", a1111_text("fine"), {"history": {"init_image": "inputs/good.png", "mask": "inputs/./good.png"}})
    store = HistoryStore.open(tmp_path)
    rows = {i.prompt: i for i in store.page(limit=100)}
    for name in hostile:
        assert (rows[name].init_file, rows[name].mask_file) == (None, None), name
    assert rows["history-image"].parent_id == rows["another history image"].id  # a real parent
    assert rows["absolute"].parent_id is None
    assert (rows["fine"].init_file, rows["fine"].mask_file) == ("inputs/good.png", "inputs/good.png")
    store.trash([i.id for i in rows.values() if i.file != "images/2024-05-06/other.png"])
    assert store.empty_trash() == len(hostile) + 1
    assert victim.is_file() and other.is_file()
    assert not (tmp_path / "inputs" / "good.png").exists()  # the one real input, now unused
    store.close()


def test_empty_trash_never_deletes_outside_the_folder_whatever_an_old_index_says(tmp_path, drop_png, victim):
    """An index written before paths were checked may hold any path: it is checked again."""
    drop_png("a.png", a1111_text("a"))
    link = drop_png("b.png", a1111_text("b")).with_name("link.png")
    link.symlink_to(victim)  # an image that is a link: trash and delete act on the link
    store = HistoryStore.open(tmp_path)
    store._db.execute(
        "UPDATE images SET init_file = ?, mask_file = '../../victim.png', thumbnail = ?",
        (str(victim), str(victim)),
    )
    store.trash(store.ids())
    assert store.empty_trash() == 3
    assert victim.is_file() and not os.path.lexists(link)
    assert store.count(Query(trashed=True)) == 0
    store.close()


def test_thumbnails_are_made_inside_the_folder_and_never_of_giant_images(tmp_path, drop_png, victim, monkeypatch):
    drop_png("a.png", a1111_text("a"))
    store = HistoryStore.open(tmp_path)
    image = store.page()[0]
    store._db.execute("UPDATE images SET thumbnail = ?", (str(victim.with_name("thumb.jpg")),))
    made = store.thumbnail_path(store.get(image.id))
    assert made == tmp_path / "thumbs" / "2024-05-06" / "a.jpg" and made.is_file()
    assert sorted(p.name for p in victim.parent.iterdir()) == ["victim.png"]
    made.unlink()
    monkeypatch.setattr("sdstudio.history.thumbnails.MAX_SOURCE_PIXELS", 15 * 15)  # a is 16x16
    assert store.thumbnail_path(image) is None
    store.close()


# ---- property tests --------------------------------------------------------------------------

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_JSON = st.recursive(
    _SCALARS | st.sampled_from(["/etc/passwd", "../../x", "inputs/a.png", "images/a.png", 2**70]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=25,
)
_KEYS = ["prompt", "negative_prompt", "seed", "width", "height", "mode", "model", "model_info",
         "version", "history", "sampling", "extent", "inputs", "created", "parent", "init_image", "mask", "name", "source"]  # fmt: skip
# Objects shaped like the app's chunk (its keys, at two levels), with anything as values.
_APP_LIKE = st.recursive(
    _JSON, lambda inner: st.dictionaries(st.sampled_from(_KEYS), inner, max_size=6), max_leaves=25
)


@settings(max_examples=150, deadline=None)
@given(parameters=st.none() | st.text(max_size=200), data=_JSON | _APP_LIKE)
def test_metadata_ingestion_of_any_json_never_raises_and_fits_the_index(parameters, data):
    d = describe(parameters, data)
    for value in (d.seed, d.width, d.height):
        assert value is None or (isinstance(value, int) and -INT64 <= value < INT64)
    assert all(isinstance(s, str) for s in (d.prompt, d.negative_prompt, d.model, d.mode))
    root = Path(tempfile.gettempdir()) / "no-such-history"
    links = history_links(data if isinstance(data, dict) else None, root)
    assert set(links) <= {"created", "parent", "init_image", "mask"}
    assert all(isinstance(v, str) and not v.startswith(("/", "..")) for k, v in links.items() if k != "created")
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    db.execute(  # SQLite itself takes the values: no int overflow, no NaN, no lone surrogate
        "INSERT INTO images (created, prompt, negative, model, mode, seed, width, height, file) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'f')",
        (links.get("created", 0.0), d.prompt, d.negative_prompt, d.model, d.mode, d.seed, d.width, d.height),
    )


_FILE = st.one_of(
    st.tuples(st.just("json"), st.one_of(_JSON, _APP_LIKE).map(lambda v: json.dumps(v, allow_nan=True))),
    st.tuples(st.just("text"), st.text(max_size=300)),
    st.tuples(st.just("bytes"), st.binary(max_size=200)),
    st.tuples(st.just("case"), st.sampled_from(sorted(HOSTILE))),
)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.lists(_FILE, min_size=1, max_size=6))
def test_history_opens_with_random_hostile_files_and_keeps_the_good_images(files):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "images" / "2024-05-06"
        good = [write_png(folder / f"good{n}.png", a1111_text(f"good image {n}", seed=n)) for n in range(2)]
        for n, (kind, payload) in enumerate(files):
            path = folder / f"hostile{n}.png"
            if kind == "json":
                write_png(path, None, payload)
            elif kind == "text":
                write_png(path, payload)
            elif kind == "bytes":
                path.write_bytes(payload)
            else:
                _write_hostile(folder, payload)
        store = HistoryStore.open(root)
        images = store.page(limit=100)
        prompts = {i.prompt for i in images}
        assert {"good image 0", "good image 1"} <= prompts
        assert len(images) == len(list(folder.iterdir())) and len(good) == 2
        for image in images:
            assert image.seed is None or -INT64 <= image.seed < INT64
            assert math.isfinite(image.created)
        store.close()


def test_a_text_with_no_prompt_and_no_parameters_is_no_parameters(tmp_path):
    """The add-on list read beside the fields must not make an empty text look like parameters."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "\nNegative prompt: blurry")
    Image.new("RGB", (8, 8)).save(tmp_path / "empty.png", pnginfo=info)
    fields, reason = fields_from_file(tmp_path / "empty.png")
    assert fields is None and "could not be read" in reason
