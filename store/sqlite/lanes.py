"""The SQLite store's connections ("lanes"): one writer, and two readers that never wait for each other.

Why three: in WAL mode a reader never waits for the writer, and aiosqlite runs each connection on a thread of its
own, serving its requests one after another. With one reader, one slow read (issue 10: an agent's "my recent
calls" without an index, 5-7 s) held every screen-pop's card lookup behind it for seconds. So:

* ``writer``: every transaction (the staged batches, the register by hand, users, the directory);
* ``reader``: the panel's, the CLI's and the reports' reads, listings and exports of any length;
* ``lookup``: the screen-pop's reads only (``caller_facts``): small indexed LIMITed queries that no listing
  can queue ahead of.

Both readers are ``query_only`` and map the file (``mmap_size``): the directory's indexes outgrow the page cache
at a million contacts, and reading them through the OS's cache halves a surname lookup (bench/directory.py).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from store.migrate import migrate
from store.repository import StoreError

log = logging.getLogger(__name__)

#: Address space each reader connection may map (pages are read on demand; nothing is allocated up front).
READER_MMAP_BYTES = 1 << 30

#: Rows fetched per round trip to a reader's thread (``fetchmany``): a query's rows are converted as they come,
#: never held twice as raw rows and records.
READ_CHUNK = 256


@dataclass(frozen=True, slots=True)
class Lanes:
    writer: aiosqlite.Connection
    reader: aiosqlite.Connection
    lookup: aiosqlite.Connection

    async def close(self) -> None:
        """Close the readers, then the writer (the last connection to close checkpoints the WAL)."""
        try:
            await self.lookup.close()
            await self.reader.close()
        finally:
            await self.writer.close()


async def open_lanes(path: Path, busy_ms: int) -> Lanes:
    """Open the file (creating it), bring its schema up to date on the writer, then open the two readers.

    Raises ``StoreError`` when the file cannot be used, ``MigrationError`` when its schema cannot.
    """
    if not path.parent.is_dir():
        # Checked here rather than left to SQLite: the message is clearer, and a failed aiosqlite.connect()
        # leaves its thread to finish on its own after we have returned.
        raise StoreError(f"{path}: cannot open the store: the folder {path.parent} does not exist")
    try:
        # No statement cache: the writer's batches are one statement per table with a group of placeholders per
        # row (many_rows.py), so nearly every statement has a shape of its own, and a cache of 128 of them (each
        # grown with its rows) made the daemon's memory climb 40 MiB over a million events. Preparing again is
        # cheap and happens without the GIL.
        writer = await aiosqlite.connect(path, isolation_level=None, cached_statements=0)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the store: {exc}") from exc
    readers: list[aiosqlite.Connection] = []
    try:
        writer.row_factory = aiosqlite.Row
        await writer.execute(f"PRAGMA busy_timeout = {busy_ms}")
        async with writer.execute("PRAGMA journal_mode = WAL") as cursor:
            mode = await cursor.fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise StoreError(f"{path}: the store needs a file that supports WAL mode (got {mode!r})")
        for pragma in ("synchronous = NORMAL", "foreign_keys = ON"):
            await writer.execute(f"PRAGMA {pragma}")
        await migrate(writer)
        for _ in range(2):
            reader = await aiosqlite.connect(path, isolation_level=None, iter_chunk_size=READ_CHUNK)
            readers.append(reader)
            reader.row_factory = aiosqlite.Row
            for pragma in (f"busy_timeout = {busy_ms}", "query_only = ON", f"mmap_size = {READER_MMAP_BYTES}"):
                await reader.execute(f"PRAGMA {pragma}")
    except BaseException as exc:
        for reader in readers:
            await reader.close()
        await writer.close()
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"{path}: cannot use the store: {exc}") from exc
        raise
    return Lanes(writer=writer, reader=readers[0], lookup=readers[1])
