"""The missed-call register on PostgreSQL (reads, streams, the call-back workflow by hand), and agents' misses.

Automatic closings happen where calls are saved (``writer.py``, deciding with ``cti.callbacks``); this module holds
what people do to an entry: close it with a comment, reopen it, comment on it, each one transaction on the writer
with a history row. The entry is read ``FOR UPDATE`` first, so two people acting on one entry at once (two panel
nodes) act one after the other and the second sees the first's result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from cti.records import MissedEntry
from store.listing import POSTGRES
from store.listing_reads import RegisterListing
from store.postgres import rows
from store.postgres.base import Conn
from store.postgres.listed import PostgresListing
from store.postgres.params import positional
from store.register_claims import Row, SharedRegisterOps
from store.repository import (
    MissedAlreadyClosed,
    MissedAlreadyOpen,
    MissedHistoryItem,
    MissedNotFound,
)

_INSERT_HISTORY = (
    "INSERT INTO missed_history (entry_id, at, action, by, linkedid, comment) VALUES ($1, $2, $3, $4, $5, $6)"
)


#: The register's listing queries (``store/listing.py``), in this backend's dialect.
missed_query = POSTGRES.missed_query
agent_misses_query = POSTGRES.agent_misses_query


class RegisterOps(RegisterListing, SharedRegisterOps, PostgresListing):
    """The register's reads and manual actions, and the agents' misses (their listings: ``RegisterListing``); the
    register a team shares (groups, claims, call-back results: ``SharedRegisterOps``)."""

    _dialect = POSTGRES

    async def get_missed(self, entry_id: int) -> MissedEntry:
        found = await self._select("SELECT * FROM missed WHERE id = $1", (entry_id,), rows.missed_from_row)
        if not found:
            raise MissedNotFound(entry_id)
        return found[0]

    async def missed_history(self, entry_id: int) -> list[MissedHistoryItem]:
        items = await self._select("SELECT * FROM missed_history WHERE entry_id = $1 ORDER BY id", (entry_id,),
                                   rows.history_from_row)
        if not items:
            await self.get_missed(entry_id)  # raises MissedNotFound for an unknown id
        return items

    async def _rows_in(self, conn: Conn, sql: str, params: dict[str, Any]) -> Sequence[Row]:
        text, args = positional(sql, params)
        return list(await conn.fetch(text, *args))

    async def _read(self, sql: str, params: dict[str, Any]) -> Sequence[Row]:
        return await self._select(sql, params, _as_row)

    # -- by hand -----------------------------------------------------------------------------------------------

    async def close_missed(
        self, entry_id: int, comment: str | None, by: str = "admin", *, at: float | None = None
    ) -> MissedEntry:
        when = time.time() if at is None else at

        async def work(conn: Conn) -> MissedEntry:
            entry = await _fetch_missed(conn, entry_id)
            if entry.status == "closed":
                how = f"by {entry.closed_by}" + (f" ({entry.closed_linkedid})" if entry.closed_linkedid else "")
                raise MissedAlreadyClosed(entry, f"missed-call entry #{entry_id} is already closed {how}")
            await conn.execute(
                "UPDATE missed SET status = 'closed', closed_at = $1, closed_by = 'manual', "
                "closed_linkedid = NULL, comment = COALESCE($2, comment) WHERE id = $3",
                when, comment, entry_id,
            )
            await conn.execute(_INSERT_HISTORY, entry_id, when, "closed", by, None, comment)
            return await _fetch_missed(conn, entry_id)

        return await self._manual(work)

    async def reopen_missed(
        self, entry_id: int, comment: str | None, by: str = "admin", *, at: float | None = None
    ) -> MissedEntry:
        when = time.time() if at is None else at

        async def work(conn: Conn) -> MissedEntry:
            entry = await _fetch_missed(conn, entry_id)
            if entry.status == "open":
                raise MissedAlreadyOpen(entry, f"missed-call entry #{entry_id} is open; nothing to reopen")
            await conn.execute(
                "UPDATE missed SET status = 'open', closed_at = NULL, closed_by = NULL, closed_linkedid = NULL, "
                "comment = COALESCE($1, comment) WHERE id = $2",
                comment, entry_id,
            )
            await conn.execute(_INSERT_HISTORY, entry_id, when, "reopened", by, None, comment)
            return await _fetch_missed(conn, entry_id)

        return await self._manual(work)

    async def comment_missed(
        self, entry_id: int, comment: str, by: str = "admin", *, at: float | None = None
    ) -> MissedEntry:
        when = time.time() if at is None else at

        async def work(conn: Conn) -> MissedEntry:
            await _fetch_missed(conn, entry_id)
            await conn.execute("UPDATE missed SET comment = $1 WHERE id = $2", comment, entry_id)
            await conn.execute(_INSERT_HISTORY, entry_id, when, "commented", by, None, comment)
            return await _fetch_missed(conn, entry_id)

        return await self._manual(work)


async def _fetch_missed(conn: Conn, entry_id: int) -> MissedEntry:
    row = await conn.fetchrow("SELECT * FROM missed WHERE id = $1 FOR UPDATE", entry_id)
    if row is None:
        raise MissedNotFound(entry_id)
    return rows.missed_from_row(row)


def _as_row(row: Row) -> Row:
    return row
