"""The SQLite index: schema, connection settings and the corruption check."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id         INTEGER PRIMARY KEY,
    created    REAL    NOT NULL,
    prompt     TEXT    NOT NULL DEFAULT '',
    negative   TEXT    NOT NULL DEFAULT '',
    parameters TEXT,
    settings   TEXT,
    file       TEXT    NOT NULL UNIQUE,
    thumbnail  TEXT,
    model      TEXT    NOT NULL DEFAULT '',
    mode       TEXT    NOT NULL DEFAULT '',
    seed       INTEGER,
    width      INTEGER,
    height     INTEGER,
    favourite  INTEGER NOT NULL DEFAULT 0,
    parent_id  INTEGER REFERENCES images(id) ON DELETE SET NULL,
    init_file  TEXT,
    mask_file  TEXT,
    trashed    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS images_newest ON images(trashed, created DESC, id DESC);
CREATE INDEX IF NOT EXISTS images_favourites ON images(trashed, favourite, created DESC, id DESC);
CREATE INDEX IF NOT EXISTS images_prompt ON images(trashed, prompt);
-- Lineage: the children of an image, and ON DELETE SET NULL without a scan per deleted row.
CREATE INDEX IF NOT EXISTS images_parent ON images(parent_id);

-- Full-text search over prompts; external content kept in sync by the triggers below.
CREATE VIRTUAL TABLE IF NOT EXISTS images_fts USING fts5(
    prompt, content='images', content_rowid='id', tokenize='unicode61'
);
CREATE TRIGGER IF NOT EXISTS images_fts_insert AFTER INSERT ON images BEGIN
    INSERT INTO images_fts(rowid, prompt) VALUES (new.id, new.prompt);
END;
CREATE TRIGGER IF NOT EXISTS images_fts_delete AFTER DELETE ON images BEGIN
    INSERT INTO images_fts(images_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
END;
CREATE TRIGGER IF NOT EXISTS images_fts_update AFTER UPDATE OF prompt ON images BEGIN
    INSERT INTO images_fts(images_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
    INSERT INTO images_fts(rowid, prompt) VALUES (new.id, new.prompt);
END;
"""


# MIGRATIONS[v] takes an index of version v to v + 1.
MIGRATIONS = {
    1: "CREATE INDEX IF NOT EXISTS images_parent ON images(parent_id);",
}


class CorruptIndex(Exception):
    """The index file is not a healthy SQLite database of ours."""


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal.

    synchronous=NORMAL in WAL mode survives a killed process (only a power cut can lose the
    newest commits, which the files on disk then restore).
    """
    db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def open_index(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and check the index. CorruptIndex when it is damaged; a
    sqlite3.OperationalError (locked, unreadable, disk full) is no damage and passes as is."""
    try:
        db = connect(path)
    except sqlite3.OperationalError:
        raise
    except sqlite3.DatabaseError as exc:  # e.g. "file is not a database"
        raise CorruptIndex(str(exc)) from exc
    try:
        status = db.execute("PRAGMA quick_check").fetchone()[0]
        if status != "ok":
            raise CorruptIndex(status)
        migrate(db)
        db.execute("INSERT INTO images_fts(images_fts, rank) VALUES ('integrity-check', 1)")
    except sqlite3.OperationalError:
        db.close()
        raise
    except sqlite3.DatabaseError as exc:
        db.close()
        raise CorruptIndex(str(exc)) from exc
    except CorruptIndex:
        db.close()
        raise
    return db


def migrate(db: sqlite3.Connection) -> None:
    """Bring the index to SCHEMA_VERSION: a new file gets the schema, an older one each
    migration in turn (in one transaction), one from a newer app is CorruptIndex (moved aside
    and rebuilt from the files, which stay the truth)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise CorruptIndex(f"index version {version} was written by a newer SD Studio (this one reads {SCHEMA_VERSION})")
    has_table = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'images'").fetchone() is not None
    db.execute("BEGIN IMMEDIATE")
    try:
        if has_table:
            for step in range(max(version, 1), SCHEMA_VERSION):
                db.execute(MIGRATIONS[step])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.executescript(SCHEMA)  # new tables and indexes; IF NOT EXISTS keeps what is there
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
