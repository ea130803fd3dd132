"""Staged writes, backend-neutral: the AMI event path appends to memory; a writer task commits batches in order.

Why staging: the AMI event path must never wait for a disk or a network. ``stage_event`` / ``stage_call`` only
append to a list; the writer task commits the list every ``flush_interval`` seconds, or as soon as
``batch_size`` items wait, in one transaction. The result is what writing the items one by one, in staging
order, would give: a call's live events are deleted where the call is saved, and a call-back only closes missed
entries saved before it (the rule itself is ``cti.callbacks``: the writer only applies its decision). A batch
that one bad item spoils is written one by one, the bad item logged and dropped; when the database itself fails
the items stay staged and the writer tries again after ``flush_interval``.

Why one module: all of that is the same on SQLite and PostgreSQL (docs/store.md, "Batching"). A backend's writer
(``store/sqlite/writer.py``, ``store/postgres/writer.py``) says only what differs: the SQL that writes prepared
calls and events in the transaction, and which errors mean "this item cannot be saved" rather than "the
database is failing".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from cti.callbacks import CallBack, call_back_of, closed_by_call
from cti.frozen import fast_init
from cti.phones import normalize_number
from cti.records import DEFAULT_PBX, AgentMiss, CallRecord, MissedEntry

C = TypeVar("C")  # the backend's connection, as its ``_transaction`` hands it to the work
T = TypeVar("T")
Errors = tuple[type[BaseException], ...]


# -- staged items --------------------------------------------------------------------------------------------

@fast_init  # one per staged item (cti/frozen.py)
@dataclass(frozen=True, slots=True)
class StagedEvent:
    linkedid: str
    headers: Sequence[tuple[str, str]]
    received_at: float
    pbx: str = DEFAULT_PBX


@fast_init  # one per staged item (cti/frozen.py)
@dataclass(frozen=True, slots=True)
class StagedCall:
    record: CallRecord
    missed: MissedEntry | None
    agent_misses: tuple[AgentMiss, ...]


Staged = StagedEvent | StagedCall


@fast_init  # one per staged item (cti/frozen.py)
@dataclass(frozen=True, slots=True)
class PreparedCall:
    """A staged call with the numbers it is matched by, normalised once, and what it closes."""

    staged: StagedCall
    caller_key: str | None
    called_key: str | None
    own_linkedids: tuple[str, ...]  # the call's linkedids: its live events (on its PBX)
    call_back: CallBack | None  # the open entries it closes (cti.callbacks), if any
    missed_key: str | None  # the number of the entry this call opens, if any

    @property
    def pbx(self) -> str:
        return self.staged.record.pbx


class Staging(Generic[C]):
    """``stage_event``, ``stage_call``, the writer task, ``flush`` (see the module's docstring).

    A mixin over a backend's base (``SqliteBase``, ``PostgresBase``), which gives the state and the
    transaction; the backend's writer subclasses it and fills in the class attributes and the abstract methods.
    """

    #: This item cannot be saved (bad data, a bug): the batch is written again one by one, the item dropped.
    _item_errors: ClassVar[Errors]
    #: The database is failing: the writer task logs it and tries again after ``flush_interval``.
    _db_errors: ClassVar[Errors]
    #: What puts a failed batch back in front of the staged items (to be written again in the same order).
    _restage_on: ClassVar[Errors]
    #: The backend writer's logger (its messages keep their logger's name).
    _log: ClassVar[logging.Logger]

    _flush_interval: float
    _batch_size: int
    _staged: list[Staged]
    _has_staged: asyncio.Event
    _batch_full: asyncio.Event
    _writing_count: int

    if TYPE_CHECKING:  # given by the backend's base
        region: str
        _closed: bool
        _write_lock: asyncio.Lock
        _register_listeners: list[Any]
        _updated: list[MissedEntry]

        def _check_open(self) -> None: ...
        async def _shielded(self, work: Coroutine[Any, Any, T]) -> T: ...
        async def _transaction(self, work: Callable[[C], Awaitable[T]]) -> T: ...
        # store/register_claims.py: a number the call-back rule reached is nobody's to call back any more
        async def _release_claims_of(self, conn: C, pairs: Sequence[tuple[str, str]]) -> None: ...

    # -- what a backend writes -------------------------------------------------------------------------------

    async def _write_calls(self, conn: C, calls: list[PreparedCall]) -> None:
        """Save a run of calls (``call_runs``) in staging order, closing what they call back (``_apply_call_backs``)."""
        raise NotImplementedError

    async def _write_events(self, conn: C, events: list[StagedEvent]) -> None:
        """Insert live events (never empty), in staging order."""
        raise NotImplementedError

    async def _open_entries(self, conn: C, number_keys: list[str]) -> list[MissedEntry]:
        """The open missed entries of these numbers (sorted), by id."""
        raise NotImplementedError

    async def _close_entries(self, conn: C, closed: list[tuple[CallBack, MissedEntry]]) -> None:
        """Close each entry by its call-back and record it in the entry's history."""
        raise NotImplementedError

    # -- staging ---------------------------------------------------------------------------------------------

    def _init_staging(self, flush_interval: float, batch_size: int) -> None:
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._staged = []
        self._has_staged = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._writing_count = 0  # items of the batch in the current transaction

    def stage_event(self, linkedid: str, headers: Sequence[tuple[str, str]], received_at: float, *,
                    pbx: str = DEFAULT_PBX) -> None:
        self._check_open()
        # No copy: AmiMessage headers are never changed once parsed.
        self._stage(StagedEvent(linkedid, headers, received_at, pbx))

    def stage_call(
        self, record: CallRecord, missed: MissedEntry | None, agent_misses: Sequence[AgentMiss]
    ) -> None:
        self._check_open()
        self._stage(StagedCall(record, missed, tuple(agent_misses)))

    def _stage(self, item: Staged) -> None:
        self._staged.append(item)
        self._has_staged.set()
        if len(self._staged) >= self._batch_size:
            self._batch_full.set()

    @property
    def pending_count(self) -> int:
        """Items staged and not committed yet, including a batch being written (back-pressure, health)."""
        return len(self._staged) + self._writing_count

    # -- the writer task -------------------------------------------------------------------------------------

    async def run_writer(self) -> None:
        """Commit staged items until cancelled (or the store is closed), then commit what is left.

        A batch waits at most ``flush_interval`` seconds after its first item, less when ``batch_size``
        items are staged. When the database itself fails (locked, disk full, unreachable) the items stay
        staged and the writer tries again after ``flush_interval``.
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
                except self._db_errors:
                    self._log.exception("store: writing %d staged items failed; retrying", len(self._staged))
                    await asyncio.sleep(self._flush_interval)
        finally:
            if not self._closed:
                try:
                    await self._write_staged()
                except self._db_errors:  # let the cancellation end the task; close() will try once more
                    self._log.exception("store: %d staged items not written as the writer stops", len(self._staged))

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
            except self._item_errors:
                self._log.warning("store: a batch of %d items failed; saving them one by one", len(batch),
                                  exc_info=True)
                await self._write_one_by_one(batch)
            except self._restage_on:
                self._restage(batch)
                raise
            finally:
                self._writing_count = 0

    async def _write_one_by_one(self, batch: list[Staged]) -> None:
        """Save each item in its own transaction, so one bad call cannot cost the others."""
        for index, item in enumerate(batch):
            try:
                await self._transaction(self._writing([item]))
            except self._item_errors:
                self._log.exception("store: dropped %s: it cannot be saved", describe(item))
            except self._restage_on:
                self._restage(batch[index:])
                raise

    def _restage(self, items: list[Staged]) -> None:
        """Put items back in front of anything staged since, to be written again in the same order."""
        self._staged[:0] = items
        self._has_staged.set()

    # -- one batch -------------------------------------------------------------------------------------------

    def _writing(self, batch: Sequence[Staged]) -> Callable[[C], Awaitable[None]]:
        return lambda conn: self._write_batch(conn, batch)

    async def _write_batch(self, conn: C, batch: Sequence[Staged]) -> None:
        """Write a batch so that the result is what writing its items one by one, in order, would give.

        Events: an event staged before a call that owns its linkedid would be deleted by that call, so
        it is never written; the calls' deletes run before the other events are inserted, so an event
        staged *after* its call (a late one) stays. Calls: see ``call_runs``.
        """
        calls: list[PreparedCall] = []
        events: list[StagedEvent] = []
        ended: set[tuple[str, str]] = set()  # (pbx, linkedid) of calls staged later than the item looked at
        for item in reversed(batch):
            if isinstance(item, StagedCall):
                call = self._prepare(item)
                calls.append(call)
                ended.update((call.pbx, lid) for lid in call.own_linkedids)
            elif (item.pbx, item.linkedid) not in ended:
                events.append(item)
        calls.reverse()
        events.reverse()
        for run in call_runs(calls):
            await self._write_calls(conn, run)
        if events:
            await self._write_events(conn, events)

    def _prepare(self, staged: StagedCall) -> PreparedCall:
        r = staged.record
        own = {r.linkedid, *r.linkedids}
        missed_key = None
        if staged.missed is not None:
            own.add(staged.missed.linkedid)
            missed_key = staged.missed.caller_key or normalize_number(staged.missed.caller, self.region)
        return PreparedCall(staged, normalize_number(r.caller, self.region), normalize_number(r.called, self.region),
                            tuple(sorted(own)), call_back_of(r, staged.missed, region=self.region), missed_key)

    async def _apply_call_backs(self, conn: C, call_backs: list[CallBack]) -> None:
        """Close what ``cti.callbacks`` decides among the open entries of the numbers the calls reached.

        One indexed read of those numbers' open entries, the decisions in staging order (an entry the first
        call closes is no longer open for the second), then one statement each for the closings.
        """
        await self._release_claims_of(conn, [(cb.pbx, cb.number_key) for cb in call_backs])
        still_open = await self._open_entries(conn, sorted({cb.number_key for cb in call_backs}))
        closed: list[tuple[CallBack, MissedEntry]] = []
        for cb in call_backs:
            now_closed = closed_by_call(cb, still_open)
            if now_closed:
                ids = {e.id for e in now_closed}
                still_open = [e for e in still_open if e.id not in ids]
                closed += [(cb, e) for e in now_closed]
        if not closed:
            return
        await self._close_entries(conn, closed)
        if self._register_listeners:
            self._updated += sorted((e for _, e in closed), key=lambda e: e.id or 0)


def call_runs(calls: list[PreparedCall]) -> Iterator[list[PreparedCall]]:
    """Cut a batch's calls into runs that one statement per table writes in staging order.

    Within a run every call's closings are applied (in order) before the run's new entries are
    inserted. That is staging order unless a call closes entries of a number for which an earlier call
    of the same run opened one on the same PBX (a miss and its call-back in one batch), so the run is cut before
    such a call. Two closings of the same number need no cut: they run in order, the second finds nothing.
    """
    run: list[PreparedCall] = []
    opened: set[tuple[str, str]] = set()  # (pbx, number key) of the entries the run opens
    for call in calls:
        if call.call_back is not None and (call.pbx, call.call_back.number_key) in opened:
            yield run
            run, opened = [], set()
        run.append(call)
        if call.missed_key is not None:
            opened.add((call.pbx, call.missed_key))
    if run:
        yield run


def describe(item: Staged) -> str:
    """An item as the log names it."""
    if isinstance(item, StagedEvent):
        return f"an event of call {item.linkedid} of PBX {item.pbx}"
    return (f"call {item.record.linkedid}" + (" and its missed entry" if item.missed is not None else "")
            + f" of PBX {item.record.pbx}")


def by_pbx(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(pbx, key) pairs grouped by PBX, each PBX's keys once, sorted: one statement per PBX of a batch (nearly
    always one) that deletes or reads by the pair, off the (linkedid, pbx) indexes."""
    grouped: dict[str, set[str]] = {}
    for pbx, key in pairs:
        grouped.setdefault(pbx, set()).add(key)
    return {pbx: sorted(keys) for pbx, keys in sorted(grouped.items())}
