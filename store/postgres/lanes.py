"""The PostgreSQL store's connections ("lanes"): pools that never queue one kind of work behind another.

As in the SQLite store (``store/sqlite/lanes.py``), and for the same reason (issue 10: one slow listing held
every screen-pop's card behind it for seconds):

* ``writer``: one connection, every transaction (staged batches, the register by hand, users, the directory);
  a pool of one so a connection the server dropped is replaced at the next transaction;
* ``reader``: the panel's, the CLI's and the reports' reads, a few connections;
* ``lookup``: the screen-pop's reads only (``caller_facts``): small indexed LIMITed queries that no listing can
  queue ahead of.

Opening applies the migrations on a connection of its own first (``store/postgres/migrate.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

from store.postgres.migrate import migrate
from store.postgres.own_connection import DB_ERRORS
from store.repository import StoreError
from store.settings import without_password

log = logging.getLogger(__name__)

#: Connections of the general reader pool (listings, exports, the panel's reads).
READER_CONNECTIONS = 4
#: Connections of the lookup pool (a card runs its four parts at once).
LOOKUP_CONNECTIONS = 4


@dataclass(frozen=True, slots=True)
class Lanes:
    writer: asyncpg.Pool
    reader: asyncpg.Pool
    lookup: asyncpg.Pool

    async def close(self) -> None:
        try:
            await self.lookup.close()
            await self.reader.close()
        finally:
            await self.writer.close()


def shown(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return without_password(url)


async def open_lanes(url: str, *, connect_timeout: float = 10.0) -> Lanes:
    """Connect, bring the schema up to date, then open the three pools.

    Raises ``StoreError`` when the database cannot be reached or used, ``MigrationError`` when its schema cannot.
    """
    # The statements are few and reused: asyncpg prepares each once per connection and keeps it (its cache).
    options: dict[str, Any] = {"timeout": connect_timeout,
                               "server_settings": {"application_name": "cti-companion"}}
    try:
        conn = await asyncpg.connect(url, **options)
    except DB_ERRORS as exc:
        raise StoreError(f"{shown(url)}: cannot open the store: {exc}") from exc
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pools: list[asyncpg.Pool] = []
    try:
        for size in (1, READER_CONNECTIONS, LOOKUP_CONNECTIONS):
            pool = await asyncpg.create_pool(url, min_size=1, max_size=size, **options)
            assert pool is not None
            pools.append(pool)
    except BaseException as exc:
        for pool in pools:
            await pool.close()
        if isinstance(exc, DB_ERRORS):
            raise StoreError(f"{shown(url)}: cannot use the store: {exc}") from exc
        raise
    return Lanes(writer=pools[0], reader=pools[1], lookup=pools[2])
