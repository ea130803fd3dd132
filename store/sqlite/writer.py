"""Staged writes on SQLite: the SQL of the store's writer (the staging itself is ``store/staging.py``).

A batch is one transaction, one statement per table (``store/sqlite/many_rows.py`` says why not ``executemany``).

``synchronous=NORMAL`` in WAL mode: a commit survives the process being killed (it is in the WAL file before
``COMMIT`` returns); only a power cut may lose the last commits, never corrupt the file.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite

from cti.callbacks import CallBack
from cti.records import MissedEntry
from store.repository import LiveEvent
from store.sqlite import rows
from store.sqlite.base import SqliteBase
from store.sqlite.many_rows import insert_rows, where_in
from store.staging import PreparedCall, StagedEvent, Staging, by_pbx

log = logging.getLogger(__name__)

_INSERT_CALL = f"INSERT INTO calls ({', '.join(rows.CALL_COLUMNS)})"
_ON_CALL_CONFLICT = ("ON CONFLICT (linkedid, pbx) DO UPDATE SET "
                     + ", ".join(f"{c} = excluded.{c}" for c in rows.CALL_COLUMNS if c not in ("linkedid", "pbx")))
_INSERT_AGENT_MISS = ("INSERT INTO agent_misses (linkedid, agent, rang_at, ring_seconds, reason, answered_by, caller, "
                      "pbx)")
_ON_AGENT_MISS_CONFLICT = (
    "ON CONFLICT (linkedid, agent, rang_at, pbx) DO UPDATE SET ring_seconds = excluded.ring_seconds, "
    "reason = excluded.reason, answered_by = excluded.answered_by, caller = excluded.caller"
)
# A call saved again describes the same miss: refresh what the PBX told us, keep the entry's id and its
# call-back state (which belongs to the people working the register).
_INSERT_MISSED = f"INSERT INTO missed ({', '.join(rows.MISSED_COLUMNS)})"
_ON_MISSED_CONFLICT = ("ON CONFLICT (linkedid, pbx) DO UPDATE SET "
                       + ", ".join(f"{c} = excluded.{c}" for c in rows.MISSED_COLUMNS[1:10]))
_HISTORY_OPENED = (
    "INSERT INTO missed_history (entry_id, at, action, by, linkedid, comment) "
    "SELECT id, missed_at, 'opened', NULL, linkedid, NULL FROM missed WHERE pbx = ? AND linkedid IN ({keys}) "
    "AND NOT EXISTS (SELECT 1 FROM missed_history h WHERE h.entry_id = missed.id AND h.action = 'opened') "
    "ORDER BY id"
)
_CLOSE_BY_CALL = (
    "UPDATE missed SET status = 'closed', closed_at = ?, closed_by = ?, closed_linkedid = ? "
    "WHERE id = ? AND status = 'open'"
)
_HISTORY_CLOSED_BY_CALL = (
    "INSERT INTO missed_history (entry_id, at, action, by, linkedid, comment) VALUES (?, ?, 'closed', ?, ?, NULL)"
)


class StagedWriter(Staging[aiosqlite.Connection], SqliteBase):
    """``store/staging.py``'s writer over SQLite, and ``live_events``."""

    # Errors that mean one item cannot be saved (bad data, a bug) rather than that the database is failing. An
    # integer beyond SQLite's 64 bits (a hang-up cause of 25 digits from the PBX) is an OverflowError: without it
    # here, one such call ended the writer task, and with it the daemon.
    _item_errors = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError,
                    sqlite3.DataError, ValueError, TypeError, OverflowError)
    _db_errors = _restage_on = (sqlite3.Error,)  # locked, disk full: keep the items staged and retry
    _log = log

    async def live_events(self, pbx: str | None = None) -> list[LiveEvent]:
        if pbx is None:
            return await self._select("SELECT linkedid, headers, received_at FROM live_events ORDER BY seq", (),
                                      rows.live_event_from_row)
        return await self._select("SELECT linkedid, headers, received_at FROM live_events WHERE pbx = ? ORDER BY seq",
                                  (pbx,), rows.live_event_from_row)

    async def _write_events(self, db: aiosqlite.Connection, events: list[StagedEvent]) -> None:
        await insert_rows(
            db, "INSERT INTO live_events (linkedid, headers, received_at, pbx)",
            [(e.linkedid, json.dumps([list(h) for h in e.headers], ensure_ascii=False), e.received_at, e.pbx)
             for e in events],
        )

    async def _write_calls(self, db: aiosqlite.Connection, calls: list[PreparedCall]) -> None:
        await insert_rows(db, _INSERT_CALL, [rows.call_row(c.staged.record, c.caller_key, c.called_key)
                                             for c in calls], _ON_CALL_CONFLICT)
        # A call saved again may list other agents: its agents are written afresh.
        for pbx, linkedids in by_pbx((c.pbx, c.staged.record.linkedid) for c in calls).items():
            await where_in(db, "DELETE FROM call_agents WHERE pbx = ? AND linkedid IN ({keys})", linkedids, (pbx,))
        await insert_rows(db, "INSERT INTO call_agents (agent, started_at, linkedid, pbx, rung_not_answered, "
                              "answered)", [row for c in calls for row in rows.call_agent_rows(c.staged.record)])
        for pbx, linkedids in by_pbx((c.pbx, lid) for c in calls for lid in c.own_linkedids).items():
            await where_in(db, "DELETE FROM live_events WHERE pbx = ? AND linkedid IN ({keys})", linkedids, (pbx,))
        await insert_rows(db, _INSERT_AGENT_MISS,
                          [(m.linkedid, m.agent, m.rang_at, m.ring_seconds, m.reason, m.answered_by, m.caller, m.pbx)
                           for c in calls for m in c.staged.agent_misses], _ON_AGENT_MISS_CONFLICT)
        call_backs = [c.call_back for c in calls if c.call_back is not None]
        if call_backs:
            await self._apply_call_backs(db, call_backs)
        entries = [rows.missed_row(c.staged.missed, c.missed_key) for c in calls if c.staged.missed is not None]
        if entries:
            await insert_rows(db, _INSERT_MISSED, [tuple(e[c] for c in rows.MISSED_COLUMNS) for e in entries],
                              _ON_MISSED_CONFLICT)
            # New entries' ids ascend in staging order, so their "opened" rows are in that order too (one
            # statement per PBX: a batch holds one PBX's calls but for a daemon that follows several).
            opened = by_pbx((e["pbx"], e["linkedid"]) for e in entries)
            for pbx, linkedids in opened.items():
                await where_in(db, _HISTORY_OPENED, linkedids, (pbx,))
            if self._register_listeners:
                found = [entry for pbx, linkedids in opened.items()
                         for entry in await _missed_where(db, "linkedid", linkedids, "AND pbx = ? ", (pbx,))]
                self._opened += sorted(found, key=lambda e: e.id or 0)

    async def _open_entries(self, db: aiosqlite.Connection, number_keys: list[str]) -> list[MissedEntry]:
        return await _missed_where(db, "caller_key", number_keys, "AND status = 'open' ")

    async def _close_entries(self, db: aiosqlite.Connection, closed: list[tuple[CallBack, MissedEntry]]) -> None:
        await db.executemany(_CLOSE_BY_CALL, [(cb.at, cb.closed_by, cb.linkedid, e.id) for cb, e in closed])
        await db.executemany(_HISTORY_CLOSED_BY_CALL, [(e.id, cb.at, cb.closed_by, cb.linkedid) for cb, e in closed])


async def _missed_where(db: aiosqlite.Connection, column: str, keys: Sequence[str],
                        more: str = "", more_params: Sequence[Any] = ()) -> list[MissedEntry]:
    """Missed entries whose ``column`` is one of ``keys`` (one JSON parameter, however many keys), by id."""
    async with db.execute(f"SELECT * FROM missed WHERE {column} IN (SELECT value FROM json_each(?)) {more}ORDER BY id",
                          (json.dumps(list(keys)), *more_params)) as cur:
        return [rows.missed_from_row(row) for row in await cur.fetchall()]
