"""What every part of the SQLite store shares: its lanes, reads in chunks or pages, and one transaction at a time.

The parts (``writer``, ``journal``, ``register``, ``users``, ``directory``, ``lookups``) are mixins over this base,
each with one job; ``store.SqliteStore`` composes them. Every transaction runs in a task of its own behind
``asyncio.shield``, so a cancelled caller (the daemon shutting down) never leaves half a transaction on the
writer connection; an ``asyncio.Lock`` keeps one transaction at a time on it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from cti.records import MissedEntry
from store.migrate import rollback
from store.repository import Claim, RegisterChange, StoreClosed
from store.shared_base import Shielded, keyset
from store.sqlite.lanes import READ_CHUNK, Lanes

log = logging.getLogger(__name__)

T = TypeVar("T")
Params = dict[str, Any] | tuple[Any, ...]
Convert = Callable[[sqlite3.Row], T]


class SqliteBase(Shielded):
    """The state and primitives the store's parts build on (see the module's docstring)."""

    def __init__(self, path: Path, lanes: Lanes, *, region: str) -> None:
        self.path = path
        self.region = region
        #: The connections; ``lanes.lookup`` serves the screen-pop only (``store/sqlite/lanes.py``).
        self.lanes = lanes
        self._write_lock = asyncio.Lock()  # one transaction at a time on the writer connection
        self._inflight: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._closed = False
        self._register_listeners: list[Callable[[RegisterChange], None]] = []
        #: Entries opened / changed by the transaction in progress, announced once it has committed.
        self._opened: list[MissedEntry] = []
        self._updated: list[MissedEntry] = []
        #: Claims on numbers the transaction in progress released (a call-back reached them: ``register_claims``).
        self._released: list[Claim] = []

    def _check_open(self) -> None:
        if self._closing:
            raise StoreClosed(f"the store {self.path} is closed")

    # -- reads -----------------------------------------------------------------------------------------------

    async def _select(self, sql: str, params: Params, convert: Convert[T], few: int | None = None,
                      lane: aiosqlite.Connection | None = None) -> list[T]:
        """Rows of a query on a reader (the general one by default), fetched ``READ_CHUNK`` at a time; a query
        whose ``LIMIT`` (``few``) is at most ``READ_CHUNK`` is fetched in one round trip instead."""
        if few is not None and few <= READ_CHUNK:
            return await self._select_few(sql, params, convert, lane)
        self._check_open()
        out: list[T] = []
        async with (lane or self.lanes.reader).execute(sql, params) as cursor:
            async for row in cursor:
                out.append(convert(row))
        return out

    async def _select_few(self, sql: str, params: Params, convert: Convert[T],
                          lane: aiosqlite.Connection | None = None) -> list[T]:
        """A small result (a LIMIT) in one round trip to the reader's thread."""
        self._check_open()
        rows = await (lane or self.lanes.reader).execute_fetchall(sql, params)
        return [convert(row) for row in rows]

    async def _keyset(self, page: Callable[[T | None, int], tuple[str, Params]], convert: Convert[T],
                      limit: int | None, page_size: int) -> AsyncIterator[T]:
        """A listing a page at a time (``store.shared_base.keyset``), each page on the general reader."""

        async def select(sql: str, params: Any, n: int) -> list[T]:
            return await self._select(sql, params, convert, few=n)

        async for row in keyset(select, page, limit, page_size):
            yield row

    # -- transactions ----------------------------------------------------------------------------------------

    async def _transaction(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``work`` between ``BEGIN IMMEDIATE`` and ``COMMIT``; roll back if anything fails."""
        db = self.lanes.writer
        await db.execute("BEGIN IMMEDIATE")
        self._opened, self._updated, self._released = [], [], []
        try:
            result = await work(db)
            await db.execute("COMMIT")
        except BaseException:
            self._opened, self._updated, self._released = [], [], []
            await rollback(db)
            raise
        if self._opened or self._updated or self._released:
            self._announce(RegisterChange(tuple(self._opened), tuple(self._updated), tuple(self._released)))
        return result

    async def _manual(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """One transaction asked for by a user (not a staged batch), behind the writer's lock."""
        self._check_open()

        async def locked() -> T:
            async with self._write_lock:
                return await self._transaction(work)

        result = await self._shielded(locked())
        if isinstance(result, MissedEntry) and self._register_listeners:
            self._announce(RegisterChange(updated=(result,)))
        return result

    def on_register_change(self, listener: Callable[[RegisterChange], None]) -> None:
        self._register_listeners.append(listener)

    def _announce(self, change: RegisterChange) -> None:
        self._opened, self._updated, self._released = [], [], []
        for listener in self._register_listeners:
            try:
                listener(change)
            except Exception:  # a listener's bug must not undo a commit or stop the writer
                log.exception("store: a register-change listener failed")
