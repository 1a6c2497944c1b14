"""The history store: every finished image saved as a PNG with its parameters, indexed in
SQLite for the gallery, deleted to a trash that can be restored until emptied.

Thread-safe: one connection guarded by a lock; file writes happen outside the lock.
Crash-safe: a file is complete under its final name before its row is committed, and
opening the store re-indexes whatever a crash left unindexed (see sync.py).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sdstudio.engine.params import result_json
from sdstudio.engine.pngmeta import png_writer
from sdstudio.engine.request import Mode
from sdstudio.fileio import write_new
from sdstudio.history import queries
from sdstudio.history.errors import HistoryError, disk_error
from sdstudio.history.files import move, save_input
from sdstudio.history.layout import (
    IMAGES_DIR,
    INDEX_NAME,
    INPUTS_DIR,
    THUMBS_DIR,
    TRASH_DIR,
    contained,
    default_root,
    image_name,
    thumbnail_name,
    trash_path,
)
from sdstudio.history.metadata import HISTORY_KEY, index_row
from sdstudio.history.records import COLUMNS, Group, GroupBy, HistoryImage, Query, from_row
from sdstudio.history.schema import CorruptIndex, open_index
from sdstudio.history.sync import sync_with_disk
from sdstudio.history.thumbnails import save_thumbnail, thumbnail_from_file

if TYPE_CHECKING:
    from sdstudio.engine.events import Finished, ResultImage
    from sdstudio.engine.request import GenerationRequest

ALL = Query()  # every image not in the trash
_INDEX_SUFFIXES = ("", "-wal", "-shm")


class HistoryStore:
    """Open with `HistoryStore.open(root)`; `notices` then holds sentences for the window
    (an index rebuilt after damage, images found on disk and added back)."""

    def __init__(self, root: Path, db: sqlite3.Connection, notices: list[str]) -> None:
        self.root = root
        self.notices = notices
        self._db = db
        self._lock = threading.RLock()  # the connection; file writes happen outside it

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
        except (OSError, sqlite3.Error) as exc:  # files themselves never raise (see sync.py)
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
        if report.unnamed:
            notices.append(
                f"{report.unnamed} image files in {root / 'images'} were skipped: their names are "
                "not valid text (rename them to show them in the history)."
            )
        return cls(root, db, notices)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- saving ------------------------------------------------------------------------

    def save_finished(self, finished: Finished) -> list[HistoryImage]:
        """Save every image of a finished job, each with the request that made it. The init
        image and mask are kept once for all; the parent is the history image the request's
        lineage names (`inputs.source`, a file of this history), if it is still here."""
        if not finished.results:
            return []
        request = finished.results[0].request
        init_file, mask_file = self.save_inputs(request)
        parent = self.by_file(request.inputs.source) if request.inputs.source else None
        return [
            self.save(result, parent=parent, init_file=init_file, mask_file=mask_file)
            for result in finished.results
        ]

    def save_inputs(self, request: GenerationRequest) -> tuple[str | None, str | None]:
        """Keep the init image and mask of an img2img / inpaint request; their relative paths."""
        kept: list[str | None] = []
        for data in (request.inputs.init_image, request.inputs.mask):
            if data is None or request.mode is Mode.TXT2IMG:
                kept.append(None)
                continue
            try:
                path = save_input(data.open(), self.root / INPUTS_DIR)
            except ValueError:
                kept.append(None)  # the engine refused it already; nothing worth keeping
                continue
            except OSError as exc:
                raise disk_error("keep the init image", self.root, exc) from exc
            kept.append(path.relative_to(self.root).as_posix())
        return kept[0], kept[1]

    def save(
        self,
        result: ResultImage,
        *,
        parent: HistoryImage | None = None,
        init_file: str | None = None,
        mask_file: str | None = None,
    ) -> HistoryImage:
        """Save one image: the PNG (atomic), its thumbnail, then its row. Its JSON chunk is the
        request that made it (`params.result_json`) plus the history's links. Raises
        HistoryError (kind DISK) when the disk refuses; nothing saved before is touched."""
        created = time.time()
        image, parameters, seed = result.image, result.infotext, result.seed
        settings = result_json(result)
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
        try:
            # A free name is claimed atomically (see write_new): another process saving into
            # this history at the same moment never gets the same file.
            path = write_new(
                self.root / image_name(created, seed),
                png_writer(image, parameters, settings),
                taken=self._in_trash,
            )
        except OSError as exc:
            raise disk_error("save the image", self.root, exc) from exc
        file = path.relative_to(self.root).as_posix()
        thumbnail: str | None = thumbnail_name(file)
        try:
            save_thumbnail(image, self.root / thumbnail)
        except OSError:
            thumbnail = None  # made again later from the image, which is what matters
        values = index_row(
            file, parameters, settings, created=created, size=image.size, thumbnail=thumbnail,
            init_file=init_file, mask_file=mask_file,
        ) | {"parent_id": parent.id if parent else None}
        # The PNG is complete on disk: if this fails, the next start indexes it from its metadata.
        with self._write("add the image to the history index") as db:
            rid = queries.insert(db, values)
        return self.get(rid)  # type: ignore[arg-type]

    def _in_trash(self, path: Path) -> bool:
        """A trashed image keeps its name for a restore."""
        return os.path.lexists(trash_path(self.root, path.relative_to(self.root).as_posix()))

    # ---- reading -----------------------------------------------------------------------

    def get(self, image_id: int) -> HistoryImage | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {COLUMNS} FROM images WHERE id = ?", (image_id,)
            ).fetchone()
        return from_row(row) if row else None

    def by_file(self, file: str) -> HistoryImage | None:
        """The image saved as `file` (relative to the history folder), trashed or not."""
        with self._lock:
            row = self._db.execute(f"SELECT {COLUMNS} FROM images WHERE file = ?", (file,)).fetchone()
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
        if contained(self.root, name, THUMBS_DIR) is None:  # an old index may say anything
            name = thumbnail_name(image.file)
        path = self.root / name
        if path.exists():
            return path
        if thumbnail_from_file(self.path(image), path) is None:
            return None
        if image.thumbnail != name:
            try:
                with self._write("note the thumbnail") as db:
                    db.execute("UPDATE images SET thumbnail = ? WHERE id = ?", (name, image.id))
            except HistoryError:
                pass  # the file is there, which is what counts; the column is filled next time
        return path

    # ---- changing ----------------------------------------------------------------------

    def set_favourite(self, image_id: int, favourite: bool = True) -> None:
        with self._write("mark the favourite") as db:
            db.execute("UPDATE images SET favourite = ? WHERE id = ?", (int(favourite), image_id))

    def trash(self, ids: Iterable[int]) -> None:
        """Move images to the trash (files and all); `restore` brings them back."""
        self._set_trashed(list(ids), True)

    def restore(self, ids: Iterable[int]) -> None:
        self._set_trashed(list(ids), False)

    def _set_trashed(self, ids: list[int], trashed: bool) -> None:
        """Move the files and flip their rows in one transaction; if anything fails, the files
        already moved go back, so no file is ever moved without its row saying so."""
        action = "move the image to the trash" if trashed else "restore the image"
        moved: list[tuple[Path, Path]] = []
        try:
            with self._write(action) as db:
                for image in self.get_many(ids).values():
                    home = contained(self.root, image.file, IMAGES_DIR, link_ok=True)
                    away = contained(self.root / TRASH_DIR, image.file, IMAGES_DIR, link_ok=True)
                    if image.trashed == trashed or home is None or away is None:
                        continue
                    source, target = (home, away) if trashed else (away, home)
                    try:
                        if move(source, target):
                            moved.append((source, target))
                    except OSError as exc:
                        raise disk_error(action, self.root, exc) from exc
                    db.execute(
                        "UPDATE images SET trashed = ? WHERE id = ?", (int(trashed), image.id)
                    )
        except BaseException:
            for source, target in reversed(moved):
                try:
                    os.replace(target, source)
                except OSError:
                    pass  # the next start sets the flag from the folder the file is in
            raise

    def empty_trash(self) -> int:
        """Delete the trashed images for good (files, thumbnails, unused inputs); how many.

        Only files inside the history folder are ever deleted, whatever an index row says.
        """
        try:
            # The write lock first, so a busy index stops this before any file is deleted.
            with self._write("empty the trash") as db:
                doomed = queries.page(db, Query(trashed=True), 1 << 30)
                for image in doomed:  # files first: a row left without its file is dropped at next start
                    self._unlink(TRASH_DIR, image.file, IMAGES_DIR)
                    self._unlink("", image.thumbnail or thumbnail_name(image.file), THUMBS_DIR)
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
                self._unlink("", rel, INPUTS_DIR)
        except OSError as exc:
            raise disk_error("empty the trash", self.root, exc) from exc
        return len(doomed)

    def _unlink(self, base: str, rel: str, top: str) -> None:
        """Delete root/base/rel if it lies in root/base/top (a link there: only the link)."""
        path = contained(self.root / base, rel, top, link_ok=True)
        if path is not None:
            path.unlink(missing_ok=True)

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """A write transaction under the store's lock; an SQLite error becomes a HistoryError
        saying it could not `action` ("mark the favourite")."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")  # waits for another process up to the timeout
            except sqlite3.Error as exc:
                raise disk_error(action, self.root, exc) from exc
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # a failed COMMIT may have ended the transaction already
                if isinstance(exc, sqlite3.Error):
                    raise disk_error(action, self.root, exc) from exc
                raise


def _move_aside(index: Path) -> Path:
    """Rename a damaged index (and its WAL files) to index.db.corrupt-<time>[-n]; a second
    damage within the same second gets its own name instead of replacing the first copy."""
    stamp = f"{index.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 1_000_000):
        aside = index.with_name(stamp if n == 1 else f"{stamp}-{n}")
        if not any(os.path.lexists(f"{aside}{s}") for s in _INDEX_SUFFIXES):
            break
    for suffix in _INDEX_SUFFIXES:
        source = Path(f"{index}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{aside}{suffix}"))
    return aside
