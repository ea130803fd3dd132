"""The CRM push: the pipeline's effects → each CRM planner → the store's outbox (issue 16, ``docs/crm.md``).

Why a subscriber of its own that only writes: a CRM may be slow, down or rate-limiting, and none of that may cost a
screen-pop, a journal row or another subscriber's effect. So this subscriber (its own bounded queue and task,
``companion/pipeline.py``) never talks to a CRM: for each effect it takes the CRM events it makes
(``cti.crm.call_events``), lets every enabled CRM's planner (pure, ``cti/crm/<name>.py``) say what to send, writes
the planner's new state and the requests in one transaction (``store.queue_crm``) and wakes that CRM's sender
(``companion/crm/sender.py``), which sends when it can. A request is thus in the store before anything is sent:
nothing is lost with a CRM down or a daemon restarted.

* **State per call and CRM** lives in the store (``crm_call_state``), so a restarted daemon, or another node taking
  the PBX over, continues a call's sequence where it stood. While a call lives, this push keeps its states in
  memory too (read once, written through), and forgets them at its end.
* **Click-to-call a CRM started** (:meth:`CrmPush.expect`, the ``ui_bridge.crm_calls.CrmCallStarts`` the panel's
  routes call): the next outbound call of that extension to that number within :data:`EXPECT_SECONDS` starts, for
  that CRM, with ``{"started_by": ...}`` as its state, so its planner finishes the CRM's own call instead of
  registering a second one.
* **Transcripts** (:meth:`CrmPush.transcribed`, called when the transcriber stored one): the call's ``transcript``
  event, read from the store, goes the same way, in a task of the push's own (:meth:`CrmPush.run`).
* **Calls that ended while the daemon was away** end in the first resync (``cti/resync.py``: a ``CallEnded`` with
  ``complete=False``), which comes through the pipeline like any other end: its planners finish what they began.

Events are handled one at a time (a lock: the pipeline's task and the transcript task), so a call's state is never
read and written by two at once. A store that fails is tried again with a growing wait: the effect is not dropped
(the queue holds the rest meanwhile, :data:`PUSH_POLICY`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from companion.pipeline import Policy
from cti.crm import CrmCallEvent, CrmName, Planner, call_events
from cti.effects import Effect
from cti.phones import normalize_number

if TYPE_CHECKING:
    from store.repository import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The push's place in the pipeline. A shed effect is a hole in some call's sequence in a CRM, so the queue is deep
#: (each effect is a store transaction or none: only a store that cannot be written lets it fill, and 100 000
#: effects are hours of a busy centre's calls). If it does fill, the *oldest* effect is shed, not the newest: a
#: planner copes with a call it sees only from the middle (as after a restart: an ``ended`` with no earlier state
#: registers and finishes the call at once), while shedding the newest would lose the ends, and a CRM would keep
#: calls that never finish. No timeout: a store that is slow is waited for (the effect is retried, not cancelled).
PUSH_POLICY = Policy(queue_size=100_000, when_full="drop_oldest", timeout=None)
#: A click-to-call a CRM started is matched to the PBX's call within this many seconds.
EXPECT_SECONDS = 60.0
#: Calls whose states are kept in memory at most (those of calls whose end never came are dropped oldest first).
CACHED_CALLS = 10_000
#: A store that failed is tried again after this long, doubled up to the last (the effect is not dropped).
STORE_RETRY_FIRST = 0.5
STORE_RETRY_MAX = 30.0


@dataclass(frozen=True, slots=True)
class Expected:
    """A click-to-call a CRM started, waiting for the PBX's call (``expect``)."""

    crm: CrmName
    pbx: str
    extension: str
    number: str | None
    started_by: dict[str, Any]
    until: float


class CrmPush:
    """The pipeline subscriber (module docstring). ``planners``: each enabled CRM's; ``wake(crm)``: that CRM's sender
    has something to send; ``region``: how numbers are read (``[pbx] default_region``)."""

    def __init__(self, planners: Mapping[CrmName, Planner], store: Callable[[], Store | None],
                 wake: Callable[[CrmName], None], *, clock: Callable[[], float] = time.time,
                 region: str = "RU") -> None:
        self.planners = dict(planners)
        self.store = store
        self.wake = wake
        self.clock = clock
        self.region = region
        self._lock = asyncio.Lock()
        self._states: OrderedDict[tuple[CrmName, str], dict[str, Any]] = OrderedDict()
        self._expected: list[Expected] = []
        self._transcripts: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        #: Requests queued since start, per CRM (the tests, the health page).
        self.queued: dict[CrmName, int] = dict.fromkeys(self.planners, 0)
        #: Events a planner raised on (logged; the other CRMs got theirs).
        self.planner_failures = 0

    # -- the pipeline's side ------------------------------------------------------------------------------------

    async def on_effect(self, effect: Effect) -> None:
        """The subscriber: the effect's CRM events (most effects make none), each to every planner."""
        for event in call_events(effect):
            await self.handle(event)

    async def handle(self, event: CrmCallEvent) -> None:
        """One event to every CRM's planner, what they ask for into the outbox."""
        async with self._lock:
            for crm, planner in self.planners.items():
                await self._plan(crm, planner, event)
            if event.kind == "ended":
                for crm in self.planners:
                    self._states.pop((crm, event.key), None)

    async def _plan(self, crm: CrmName, planner: Planner, event: CrmCallEvent) -> None:
        key = event.key
        cached = self._states.get((crm, key))
        fresh = False
        if cached is not None:
            state = cached
        else:
            kept = await self._stored(lambda store: store.crm_call_state(crm, key))
            if kept is None:  # a call this CRM has not seen: one a CRM started itself?
                started_by = self._match(crm, event)
                state, fresh = ({"started_by": started_by}, True) if started_by is not None else ({}, False)
            else:
                state = kept
        try:
            plan = planner.plan(state, event)
        except Exception:
            self.planner_failures += 1
            log.exception("CRM %s: the planner failed on %s of call %s; the other CRMs go on", crm, event.kind, key)
            return
        new_state = plan.state if plan.state is not None else (state if fresh else None)
        if plan.requests or new_state is not None:
            requests = plan.requests
            await self._stored(lambda store: store.queue_crm(crm, key, new_state, requests, at=self.clock()))
        self._remember(crm, key, new_state if new_state is not None else state)
        if plan.requests:
            self.queued[crm] = self.queued.get(crm, 0) + len(plan.requests)
            self.wake(crm)

    def _remember(self, crm: CrmName, key: str, state: dict[str, Any]) -> None:
        self._states[(crm, key)] = state
        self._states.move_to_end((crm, key))
        while len(self._states) > CACHED_CALLS:
            self._states.popitem(last=False)

    async def _stored(self, work: Callable[[Store], Awaitable[T]]) -> T:
        """``work(store)`` awaited; a failing (or not yet open) store is tried again with a growing wait."""
        delay = STORE_RETRY_FIRST
        while True:
            store = self.store()
            try:
                if store is None:
                    raise RuntimeError("the store is not open")
                return await work(store)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("CRM push: the store failed (%s); trying again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, STORE_RETRY_MAX)

    # -- click-to-call a CRM started (ui_bridge.crm_calls.CrmCallStarts) -----------------------------------------

    def expect(self, crm: CrmName, pbx: str, extension: str, number: str, started_by: dict[str, Any]) -> None:
        """The next outbound call of ``extension`` to ``number`` on ``pbx`` (numbers compared normalised) within
        :data:`EXPECT_SECONDS` is the one ``crm`` started: its planner's first state is ``{"started_by": ...}``."""
        now = self.clock()
        self._expected = [e for e in self._expected if e.until > now]
        self._expected.append(Expected(crm, pbx, extension, normalize_number(number, self.region), dict(started_by),
                                       now + EXPECT_SECONDS))

    def forget(self, crm: CrmName, pbx: str, extension: str, number: str) -> None:
        """The latest expectation of ``crm`` for ``extension`` to ``number`` on ``pbx`` taken back (its Originate was
        refused): a later call there is nobody's click-to-call, or the one asked for next."""
        normal = normalize_number(number, self.region)
        for found in reversed(self._expected):
            if (found.crm, found.pbx, found.extension, found.number) == (crm, pbx, extension, normal):
                self._expected.remove(found)
                return

    def _match(self, crm: CrmName, event: CrmCallEvent) -> dict[str, Any] | None:
        """The ``started_by`` of the expectation ``event``'s call fulfils for ``crm`` (taken: it is used once)."""
        if event.direction != "outbound" or not self._expected:
            return None
        now = self.clock()
        number = normalize_number(event.external, self.region)
        for found in self._expected:
            if (found.crm == crm and found.pbx == event.pbx and found.until > now and found.number == number
                    and found.extension in (event.agent, event.caller)):
                self._expected.remove(found)
                return found.started_by
        return None

    # -- transcripts --------------------------------------------------------------------------------------------

    def transcribed(self, pbx: str, linkedid: str) -> None:
        """The transcriber stored the call's transcript: its ``transcript`` event follows (:meth:`run`)."""
        self._transcripts.put_nowait((pbx, linkedid))

    async def run(self) -> None:
        """The transcripts' task (in the daemon's TaskGroup): each stored transcript to the planners."""
        while True:
            pbx, linkedid = await self._transcripts.get()
            try:
                event = await self._transcript_event(pbx, linkedid)
                if event is not None:
                    await self.handle(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("CRM push: the transcript of call %s:%s was not pushed", pbx, linkedid)

    async def _transcript_event(self, pbx: str, linkedid: str) -> CrmCallEvent | None:
        record = await self._stored(lambda store: store.get_call(linkedid, pbx=pbx))
        transcript = await self._stored(lambda store: store.get_transcript(linkedid, pbx=pbx))
        if record is None or transcript is None or record.direction == "internal":
            return None
        agent = record.answered_by
        if record.direction == "outbound":
            agent = next((leg.agent for leg in record.legs if leg.agent is not None), record.caller)
        return CrmCallEvent(kind="transcript", pbx=record.pbx, linkedid=record.linkedid, at=self.clock(),
                            direction=record.direction, caller=record.caller, called=record.called, agent=agent,
                            queue=record.queue, did=record.did, transcript=transcript)
