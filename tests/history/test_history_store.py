"""The history store: saving, queries, trash, rebuild from disk, damaged index, full disk."""

from __future__ import annotations

import errno
import sqlite3
import time

import pytest
from PIL import Image

from sdstudio.engine.events import ErrorKind
from sdstudio.engine.pngmeta import read_png_text
from sdstudio.engine.request import GenerationRequest, Inputs, Mode
from sdstudio.history import GroupBy, HistoryError, HistoryStore, Query
from tests.jobs import finished, result


def _image(color: str = "red", size: int = 32) -> Image.Image:
    return Image.new("RGB", (size, size), color)


def _request(prompt: str = "a red cat", **kw) -> GenerationRequest:
    return GenerationRequest.create(prompt=prompt, negative_prompt="blurry", width=32, height=32, steps=3, **kw)


def _save(store: HistoryStore, prompt: str = "a red cat", seed: int = 1, **kw):
    return store.save(result(_image(), _request(prompt, **kw), seed))


@pytest.fixture
def store(tmp_path):
    s = HistoryStore.open(tmp_path / "history")
    yield s
    s.close()


def test_saved_image_is_a_png_with_both_chunks_and_a_row(store):
    image = _save(store, "a cat\non two lines", seed=42)
    parameters, settings = read_png_text(store.path(image))
    assert parameters == result(_image(), _request("a cat\non two lines"), 42).infotext
    assert settings["sampling"]["seed"] == 42 and settings["model_info"]["name"] == "tiny"
    assert (store.root / image.thumbnail).is_file()
    assert (image.prompt, image.negative_prompt, image.seed, image.model, image.mode) == (
        "a cat\non two lines", "blurry", 42, "tiny", "txt2img")  # fmt: skip
    assert (image.width, image.height, image.favourite, image.trashed) == (32, 32, False, False)
    assert image.request_fields()["prompt"] == "a cat\non two lines"
    assert store.root.joinpath("index.db").is_file()
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_batch_keeps_init_image_and_mask_once_and_links_the_parent(store):
    parent = _save(store, "a house")
    inputs = Inputs.from_pil(_image("blue"), Image.new("L", (32, 32), 255), source=parent.file)
    request = _request("a house, snow", mode=Mode.INPAINT, inputs=inputs)
    saved = store.save_finished(finished(request, [_image(), _image("green")], [7, 8]))
    assert [s.seed for s in saved] == [7, 8]
    assert saved[0].init_file == saved[1].init_file and saved[0].mask_file == saved[1].mask_file
    assert len(list((store.root / "inputs").iterdir())) == 2
    assert Image.open(store.root / saved[0].mask_file).mode == "L"
    assert all(s.parent_id == parent.id and s.mode == "inpaint" for s in saved)
    assert "Seed: 8, Size: 32x32" in saved[1].parameters and "Mode: inpaint" in saved[1].parameters


def test_newest_first_with_keyset_paging(store):
    ids = [_save(store, f"image {i}", seed=i).id for i in range(7)]
    first = store.page(limit=3)
    second = store.page(limit=3, after=first[-1])
    third = store.page(limit=3, after=second[-1])
    assert [i.id for i in first + second + third] == ids[::-1]
    assert store.ids() == ids[::-1]
    assert store.count() == 7


def test_favourites_filter(store):
    a, b, c = (_save(store, p) for p in ("one", "two", "three"))
    store.set_favourite(a.id)
    store.set_favourite(c.id)
    store.set_favourite(c.id, False)
    assert store.ids(Query(favourites=True)) == [a.id]
    assert store.get(a.id).favourite
    assert store.count(Query(favourites=True)) == 1


def test_full_text_search_matches_word_prefixes(store):
    cat = _save(store, "a red cat sitting on a mat")
    dog = _save(store, "portrait of a dog, oil painting")
    both = _save(store, "cat and dog")
    assert store.ids(Query(text="cat")) == [both.id, cat.id]
    assert store.ids(Query(text="do")) == [both.id, dog.id]
    assert store.ids(Query(text="cat mat")) == [cat.id]
    assert store.ids(Query(text="blurry")) == []  # the negative prompt is not searched
    assert store.ids(Query(text='"*) OR ( NEAR')) == []  # FTS syntax in the box is just words
    assert store.count(Query(text="  ")) == 3
    assert store.ids(Query(text="cat", favourites=True)) == []


def test_groups_by_day_and_by_prompt(store):
    a = _save(store, "castle")
    _save(store, "forest")
    c = _save(store, "castle")
    day = time.strftime("%Y-%m-%d", time.localtime(a.created))
    groups = store.groups(GroupBy.DAY)
    assert [(g.key, g.count, g.newest_id) for g in groups] == [(day, 3, c.id)]
    assert store.count(Query(day=day)) == 3 and store.count(Query(day="1999-01-01")) == 0
    by_prompt = store.groups(GroupBy.PROMPT)
    assert [(g.key, g.count) for g in by_prompt] == [("castle", 2), ("forest", 1)]
    assert store.ids(Query(prompt="castle")) == [c.id, a.id]


def test_trash_restore_and_empty(store):
    keep = _save(store, "keep")
    request = _request("gone", mode=Mode.IMG2IMG, inputs=Inputs.from_pil(_image("blue")))
    gone = store.save(result(_image(), request, 2), init_file=store.save_inputs(request)[0])
    home = store.root / gone.file
    store.trash([gone.id])
    trashed = store.get(gone.id)
    assert trashed.trashed and not home.exists() and store.path(trashed).is_file()
    assert store.ids() == [keep.id] and store.ids(Query(trashed=True)) == [gone.id]
    assert store.ids(Query(text="gone")) == [] and store.ids(Query(text="gone", trashed=True)) == [gone.id]
    store.restore([gone.id])
    assert home.is_file() and store.ids() == [gone.id, keep.id]
    store.trash([gone.id])
    assert store.empty_trash() == 1
    assert store.get(gone.id) is None and store.count(Query(trashed=True)) == 0
    assert not list((store.root / "trash").rglob("*.png"))
    assert not (store.root / gone.thumbnail).exists()
    assert not (store.root / gone.init_file).exists()
    assert store.path(keep).is_file() and (store.root / keep.thumbnail).is_file()


def test_missing_index_is_rebuilt_from_the_files(tmp_path):
    store = HistoryStore.open(tmp_path)
    parent = _save(store, "first, a castle", seed=10)
    child = store.save(result(_image(), _request("second", mode=Mode.IMG2IMG, inputs=Inputs.from_pil(_image("blue"))), 11),
                       parent=parent)  # fmt: skip
    trashed = _save(store, "third", seed=12)
    store.trash([trashed.id])
    before = {i.file: i for i in store.page(limit=100) + store.page(Query(trashed=True), limit=100)}
    store.close()
    for f in tmp_path.glob("index.db*"):
        f.unlink()
    store = HistoryStore.open(tmp_path)
    assert store.notices == ["3 images on disk were missing from the history and were added back."]
    after = {i.file: i for i in store.page(limit=100) + store.page(Query(trashed=True), limit=100)}
    assert after.keys() == before.keys()
    for file, old in before.items():
        new = after[file]
        for name in ("prompt", "negative_prompt", "parameters", "seed", "model", "mode", "width", "trashed"):
            assert getattr(new, name) == getattr(old, name), name
        assert new.created == pytest.approx(old.created)
    assert after[child.file].parent_id == after[parent.file].id
    assert store.ids(Query(text="castle")) == [after[parent.file].id]
    store.close()


def test_damaged_index_is_moved_aside_and_rebuilt(tmp_path):
    store = HistoryStore.open(tmp_path)
    saved = [_save(store, f"picture {i}", seed=i).file for i in range(3)]
    store.close()
    for f in tmp_path.glob("index.db-*"):
        f.unlink()
    (tmp_path / "index.db").write_bytes(b"this is not a database at all" * 200)
    store = HistoryStore.open(tmp_path)
    assert len(store.notices) == 1 and "damaged" in store.notices[0] and "3 image" in store.notices[0]
    aside = list(tmp_path.glob("index.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].name in store.notices[0]
    assert sorted(i.file for i in store.page()) == sorted(saved)
    assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()


def test_png_without_metadata_and_broken_files_index_as_images_without_parameters(tmp_path):
    folder = tmp_path / "images" / "2024-01-02"
    folder.mkdir(parents=True)
    _image("purple", 40).save(folder / "plain.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    store = HistoryStore.open(tmp_path)
    images = {i.file.rsplit("/", 1)[1]: i for i in store.page()}
    plain, broken = images["plain.png"], images["broken.png"]
    assert plain.parameters is None and plain.prompt == "" and (plain.width, plain.height) == (40, 40)
    assert plain.request_fields() is None
    assert store.thumbnail_path(plain).is_file()  # made lazily
    assert store.get(plain.id).thumbnail is not None
    assert broken.parameters is None and store.thumbnail_path(broken) is None
    store.close()


def test_full_disk_raises_a_clear_error_and_keeps_what_was_saved(store, monkeypatch):
    kept = _save(store, "kept")

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("sdstudio.history.store.write_new", full)
    with pytest.raises(HistoryError) as info:
        _save(store, "lost")
    assert info.value.kind == ErrorKind.DISK and "disk is full" in str(info.value)
    assert store.ids() == [kept.id] and store.path(kept).is_file()


def test_index_write_failure_keeps_the_file_for_the_next_start(tmp_path, monkeypatch):
    store = HistoryStore.open(tmp_path)

    def refuse(*_a, **_k):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr("sdstudio.history.queries.insert", refuse)
    with pytest.raises(HistoryError, match="disk is full"):
        _save(store, "saved but not indexed")
    monkeypatch.undo()
    store.close()
    store = HistoryStore.open(tmp_path)
    assert [i.prompt for i in store.page()] == ["saved but not indexed"]
    store.close()


def test_unusable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(HistoryError, match="history folder"):
        HistoryStore.open(blocker / "history")


@pytest.mark.parametrize("suffix", ["jpg", "webp"])
def test_a1111_jpeg_and_webp_with_exif_parameters_are_indexed(tmp_path, suffix):
    from sdstudio.history.metadata import fields_from_file

    text = "a misty lake\nNegative prompt: people\nSteps: 28, Sampler: Euler a, CFG scale: 6, Seed: 42, Size: 40x40, Model: sdxl"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + text.encode("utf-16-be")  # as A1111 (piexif) writes it
    folder = tmp_path / "images" / "imported"
    folder.mkdir(parents=True)
    _image("teal", 40).save(folder / f"a1111.{suffix}", exif=exif)
    store = HistoryStore.open(tmp_path)
    (image,) = store.page()
    assert (image.prompt, image.negative_prompt, image.seed, image.model) == ("a misty lake", "people", 42, "sdxl")
    fields, reason = fields_from_file(store.path(image))
    assert reason == "" and fields["steps"] == 28
    store.close()


def test_an_index_that_cannot_be_written_is_an_error_not_damage(tmp_path, monkeypatch):
    store = HistoryStore.open(tmp_path)
    _save(store, "kept")
    store.close()

    def locked(_path):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr("sdstudio.history.schema.connect", locked)
    with pytest.raises(HistoryError, match="another program is using the history index"):
        HistoryStore.open(tmp_path)
    assert not list(tmp_path.glob("index.db.corrupt-*"))  # nothing moved aside


def test_a_parent_deleted_for_good_meanwhile_does_not_block_the_save(store):
    parent = _save(store, "parent")
    store.trash([parent.id])
    store.empty_trash()
    child = store.save_finished(finished(_request("child", inputs=Inputs(source=parent.file)), [_image()], [2]))[0]
    assert child.parent_id is None and store.get(child.id) is not None
