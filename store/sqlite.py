"""The SQLite ``CallStore``: aiosqlite, WAL, one writer connection, one reader connection.

Why two connections: in WAL mode readers never wait for the writer, so the journal, the register and the
CLI read a consistent snapshot while the writer task commits a batch. aiosqlite runs each connection on
its own thread and serialises what is sent to it, so the store needs no thread locks; an ``asyncio.Lock``
keeps one transaction at a time on the writer connection.

Why staging: the AMI event path must never wait for a disk. ``stage_event`` / ``stage_call`` only
append to a list; the writer task commits the list every ``flush_interval`` seconds, or as soon as
``batch_size`` items wait, in one transaction using ``executemany``. The items are written in staging
order: a call's live events are deleted where the call is saved, and a call-back only closes missed
entries saved before it. Every transaction runs in a task of its own behind ``asyncio.shield``, so a
cancelled caller (the daemon shutting down) never leaves half a transaction on the connection.

``synchronous=NORMAL`` in WAL mode: a commit survives the process being killed (it is in the WAL file
before ``COMMIT`` returns); only a power cut may lose the last commits, never corrupt the file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

import aiosqlite

from cti.directory import Contact, Query, parse_query
from cti.phones import normalize_number
from cti.records import (
    AgentMiss,
    CallRecord,
    ClosedBy,
    Direction,
    LegRecord,
    MissedEntry,
    MissedStatus,
    Outcome,
)
from store import sqlite_directory as directory_sql
from store.migrate import migrate, rollback
from store.repository import (
    CallStore,
    ContactNotFound,
    Grant,
    HistoryAction,
    LiveEvent,
    MissedAlreadyClosed,
    MissedAlreadyOpen,
    MissedHistoryItem,
    MissedNotFound,
    RegisterChange,
    Role,
    StoreClosed,
    StoreError,
    User,
    UserExists,
    UserNotFound,
)
from store.settings import StoreSettings

log = logging.getLogger(__name__)

#: Address space the reader connection may map (pages are read on demand; nothing is allocated up front).
READER_MMAP_BYTES = 1 << 30

T = TypeVar("T")

#: Rows fetched per round trip to the reader thread (``fetchmany``): a query's rows are converted as they
#: come, never held twice as raw rows and records.
READ_CHUNK = 256

# Errors that mean one item cannot be saved (bad data, a bug) rather than that the database is failing.
_ITEM_ERRORS = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError,
                sqlite3.DataError, ValueError, TypeError)


# -- staged items --------------------------------------------------------------------------------------

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
    """A staged call with the numbers it is matched by, normalised once."""

    staged: _StagedCall
    caller_key: str | None
    called_key: str | None
    own_linkedids: tuple[str, ...]  # the call's linkedids: its live events, the entries it may not close
    close_key: str | None  # the number whose open missed entries this call closes, if any
    closed_by: ClosedBy | None
    missed_key: str | None  # the number of the entry this call opens, if any


# -- SQL -----------------------------------------------------------------------------------------------

_CALL_COLUMNS = (
    "linkedid", "direction", "caller", "caller_key", "caller_name", "called", "called_key", "answered",
    "answered_by", "missed_reason", "talk_seconds", "transferred_to", "agents_rung_not_answered",
    "recording", "started_at", "answered_at", "ended_at", "outcome", "ring_seconds", "queue", "did",
    "hangup_cause", "hangup_cause_txt", "hung_up_by", "recordings", "linkedids", "agents_answered",
    "complete", "legs",
)
_UPSERT_CALL = (
    f"INSERT INTO calls ({', '.join(_CALL_COLUMNS)}) VALUES ({', '.join('?' for _ in _CALL_COLUMNS)}) "
    "ON CONFLICT (linkedid) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _CALL_COLUMNS if c != "linkedid")
)

_UPSERT_AGENT_MISS = (
    "INSERT INTO agent_misses (linkedid, agent, rang_at, ring_seconds, reason, answered_by, caller) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (linkedid, agent, rang_at) DO UPDATE SET ring_seconds = excluded.ring_seconds, "
    "reason = excluded.reason, answered_by = excluded.answered_by, caller = excluded.caller"
)

_MISSED_COLUMNS = (
    "linkedid", "caller", "caller_key", "caller_name", "called", "queue", "reason", "missed_at",
    "ring_seconds", "agents_rung", "status", "closed_at", "closed_by", "closed_linkedid", "comment",
)
# A call saved again describes the same miss: refresh what the PBX told us, keep the entry's id and its
# call-back state (which belongs to the people working the register).
_UPSERT_MISSED = (
    f"INSERT INTO missed ({', '.join(_MISSED_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _MISSED_COLUMNS)}) "
    "ON CONFLICT (linkedid) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _MISSED_COLUMNS[1:10])
)
_HISTORY_OPENED = (
    "INSERT INTO missed_history (entry_id, at, action, by, linkedid, comment) "
    "SELECT id, missed_at, 'opened', NULL, linkedid, NULL FROM missed WHERE linkedid = ? "
    "AND NOT EXISTS (SELECT 1 FROM missed_history h WHERE h.entry_id = missed.id AND h.action = 'opened')"
)

# The call-back rule, one row of parameters per closing call. The history row is written first because
# it selects the entries this very call is about to close.
_OPEN_ENTRIES_OF_KEY = (
    "FROM missed WHERE caller_key = :key AND status = 'open' "
    "AND linkedid NOT IN (SELECT value FROM json_each(:own))"
)
_HISTORY_CLOSED_BY_CALL = (
    "INSERT INTO missed_history (entry_id, at, action, by, linkedid, comment) "
    f"SELECT id, :at, 'closed', :by, :linkedid, NULL {_OPEN_ENTRIES_OF_KEY}"
)
_CLOSE_BY_CALL = (
    "UPDATE missed SET status = 'closed', closed_at = :at, closed_by = :by, closed_linkedid = :linkedid "
    "WHERE id IN (SELECT id " + _OPEN_ENTRIES_OF_KEY + ")"
)

_INSERT_HISTORY = (
    "INSERT INTO missed_history (entry_id, at, action, by, linkedid, comment) VALUES (?, ?, ?, ?, ?, ?)"
)

_LEG_FIELDS = tuple(f.name for f in fields(LegRecord))


# -- rows <-> records ----------------------------------------------------------------------------------

def _json_list(values: Sequence[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def _call_row(call: _PreparedCall) -> tuple[Any, ...]:
    """The ``calls`` row in :data:`_CALL_COLUMNS` order (positional: binding is cheaper than by name)."""
    r = call.staged.record
    return (
        r.linkedid, r.direction, r.caller, call.caller_key, r.caller_name, r.called, call.called_key,
        int(r.answered), r.answered_by, r.missed_reason, r.talk_seconds, r.transferred_to,
        _json_list(r.agents_rung_not_answered), r.recording, r.started_at, r.answered_at, r.ended_at,
        r.outcome, r.ring_seconds, r.queue, r.did, r.hangup_cause, r.hangup_cause_txt, r.hung_up_by,
        _json_list(r.recordings), _json_list(r.linkedids), _json_list(r.agents_answered), int(r.complete),
        json.dumps([{f: getattr(leg, f) for f in _LEG_FIELDS} for leg in r.legs], ensure_ascii=False),
    )


def _record_from_row(row: sqlite3.Row) -> CallRecord:
    return CallRecord(
        linkedid=row["linkedid"], direction=cast(Direction, row["direction"]), caller=row["caller"],
        caller_name=row["caller_name"], called=row["called"], answered=bool(row["answered"]),
        answered_by=row["answered_by"], missed_reason=row["missed_reason"], talk_seconds=row["talk_seconds"],
        transferred_to=row["transferred_to"],
        agents_rung_not_answered=tuple(json.loads(row["agents_rung_not_answered"])),
        recording=row["recording"], started_at=row["started_at"], answered_at=row["answered_at"],
        ended_at=row["ended_at"], outcome=cast(Outcome, row["outcome"]), ring_seconds=row["ring_seconds"],
        queue=row["queue"], did=row["did"], hangup_cause=row["hangup_cause"],
        hangup_cause_txt=row["hangup_cause_txt"], hung_up_by=row["hung_up_by"],
        recordings=tuple(json.loads(row["recordings"])), linkedids=tuple(json.loads(row["linkedids"])),
        agents_answered=tuple(json.loads(row["agents_answered"])), complete=bool(row["complete"]),
        legs=tuple(LegRecord(**leg) for leg in json.loads(row["legs"])),
    )


def _missed_row(entry: MissedEntry, key: str | None) -> dict[str, Any]:
    return {
        "linkedid": entry.linkedid, "caller": entry.caller, "caller_key": key, "caller_name": entry.caller_name,
        "called": entry.called, "queue": entry.queue, "reason": entry.reason, "missed_at": entry.missed_at,
        "ring_seconds": entry.ring_seconds, "agents_rung": _json_list(entry.agents_rung),
        "status": entry.status, "closed_at": entry.closed_at, "closed_by": entry.closed_by,
        "closed_linkedid": entry.closed_linkedid, "comment": entry.comment,
    }


def _missed_from_row(row: sqlite3.Row) -> MissedEntry:
    return MissedEntry(
        id=row["id"], linkedid=row["linkedid"], caller=row["caller"], caller_key=row["caller_key"],
        caller_name=row["caller_name"], called=row["called"], queue=row["queue"], reason=row["reason"],
        missed_at=row["missed_at"], ring_seconds=row["ring_seconds"],
        agents_rung=tuple(json.loads(row["agents_rung"])), status=cast(MissedStatus, row["status"]),
        closed_at=row["closed_at"], closed_by=cast("ClosedBy | None", row["closed_by"]),
        closed_linkedid=row["closed_linkedid"], comment=row["comment"],
    )


def _agent_miss_from_row(row: sqlite3.Row) -> AgentMiss:
    return AgentMiss(
        linkedid=row["linkedid"], agent=row["agent"], rang_at=row["rang_at"], ring_seconds=row["ring_seconds"],
        reason=row["reason"], answered_by=row["answered_by"], caller=row["caller"],
    )


def _history_from_row(row: sqlite3.Row) -> MissedHistoryItem:
    return MissedHistoryItem(
        entry_id=row["entry_id"], at=row["at"], action=cast(HistoryAction, row["action"]), by=row["by"],
        linkedid=row["linkedid"], comment=row["comment"],
    )


def _live_event_from_row(row: sqlite3.Row) -> LiveEvent:
    return row["linkedid"], [(k, v) for k, v in json.loads(row["headers"])], row["received_at"]


def _time_range(column: str, since: float | None, until: float | None,
                where: list[str], params: dict[str, Any]) -> None:
    if since is not None:
        where.append(f"{column} >= :since")
        params["since"] = since
    if until is not None:
        where.append(f"{column} < :until")
        params["until"] = until


def _page(limit: int | None, offset: int, params: dict[str, Any]) -> str:
    params["limit"] = -1 if limit is None else limit
    params["offset"] = offset
    return " LIMIT :limit OFFSET :offset"


# -- the store -----------------------------------------------------------------------------------------

class _Opening:
    """What ``SqliteStore.open()`` returns: ``await`` it, or use it in ``async with`` (closes at the end)."""

    def __init__(self, opener: Callable[[], Coroutine[Any, Any, SqliteStore]]) -> None:
        self._opener = opener
        self._store: SqliteStore | None = None

    def __await__(self) -> Generator[Any, None, SqliteStore]:
        return self._opener().__await__()

    async def __aenter__(self) -> SqliteStore:
        self._store = await self._opener()
        return self._store

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._store is not None:
            await self._store.close()


class SqliteStore:
    """The ``CallStore`` on one SQLite file. Make it with ``await SqliteStore.open(path)``."""

    def __init__(
        self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection, *,
        region: str, flush_interval: float, batch_size: int,
    ) -> None:
        self.path = path
        self.region = region
        self._writer = writer
        self._reader = reader
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._staged: list[_Staged] = []
        self._has_staged = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._write_lock = asyncio.Lock()  # one transaction at a time on the writer connection
        self._inflight: set[asyncio.Task[Any]] = set()
        self._writing_count = 0  # items of the batch in the current transaction
        self._closing = False
        self._closed = False
        self._register_listeners: list[Callable[[RegisterChange], None]] = []
        #: Entries opened / changed by the transaction in progress, announced once it has committed.
        self._opened: list[MissedEntry] = []
        self._updated: list[MissedEntry] = []

    # -- life cycle ------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | Path, *, region: str = "RU", flush_interval: float = 0.2, batch_size: int = 500,
        busy_timeout: float = 5.0,
    ) -> _Opening:
        """Open (creating it if needed) the store file and bring its schema up to date.

        ``region`` is how national numbers are read when matching call-backs (``cti.phones``).
        ``busy_timeout`` is how long a statement waits for another process's write lock (the CLI closing
        an entry while the daemon writes) before failing with "database is locked".
        Raises ``StoreError`` when the file cannot be used, ``MigrationError`` when its schema cannot.
        """
        if flush_interval <= 0 or batch_size < 1 or busy_timeout < 0:
            raise ValueError("flush_interval must be > 0, batch_size >= 1 and busy_timeout >= 0")
        busy_ms = round(busy_timeout * 1000)
        return _Opening(lambda: cls._open(Path(path), region, flush_interval, batch_size, busy_ms))

    @classmethod
    def from_settings(cls, settings: StoreSettings, *, region: str = "RU") -> _Opening:
        """``open()`` with the ``[store]`` section of the configuration."""
        return cls.open(settings.path, region=region, flush_interval=settings.flush_interval,
                        batch_size=settings.batch_size)

    @classmethod
    async def _open(
        cls, path: Path, region: str, flush_interval: float, batch_size: int, busy_ms: int
    ) -> SqliteStore:
        if not path.parent.is_dir():
            # Checked here rather than left to SQLite: the message is clearer, and a failed
            # aiosqlite.connect() leaves its thread to finish on its own after we have returned.
            raise StoreError(f"{path}: cannot open the store: the folder {path.parent} does not exist")
        try:
            writer = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the store: {exc}") from exc
        reader: aiosqlite.Connection | None = None
        try:
            writer.row_factory = aiosqlite.Row
            await writer.execute(f"PRAGMA busy_timeout = {busy_ms}")
            async with writer.execute("PRAGMA journal_mode = WAL") as cursor:
                mode = await cursor.fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreError(f"{path}: the store needs a file that supports WAL mode (got {mode!r})")
            for pragma in ("synchronous = NORMAL", "foreign_keys = ON"):
                await writer.execute(f"PRAGMA {pragma}")
            await migrate(writer)
            reader = await aiosqlite.connect(path, isolation_level=None, iter_chunk_size=READ_CHUNK)
            reader.row_factory = aiosqlite.Row
            # mmap: the directory's indexes outgrow the 2 MB page cache at a million contacts; reading them
            # through the OS page cache instead halves a surname lookup (bench/directory.py).
            for pragma in (f"busy_timeout = {busy_ms}", "query_only = ON", f"mmap_size = {READER_MMAP_BYTES}"):
                await reader.execute(f"PRAGMA {pragma}")
        except BaseException as exc:
            if reader is not None:
                await reader.close()
            await writer.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{path}: cannot use the store: {exc}") from exc
            raise
        log.debug("store %s open (region %s)", path, region)
        return cls(path, writer, reader, region=region, flush_interval=flush_interval, batch_size=batch_size)

    async def close(self) -> None:
        """Commit what is staged, then close both connections (the last close checkpoints the WAL)."""
        if self._closing:
            return
        self._closing = True
        try:
            await self._write_staged()
        finally:
            if self._inflight:
                await asyncio.gather(*self._inflight, return_exceptions=True)
            self._closed = True
            self._has_staged.set()  # a writer task still running wakes up, sees the store closed, returns
            self._batch_full.set()
            await self._reader.close()
            await self._writer.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closing:
            raise StoreClosed(f"the store {self.path} is closed")

    # -- staged writes ---------------------------------------------------------------------------------

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
        """Items staged and not committed yet, including a batch being written (for health reporting)."""
        return len(self._staged) + self._writing_count

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

    async def _write_staged(self) -> None:
        await self._shielded(self._write_staged_locked())

    async def _shielded(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` as its own task: if the caller is cancelled, the transaction still ends cleanly."""
        task = asyncio.ensure_future(work)
        self._inflight.add(task)
        task.add_done_callback(self._task_done)
        return await asyncio.shield(task)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._inflight.discard(task)
        if not task.cancelled():
            task.exception()  # whoever awaited it got the error; don't warn "never retrieved" if nobody did

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

    async def _transaction(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``work`` between ``BEGIN IMMEDIATE`` and ``COMMIT``; roll back if anything fails."""
        db = self._writer
        await db.execute("BEGIN IMMEDIATE")
        self._opened, self._updated = [], []
        try:
            result = await work(db)
            await db.execute("COMMIT")
        except BaseException:
            self._opened, self._updated = [], []
            await rollback(db)
            raise
        if self._opened or self._updated:
            self._announce(RegisterChange(tuple(self._opened), tuple(self._updated)))
        return result

    def on_register_change(self, listener: Callable[[RegisterChange], None]) -> None:
        self._register_listeners.append(listener)

    def _announce(self, change: RegisterChange) -> None:
        self._opened, self._updated = [], []
        for listener in self._register_listeners:
            try:
                listener(change)
            except Exception:  # a listener's bug must not undo a commit or stop the writer
                log.exception("store: a register-change listener failed")

    async def _missed_where(self, db: aiosqlite.Connection, column: str, values: Sequence[str]) -> list[MissedEntry]:
        marks = ",".join("?" * len(values))
        async with db.execute(f"SELECT * FROM missed WHERE {column} IN ({marks}) ORDER BY id", tuple(values)) as cur:
            return [_missed_from_row(row) for row in await cur.fetchall()]

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
            await db.executemany(
                "INSERT INTO live_events (linkedid, headers, received_at) VALUES (?, ?, ?)",
                [(e.linkedid, json.dumps([list(h) for h in e.headers], ensure_ascii=False), e.received_at)
                 for e in events],
            )

    def _prepare(self, staged: _StagedCall) -> _PreparedCall:
        r = staged.record
        caller_key = normalize_number(r.caller, self.region)
        called_key = normalize_number(r.called, self.region)
        close_key: str | None = None
        closed_by: ClosedBy | None = None
        if r.answered and r.direction == "outbound":
            close_key, closed_by = called_key, "callback"
        elif r.answered and r.direction == "inbound":
            close_key, closed_by = caller_key, "called_again"
        own = {r.linkedid, *r.linkedids}
        missed_key = None
        if staged.missed is not None:
            own.add(staged.missed.linkedid)
            missed_key = staged.missed.caller_key or normalize_number(staged.missed.caller, self.region)
        return _PreparedCall(staged, caller_key, called_key, tuple(sorted(own)), close_key, closed_by, missed_key)

    async def _write_calls(self, db: aiosqlite.Connection, calls: list[_PreparedCall]) -> None:
        await db.executemany(_UPSERT_CALL, [_call_row(c) for c in calls])
        await db.executemany("DELETE FROM live_events WHERE linkedid = ?",
                             [(lid,) for c in calls for lid in c.own_linkedids])
        misses = [(m.linkedid, m.agent, m.rang_at, m.ring_seconds, m.reason, m.answered_by, m.caller)
                  for c in calls for m in c.staged.agent_misses]
        if misses:
            await db.executemany(_UPSERT_AGENT_MISS, misses)
        closers = [
            {"key": c.close_key, "own": json.dumps(c.own_linkedids), "by": c.closed_by,
             "linkedid": c.staged.record.linkedid, "at": _closing_time(c.staged.record)}
            for c in calls if c.close_key is not None
        ]
        if closers:
            await db.executemany(_HISTORY_CLOSED_BY_CALL, closers)
            await db.executemany(_CLOSE_BY_CALL, closers)
            if self._register_listeners:
                self._updated += await self._missed_where(db, "closed_linkedid", [str(c["linkedid"]) for c in closers])
        entries: list[dict[str, Any]] = []
        for c in calls:
            if c.staged.missed is not None:
                entries.append(_missed_row(c.staged.missed, c.missed_key))
        if entries:
            await db.executemany(_UPSERT_MISSED, entries)
            await db.executemany(_HISTORY_OPENED, [(e["linkedid"],) for e in entries])
            if self._register_listeners:
                self._opened += await self._missed_where(db, "linkedid", [e["linkedid"] for e in entries])

    # -- the missed-call register, by hand -------------------------------------------------------------

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

    async def _manual(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        self._check_open()

        async def locked() -> T:
            async with self._write_lock:
                return await self._transaction(work)

        result = await self._shielded(locked())
        if isinstance(result, MissedEntry) and self._register_listeners:
            self._announce(RegisterChange(updated=(result,)))
        return result

    # -- reads -----------------------------------------------------------------------------------------

    async def _select(self, sql: str, params: dict[str, Any] | tuple[Any, ...],
                      convert: Callable[[sqlite3.Row], T], few: int | None = None) -> list[T]:
        """Rows of a query on the reader connection, fetched ``READ_CHUNK`` at a time; a query whose
        ``LIMIT`` (``few``) is at most ``READ_CHUNK`` is fetched in one round trip instead."""
        if few is not None and few <= READ_CHUNK:
            return await self._select_few(sql, params, convert)
        self._check_open()
        out: list[T] = []
        async with self._reader.execute(sql, params) as cursor:
            async for row in cursor:
                out.append(convert(row))
        return out

    async def list_calls(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        agent: str | None = None,
        direction: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[CallRecord]:
        where: list[str] = []
        params: dict[str, Any] = {}
        _time_range("started_at", since, until, where, params)
        if number is not None:
            key = normalize_number(number, self.region)
            if key is not None:
                where.append("(caller_key = :number OR called_key = :number)")
                params["number"] = key
            else:  # a withheld number has no key; match it as written
                where.append("(caller = :number OR called = :number)")
                params["number"] = number
        if agent is not None:
            where.append(
                "(answered_by = :agent"
                " OR EXISTS (SELECT 1 FROM json_each(calls.agents_rung_not_answered) WHERE value = :agent)"
                " OR EXISTS (SELECT 1 FROM json_each(calls.agents_answered) WHERE value = :agent))"
            )
            params["agent"] = agent
        if direction is not None:
            where.append("direction = :direction")
            params["direction"] = direction
        if outcome is not None:
            where.append("outcome = :outcome")
            params["outcome"] = outcome
        sql = "SELECT * FROM calls" + (" WHERE " + " AND ".join(where) if where else "")
        order = " ORDER BY started_at DESC, linkedid DESC" if newest_first else " ORDER BY started_at, linkedid"
        sql += order + _page(limit, offset, params)
        return await self._select(sql, params, _record_from_row, few=limit)

    async def get_call(self, linkedid: str) -> CallRecord | None:
        rows = await self._select("SELECT * FROM calls WHERE linkedid = ?", (linkedid,), _record_from_row)
        return rows[0] if rows else None

    async def count_calls(self) -> int:
        rows = await self._select("SELECT count(*) AS n FROM calls", (), lambda row: int(row["n"]))
        return rows[0]

    async def get_missed(self, entry_id: int) -> MissedEntry:
        rows = await self._select("SELECT * FROM missed WHERE id = ?", (entry_id,), _missed_from_row)
        if not rows:
            raise MissedNotFound(entry_id)
        return rows[0]

    async def list_missed(
        self,
        *,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[MissedEntry]:
        where: list[str] = []
        params: dict[str, Any] = {}
        _time_range("missed_at", since, until, where, params)
        if status is not None:
            # With a number, the unary + keeps SQLite from walking every open entry through the status
            # index (its order suits ORDER BY): the caller_key index finds the number's few entries.
            where.append(("+status" if number is not None else "status") + " = :status")
            params["status"] = status
        if number is not None:
            key = normalize_number(number, self.region)
            if key is not None:
                where.append("caller_key = :number")
                params["number"] = key
            else:
                where.append("caller = :number")
                params["number"] = number
        sql = "SELECT * FROM missed" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY missed_at, id" + _page(limit, offset, params)
        return await self._select(sql, params, _missed_from_row, few=limit)

    async def missed_history(self, entry_id: int) -> list[MissedHistoryItem]:
        items = await self._select(
            "SELECT * FROM missed_history WHERE entry_id = ? ORDER BY id", (entry_id,), _history_from_row
        )
        if not items:
            await self.get_missed(entry_id)  # raises MissedNotFound for an unknown id
        return items

    async def list_agent_misses(
        self, *, agent: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[AgentMiss]:
        where: list[str] = []
        params: dict[str, Any] = {}
        _time_range("rang_at", since, until, where, params)
        if agent is not None:
            where.append("agent = :agent")
            params["agent"] = agent
        sql = "SELECT * FROM agent_misses" + (" WHERE " + " AND ".join(where) if where else "")
        return await self._select(sql + " ORDER BY rang_at, id", params, _agent_miss_from_row)

    # -- panel users -----------------------------------------------------------------------------------------

    async def add_user(self, user: User) -> User:
        created = user.created_at or time.time()

        async def work(db: aiosqlite.Connection) -> User:
            try:
                await db.execute(
                    "INSERT INTO users (name, role, extension, display_name, password_hash, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (user.name, user.role, user.extension, user.display_name, user.password_hash, created),
                )
            except sqlite3.IntegrityError as exc:
                if "UNIQUE" in str(exc):
                    raise UserExists(f"a user named {user.name!r} exists already") from None
                raise StoreError(f"user {user.name!r}: {exc}") from None
            return await _fetch_user(db, user.name)

        return await self._manual(work)

    async def get_user(self, name: str) -> User | None:
        rows = await self._select("SELECT * FROM users WHERE name = ?", (name,), _user_from_row)
        return rows[0] if rows else None

    async def list_users(self) -> list[User]:
        return await self._select("SELECT * FROM users ORDER BY role, name", (), _user_from_row)

    async def update_user(self, name: str, *, password_hash: str | None = None, role: Role | None = None,
                          extension: str | None = None, display_name: str | None = None) -> User:
        changes = {k: v for k, v in {"password_hash": password_hash, "role": role, "extension": extension,
                                      "display_name": display_name}.items() if v is not None}

        async def work(db: aiosqlite.Connection) -> User:
            before = await _fetch_user(db, name)
            if changes:
                sets = ", ".join(f"{column} = :{column}" for column in changes)
                try:
                    await db.execute(f"UPDATE users SET {sets} WHERE name = :name", {**changes, "name": name})
                except sqlite3.IntegrityError as exc:
                    raise StoreError(f"user {name!r}: {exc}") from None
            after = await _fetch_user(db, name)
            if (before.password_hash, before.role, before.extension) != (after.password_hash, after.role,
                                                                         after.extension):
                # What the user's sessions were granted has changed: they end with this transaction.
                await db.execute("DELETE FROM sessions WHERE user_name = ?", (after.name,))
            return after

        return await self._manual(work)

    async def remove_user(self, name: str) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            user = await _fetch_user(db, name)
            # Explicit, not left to ON DELETE CASCADE: a connection without foreign_keys=ON would skip that.
            await db.execute("DELETE FROM sessions WHERE user_name = ?", (user.name,))
            await db.execute("DELETE FROM api_tokens WHERE user_name = ?", (user.name,))
            await db.execute("DELETE FROM users WHERE name = ?", (user.name,))

        await self._manual(work)

    async def add_token(self, name: str, token_hash: str, label: str | None) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            user = await _fetch_user(db, name)
            await db.execute("INSERT INTO api_tokens (token_hash, user_name, label, created_at) VALUES (?, ?, ?, ?)",
                             (token_hash, user.name, label, time.time()))

        await self._manual(work)

    async def user_of_token(self, token_hash: str) -> User | None:
        rows = await self._select(
            "SELECT users.* FROM api_tokens JOIN users ON users.name = api_tokens.user_name "
            "WHERE api_tokens.token_hash = ?", (token_hash,), _user_from_row)
        return rows[0] if rows else None

    # -- login sessions --------------------------------------------------------------------------------------

    async def add_session(self, token_hash: str, user_name: str, *, created_at: float, expires_at: float,
                          address: str | None) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            user = await _fetch_user(db, user_name)
            await db.execute("DELETE FROM sessions WHERE expires_at <= ?", (created_at,))
            await db.execute(
                "INSERT INTO sessions (token_hash, user_name, created_at, last_used_at, expires_at, address) "
                "VALUES (?, ?, ?, ?, ?, ?)", (token_hash, user.name, created_at, created_at, expires_at, address))

        await self._manual(work)

    async def session_grant(self, token_hash: str, now: float) -> Grant | None:
        rows = await self._select_few(
            "SELECT sessions.expires_at AS grant_expires, sessions.last_used_at AS grant_used, users.* "
            "FROM sessions JOIN users ON users.name = sessions.user_name "
            "WHERE sessions.token_hash = ? AND sessions.expires_at > ?", (token_hash, now), _grant_from_row)
        return rows[0] if rows else None

    async def touch_session(self, token_hash: str, *, used_at: float, expires_at: float) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            # Never brings back a session that has expired (or been pushed further by a later use).
            await db.execute(
                "UPDATE sessions SET last_used_at = max(last_used_at, :used), expires_at = max(expires_at, :expires) "
                "WHERE token_hash = :hash AND expires_at > :used",
                {"used": used_at, "expires": expires_at, "hash": token_hash})

        await self._manual(work)

    async def end_session(self, token_hash: str) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            await db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

        await self._manual(work)

    async def grants(self, hashes: Collection[str]) -> dict[str, Grant]:
        if not hashes:
            return {}
        # One JSON array parameter instead of one "?" per hash: any number of open sockets, one statement.
        rows = await self._select(
            "SELECT sessions.token_hash AS grant_hash, sessions.expires_at AS grant_expires, "
            "sessions.last_used_at AS grant_used, users.* "
            "FROM sessions JOIN users ON users.name = sessions.user_name "
            "WHERE sessions.token_hash IN (SELECT value FROM json_each(:hashes)) "
            "UNION ALL "
            "SELECT api_tokens.token_hash, NULL, NULL, users.* "
            "FROM api_tokens JOIN users ON users.name = api_tokens.user_name "
            "WHERE api_tokens.token_hash IN (SELECT value FROM json_each(:hashes))",
            {"hashes": json.dumps(list(hashes))}, lambda row: (str(row["grant_hash"]), _grant_from_row(row)))
        return dict(rows)

    # -- the client directory -------------------------------------------------------------------------------

    async def add_contacts(self, contacts: Iterable[Contact], *, chunk_size: int = 2000,
                           progress: Callable[[int], None] | None = None) -> list[int]:
        """Save contacts (with phones and vehicles); all or nothing.

        Written ``chunk_size`` at a time, each chunk its own short transaction, so that the daemon's own
        writes (possibly in another process) never wait long for the file; if a chunk fails, the chunks
        already written are deleted again before the error is raised. ``progress(n)`` after each chunk.
        """
        written: list[int] = []
        try:
            for chunk in directory_sql.chunks(contacts, chunk_size):
                async def work(db: aiosqlite.Connection, chunk: list[Contact] = chunk) -> list[int]:
                    return await directory_sql.insert_contacts(db, chunk, self.region)

                written += await self._manual(work)
                if progress is not None:
                    progress(len(chunk))
        except BaseException:
            if written:
                async def undo(db: aiosqlite.Connection) -> None:
                    await db.executemany("DELETE FROM contacts WHERE id = ?", [(i,) for i in written])

                await self._manual(undo)
            raise
        return written

    async def add_contact(self, contact: Contact) -> Contact:
        [contact_id] = await self.add_contacts([contact])
        return await self.get_contact(contact_id)

    async def _select_few(self, sql: str, params: dict[str, Any] | tuple[Any, ...],
                          convert: Callable[[sqlite3.Row], T]) -> list[T]:
        """A small result (a LIMIT) in one round trip to the reader's thread: a lookup on the pop's path."""
        self._check_open()
        rows = await self._reader.execute_fetchall(sql, params)
        return [convert(row) for row in rows]

    async def get_contact(self, contact_id: int) -> Contact:
        rows = await self._select_few(directory_sql.SELECT_CONTACTS + "WHERE c.id = ?", (contact_id,),
                                      directory_sql.contact_from_row)
        if not rows:
            raise ContactNotFound(contact_id)
        return rows[0]

    async def find_contacts(self, query: str | Query, *, limit: int = 20) -> list[Contact]:
        parsed = parse_query(query, self.region) if isinstance(query, str) else query
        if parsed is None:
            return []
        where, params = directory_sql.where_query(parsed, limit)
        return await self._select_few(directory_sql.SELECT_CONTACTS + where, params, directory_sql.contact_from_row)

    async def list_contacts(self, *, after_id: int = 0, limit: int = 1000) -> list[Contact]:
        return await self._select(directory_sql.SELECT_CONTACTS + "WHERE c.id > ? ORDER BY c.id LIMIT ?",
                                  (after_id, limit), directory_sql.contact_from_row)

    async def count_contacts(self) -> int:
        rows = await self._select("SELECT count(*) FROM contacts", (), lambda r: int(r[0]))
        return rows[0]

    async def attach_call(self, linkedid: str, contact_id: int, by: str | None) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            await self.get_contact(contact_id)  # raises ContactNotFound
            await db.execute(
                "INSERT INTO call_contacts (linkedid, contact_id, attached_by, attached_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (linkedid) DO UPDATE SET contact_id = excluded.contact_id, "
                "attached_by = excluded.attached_by, attached_at = excluded.attached_at",
                (linkedid, contact_id, by, time.time()))

        await self._manual(work)

    async def contact_of_call(self, linkedid: str) -> Contact | None:
        rows = await self._select_few(
            directory_sql.SELECT_CONTACTS + "WHERE c.id = (SELECT contact_id FROM call_contacts WHERE linkedid = ?)",
            (linkedid,), directory_sql.contact_from_row)
        return rows[0] if rows else None

    async def live_events(self) -> list[LiveEvent]:
        return await self._select(
            "SELECT linkedid, headers, received_at FROM live_events ORDER BY seq", (), _live_event_from_row
        )


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
        if call.close_key is not None and call.close_key in opened:
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


def _closing_time(record: CallRecord) -> float:
    """When a call-back closes an entry: the moment the customer was reached."""
    if record.answered_at is not None:
        return record.answered_at
    return record.ended_at if record.ended_at is not None else record.started_at


async def _fetch_user(db: aiosqlite.Connection, name: str) -> User:
    async with db.execute("SELECT * FROM users WHERE name = ?", (name,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        raise UserNotFound(name)
    return _user_from_row(row)


def _user_from_row(row: sqlite3.Row) -> User:
    return User(name=row["name"], role=cast(Role, row["role"]), extension=row["extension"],
                display_name=row["display_name"], password_hash=row["password_hash"], created_at=row["created_at"])


def _grant_from_row(row: sqlite3.Row) -> Grant:
    return Grant(user=_user_from_row(row), expires_at=row["grant_expires"], last_used_at=row["grant_used"])


async def _fetch_missed(db: aiosqlite.Connection, entry_id: int) -> MissedEntry:
    async with db.execute("SELECT * FROM missed WHERE id = ?", (entry_id,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        raise MissedNotFound(entry_id)
    return _missed_from_row(row)


if TYPE_CHECKING:
    def _implements_the_contract(store: SqliteStore) -> CallStore:
        return store  # mypy checks here that SqliteStore has every method of CallStore
