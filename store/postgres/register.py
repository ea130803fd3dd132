"""The missed-call register on PostgreSQL (reads, streams, the call-back workflow by hand), and agents' misses.

Automatic closings happen where calls are saved (``writer.py``, deciding with ``cti.callbacks``); this module holds
what people do to an entry: close it with a comment, reopen it, comment on it, each one transaction on the writer
with a history row. The entry is read ``FOR UPDATE`` first, so two people acting on one entry at once (two panel
nodes) act one after the other and the second sees the first's result.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from cti.phones import normalize_number
from cti.records import AgentMiss, MissedEntry
from store.postgres import rows
from store.postgres.base import Conn, PostgresBase
from store.repository import (
    DEFAULT_PAGE_SIZE,
    MissedAlreadyClosed,
    MissedAlreadyOpen,
    MissedHistoryItem,
    MissedKey,
    MissedNotFound,
)

_INSERT_HISTORY = (
    "INSERT INTO missed_history (entry_id, at, action, by, linkedid, comment) VALUES ($1, $2, $3, $4, $5, $6)"
)


def missed_query(*, region: str, status: str | None = None, since: float | None = None, until: float | None = None,
                 number: str | None = None, after: tuple[float, int] | None = None, limit: int | None = None,
                 offset: int = 0) -> tuple[str, dict[str, Any]]:
    """One page of the register in its order (missed_at, id), after the entry whose (missed_at, id) is ``after``;
    served by (status, missed_at, id), (caller_key, status, missed_at, id), (caller_key, missed_at, id) or
    (missed_at, id)."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit, "offset": offset}
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
        params["after_at"], params["after_id"] = float(after[0]), after[1]
    sql = "SELECT * FROM missed" + (" WHERE " + " AND ".join(where) if where else "")
    return sql + " ORDER BY missed_at, id LIMIT :limit OFFSET :offset", params


def agent_misses_query(*, agent: str | None, since: float | None, until: float | None,
                       after: tuple[float, int] | None = None, limit: int | None = None) -> tuple[str, dict[str, Any]]:
    """Agents' misses by (rang_at, id), served by (agent, rang_at, id) or (rang_at, id)."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    _time_range("rang_at", _lower_bound(since, after), until, where, params)
    if agent is not None:
        where.append("agent = :agent")
        params["agent"] = agent
    if after is not None:
        where.append("(rang_at, id) > (:after_at, :after_id)")
        params["after_at"], params["after_id"] = float(after[0]), after[1]
    sql = "SELECT * FROM agent_misses" + (" WHERE " + " AND ".join(where) if where else "")
    return sql + " ORDER BY rang_at, id LIMIT :limit", params


def _lower_bound(since: float | None, after: tuple[float, int] | None) -> float | None:
    return None if after is not None and since is not None and after[0] >= since else since


def _time_range(column: str, since: float | None, until: float | None,
                where: list[str], params: dict[str, Any]) -> None:
    if since is not None:
        where.append(f"{column} >= :since")
        params["since"] = float(since)
    if until is not None:
        where.append(f"{column} < :until")
        params["until"] = float(until)


class RegisterOps(PostgresBase):
    """The register's reads and manual actions, and the agents' misses."""

    async def get_missed(self, entry_id: int) -> MissedEntry:
        found = await self._select("SELECT * FROM missed WHERE id = $1", (entry_id,), rows.missed_from_row)
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
        return await self._select(sql, params, rows.missed_from_row)

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
        items = await self._select("SELECT * FROM missed_history WHERE entry_id = $1 ORDER BY id", (entry_id,),
                                   rows.history_from_row)
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
