"""The missed-call register (reads, streams, the call-back workflow by hand) and the agents' misses.

Automatic closings happen where calls are saved (``store/sqlite/writer.py``, deciding with ``cti.callbacks``);
this module holds what people do to an entry: close it with a comment, reopen it, comment on it. Each action is
one transaction on the writer with a history row.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiosqlite

from cti.phones import normalize_number
from cti.records import AgentMiss, MissedEntry
from store.repository import (
    DEFAULT_PAGE_SIZE,
    MissedAlreadyClosed,
    MissedAlreadyOpen,
    MissedHistoryItem,
    MissedKey,
    MissedNotFound,
)
from store.sqlite import rows
from store.sqlite.base import SqliteBase

_INSERT_HISTORY = (
    "INSERT INTO missed_history (entry_id, at, action, by, linkedid, comment) VALUES (?, ?, ?, ?, ?, ?)"
)


def missed_query(*, region: str, status: str | None = None, since: float | None = None, until: float | None = None,
                 number: str | None = None, after: tuple[float, int] | None = None, limit: int | None = None,
                 offset: int = 0) -> tuple[str, dict[str, Any]]:
    """One page of the register in its order (missed_at, id), after the entry whose (missed_at, id) is ``after``.

    Served by (status, missed_at), (caller_key, status, missed_at), (caller_key, missed_at) or (missed_at): each
    ends with the rowid (the id), so every page is read in order straight off an index.
    """
    where: list[str] = []
    params: dict[str, Any] = {"limit": -1 if limit is None else limit, "offset": offset}
    _time_range("missed_at", _lower_bound(since, after), until, where, params)
    if status is not None:
        where.append("status = :status")
        params["status"] = status
    if number is not None:
        key = normalize_number(number, region)
        if key is not None:
            where.append("caller_key = :number")
            params["number"] = key
        else:  # a withheld number has no key; match it as written
            where.append("caller_key IS NULL AND caller = :number")
            params["number"] = number
    if after is not None:
        where.append("(missed_at, id) > (:after_at, :after_id)")
        params["after_at"], params["after_id"] = after
    sql = "SELECT * FROM missed" + (" WHERE " + " AND ".join(where) if where else "")
    return sql + " ORDER BY missed_at, id LIMIT :limit OFFSET :offset", params


def agent_misses_query(*, agent: str | None, since: float | None, until: float | None,
                       after: tuple[float, int] | None = None, limit: int | None = None) -> tuple[str, dict[str, Any]]:
    """Agents' misses by (rang_at, id), served by (agent, rang_at) or (rang_at)."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": -1 if limit is None else limit}
    _time_range("rang_at", _lower_bound(since, after), until, where, params)
    if agent is not None:
        where.append("agent = :agent")
        params["agent"] = agent
    if after is not None:
        where.append("(rang_at, id) > (:after_at, :after_id)")
        params["after_at"], params["after_id"] = after
    sql = "SELECT * FROM agent_misses" + (" WHERE " + " AND ".join(where) if where else "")
    return sql + " ORDER BY rang_at, id LIMIT :limit", params


def _lower_bound(since: float | None, after: tuple[float, int] | None) -> float | None:
    """``since``, or None when the page's ``after`` already starts at or beyond it: given both, SQLite seeks its
    index to one bound only, and a page that sought to ``since`` re-read every entry before ``after``."""
    return None if after is not None and since is not None and after[0] >= since else since


def _time_range(column: str, since: float | None, until: float | None,
                where: list[str], params: dict[str, Any]) -> None:
    if since is not None:
        where.append(f"{column} >= :since")
        params["since"] = since
    if until is not None:
        where.append(f"{column} < :until")
        params["until"] = until


class RegisterOps(SqliteBase):
    """The register's reads and manual actions, and the agents' misses."""

    async def get_missed(self, entry_id: int) -> MissedEntry:
        found = await self._select_few("SELECT * FROM missed WHERE id = ?", (entry_id,), rows.missed_from_row)
        if not found:
            raise MissedNotFound(entry_id)
        return found[0]

    async def list_missed(
        self,
        *,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: MissedKey | None = None,
    ) -> list[MissedEntry]:
        sql, params = missed_query(region=self.region, status=status, since=since, until=until, number=number,
                                   limit=limit, offset=offset,
                                   after=(after.missed_at, after.id) if after is not None else None)
        return await self._select(sql, params, rows.missed_from_row, few=limit)

    async def iter_missed(
        self,
        *,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[MissedEntry]:
        def page(last: MissedEntry | None, n: int) -> tuple[str, dict[str, Any]]:
            after = (last.missed_at, last.id or 0) if last is not None else None
            return missed_query(region=self.region, status=status, since=since, until=until, number=number,
                                after=after, limit=n)

        async for entry in self._keyset(page, rows.missed_from_row, limit, page_size):
            yield entry

    async def missed_history(self, entry_id: int) -> list[MissedHistoryItem]:
        items = await self._select(
            "SELECT * FROM missed_history WHERE entry_id = ? ORDER BY id", (entry_id,), rows.history_from_row
        )
        if not items:
            await self.get_missed(entry_id)  # raises MissedNotFound for an unknown id
        return items

    async def list_agent_misses(
        self, *, agent: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[AgentMiss]:
        sql, params = agent_misses_query(agent=agent, since=since, until=until)
        return await self._select(sql, params, rows.agent_miss_from_row)

    async def iter_agent_misses(
        self, *, agent: str | None = None, since: float | None = None, until: float | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[AgentMiss]:
        # AgentMiss carries no id: the page's last row id travels beside it.
        def page(last: tuple[AgentMiss, int] | None, n: int) -> tuple[str, dict[str, Any]]:
            after = (last[0].rang_at, last[1]) if last is not None else None
            return agent_misses_query(agent=agent, since=since, until=until, after=after, limit=n)

        async for miss, _ in self._keyset(page, lambda row: (rows.agent_miss_from_row(row), int(row["id"])),
                                          None, page_size):
            yield miss

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
