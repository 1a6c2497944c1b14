"""The SQL of the index: adding rows, and the gallery's lists (filters, newest first, paging, groups)."""

from __future__ import annotations

import re
import sqlite3
import time

from sdstudio.history.records import COLUMNS, Group, GroupBy, HistoryImage, Query, from_row

ORDER = "ORDER BY created DESC, id DESC"
_WORD = re.compile(r"\w+", re.UNICODE)


def match_expression(text: str) -> str | None:
    """An FTS5 query for what a person typed: every word must start a word of the prompt."""
    words = _WORD.findall(text)
    return " ".join(f'"{w}"*' for w in words) or None


def day_range(day: str) -> tuple[float, float]:
    """Start and end (unix time) of a local calendar day "YYYY-MM-DD"."""
    t = time.strptime(day, "%Y-%m-%d")
    start = time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))
    end = time.mktime((t.tm_year, t.tm_mon, t.tm_mday + 1, 0, 0, 0, 0, 0, -1))
    return start, end


def where(query: Query) -> tuple[str, list[object]]:
    clauses = ["trashed = ?"]
    args: list[object] = [int(query.trashed)]
    if query.favourites:
        clauses.append("favourite = 1")
    if query.day:
        start, end = day_range(query.day)
        clauses.append("created >= ? AND created < ?")
        args += [start, end]
    if query.prompt is not None:
        clauses.append("prompt = ?")
        args.append(query.prompt)
    match = match_expression(query.text)
    if match:
        clauses.append("id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
        args.append(match)
    return " AND ".join(clauses), args


def ids(db: sqlite3.Connection, query: Query) -> list[int]:
    sql, args = where(query)
    return [r[0] for r in db.execute(f"SELECT id FROM images WHERE {sql} {ORDER}", args)]


def page(
    db: sqlite3.Connection, query: Query, limit: int, after: HistoryImage | None = None
) -> list[HistoryImage]:
    """Up to `limit` images newest first, starting after `after` (keyset paging)."""
    sql, args = where(query)
    if after is not None:
        sql += " AND (created < ? OR (created = ? AND id < ?))"
        args += [after.created, after.created, after.id]
    rows = db.execute(f"SELECT {COLUMNS} FROM images WHERE {sql} {ORDER} LIMIT ?", [*args, limit])
    return [from_row(r) for r in rows]


def count(db: sqlite3.Connection, query: Query) -> int:
    sql, args = where(query)
    return db.execute(f"SELECT COUNT(*) FROM images WHERE {sql}", args).fetchone()[0]


def by_ids(db: sqlite3.Connection, wanted: list[int]) -> dict[int, HistoryImage]:
    found: dict[int, HistoryImage] = {}
    for start in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.execute(f"SELECT {COLUMNS} FROM images WHERE id IN ({marks})", chunk):
            image = from_row(row)
            found[image.id] = image
    return found


def groups(db: sqlite3.Connection, query: Query, by: GroupBy, limit: int = -1) -> list[Group]:
    """Days or prompts of the images matching `query`, newest group first (at most `limit`)."""
    sql, args = where(query)
    key = "date(created, 'unixepoch', 'localtime')" if by is GroupBy.DAY else "prompt"
    # SQLite takes the bare `id` from the row holding MAX(created): the group's newest image.
    rows = db.execute(
        f"SELECT {key} AS k, COUNT(*), MAX(created), id FROM images WHERE {sql} "
        "GROUP BY k ORDER BY MAX(created) DESC LIMIT ?",
        [*args, limit],
    )
    return [Group(key=r[0], count=r[1], newest_id=r[3]) for r in rows]


_INSERT_COLUMNS = (
    "created",
    "prompt",
    "negative",
    "parameters",
    "settings",
    "file",
    "thumbnail",
    "model",
    "mode",
    "seed",
    "width",
    "height",
    "parent_id",
    "init_file",
    "mask_file",
    "trashed",
)


def insert(
    db: sqlite3.Connection, values: dict[str, object], *, keep_existing: bool = False
) -> int | None:
    """Add one row (inside the caller's transaction); `values` is keyed by column name.

    When the file has a row already (another process indexed it from disk first), that row is
    updated with `values`, or left as it is with `keep_existing` and None returned.
    """
    names = [c for c in _INSERT_COLUMNS if c in values]
    marks = ",".join("?" * len(names))
    updates = ",".join(f"{c} = excluded.{c}" for c in names if c != "file")
    conflict = "DO NOTHING" if keep_existing or not updates else f"DO UPDATE SET {updates}"
    cur = db.execute(
        f"INSERT INTO images ({','.join(names)}) VALUES ({marks}) ON CONFLICT(file) {conflict}",
        [values[c] for c in names],
    )
    if cur.rowcount == 0:
        return None
    return int(db.execute("SELECT id FROM images WHERE file = ?", (values["file"],)).fetchone()[0])
