"""The history store: every finished image saved as a PNG with its parameters, indexed in
SQLite for the gallery, deleted to a trash that can be restored until emptied.

Thread-safe: one connection guarded by a lock; file writes happen outside the lock.
Crash-safe: a file is complete under its final name before its row is committed, and
opening the store re-indexes whatever a crash left unindexed (see sync.py).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sdstudio.engine.params import request_infotext, request_json
from sdstudio.engine.pngmeta import save_png
from sdstudio.engine.request import Mode
from sdstudio.history import queries
from sdstudio.history.errors import disk_error
from sdstudio.history.files import move, save_input
from sdstudio.history.layout import (
    INDEX_NAME,
    INPUTS_DIR,
    default_root,
    image_name,
    thumbnail_name,
    trash_path,
)
from sdstudio.history.metadata import HISTORY_KEY, describe
from sdstudio.history.records import COLUMNS, Group, GroupBy, HistoryImage, Query, from_row
from sdstudio.history.schema import CorruptIndex, open_index
from sdstudio.history.sync import sync_with_disk
from sdstudio.history.thumbnails import save_thumbnail, thumbnail_from_file

if TYPE_CHECKING:
    from PIL.Image import Image

    from sdstudio.engine.request import Finished, GenerationRequest, ModelInfo

ALL = Query()  # every image not in the trash


class HistoryStore:
    """Open with `HistoryStore.open(root)`; `notices` then holds sentences for the window
    (an index rebuilt after damage, images found on disk and added back)."""

    def __init__(self, root: Path, db: sqlite3.Connection, notices: list[str]) -> None:
        self.root = root
        self.notices = notices
        self._db = db
        self._lock = threading.RLock()  # the connection
        self._naming = threading.Lock()  # picking a free file name and writing it

    @classmethod
    def open(cls, root: str | os.PathLike | None = None) -> HistoryStore:
        root = Path(root) if root is not None else default_root()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise disk_error("create the history folder", root, exc) from exc
        index = root / INDEX_NAME
        aside = None
        try:
            try:
                db = open_index(index)
            except CorruptIndex:
                aside = _move_aside(index)
                db = open_index(index)
        except (OSError, sqlite3.Error, CorruptIndex) as exc:
            raise disk_error("open the history index", root, exc) from exc
        try:
            report = sync_with_disk(db, root)
        except (OSError, sqlite3.Error) as exc:
            db.close()
            raise disk_error("read the history", root, exc) from exc
        notices = []
        if aside is not None:
            notices.append(
                f"The history index was damaged: it was moved aside to {aside.name} and rebuilt "
                f"from the {report.added} image files on disk (favourites were reset)."
            )
        elif report.added:
            notices.append(
                f"{report.added} images on disk were missing from the history and were added back."
            )
        return cls(root, db, notices)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- saving ------------------------------------------------------------------------

    def save_finished(
        self,
        request: GenerationRequest,
        finished: Finished,
        model: ModelInfo | None,
        parent_id: int | None = None,
    ) -> list[HistoryImage]:
        """Save every image of a finished job; the init image and mask are kept once for all."""
        init_file, mask_file = self.save_inputs(request)
        return [
            self.save(
                image,
                request,
                seed,
                model,
                parameters=info,
                parent_id=parent_id,
                init_file=init_file,
                mask_file=mask_file,
            )
            for image, seed, info in zip(
                finished.images, finished.seeds, finished.infos, strict=True
            )
        ]

    def save_inputs(self, request: GenerationRequest) -> tuple[str | None, str | None]:
        """Keep the init image and mask of an img2img / inpaint request; their relative paths."""
        kept: list[str | None] = []
        for image in (request.init_image, request.mask):
            if image is None or request.mode is Mode.TXT2IMG:
                kept.append(None)
                continue
            try:
                path = save_input(image, self.root / INPUTS_DIR)
            except OSError as exc:
                raise disk_error("keep the init image", self.root, exc) from exc
            kept.append(path.relative_to(self.root).as_posix())
        return kept[0], kept[1]

    def save(
        self,
        image: Image,
        request: GenerationRequest,
        seed: int,
        model: ModelInfo | None,
        *,
        parameters: str | None = None,
        parent_id: int | None = None,
        init_file: str | None = None,
        mask_file: str | None = None,
    ) -> HistoryImage:
        """Save one image: the PNG (atomic), its thumbnail, then its row. Raises HistoryError
        (kind DISK) when the disk refuses; nothing saved before is touched."""
        created = time.time()
        parameters = (
            parameters if parameters is not None else request_infotext(request, seed, model)
        )
        settings = request_json(request, seed, model)
        parent = self.get(parent_id) if parent_id is not None else None
        settings[HISTORY_KEY] = {
            k: v
            for k, v in {
                "created": created,
                "parent": parent.file if parent else None,
                "init_image": init_file,
                "mask": mask_file,
            }.items()
            if v is not None
        }
        with self._naming:  # not the connection's lock: readers never wait for a PNG encode
            try:
                file = self._free_name(image_name(created, seed))
                save_png(image, self.root / file, parameters, settings)
            except OSError as exc:
                raise disk_error("save the image", self.root, exc) from exc
        thumbnail: str | None = thumbnail_name(file)
        try:
            save_thumbnail(image, self.root / thumbnail)
        except OSError:
            thumbnail = None  # made again later from the image, which is what matters
        d = describe(parameters, settings)
        values = {
            "created": created, "prompt": d.prompt, "negative": d.negative_prompt,
            "parameters": parameters, "settings": json.dumps(settings, ensure_ascii=False, sort_keys=True),
            "file": file, "thumbnail": thumbnail, "model": d.model, "mode": d.mode, "seed": seed,
            "width": image.width, "height": image.height, "parent_id": parent.id if parent else None,
            "init_file": init_file, "mask_file": mask_file, "trashed": 0,
        }  # fmt: skip
        try:
            with self._write() as db:
                rid = queries.insert(db, values)
        except sqlite3.Error as exc:
            # The PNG is complete on disk: the next start indexes it from its metadata.
            raise disk_error("add the image to the history index", self.root, exc) from exc
        return self.get(rid)  # type: ignore[return-value]

    def _free_name(self, file: str) -> str:
        stem, dot, suffix = file.rpartition(".")
        candidate, n = file, 1
        while (self.root / candidate).exists() or trash_path(self.root, candidate).exists():
            n += 1
            candidate = f"{stem}-{n}{dot}{suffix}"
        (self.root / candidate).parent.mkdir(parents=True, exist_ok=True)
        return candidate

    # ---- reading -----------------------------------------------------------------------

    def get(self, image_id: int) -> HistoryImage | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {COLUMNS} FROM images WHERE id = ?", (image_id,)
            ).fetchone()
        return from_row(row) if row else None

    def get_many(self, ids: list[int]) -> dict[int, HistoryImage]:
        with self._lock:
            return queries.by_ids(self._db, ids)

    def ids(self, query: Query = ALL) -> list[int]:
        """Ids of every image matching `query`, newest first."""
        with self._lock:
            return queries.ids(self._db, query)

    def page(
        self, query: Query = ALL, limit: int = 100, after: HistoryImage | None = None
    ) -> list[HistoryImage]:
        """Up to `limit` images newest first; pass the last one of a page as `after` for the next."""
        with self._lock:
            return queries.page(self._db, query, limit, after)

    def count(self, query: Query = ALL) -> int:
        with self._lock:
            return queries.count(self._db, query)

    def groups(self, by: GroupBy, query: Query = ALL, limit: int = -1) -> list[Group]:
        """Days or prompts, newest first; `limit` < 0 means all."""
        with self._lock:
            return queries.groups(self._db, query, GroupBy(by), limit)

    def path(self, image: HistoryImage) -> Path:
        """Where the image file is now (in the trash when trashed)."""
        return trash_path(self.root, image.file) if image.trashed else self.root / image.file

    def thumbnail_path(self, image: HistoryImage) -> Path | None:
        """The thumbnail file, made now from the image if missing (call off the UI thread);
        None when the image file cannot be read."""
        name = image.thumbnail or thumbnail_name(image.file)
        path = self.root / name
        if path.exists():
            return path
        if thumbnail_from_file(self.path(image), path) is None:
            return None
        if image.thumbnail != name:
            try:
                with self._write() as db:
                    db.execute("UPDATE images SET thumbnail = ? WHERE id = ?", (name, image.id))
            except sqlite3.Error:
                pass  # the file is there, which is what counts; the column is filled next time
        return path

    # ---- changing ----------------------------------------------------------------------

    def set_favourite(self, image_id: int, favourite: bool = True) -> None:
        with self._write() as db:
            db.execute("UPDATE images SET favourite = ? WHERE id = ?", (int(favourite), image_id))

    def trash(self, ids: Iterable[int]) -> None:
        """Move images to the trash (files and all); `restore` brings them back."""
        self._set_trashed(list(ids), True)

    def restore(self, ids: Iterable[int]) -> None:
        self._set_trashed(list(ids), False)

    def _set_trashed(self, ids: list[int], trashed: bool) -> None:
        moved = []
        for image in self.get_many(ids).values():
            if image.trashed == trashed:
                continue
            home, away = self.root / image.file, trash_path(self.root, image.file)
            source, target = (home, away) if trashed else (away, home)
            try:
                move(source, target)
            except OSError as exc:
                raise disk_error(
                    "move the image to the trash" if trashed else "restore the image",
                    self.root,
                    exc,
                ) from exc
            moved.append((int(trashed), image.id))
        with self._write() as db:
            db.executemany("UPDATE images SET trashed = ? WHERE id = ?", moved)

    def empty_trash(self) -> int:
        """Delete the trashed images for good (files, thumbnails, unused inputs); how many."""
        doomed = self.page(Query(trashed=True), limit=1 << 30)
        for image in doomed:  # files first: a row left without its file is dropped at next start
            for path in (
                self.path(image),
                self.root / (image.thumbnail or thumbnail_name(image.file)),
            ):
                path.unlink(missing_ok=True)
        with self._write() as db:
            db.executemany("DELETE FROM images WHERE id = ?", [(i.id,) for i in doomed])
            inputs = {f for i in doomed for f in (i.init_file, i.mask_file) if f}
            still_used = {
                r[0]
                for r in db.execute(
                    "SELECT init_file FROM images UNION SELECT mask_file FROM images"
                )
                if r[0]
            }
        for rel in inputs - still_used:
            (self.root / rel).unlink(missing_ok=True)
        return len(doomed)

    def _write(self) -> _Transaction:
        return _Transaction(self._db, self._lock)


class _Transaction:
    """`with store._write() as db:` runs a write transaction under the store's lock."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self._db, self._lock = db, lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._db

    def __exit__(self, kind: type | None, *_: object) -> None:
        try:
            self._db.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self._lock.release()


def _move_aside(index: Path) -> Path:
    """Rename a damaged index (and its WAL files) to index.db.corrupt-<time>."""
    aside = index.with_name(f"{index.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{index}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{aside}{suffix}"))
    return aside
