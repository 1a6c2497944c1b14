"""History of every image made: PNG files on disk plus an SQLite index. No Qt, no torch."""

from sdstudio.history.errors import HistoryError
from sdstudio.history.records import Group, GroupBy, HistoryImage, Query
from sdstudio.history.store import HistoryStore

__all__ = ["Group", "GroupBy", "HistoryError", "HistoryImage", "HistoryStore", "Query"]
