"""Bring the index in line with the files on disk, which are the truth.

Run when the store opens: images missing from the index (a crash between file and row, a
deleted or rebuilt index) are indexed from their own metadata, rows whose file is gone
are dropped, and the trash flag follows the folder a file is in.

Another process may save, trash or open the same history meanwhile: the rows are read before
the folders, a row is dropped only if its file is still nowhere inside the write transaction,
and a file that process indexed first keeps that row. Any file, however hostile, gives a row
(as far as it can be read) and never stops the history from opening.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdstudio.engine.pngmeta import read_png_text
from sdstudio.fileio import stale_temp_files
from sdstudio.history import queries
from sdstudio.history.layout import (
    IMAGE_SUFFIXES,
    IMAGES_DIR,
    INPUTS_DIR,
    THUMBS_DIR,
    TRASH_DIR,
    thumbnail_name,
)
from sdstudio.history.metadata import history_links, index_row


@dataclass
class SyncReport:
    added: int = 0  # files indexed from their metadata
    unnamed: int = 0  # files skipped: their names are not text the index can hold


def scan(root: Path) -> tuple[dict[str, bool], int]:
    """Every image file of the history: relative path ("images/...") -> is it in the trash;
    and how many were skipped for a file name that is not valid UTF-8.

    Only regular files (or links to them) count: a pipe or device named .png would block the
    read of its metadata forever. Links to folders are not followed, as with os.walk.
    """
    found: dict[str, bool] = {}
    unnamed = 0
    # The trash first, so a file present in both places counts as not trashed.
    for trashed, base in ((True, root / TRASH_DIR), (False, root)):
        for rel in _image_files(base, IMAGES_DIR):
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:  # undecodable bytes (surrogateescape): SQLite refuses it
                unnamed += 1
                continue
            found[rel] = trashed
    return found, unnamed


def _image_files(base: Path, top: str) -> Iterator[str]:
    stack = [top]
    while stack:
        rel = stack.pop()
        try:
            entries = list(os.scandir(base / rel))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(f"{rel}/{entry.name}")
                elif entry.name.lower().endswith(IMAGE_SUFFIXES) and entry.is_file():
                    yield f"{rel}/{entry.name}"
            except OSError:
                continue


def sync_with_disk(db: sqlite3.Connection, root: Path) -> SyncReport:
    for folder in (root / IMAGES_DIR, root / TRASH_DIR, root / THUMBS_DIR, root / INPUTS_DIR):
        for tmp in stale_temp_files(folder):
            tmp.unlink(missing_ok=True)
    # Rows before files: a file saved meanwhile is then at worst indexed twice (the second
    # insert is ignored), never taken for a row whose file is gone.
    rows = {
        file: (rid, bool(t)) for rid, file, t in db.execute("SELECT id, file, trashed FROM images")
    }
    disk, unnamed = scan(root)
    gone = [(rid, file) for file, (rid, _) in rows.items() if file not in disk]
    flips = [(int(disk[f]), rid) for f, (rid, t) in rows.items() if f in disk and t != disk[f]]
    new = [_row_from_file(root, f, trashed) for f, trashed in disk.items() if f not in rows]
    if not (gone or flips or new):
        return SyncReport(unnamed=unnamed)
    new.sort(key=lambda values: values["created"])  # ids follow time, as for saved images
    db.execute("BEGIN IMMEDIATE")
    try:
        # A file moved to or from the trash while the folders were read is still somewhere.
        gone = [(rid, f) for rid, f in gone if not _still_there(root, f)]
        db.executemany("DELETE FROM images WHERE id = ?", [(rid,) for rid, _ in gone])
        db.executemany("UPDATE images SET trashed = ? WHERE id = ?", flips)
        added = 0
        for values in new:
            parent = values.pop("parent_file", None)
            rid = queries.insert(db, values, keep_existing=True)
            added += rid is not None
            if parent and rid is not None:
                db.execute(
                    "UPDATE images SET parent_id = (SELECT id FROM images WHERE file = ?) WHERE id = ?",
                    (parent, rid),
                )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return SyncReport(added=added, unnamed=unnamed)


def _still_there(root: Path, file: str) -> bool:
    return os.path.lexists(root / file) or os.path.lexists(root / TRASH_DIR / file)


def _row_from_file(root: Path, file: str, trashed: bool) -> dict[str, Any]:
    """The row of an image found on disk; a file nothing can be read from still gets one."""
    path = root / TRASH_DIR / file if trashed else root / file
    try:
        return _row_from_metadata(root, path, file, trashed)
    except Exception:  # noqa: BLE001 - one foreign file must never stop the history opening
        return {"created": _mtime(path), "file": file, "trashed": int(trashed)}


def _row_from_metadata(root: Path, path: Path, file: str, trashed: bool) -> dict[str, Any]:
    parameters, settings = read_png_text(path)
    links = history_links(settings, root)
    thumb = thumbnail_name(file)
    row = index_row(
        file, parameters, settings,
        created=links.get("created") or _mtime(path),
        size=_image_size(path),
        thumbnail=thumb if (root / thumb).exists() else None,
        init_file=links.get("init_image"),
        mask_file=links.get("mask"),
        trashed=trashed,
    )  # fmt: skip
    return row | {"parent_file": links.get("parent")}


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _image_size(path: Path) -> tuple[int | None, int | None]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - Pillow raises many kinds on a malformed file (bombs too)
        return None, None
