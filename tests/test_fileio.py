"""sdstudio.fileio: the one atomic write of the app, unique names, permissions, stale temp files."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image

from sdstudio import fileio
from sdstudio.fileio import stale_temp_files, write_atomic, write_new


@pytest.fixture
def usual_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _writer(data: bytes):
    return lambda f: f.write(data)


def test_write_atomic_replaces_and_fsyncs_file_and_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.fstat(fd).st_mode) or real_fsync(fd))
    target = tmp_path / "a.json"
    target.write_bytes(b"old")
    assert write_atomic(target, _writer(b"new")) == target
    assert target.read_bytes() == b"new"
    kinds = ["dir" if stat.S_ISDIR(m) else "file" for m in synced]
    assert kinds == ["file", "dir"]  # content durable before the rename, the rename after
    assert os.listdir(tmp_path) == ["a.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "a.json"
    target.write_bytes(b"old")

    def fail(f):
        f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        write_atomic(target, fail)
    with pytest.raises(OSError):
        write_new(tmp_path / "b.json", fail)
    assert os.listdir(tmp_path) == ["a.json"] and target.read_bytes() == b"old"


def _save_png(path):
    from sdstudio.engine.pngmeta import save_png

    save_png(Image.new("RGB", (4, 4)), path, "a cat")


def _save_settings(path):
    from sdstudio.settings import Settings, SettingsStore

    SettingsStore(path).save(Settings(prompt="a cat"))


def _save_thumbnail(path):
    from sdstudio.history.thumbnails import save_thumbnail

    save_thumbnail(Image.new("RGB", (4, 4)), path)


def _save_input(path):
    from sdstudio.history.files import save_input

    path.unlink(missing_ok=True)
    path.parent.joinpath("x").mkdir(exist_ok=True)
    save_input(Image.new("RGB", (4, 4)), path.parent / "x")


@pytest.mark.parametrize("save", [_save_png, _save_settings, _save_thumbnail, _save_input])
def test_every_file_the_app_writes_gets_the_usual_permissions(tmp_path, usual_umask, save):
    save(tmp_path / "out.file")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and all(p.stat().st_mode & 0o777 == 0o644 for p in files)  # mkstemp gave 0600
    assert not list(tmp_path.rglob("*.tmp"))


def test_write_new_never_replaces_and_takes_the_next_free_name(tmp_path):
    first = tmp_path / "img.png"
    first.write_bytes(b"someone else's")
    taken = {tmp_path / "img-2.png"}  # e.g. the name of an image in the trash
    got = write_new(first, _writer(b"mine"), taken=lambda p: p in taken)
    assert got == tmp_path / "img-3.png" and got.read_bytes() == b"mine"
    assert first.read_bytes() == b"someone else's"
    assert sorted(os.listdir(tmp_path)) == ["img-3.png", "img.png"]


def test_write_new_from_many_threads_gives_every_writer_its_own_file(tmp_path):
    got: list[tuple[bytes, os.PathLike]] = []

    def work(n: int) -> None:
        for k in range(15):
            data = f"{n}-{k}".encode()
            got.append((data, write_new(tmp_path / "same.png", _writer(data))))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({path for _, path in got}) == 90
    assert all(path.read_bytes() == data for data, path in got)


def test_without_hard_links_the_name_is_claimed_with_o_excl(tmp_path, monkeypatch):
    def no_links(*_a):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "a.txt").write_bytes(b"kept")
    got = write_new(tmp_path / "a.txt", _writer(b"new"))
    assert got.name == "a-2.txt" and got.read_bytes() == b"new"
    assert (tmp_path / "a.txt").read_bytes() == b"kept"
    assert sorted(os.listdir(tmp_path)) == ["a-2.txt", "a.txt"]


def test_create_exclusive_refuses_an_existing_name(tmp_path):
    with fileio.create_exclusive(tmp_path / "x") as f:
        f.write(b"1")
    with pytest.raises(FileExistsError):
        fileio.create_exclusive(tmp_path / "x")


@pytest.mark.skipif(os.name != "posix", reason="process liveness is asked with POSIX signal 0")
def test_only_temp_files_of_ended_processes_or_very_old_ones_are_stale(tmp_path, tmp_path_factory):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f".img-{int(ended.stdout)}-ab12cd34.tmp"
    alive = tmp_path / f".img-{os.getppid()}-ab12cd34.tmp"  # a process that is running
    mine = tmp_path / f".img-{os.getpid()}-ab12cd34.tmp"
    unknown = tmp_path / ".img-x1y2.tmp"  # an older version's name: no pid in it
    old = tmp_path / ".old-x1y2.tmp"
    for p in (dead, alive, mine, unknown, old):
        p.write_bytes(b"")
    past = time.time() - fileio.STALE_AFTER_S - 60
    os.utime(old, (past, past))
    (tmp_path / "linked").symlink_to(tmp_path_factory.mktemp("elsewhere"))
    (tmp_path / "linked" / old.name).write_bytes(b"not ours")
    os.utime(tmp_path / "linked" / old.name, (past, past))
    assert sorted(stale_temp_files(tmp_path)) == sorted([dead, old])
    assert stale_temp_files(tmp_path / "missing") == []
