"""The supervisor's figures of one PBX for one day: per queue and per agent. Pure: no I/O, no clock (``now`` and
the day's bounds come in).

Why from finished journal rows: the day's counts are folded from the same ``CallRecord``s and ``AgentMiss``es the
journal stores (``CallEnded``), so "answered today" on the wallboard is what ``cti calls --since today`` lists,
by construction, and a daemon restarted mid-day rebuilds them from the store's rows of the day. What a queue call
counts for (its wait, answered, abandoned, short abandon) and the service level are defined once, in
:mod:`cti.service_level`; this module only adds them up.

* **The day** is the calendar day in the PBX's time zone (``[pbx] timezone``, else the machine's), from local
  midnight: the same "today" as ``cti calls --since today``. A call belongs to the day it *started* in (the
  journal's order); an agent's miss to the day the phone rang.
* **Per queue**: the callers waiting now and since when the longest has waited (from the calls in progress:
  :func:`cti.service_level.waiting_callers`), and of the day's queue calls the answered, the abandoned (after
  the short-abandon threshold), the short abandons, the others not answered (a time-out to voicemail, nobody
  available), the service level, the average wait of the answered calls and their average talk time.
* **Per agent**: the board's state and since when (``AgentStateChanged.at``), the calls they took today (every
  call they answered: the first answer and a transfer's), their talk time (the journal's ``talk_seconds`` of a
  call they alone took; of a call several agents took, each agent's own answered legs), and their misses (the
  journal's per-agent misses: their phone rang and they did not take the call).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from .effects import AgentStateChanged
from .records import AgentMiss, CallRecord
from .service_level import QueueCall, WaitingCaller, queue_call, service_level


def day_bounds(now: float, tz: tzinfo | None) -> tuple[float, float]:
    """The day ``now`` falls in, in ``tz`` (None: the machine's zone): its local midnight and the next one (epoch
    seconds). A day with a daylight-saving change is 23 or 25 hours long: the offset is the zone's at each midnight
    (a ``ZoneInfo`` and a naive local time both work out each instant's own offset)."""
    local = datetime.fromtimestamp(now, tz)  # naive local time when tz is None
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp(), (midnight + timedelta(days=1)).timestamp()


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """One queue of one PBX: who waits now, and its day so far."""

    pbx: str
    queue: str
    waiting: int
    #: When the caller waiting longest arrived (epoch seconds; the panel ticks the wait from it), None: nobody waits.
    longest_wait_since: float | None
    answered: int
    abandoned: int
    short_abandoned: int
    #: Not answered and not abandoned by the caller: the queue timed out (to voicemail), nobody was available.
    unanswered: int
    #: 0..1 (``cti.service_level.service_level``); None when no call of the day counts.
    service_level: float | None
    average_wait: float | None  # seconds, over the answered calls; None: none answered
    average_talk: float | None  # seconds, over the answered calls

    @property
    def offered(self) -> int:
        """The day's finished queue calls, short abandons included."""
        return self.answered + self.abandoned + self.short_abandoned + self.unanswered


@dataclass(frozen=True, slots=True)
class AgentFigures:
    """One agent of one PBX: the board's state now, and their day so far."""

    pbx: str
    extension: str
    name: str | None
    state: str  # AgentStateChanged.state; "unknown" for an agent the board does not know (yet)
    since: float | None  # when the visible state last changed (the PBX's clock)
    paused: bool
    paused_reason: str | None
    calls: int
    talk_seconds: float
    misses: int


@dataclass(slots=True)
class _QueueDay:
    calls: list[QueueCall] = field(default_factory=list)
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    unanswered: int = 0
    wait_answered: float = 0.0
    talk_answered: float = 0.0
    #: ``service_level`` of ``calls``, kept until the next call of this queue.
    level: float | None = None
    level_known: bool = False


@dataclass(slots=True)
class _AgentDay:
    calls: int = 0
    talk_seconds: float = 0.0
    misses: int = 0


class DayFigures:
    """The finished calls and agents' misses of one PBX's day, folded in as they come (or as loaded at start).

    Adding the same call (its linkedid) or the same miss twice counts it once: a restart loads the day's rows
    from the store while new calls may already arrive by their ``CallEnded``. Rows of another PBX or another day
    are not counted (``add_*`` return False).
    """

    def __init__(self, pbx: str, start: float, end: float, within: float) -> None:
        self.pbx = pbx
        #: The day: [start, end) in epoch seconds (:func:`day_bounds`).
        self.start = start
        self.end = end
        #: The service level's threshold (``[supervisor] service_level_seconds``).
        self.within = within
        self._seen_calls: set[str] = set()
        self._seen_misses: set[tuple[str, str, float]] = set()
        self._queues: dict[str, _QueueDay] = {}
        self._agents: dict[str, _AgentDay] = {}

    def _today(self, pbx: str, at: float) -> bool:
        return pbx == self.pbx and self.start <= at < self.end

    def add_call(self, record: CallRecord) -> bool:
        """Count a finished call of the day; False if it is not one (another day or PBX, or counted already)."""
        if not self._today(record.pbx, record.started_at) or record.linkedid in self._seen_calls:
            return False
        self._seen_calls.add(record.linkedid)
        call = queue_call(record)
        if call is not None:
            day = self._queues.setdefault(call.queue, _QueueDay())
            day.calls.append(call)
            day.level_known = False
            if call.answered:
                day.answered += 1
                day.wait_answered += call.wait_seconds
                day.talk_answered += call.talk_seconds
            elif call.short_abandon:
                day.short_abandoned += 1
            elif call.abandoned:
                day.abandoned += 1
            else:
                day.unanswered += 1
        for agent in dict.fromkeys(record.agents_answered):
            tally = self._agents.setdefault(agent, _AgentDay())
            tally.calls += 1
            tally.talk_seconds += _talk_of(record, agent)
        return True

    def add_miss(self, miss: AgentMiss) -> bool:
        """Count an agent's miss of the day; False if it is not one."""
        key = (miss.linkedid, miss.agent, miss.rang_at)
        if not self._today(miss.pbx, miss.rang_at) or key in self._seen_misses:
            return False
        self._seen_misses.add(key)
        self._agents.setdefault(miss.agent, _AgentDay()).misses += 1
        return True

    @property
    def calls_counted(self) -> int:
        return len(self._seen_calls)

    def queues(self, waiting: Iterable[WaitingCaller], known: Collection[str] = ()) -> list[QueueFigures]:
        """Every queue by name: those ``known`` (the PBX's queues, members or not), those with a caller
        ``waiting`` now (of this PBX), and those with a call today."""
        waits: dict[str, list[float]] = {}
        for caller in waiting:
            if caller.pbx == self.pbx:
                waits.setdefault(caller.queue, []).append(caller.since)
        out = []
        for name in sorted({*known, *waits, *self._queues}):
            day = self._queues.get(name) or _QueueDay()
            if not day.level_known:
                day.level, day.level_known = service_level(day.calls, self.within), True
            since = waits.get(name, [])
            out.append(QueueFigures(
                pbx=self.pbx, queue=name, waiting=len(since), longest_wait_since=min(since) if since else None,
                answered=day.answered, abandoned=day.abandoned, short_abandoned=day.short_abandoned,
                unanswered=day.unanswered, service_level=day.level,
                average_wait=day.wait_answered / day.answered if day.answered else None,
                average_talk=day.talk_answered / day.answered if day.answered else None,
            ))
        return out

    def agents(self, states: Iterable[AgentStateChanged]) -> list[AgentFigures]:
        """Every agent of the board (``states``, of this PBX), and any other agent with a call or a miss today, by
        extension (numerically)."""
        board = {s.extension: s for s in states if s.pbx == self.pbx}
        out = []
        for ext in sorted({*board, *self._agents}, key=_extension_order):
            state, day = board.get(ext), self._agents.get(ext) or _AgentDay()
            out.append(AgentFigures(
                pbx=self.pbx, extension=ext, name=state.name if state else None,
                state=state.state if state else "unknown", since=state.at if state else None,
                paused=state.paused if state else False, paused_reason=state.paused_reason if state else None,
                calls=day.calls, talk_seconds=day.talk_seconds, misses=day.misses,
            ))
        return out


def _extension_order(ext: str) -> tuple[int, int, str]:
    return (0, int(ext), ext) if ext.isdigit() else (1, 0, ext)


def _talk_of(record: CallRecord, agent: str) -> float:
    """The agent's part of a call's talk time: all of it when they alone took the call; when several did (a
    transfer), the time each one's own answered legs were up (the journal's legs)."""
    if len(set(record.agents_answered)) <= 1:
        return record.talk_seconds
    if not record.legs:  # a row without its legs: the call's talk time goes to who answered first
        return record.talk_seconds if agent == record.answered_by else 0.0
    return sum(max(0.0, leg.ended_at - leg.answered_at) for leg in record.legs
               if leg.agent == agent and leg.role == "agent" and leg.answered_at is not None
               and leg.ended_at is not None)
