"""The SQLite store (``SqliteStore``): one file, WAL, one writer and two reader lanes. See ``store.py``."""

from store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
