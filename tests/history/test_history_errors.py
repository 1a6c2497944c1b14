"""Full disk, busy index, permissions: every change gives the history's own clear error, the
right words for the cause, and never a file moved without its row saying so."""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from pathlib import Path

import pytest

from sdstudio.history import HistoryError, HistoryStore, Query
from sdstudio.history.errors import disk_error
from tests.history.history_helpers import a1111_text

FREE_SPACE = "free some space"


class RefusingDb:
    """The store's connection, refusing statements that start with one of `verbs` the way
    SQLite does when the disk is full (same error class, code and words)."""

    def __init__(self, db: sqlite3.Connection, *verbs: str) -> None:
        self.db, self.verbs = db, verbs

    def _check(self, sql: str) -> None:
        if sql.lstrip().upper().startswith(self.verbs):
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorcode, exc.sqlite_errorname = 13, "SQLITE_FULL"
            raise exc

    def execute(self, sql: str, *args):
        self._check(sql)
        return self.db.execute(sql, *args)

    def executemany(self, sql: str, *args):
        self._check(sql)
        return self.db.executemany(sql, *args)

    def close(self) -> None:
        self.db.close()


@pytest.fixture
def store(tmp_path, drop_png):
    drop_png("a.png", a1111_text("first"))
    drop_png("b.png", a1111_text("second"))
    s = HistoryStore.open(tmp_path)
    yield s
    s.close()


def _full(store: HistoryStore, *verbs: str) -> None:
    store._db = RefusingDb(store._db, *verbs)  # type: ignore[assignment]


CHANGES = {
    "favourite": lambda s, ids: s.set_favourite(ids[0]),
    "trash": lambda s, ids: s.trash(ids),
    "restore": lambda s, ids: s.restore(ids),
    "empty trash": lambda s, ids: s.empty_trash(),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_full_disk_is_the_historys_error_saying_free_some_space(store, change):
    ids = store.ids()
    if change in ("restore", "empty trash"):
        store.trash(ids)
    _full(store, "UPDATE", "DELETE")
    with pytest.raises(HistoryError) as info:
        CHANGES[change](store, ids)
    assert "disk is full" in str(info.value) and FREE_SPACE in str(info.value)
    assert not isinstance(info.value, sqlite3.Error)


def test_trash_never_moves_a_file_without_recording_it(store):
    images = store.page()
    homes = [store.path(i) for i in images]
    _full(store, "UPDATE")
    with pytest.raises(HistoryError):
        store.trash([i.id for i in images])
    store._db = store._db.db  # the disk has room again
    assert all(p.is_file() for p in homes)  # the files went back home
    assert store.count() == 2 and store.count(Query(trashed=True)) == 0
    store.trash([images[0].id])
    _full(store, "UPDATE")
    with pytest.raises(HistoryError):
        store.restore([images[0].id])
    store._db = store._db.db
    assert store.path(store.get(images[0].id)).is_file() and not homes[0].exists()


def test_a_busy_index_says_another_program_uses_it(store, tmp_path):
    store.trash(store.ids()[:1])
    trashed = store.path(store.page(Query(trashed=True))[0])
    store._db.execute("PRAGMA busy_timeout = 50")  # the real wait is 10 s
    other = sqlite3.connect(tmp_path / "index.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        for change, act in CHANGES.items():
            with pytest.raises(HistoryError) as info:
                act(store, store.ids())
            assert "another program is using the history index" in str(info.value), change
            assert FREE_SPACE not in str(info.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert trashed.is_file()  # emptying the trash stopped before deleting anything
    store.set_favourite(store.ids()[0])
    assert store.count(Query(favourites=True)) == 1


def test_permission_denied_says_so_and_not_free_some_space(store, monkeypatch):
    def refuse(*_a):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("sdstudio.history.files.os.replace", refuse)
    with pytest.raises(HistoryError) as info:
        store.trash(store.ids())
    message = str(info.value)
    assert "permission was denied" in message and FREE_SPACE not in message
    monkeypatch.undo()
    assert store.count() == 2


def test_a_file_where_a_folder_should_be_is_named_as_such(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(HistoryError) as info:
        HistoryStore.open(tmp_path / "file" / "history")
    message = str(info.value)
    assert "is a file, not a folder" in message and FREE_SPACE not in message


@pytest.mark.parametrize(
    ("exc", "words", "full"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "the disk is full", True),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk quota is used up", True),
        (OSError(errno.EACCES, "Permission denied"), "permission was denied", False),
        (OSError(errno.EROFS, "Read-only file system"), "read-only", False),
        (OSError(errno.ENOTDIR, "Not a directory"), "not a folder", False),
        (OSError(errno.EIO, "Input/output error"), "read or write error", False),
        (sqlite3.OperationalError("database or disk is full"), "the disk is full", True),
        (sqlite3.OperationalError("database is locked"), "another program", False),
        (sqlite3.OperationalError("attempt to write a readonly database"), "cannot be written", False),
        (sqlite3.DatabaseError("something odd"), "something odd", False),
    ],
)
def test_free_some_space_is_said_only_when_the_disk_is_full(exc, words, full):
    message = str(disk_error("save the image", Path("/h"), exc))
    assert words in message and (FREE_SPACE in message) == full


def test_two_corruptions_within_one_second_keep_both_copies(tmp_path, drop_png, monkeypatch):
    drop_png("a.png", a1111_text("first"))
    monkeypatch.setattr(time, "strftime", lambda *_a: "20240506-101010")  # the same second
    for n in range(2):
        (tmp_path / "index.db").write_bytes(f"damage number {n}".encode() * 300)
        for f in tmp_path.glob("index.db-*"):
            f.unlink()
        store = HistoryStore.open(tmp_path)
        assert "damaged" in store.notices[0] and store.count() == 1
        store.close()
    copies = sorted(p.name for p in tmp_path.glob("index.db.corrupt-*") if not p.name.endswith(("-wal", "-shm")))
    assert copies == ["index.db.corrupt-20240506-101010", "index.db.corrupt-20240506-101010-2"]
    contents = {(tmp_path / c).read_bytes()[:15] for c in copies}
    assert contents == {b"damage number 0", b"damage number 1"}
    assert os.path.exists(tmp_path / "index.db")
