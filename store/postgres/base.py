"""What every part of the PostgreSQL store shares: its pools, reads and keyset streams, one transaction at a time.

The parts (``writer``, ``journal``, ``register``, ``users``, ``directory``, ``lookups``) are mixins over this base,
as in ``store/sqlite/``; ``store.PostgresStore`` composes them. Every transaction runs in a task of its own behind
``asyncio.shield``, so a cancelled caller (the daemon shutting down) never leaves half a transaction; an
``asyncio.Lock`` keeps one transaction at a time on the writer (the staged batches' order is the commit order).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import asyncpg

from cti.records import MissedEntry
from store.postgres.lanes import Lanes, shown
from store.postgres.params import positional
from store.repository import Claim, RegisterChange, StoreClosed
from store.shared_base import Shielded, keyset

log = logging.getLogger(__name__)

T = TypeVar("T")
#: A connection as the pools hand it out (a proxy of ``asyncpg.Connection``, which has the same methods).
Conn = Any
Convert = Callable[[asyncpg.Record], T]


class PostgresBase(Shielded):
    """The state and primitives the store's parts build on (see the module's docstring)."""

    def __init__(self, url: str, lanes: Lanes, *, region: str) -> None:
        self.url = url
        self.region = region
        #: The pools; ``lanes.lookup`` serves the screen-pop only (``store/postgres/lanes.py``).
        self.lanes = lanes
        self._write_lock = asyncio.Lock()
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
            raise StoreClosed(f"the store {shown(self.url)} is closed")

    # -- reads -----------------------------------------------------------------------------------------------

    async def _select(self, sql: str, params: Mapping[str, Any] | tuple[Any, ...], convert: Convert[T],
                      lane: asyncpg.Pool | None = None) -> list[T]:
        """Rows of a query on a pool (the general reader by default): ``params`` by name (``:name`` in ``sql``)
        or by number (``$1``). Every caller bounds the rows (a LIMIT, a key) or reads a small table."""
        self._check_open()
        if isinstance(params, Mapping):
            sql, args = positional(sql, params)
        else:
            args = list(params)
        found = await (lane or self.lanes.reader).fetch(sql, *args)
        return [convert(row) for row in found]

    async def _keyset(self, page: Callable[[T | None, int], tuple[str, dict[str, Any]]], convert: Convert[T],
                      limit: int | None, page_size: int) -> AsyncIterator[T]:
        """A listing a page at a time (``store.shared_base.keyset``), each page on the reader pool."""

        async def select(sql: str, params: Any, n: int) -> list[T]:
            return await self._select(sql, params, convert)

        async for row in keyset(select, page, limit, page_size):
            yield row

    # -- transactions ----------------------------------------------------------------------------------------

    async def _transaction(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``work`` in one transaction on the writer connection; it rolls back if anything fails."""
        self._opened, self._updated, self._released = [], [], []
        try:
            async with self.lanes.writer.acquire() as conn, conn.transaction():
                result = await work(conn)
        except BaseException:
            self._opened, self._updated, self._released = [], [], []
            raise
        if self._opened or self._updated or self._released:
            self._announce(RegisterChange(tuple(self._opened), tuple(self._updated), tuple(self._released)))
        return result

    async def _manual(self, work: Callable[[Conn], Awaitable[T]]) -> T:
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
