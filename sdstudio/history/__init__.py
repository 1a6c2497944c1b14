"""History of every image made: PNG files on disk plus an SQLite index. No Qt, no torch."""
