"""The missed-call register (reads, streams, the call-back workflow by hand) and the agents' misses.

Automatic closings happen where calls are saved (``store/sqlite/writer.py``, deciding with ``cti.callbacks``);
this module holds what people do to an entry: close it with a comment, reopen it, comment on it. Each action is
one transaction on the writer with a history row.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import aiosqlite

from cti.records import MissedEntry
from store.listing import SQLITE
from store.listing_reads import RegisterListing
from store.register_claims import Row, SharedRegisterOps
from store.repository import (
    MissedAlreadyClosed,
    MissedAlreadyOpen,
    MissedHistoryItem,
    MissedNotFound,
)
from store.sqlite import rows
from store.sqlite.listed import SqliteListing

_INSERT_HISTORY = (
    "INSERT INTO missed_history (entry_id, at, action, by, linkedid, comment) VALUES (?, ?, ?, ?, ?, ?)"
)


#: The register's listing queries (``store/listing.py``), in this backend's dialect.
missed_query = SQLITE.missed_query
agent_misses_query = SQLITE.agent_misses_query


class RegisterOps(RegisterListing, SharedRegisterOps, SqliteListing):
    """The register's reads and manual actions, and the agents' misses (their listings: ``RegisterListing``); the
    register a team shares (groups, claims, call-back results: ``SharedRegisterOps``)."""

    _dialect = SQLITE

    async def get_missed(self, entry_id: int) -> MissedEntry:
        found = await self._select_few("SELECT * FROM missed WHERE id = ?", (entry_id,), rows.missed_from_row)
        if not found:
            raise MissedNotFound(entry_id)
        return found[0]

    async def missed_history(self, entry_id: int) -> list[MissedHistoryItem]:
        items = await self._select(
            "SELECT * FROM missed_history WHERE entry_id = ? ORDER BY id", (entry_id,), rows.history_from_row
        )
        if not items:
            await self.get_missed(entry_id)  # raises MissedNotFound for an unknown id
        return items

    async def _rows_in(self, conn: aiosqlite.Connection, sql: str, params: dict[str, Any]) -> Sequence[Row]:
        async with conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def _read(self, sql: str, params: dict[str, Any]) -> Sequence[Row]:
        return await self._select(sql, params, _as_row)

    # -- by hand -----------------------------------------------------------------------------------------------

    async def close_missed(
        self, entry_id: int, comment: str | None, by: str = "admin", *, at: float | None = None
    ) -> MissedEntry:
        when = time.time() if at is None else at

        async def work(db: aiosqlite.Connection) -> MissedEntry:
            entry = await _fetch_missed(db, entry_id)
            if entry.status == "closed":
                how = f"by {entry.closed_by}" + (f" ({entry.closed_linkedid})" if entry.closed_linkedid else "")
                raise MissedAlreadyClosed(entry, f"missed-call entry #{entry_id} is already closed {how}")
            await db.execute(
                "UPDATE missed SET status = 'closed', closed_at = ?, closed_by = 'manual', "
                "closed_linkedid = NULL, comment = COALESCE(?, comment) WHERE id = ?",
                (when, comment, entry_id),
            )
            await db.execute(_INSERT_HISTORY, (entry_id, when, "closed", by, None, comment))
            return await _fetch_missed(db, entry_id)

        return await self._manual(work)

    async def reopen_missed(
        self, entry_id: int, comment: str | None, by: str = "admin", *, at: float | None = None
    ) -> MissedEntry:
        when = time.time() if at is None else at

        async def work(db: aiosqlite.Connection) -> MissedEntry:
            entry = await _fetch_missed(db, entry_id)
            if entry.status == "open":
                raise MissedAlreadyOpen(entry, f"missed-call entry #{entry_id} is open; nothing to reopen")
            await db.execute(
                "UPDATE missed SET status = 'open', closed_at = NULL, closed_by = NULL, closed_linkedid = NULL, "
                "comment = COALESCE(?, comment) WHERE id = ?",
                (comment, entry_id),
            )
            await db.execute(_INSERT_HISTORY, (entry_id, when, "reopened", by, None, comment))
            return await _fetch_missed(db, entry_id)

        return await self._manual(work)

    async def comment_missed(
        self, entry_id: int, comment: str, by: str = "admin", *, at: float | None = None
    ) -> MissedEntry:
        when = time.time() if at is None else at

        async def work(db: aiosqlite.Connection) -> MissedEntry:
            await _fetch_missed(db, entry_id)
            await db.execute("UPDATE missed SET comment = ? WHERE id = ?", (comment, entry_id))
            await db.execute(_INSERT_HISTORY, (entry_id, when, "commented", by, None, comment))
            return await _fetch_missed(db, entry_id)

        return await self._manual(work)


async def _fetch_missed(db: aiosqlite.Connection, entry_id: int) -> MissedEntry:
    async with db.execute("SELECT * FROM missed WHERE id = ?", (entry_id,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        raise MissedNotFound(entry_id)
    return rows.missed_from_row(row)


def _as_row(row: Row) -> Row:
    return row
