"""Staged writes on PostgreSQL: the SQL of the store's writer (the staging itself is ``store/staging.py``).

A batch is one transaction with ``executemany`` (asyncpg pipelines the rows of one statement in one round trip).
"""

from __future__ import annotations

import logging

import asyncpg

from cti.callbacks import CallBack
from cti.records import MissedEntry
from store.postgres import rows
from store.postgres.base import Conn, PostgresBase
from store.postgres.own_connection import DB_ERRORS
from store.repository import LiveEvent
from store.staging import PreparedCall, StagedEvent, Staging, by_pbx

log = logging.getLogger(__name__)


_UPSERT_AGENT_MISS = (
    "INSERT INTO agent_misses (linkedid, agent, rang_at, ring_seconds, reason, answered_by, caller, pbx) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
    "ON CONFLICT (linkedid, agent, rang_at, pbx) DO UPDATE SET ring_seconds = excluded.ring_seconds, "
    "reason = excluded.reason, answered_by = excluded.answered_by, caller = excluded.caller"
)
# A call saved again describes the same miss: refresh what the PBX told us, keep the entry's id and its
# call-back state (which belongs to the people working the register).
_UPSERT_MISSED = (
    f"INSERT INTO missed ({', '.join(rows.MISSED_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(rows.MISSED_COLUMNS) + 1))}) "
    "ON CONFLICT (linkedid, pbx) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in rows.MISSED_COLUMNS[1:10])
)
_HISTORY_OPENED = (
    "INSERT INTO missed_history (entry_id, at, action, by, linkedid, comment) "
    "SELECT id, missed_at, 'opened', NULL, linkedid, NULL FROM missed WHERE pbx = $1 AND linkedid = $2 "
    "AND NOT EXISTS (SELECT 1 FROM missed_history h WHERE h.entry_id = missed.id AND h.action = 'opened')"
)
_CLOSE_BY_CALL = (
    "UPDATE missed SET status = 'closed', closed_at = $1, closed_by = $2, closed_linkedid = $3 "
    "WHERE id = $4 AND status = 'open'"
)
_HISTORY_CLOSED_BY_CALL = (
    "INSERT INTO missed_history (entry_id, at, action, by, linkedid, comment) "
    "VALUES ($1, $2, 'closed', $3, $4, NULL)"
)


class StagedWriter(Staging[Conn], PostgresBase):
    """``store/staging.py``'s writer over PostgreSQL, and ``live_events``."""

    # One item cannot be saved (bad data, a bug): a constraint, a value PostgreSQL refuses (class 22), or one
    # asyncpg cannot encode (an integer beyond 64 bits is a ValueError there).
    _item_errors = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError, ValueError, TypeError,
                    OverflowError)
    _db_errors = DB_ERRORS
    _restage_on = (BaseException,)
    _log = log

    async def live_events(self, pbx: str | None = None) -> list[LiveEvent]:
        # Every row at once, as the SQLite store: only calls in progress have rows (a few hundred at most).
        if pbx is None:
            return await self._select("SELECT linkedid, headers, received_at FROM live_events ORDER BY seq", (),
                                      rows.live_event_from_row)
        return await self._select("SELECT linkedid, headers, received_at FROM live_events WHERE pbx = $1 "
                                  "ORDER BY seq", (pbx,), rows.live_event_from_row)

    async def _write_events(self, conn: Conn, events: list[StagedEvent]) -> None:
        await conn.executemany(
            "INSERT INTO live_events (linkedid, headers, received_at, pbx) VALUES ($1, $2, $3, $4)",
            [(e.linkedid, rows.headers_json(e.headers), e.received_at, e.pbx) for e in events],
        )

    async def _write_calls(self, conn: Conn, calls: list[PreparedCall]) -> None:
        await conn.executemany(rows.UPSERT_CALL, [rows.call_row(c.staged.record, c.caller_key, c.called_key)
                                                  for c in calls])
        # A call saved again may list other agents: its agents are written afresh.
        for pbx, linkedids in by_pbx((c.pbx, c.staged.record.linkedid) for c in calls).items():
            await conn.execute("DELETE FROM call_agents WHERE pbx = $1 AND linkedid = ANY($2::text[])", pbx,
                               linkedids)
        agents = [row for c in calls for row in rows.call_agent_rows(c.staged.record)]
        if agents:
            await conn.executemany("INSERT INTO call_agents (agent, started_at, linkedid, pbx, rung_not_answered, "
                                   "answered) VALUES ($1, $2, $3, $4, $5, $6)", agents)
        for pbx, linkedids in by_pbx((c.pbx, lid) for c in calls for lid in c.own_linkedids).items():
            await conn.execute("DELETE FROM live_events WHERE pbx = $1 AND linkedid = ANY($2::text[])", pbx,
                               linkedids)
        misses = [(m.linkedid, m.agent, m.rang_at, m.ring_seconds, m.reason, m.answered_by, m.caller, m.pbx)
                  for c in calls for m in c.staged.agent_misses]
        if misses:
            await conn.executemany(_UPSERT_AGENT_MISS, misses)
        call_backs = [c.call_back for c in calls if c.call_back is not None]
        if call_backs:
            await self._apply_call_backs(conn, call_backs)
        entries = [(c.staged.missed, c.missed_key) for c in calls if c.staged.missed is not None]
        if entries:
            await conn.executemany(_UPSERT_MISSED, [rows.missed_args(e, key) for e, key in entries if e])
            keys = [(e.pbx, e.linkedid) for e, _ in entries if e]
            await conn.executemany(_HISTORY_OPENED, keys)
            if self._register_listeners:
                found = await conn.fetch(
                    "SELECT * FROM missed WHERE (pbx, linkedid) IN (SELECT * FROM unnest($1::text[], $2::text[])) "
                    "ORDER BY id", [pbx for pbx, _ in keys], [lid for _, lid in keys])
                self._opened += [rows.missed_from_row(row) for row in found]

    async def _open_entries(self, conn: Conn, number_keys: list[str]) -> list[MissedEntry]:
        found = await conn.fetch(
            "SELECT * FROM missed WHERE caller_key = ANY($1::text[]) AND status = 'open' ORDER BY id", number_keys)
        return [rows.missed_from_row(row) for row in found]

    async def _close_entries(self, conn: Conn, closed: list[tuple[CallBack, MissedEntry]]) -> None:
        await conn.executemany(_CLOSE_BY_CALL, [(cb.at, cb.closed_by, cb.linkedid, e.id) for cb, e in closed])
        await conn.executemany(_HISTORY_CLOSED_BY_CALL, [(e.id, cb.at, cb.closed_by, cb.linkedid)
                                                         for cb, e in closed])
