"""Staged writes on PostgreSQL: the AMI event path appends to memory; a writer task commits batches in order.

The same contract as the SQLite store's writer (``store/sqlite/writer.py``; docs/store.md, "Batching"):
``stage_event`` / ``stage_call`` only append to a list; the writer task commits it every ``flush_interval``
seconds, or as soon as ``batch_size`` items wait, in one transaction with ``executemany`` (asyncpg pipelines the
rows of one statement in one round trip). The result is what writing the items one by one, in staging order,
would give: a call's live events are deleted where the call is saved, a call-back closes only entries saved
before it (the rule is ``cti.callbacks``). A batch that one bad item spoils is written one by one, the bad item
logged and dropped; when the database itself fails (unreachable, restarting) the items stay staged and the
writer tries again after ``flush_interval``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import asyncpg

from cti.callbacks import CallBack, call_back_of, closed_by_call
from cti.phones import normalize_number
from cti.records import AgentMiss, CallRecord, MissedEntry
from store.postgres import rows
from store.postgres.base import Conn, PostgresBase
from store.repository import LiveEvent

log = logging.getLogger(__name__)

# One item cannot be saved (bad data, a bug): a constraint, a value PostgreSQL refuses (class 22), or one
# asyncpg cannot encode (an integer beyond 64 bits is a ValueError there).
_ITEM_ERRORS = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError, ValueError, TypeError, OverflowError)
# The database is failing (down, restarting, unreachable, out of disk): keep the items staged and retry.
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)

_UPSERT_AGENT_MISS = (
    "INSERT INTO agent_misses (linkedid, agent, rang_at, ring_seconds, reason, answered_by, caller) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) "
    "ON CONFLICT (linkedid, agent, rang_at) DO UPDATE SET ring_seconds = excluded.ring_seconds, "
    "reason = excluded.reason, answered_by = excluded.answered_by, caller = excluded.caller"
)
# A call saved again describes the same miss: refresh what the PBX told us, keep the entry's id and its
# call-back state (which belongs to the people working the register).
_UPSERT_MISSED = (
    f"INSERT INTO missed ({', '.join(rows.MISSED_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(rows.MISSED_COLUMNS) + 1))}) "
    "ON CONFLICT (linkedid) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in rows.MISSED_COLUMNS[1:10])
)
_HISTORY_OPENED = (
    "INSERT INTO missed_history (entry_id, at, action, by, linkedid, comment) "
    "SELECT id, missed_at, 'opened', NULL, linkedid, NULL FROM missed WHERE linkedid = $1 "
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


@dataclass(frozen=True, slots=True)
class _StagedEvent:
    linkedid: str
    headers: Sequence[tuple[str, str]]
    received_at: float


@dataclass(frozen=True, slots=True)
class _StagedCall:
    record: CallRecord
    missed: MissedEntry | None
    agent_misses: tuple[AgentMiss, ...]


_Staged = _StagedEvent | _StagedCall


@dataclass(frozen=True, slots=True)
class _PreparedCall:
    """A staged call with the numbers it is matched by, normalised once, and what it closes."""

    staged: _StagedCall
    caller_key: str | None
    called_key: str | None
    own_linkedids: tuple[str, ...]
    call_back: CallBack | None
    missed_key: str | None


class StagedWriter(PostgresBase):
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
        self._writing_count = 0

    def stage_event(self, linkedid: str, headers: Sequence[tuple[str, str]], received_at: float) -> None:
        self._check_open()
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
        # Every row at once, as the SQLite store: only calls in progress have rows (a few hundred at most).
        return await self._select("SELECT linkedid, headers, received_at FROM live_events ORDER BY seq", (),
                                  rows.live_event_from_row)

    async def run_writer(self) -> None:
        """Commit staged items until cancelled (or the store is closed), then commit what is left."""
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
                except DB_ERRORS:
                    log.exception("store: writing %d staged items failed; retrying", len(self._staged))
                    await asyncio.sleep(self._flush_interval)
        finally:
            if not self._closed:
                try:
                    await self._write_staged()
                except DB_ERRORS:  # let the cancellation end the task; close() will try once more
                    log.exception("store: %d staged items not written as the writer stops", len(self._staged))

    async def flush(self) -> None:
        self._check_open()
        await self._write_staged()

    def _wake_writer(self) -> None:
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
            except BaseException:
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
            except BaseException:
                self._restage(batch[index:])
                raise

    def _restage(self, items: list[_Staged]) -> None:
        """Put items back in front of anything staged since, to be written again in the same order."""
        self._staged[:0] = items
        self._has_staged.set()

    def _writing(self, batch: Sequence[_Staged]) -> Callable[[Conn], Awaitable[None]]:
        return lambda conn: self._write_batch(conn, batch)

    async def _write_batch(self, conn: Conn, batch: Sequence[_Staged]) -> None:
        """Write a batch so that the result is what writing its items one by one, in order, would give.

        An event staged before a call that owns its linkedid would be deleted by that call, so it is never
        written; the calls' deletes run before the other events are inserted, so a late event stays.
        """
        calls: list[_PreparedCall] = []
        events: list[_StagedEvent] = []
        ended: set[str] = set()
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
            await self._write_calls(conn, run)
        if events:
            await conn.executemany(
                "INSERT INTO live_events (linkedid, headers, received_at) VALUES ($1, $2, $3)",
                [(e.linkedid, rows.headers_json(e.headers), e.received_at) for e in events],
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

    async def _write_calls(self, conn: Conn, calls: list[_PreparedCall]) -> None:
        await conn.executemany(rows.UPSERT_CALL, [rows.call_row(c.staged.record, c.caller_key, c.called_key)
                                                  for c in calls])
        # A call saved again may list other agents: its agents are written afresh.
        await conn.execute("DELETE FROM call_agents WHERE linkedid = ANY($1::text[])",
                           [c.staged.record.linkedid for c in calls])
        agents = [row for c in calls for row in rows.call_agent_rows(c.staged.record)]
        if agents:
            await conn.executemany("INSERT INTO call_agents (agent, started_at, linkedid, rung_not_answered, "
                                   "answered) VALUES ($1, $2, $3, $4, $5)", agents)
        await conn.execute("DELETE FROM live_events WHERE linkedid = ANY($1::text[])",
                           sorted({lid for c in calls for lid in c.own_linkedids}))
        misses = [(m.linkedid, m.agent, m.rang_at, m.ring_seconds, m.reason, m.answered_by, m.caller)
                  for c in calls for m in c.staged.agent_misses]
        if misses:
            await conn.executemany(_UPSERT_AGENT_MISS, misses)
        call_backs = [c.call_back for c in calls if c.call_back is not None]
        if call_backs:
            await self._apply_call_backs(conn, call_backs)
        entries = [(c.staged.missed, c.missed_key) for c in calls if c.staged.missed is not None]
        if entries:
            await conn.executemany(_UPSERT_MISSED, [rows.missed_args(e, key) for e, key in entries if e])
            linkedids = [e.linkedid for e, _ in entries if e]
            await conn.executemany(_HISTORY_OPENED, [(lid,) for lid in linkedids])
            if self._register_listeners:
                found = await conn.fetch("SELECT * FROM missed WHERE linkedid = ANY($1::text[]) ORDER BY id",
                                         linkedids)
                self._opened += [rows.missed_from_row(row) for row in found]

    async def _apply_call_backs(self, conn: Conn, call_backs: list[CallBack]) -> None:
        """Close what ``cti.callbacks`` decides among the open entries of the numbers the calls reached: one
        indexed read of those numbers' open entries, the decisions in staging order, one ``executemany`` each."""
        keys = sorted({cb.number_key for cb in call_backs})
        found = await conn.fetch(
            "SELECT * FROM missed WHERE caller_key = ANY($1::text[]) AND status = 'open' ORDER BY id", keys)
        still_open = [rows.missed_from_row(row) for row in found]
        closed: list[tuple[CallBack, MissedEntry]] = []
        for cb in call_backs:
            now_closed = closed_by_call(cb, still_open)
            if now_closed:
                ids = {e.id for e in now_closed}
                still_open = [e for e in still_open if e.id not in ids]
                closed += [(cb, e) for e in now_closed]
        if not closed:
            return
        await conn.executemany(_CLOSE_BY_CALL, [(cb.at, cb.closed_by, cb.linkedid, e.id) for cb, e in closed])
        await conn.executemany(_HISTORY_CLOSED_BY_CALL, [(e.id, cb.at, cb.closed_by, cb.linkedid)
                                                         for cb, e in closed])
        if self._register_listeners:
            self._updated += sorted((e for _, e in closed), key=lambda e: e.id or 0)


def _call_runs(calls: list[_PreparedCall]) -> Iterator[list[_PreparedCall]]:
    """Cut a batch's calls into runs that one ``executemany`` per statement writes in staging order: a run is
    cut before a call that closes entries of a number an earlier call of the run opened one for (a miss and its
    call-back in one batch). The SQLite writer cuts the same way."""
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
