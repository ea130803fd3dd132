"""Alerts to the supervisor: which conditions hold now, from facts the edges gather. Pure: no I/O, no clock.

Four kinds, each off when its threshold is 0 (``[alerts]`` in the configuration, ``docs/panel.md``):

* ``long_wait``: a caller has waited in a queue longer than ``long_wait_seconds`` (from the call's arrival at the
  PBX: the clock of ``cti/service_level.py``'s waits). One per waiting call: ``long_wait:<pbx>:<linkedid>``.
* ``service_level``: a queue's service level over the queue calls that ended in the last
  ``service_level_window_minutes`` is under ``service_level_below`` percent, counted over at least
  ``service_level_min_calls`` calls (one lost call at 7 am, alone in the window, is 0 % and no alarm).
  ``service_level:<pbx>:<queue>``; the level is ``cti.service_level.service_level``, the wallboard's.
* ``paused``: an agent has been paused (and not on a call) longer than ``paused_minutes``, counted from when the
  agent's visible state last changed (``AgentStateChanged.at``). ``paused:<pbx>:<extension>``.
* ``missed``: a missed call still open in the register ``missed_not_called_back_minutes`` after it was missed.
  Short abandons (a misdial, hidden from the register's default listing) never count. ``missed:<pbx>:<entry id>``.

:func:`conditions` answers "what holds now"; :func:`changes` compares that with the alerts already raised: an
alert is raised once per condition (not at every evaluation), resolved (kept, never deleted) when its condition
ends, and a condition that comes back after its alert was resolved is a new alert (a key not active any more is
raised again). The engine that evaluates them every second and keeps the history is ``ui_bridge/alerts.py``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from .effects import AgentStateChanged
from .records import MissedEntry
from .service_level import QueueCall, WaitingCaller, service_level

AlertKind = Literal["long_wait", "service_level", "paused", "missed"]
ALERT_KINDS: tuple[AlertKind, ...] = ("long_wait", "service_level", "paused", "missed")
#: A figure of an alert's message: a number, a name, or nothing.
Figure = str | int | float | None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When each kind of alert fires; 0 turns a kind off. Seconds and percent (the settings' minutes converted)."""

    long_wait_seconds: float = 0.0
    service_level_below: float = 0.0  # percent
    service_level_within: float = 20.0  # seconds: ``[supervisor] service_level_seconds``
    service_level_window: float = 1800.0  # seconds
    service_level_min_calls: int = 10
    paused_seconds: float = 0.0
    missed_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class WindowCall:
    """A queue call that ended at ``ended_at``: what the service-level window keeps."""

    ended_at: float
    call: QueueCall


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition that holds now. ``key`` is stable while it holds (the alert's identity); ``subject`` names
    what it is about for people (the caller's number, the queue, the extension); ``since`` is when it began (None
    for a service level, a figure over a window); ``figures`` are what the message shows, as evaluated now."""

    key: str
    kind: AlertKind
    pbx: str
    subject: str
    since: float | None
    figures: Mapping[str, Figure] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as kept in the history: raised for a condition, maybe acknowledged by a supervisor, resolved when
    the condition ended. ``figures`` are those of the moment it was raised."""

    id: int
    key: str
    kind: AlertKind
    pbx: str
    subject: str
    since: float | None
    figures: Mapping[str, Figure]
    raised_at: float
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    resolved_at: float | None = None

    @property
    def active(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True, slots=True)
class Changes:
    """What one evaluation changes: the conditions to raise an alert for, the keys of alerts to resolve."""

    raised: tuple[Condition, ...] = ()
    resolved: tuple[str, ...] = ()


def conditions(now: float, thresholds: Thresholds, *, waiting: Iterable[WaitingCaller] = (),
               window: Iterable[WindowCall] = (), agents: Iterable[AgentStateChanged] = (),
               open_missed: Iterable[MissedEntry] = ()) -> dict[str, Condition]:
    """Every condition that holds at ``now``, by key.

    ``waiting``: the callers waiting in a queue now (``cti.service_level.waiting_callers``); ``window``: queue calls
    that ended recently (only those within ``service_level_window`` of ``now`` count); ``agents``: every agent's
    current state; ``open_missed``: open register entries.
    """
    found: dict[str, Condition] = {}
    for condition in (*_long_waits(now, thresholds, waiting), *_service_levels(now, thresholds, window),
                      *_paused(now, thresholds, agents), *_missed(now, thresholds, open_missed)):
        found[condition.key] = condition
    return found


def changes(active: Collection[str], now: Mapping[str, Condition]) -> Changes:
    """Raise an alert for each condition that has no active alert; resolve each active alert whose condition
    ended. ``active``: the keys of the alerts raised and not resolved (a resolved key coming back is raised anew)."""
    return Changes(raised=tuple(c for key, c in now.items() if key not in active),
                   resolved=tuple(key for key in active if key not in now))


def _long_waits(now: float, t: Thresholds, waiting: Iterable[WaitingCaller]) -> Iterable[Condition]:
    if t.long_wait_seconds <= 0:
        return
    for caller in waiting:
        waited = now - caller.since
        if waited >= t.long_wait_seconds:
            yield Condition(
                key=f"long_wait:{caller.pbx}:{caller.linkedid}", kind="long_wait", pbx=caller.pbx,
                subject=caller.caller or "", since=caller.since,
                figures={"queue": caller.queue, "caller": caller.caller, "caller_name": caller.caller_name,
                         "linkedid": caller.linkedid, "wait_seconds": round(waited, 1),
                         "threshold_seconds": t.long_wait_seconds})


def _service_levels(now: float, t: Thresholds, window: Iterable[WindowCall]) -> Iterable[Condition]:
    if t.service_level_below <= 0:
        return
    start = now - t.service_level_window
    by_queue: dict[tuple[str, str], list[QueueCall]] = defaultdict(list)
    for item in window:
        if start <= item.ended_at <= now:
            by_queue[(item.call.pbx, item.call.queue)].append(item.call)
    for (pbx, queue), calls in sorted(by_queue.items()):
        counted = [c for c in calls if not c.short_abandon]
        level = service_level(counted, t.service_level_within)
        if level is None or len(counted) < t.service_level_min_calls:
            continue
        percent = level * 100
        if percent < t.service_level_below:
            yield Condition(
                key=f"service_level:{pbx}:{queue}", kind="service_level", pbx=pbx, subject=queue, since=None,
                figures={"queue": queue, "service_level": round(percent, 1), "counted_calls": len(counted),
                         "answered_within": sum(c.answered and c.wait_seconds <= t.service_level_within
                                                for c in counted),
                         "within_seconds": t.service_level_within, "threshold_percent": t.service_level_below,
                         "window_minutes": round(t.service_level_window / 60, 1)})


def _paused(now: float, t: Thresholds, agents: Iterable[AgentStateChanged]) -> Iterable[Condition]:
    if t.paused_seconds <= 0:
        return
    for agent in agents:
        if agent.state != "paused" or not agent.paused:
            continue  # a paused agent on a call is working: the pause counts again once the call is over
        paused = now - agent.at
        if paused >= t.paused_seconds:
            yield Condition(
                key=f"paused:{agent.pbx}:{agent.extension}", kind="paused", pbx=agent.pbx, subject=agent.extension,
                since=agent.at,
                figures={"extension": agent.extension, "name": agent.name, "reason": agent.paused_reason,
                         "paused_seconds": round(paused, 1), "threshold_seconds": t.paused_seconds})


def _missed(now: float, t: Thresholds, entries: Iterable[MissedEntry]) -> Iterable[Condition]:
    if t.missed_seconds <= 0:
        return
    for entry in entries:
        if entry.status != "open" or entry.id is None or entry.reason == "short_abandon":
            continue
        age = now - entry.missed_at
        if age >= t.missed_seconds:
            yield Condition(
                key=f"missed:{entry.pbx}:{entry.id}", kind="missed", pbx=entry.pbx, subject=entry.caller or "",
                since=entry.missed_at,
                figures={"missed_id": entry.id, "linkedid": entry.linkedid, "caller": entry.caller,
                         "caller_name": entry.caller_name, "queue": entry.queue, "reason": entry.reason,
                         "age_seconds": round(age, 1), "threshold_seconds": t.missed_seconds})
