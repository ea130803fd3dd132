"""Staged writes: the AMI event path appends to memory; a writer task commits batches in staging order.

Why staging: the AMI event path must never wait for a disk. ``stage_event`` / ``stage_call`` only append to a
list; the writer task commits the list every ``flush_interval`` seconds, or as soon as ``batch_size`` items wait,
in one transaction, one statement per table (``store/sqlite/many_rows.py`` says why not ``executemany``).
The result is what writing the items one by one, in order, would give:
a call's live events are deleted where the call is saved, and a call-back only closes missed entries saved
before it (the rule itself is ``cti.callbacks``: this module only applies its decision).

``synchronous=NORMAL`` in WAL mode: a commit survives the process being killed (it is in the WAL file before
``COMMIT`` returns); only a power cut may lose the last commits, never corrupt the file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import aiosqlite

from cti.callbacks import CallBack, call_back_of, closed_by_call
from cti.frozen import fast_init
from cti.phones import normalize_number
from cti.records import AgentMiss, CallRecord, MissedEntry
from store.repository import LiveEvent
from store.sqlite import rows
from store.sqlite.base import SqliteBase
from store.sqlite.many_rows import insert_rows, where_in

log = logging.getLogger(__name__)

# Errors that mean one item cannot be saved (bad data, a bug) rather than that the database is failing. An
# integer beyond SQLite's 64 bits (a hang-up cause of 25 digits from the PBX) is an OverflowError: without it here,
# one such call ended the writer task, and with it the daemon.
_ITEM_ERRORS = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError,
                sqlite3.DataError, ValueError, TypeError, OverflowError)

_INSERT_CALL = f"INSERT INTO calls ({', '.join(rows.CALL_COLUMNS)})"
_ON_CALL_CONFLICT = ("ON CONFLICT (linkedid) DO UPDATE SET "
                     + ", ".join(f"{c} = excluded.{c}" for c in rows.CALL_COLUMNS if c != "linkedid"))
_INSERT_AGENT_MISS = "INSERT INTO agent_misses (linkedid, agent, rang_at, ring_seconds, reason, answered_by, caller)"
_ON_AGENT_MISS_CONFLICT = (
    "ON CONFLICT (linkedid, agent, rang_at) DO UPDATE SET ring_seconds = excluded.ring_seconds, "
    "reason = excluded.reason, answered_by = excluded.answered_by, caller = excluded.caller"
)
# A call saved again describes the same miss: refresh what the PBX told us, keep the entry's id and its
# call-back state (which belongs to the people working the register).
_INSERT_MISSED = f"INSERT INTO missed ({', '.join(rows.MISSED_COLUMNS)})"
_ON_MISSED_CONFLICT = ("ON CONFLICT (linkedid) DO UPDATE SET "
                       + ", ".join(f"{c} = excluded.{c}" for c in rows.MISSED_COLUMNS[1:10]))
_HISTORY_OPENED = (
    "INSERT INTO missed_history (entry_id, at, action, by, linkedid, comment) "
    "SELECT id, missed_at, 'opened', NULL, linkedid, NULL FROM missed WHERE linkedid IN ({keys}) "
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


# -- staged items --------------------------------------------------------------------------------------------

@fast_init  # one per staged item (cti/frozen.py)
@dataclass(frozen=True, slots=True)
class _StagedEvent:
    linkedid: str
    headers: Sequence[tuple[str, str]]
    received_at: float


@fast_init  # one per staged item (cti/frozen.py)
@dataclass(frozen=True, slots=True)
class _StagedCall:
    record: CallRecord
    missed: MissedEntry | None
    agent_misses: tuple[AgentMiss, ...]


_Staged = _StagedEvent | _StagedCall


@fast_init  # one per staged item (cti/frozen.py)
@dataclass(frozen=True, slots=True)
class _PreparedCall:
    """A staged call with the numbers it is matched by, normalised once, and what it closes."""

    staged: _StagedCall
    caller_key: str | None
    called_key: str | None
    own_linkedids: tuple[str, ...]  # the call's linkedids: its live events
    call_back: CallBack | None  # the open entries it closes (cti.callbacks), if any
    missed_key: str | None  # the number of the entry this call opens, if any


class StagedWriter(SqliteBase):
    """``stage_event``, ``stage_call``, the writer task, ``flush``, ``live_events`` (see the module's docstring)."""

    _flush_interval: float
    _batch_size: int
    _staged: list[_Staged]
    _has_staged: asyncio.Event
    _batch_full: asyncio.Event
    _writing_count: int

    def _init_staging(self, flush_interval: float, batch_size: int) -> None:
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._staged = []
        self._has_staged = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._writing_count = 0  # items of the batch in the current transaction

    def stage_event(self, linkedid: str, headers: Sequence[tuple[str, str]], received_at: float) -> None:
        self._check_open()
        # No copy: AmiMessage headers are never changed once parsed.
        self._stage(_StagedEvent(linkedid, headers, received_at))

    def stage_call(
        self, record: CallRecord, missed: MissedEntry | None, agent_misses: Sequence[AgentMiss]
    ) -> None:
        self._check_open()
        self._stage(_StagedCall(record, missed, tuple(agent_misses)))

    def _stage(self, item: _Staged) -> None:
        self._staged.append(item)
        self._has_staged.set()
        if len(self._staged) >= self._batch_size:
            self._batch_full.set()

    @property
    def pending_count(self) -> int:
        """Items staged and not committed yet, including a batch being written (back-pressure, health)."""
        return len(self._staged) + self._writing_count

    async def live_events(self) -> list[LiveEvent]:
        return await self._select(
            "SELECT linkedid, headers, received_at FROM live_events ORDER BY seq", (), rows.live_event_from_row
        )

    async def run_writer(self) -> None:
        """Commit staged items until cancelled (or the store is closed), then commit what is left.

        A batch waits at most ``flush_interval`` seconds after its first item, less when ``batch_size``
        items are staged. When the database itself fails (locked, disk full) the items stay staged and
        the writer tries again after ``flush_interval``.
        """
        try:
            while not self._closed:
                await self._has_staged.wait()
                if not self._batch_full.is_set():
                    try:
                        async with asyncio.timeout(self._flush_interval):
                            await self._batch_full.wait()
                    except TimeoutError:
                        pass
                try:
                    await self._write_staged()
                except sqlite3.Error:
                    log.exception("store: writing %d staged items failed; retrying", len(self._staged))
                    await asyncio.sleep(self._flush_interval)
        finally:
            if not self._closed:
                try:
                    await self._write_staged()
                except sqlite3.Error:  # let the cancellation end the task; close() will try once more
                    log.exception("store: %d staged items not written as the writer stops", len(self._staged))

    async def flush(self) -> None:
        self._check_open()
        await self._write_staged()

    def _wake_writer(self) -> None:
        """A writer task still running wakes up (and sees the store closed)."""
        self._has_staged.set()
        self._batch_full.set()

    async def _write_staged(self) -> None:
        await self._shielded(self._write_staged_locked())

    async def _write_staged_locked(self) -> None:
        async with self._write_lock:
            if self._closed or not self._staged:
                return
            batch, self._staged = self._staged, []
            self._has_staged.clear()
            self._batch_full.clear()
            self._writing_count = len(batch)
            try:
                await self._transaction(self._writing(batch))
            except _ITEM_ERRORS:
                log.warning("store: a batch of %d items failed; saving them one by one", len(batch),
                            exc_info=True)
                await self._write_one_by_one(batch)
            except sqlite3.Error:
                self._restage(batch)
                raise
            finally:
                self._writing_count = 0

    async def _write_one_by_one(self, batch: list[_Staged]) -> None:
        """Save each item in its own transaction, so one bad call cannot cost the others."""
        for index, item in enumerate(batch):
            try:
                await self._transaction(self._writing([item]))
            except _ITEM_ERRORS:
                log.exception("store: dropped %s: it cannot be saved", _describe(item))
            except sqlite3.Error:
                self._restage(batch[index:])
                raise

    def _restage(self, items: list[_Staged]) -> None:
        """Put items back in front of anything staged since, to be written again in the same order."""
        self._staged[:0] = items
        self._has_staged.set()

    def _writing(self, batch: Sequence[_Staged]) -> Callable[[aiosqlite.Connection], Awaitable[None]]:
        return lambda db: self._write_batch(db, batch)

    async def _write_batch(self, db: aiosqlite.Connection, batch: Sequence[_Staged]) -> None:
        """Write a batch so that the result is what writing its items one by one, in order, would give.

        Events: an event staged before a call that owns its linkedid would be deleted by that call, so
        it is never written; the calls' deletes run before the other events are inserted, so an event
        staged *after* its call (a late one) stays. Calls: see ``_call_runs``.
        """
        calls: list[_PreparedCall] = []
        events: list[_StagedEvent] = []
        ended: set[str] = set()  # linkedids of calls staged later than the item being looked at
        for item in reversed(batch):
            if isinstance(item, _StagedCall):
                call = self._prepare(item)
                calls.append(call)
                ended.update(call.own_linkedids)
            elif item.linkedid not in ended:
                events.append(item)
        calls.reverse()
        events.reverse()
        for run in _call_runs(calls):
            await self._write_calls(db, run)
        if events:
            await insert_rows(
                db, "INSERT INTO live_events (linkedid, headers, received_at)",
                [(e.linkedid, json.dumps([list(h) for h in e.headers], ensure_ascii=False), e.received_at)
                 for e in events],
            )

    def _prepare(self, staged: _StagedCall) -> _PreparedCall:
        r = staged.record
        own = {r.linkedid, *r.linkedids}
        missed_key = None
        if staged.missed is not None:
            own.add(staged.missed.linkedid)
            missed_key = staged.missed.caller_key or normalize_number(staged.missed.caller, self.region)
        return _PreparedCall(staged, normalize_number(r.caller, self.region), normalize_number(r.called, self.region),
                             tuple(sorted(own)), call_back_of(r, staged.missed, region=self.region), missed_key)

    async def _write_calls(self, db: aiosqlite.Connection, calls: list[_PreparedCall]) -> None:
        await insert_rows(db, _INSERT_CALL, [rows.call_row(c.staged.record, c.caller_key, c.called_key)
                                             for c in calls], _ON_CALL_CONFLICT)
        # A call saved again may list other agents: its agents are written afresh.
        await where_in(db, "DELETE FROM call_agents WHERE linkedid IN ({keys})", [c.staged.record.linkedid
                                                                                 for c in calls])
        await insert_rows(db, "INSERT INTO call_agents (agent, started_at, linkedid, rung_not_answered, answered)",
                          [row for c in calls for row in rows.call_agent_rows(c.staged.record)])
        await where_in(db, "DELETE FROM live_events WHERE linkedid IN ({keys})",
                       [lid for c in calls for lid in c.own_linkedids])
        await insert_rows(db, _INSERT_AGENT_MISS,
                          [(m.linkedid, m.agent, m.rang_at, m.ring_seconds, m.reason, m.answered_by, m.caller)
                           for c in calls for m in c.staged.agent_misses], _ON_AGENT_MISS_CONFLICT)
        call_backs = [c.call_back for c in calls if c.call_back is not None]
        if call_backs:
            await self._apply_call_backs(db, call_backs)
        entries = [rows.missed_row(c.staged.missed, c.missed_key) for c in calls if c.staged.missed is not None]
        if entries:
            await insert_rows(db, _INSERT_MISSED, [tuple(e[c] for c in rows.MISSED_COLUMNS) for e in entries],
                              _ON_MISSED_CONFLICT)
            # New entries' ids ascend in staging order, so their "opened" rows are in that order too.
            await where_in(db, _HISTORY_OPENED, [e["linkedid"] for e in entries])
            if self._register_listeners:
                self._opened += await _missed_where_linkedid(db, [e["linkedid"] for e in entries])

    async def _apply_call_backs(self, db: aiosqlite.Connection, call_backs: list[CallBack]) -> None:
        """Close what ``cti.callbacks`` decides among the open entries of the numbers the calls reached.

        One indexed read of those numbers' open entries, the decisions in staging order (an entry the first
        call closes is no longer open for the second), then one ``executemany`` per statement.
        """
        keys = json.dumps(sorted({cb.number_key for cb in call_backs}))
        async with db.execute(
            "SELECT * FROM missed WHERE caller_key IN (SELECT value FROM json_each(?)) AND status = 'open' "
            "ORDER BY id", (keys,)
        ) as cursor:
            still_open = [rows.missed_from_row(row) for row in await cursor.fetchall()]
        closed: list[tuple[CallBack, MissedEntry]] = []
        for cb in call_backs:
            now_closed = closed_by_call(cb, still_open)
            if now_closed:
                ids = {e.id for e in now_closed}
                still_open = [e for e in still_open if e.id not in ids]
                closed += [(cb, e) for e in now_closed]
        if not closed:
            return
        await db.executemany(_CLOSE_BY_CALL, [(cb.at, cb.closed_by, cb.linkedid, e.id) for cb, e in closed])
        await db.executemany(_HISTORY_CLOSED_BY_CALL, [(e.id, cb.at, cb.closed_by, cb.linkedid) for cb, e in closed])
        if self._register_listeners:
            self._updated += sorted((e for _, e in closed), key=lambda e: e.id or 0)


def _call_runs(calls: list[_PreparedCall]) -> Iterator[list[_PreparedCall]]:
    """Cut a batch's calls into runs that one ``executemany`` per statement writes in staging order.

    Within a run every call's closings are applied (in order) before the run's new entries are
    inserted. That is staging order unless a call closes entries of a number for which an earlier call
    of the same run opened one (a miss and its call-back in one batch), so the run is cut before such a
    call. Two closings of the same number need no cut: they run in order, the second finds nothing.
    """
    run: list[_PreparedCall] = []
    opened: set[str] = set()
    for call in calls:
        if call.call_back is not None and call.call_back.number_key in opened:
            yield run
            run, opened = [], set()
        run.append(call)
        if call.missed_key is not None:
            opened.add(call.missed_key)
    if run:
        yield run


def _describe(item: _Staged) -> str:
    if isinstance(item, _StagedEvent):
        return f"an event of call {item.linkedid}"
    return f"call {item.record.linkedid}" + (" and its missed entry" if item.missed is not None else "")


async def _missed_where_linkedid(db: aiosqlite.Connection, linkedids: Sequence[str]) -> list[MissedEntry]:
    async with db.execute("SELECT * FROM missed WHERE linkedid IN (SELECT value FROM json_each(?)) ORDER BY id",
                          (json.dumps(list(linkedids)),)) as cur:
        return [rows.missed_from_row(row) for row in await cur.fetchall()]
