"""Effects get the context their consumers need, from the book, right after ``CallBook.apply``.

Why a step of its own: the model's handlers say *what* happened (``CallRang``: agent 101's phone rings);
the consumers also need *to whom it matters* and *where the call stands* (the direction, the caller, the
other agents on it, their channels). They used to read the live ``CallBook`` for that, which only works
while they run synchronously inside the AMI read. Subscribers now run in their own tasks, behind their own
queues (``companion/pipeline.py``), by which time the book may have moved on; so each effect carries a
frozen :class:`~cti.effects.CallContext` taken at the moment it happened.

Pure: no I/O, no clock. :func:`enrich` is called once per AMI message by the daemon; :class:`CallView` is
the read-only window the edges get on the calls in progress (the panel's state at connect, call control),
handing out the same frozen snapshots instead of the book's mutable objects.
"""

from __future__ import annotations

from operator import attrgetter

from .effects import (
    CallAnswered,
    CallContext,
    CallDialing,
    CallEnded,
    CallRang,
    CallsMerged,
    CallStarted,
    CallTransferred,
    ChannelView,
    Effect,
    LegEnded,
    LegPhase,
)
from .model import Call, CallBook, Channel
from .records import DEFAULT_PBX, CallRecord

_ABOUT_A_CALL = (CallStarted, CallDialing, CallRang, LegEnded, CallAnswered, CallTransferred)
_HAS_A_PBX = (*_ABOUT_A_CALL, CallsMerged)
_created_at = attrgetter("created_at")


def enrich(book: CallBook, effects: list[Effect]) -> list[Effect]:
    """The same effects, each about a call in progress with its :class:`CallContext` (and each ``CallEnded``
    with its audience).

    Call it right after ``book.apply(msg)``: the context is the call as it stands after that message. An
    effect whose call already ended within the same message (the last leg's ``LegEnded``) keeps ``None``:
    its ``CallEnded`` follows and carries what the edges need.
    """
    if not effects:
        return effects
    taken: dict[str, CallContext | None] = {}
    pbx = book.config.pbx
    if pbx != DEFAULT_PBX:  # the default is each effect's own: a single-PBX daemon pays nothing here
        for effect in effects:
            if isinstance(effect, _HAS_A_PBX) and effect.pbx == DEFAULT_PBX:  # made here, not handed in again
                object.__setattr__(effect, "pbx", pbx)  # frozen for everyone after this (see _complete)
    for effect in effects:
        if isinstance(effect, _ABOUT_A_CALL):
            context = _context_of(book, effect.linkedid, taken)
            if context is not None:
                _complete(effect, "context", context)
        elif isinstance(effect, CallsMerged):
            context = _context_of(book, effect.into, taken)
            if context is not None:
                _complete(effect, "context", context)
        elif isinstance(effect, CallEnded):
            _complete(effect, "audience", ended_audience(effect.record))
    return effects


def _complete(effect: Effect, name: str, value: object) -> None:
    """Fill in an effect's context (or audience) before it leaves the core.

    Effects are frozen for everyone they are handed to; the model has just made these and nobody else holds
    them yet, so the part that is only known after ``apply`` is set on them here instead of copying each one
    (``dataclasses.replace`` of a frozen dataclass costs more than the rest of an event's handling). An effect
    that already carries one (enriched before, or made with it) is never changed.
    """
    if not getattr(effect, name):  # None, or no audience yet
        object.__setattr__(effect, name, value)


def _context_of(book: CallBook, linkedid: str, taken: dict[str, CallContext | None]) -> CallContext | None:
    """One snapshot per call and message: several effects of one message share it."""
    key = book.canonical(linkedid)
    if key not in taken:
        call = book.calls.get(key)
        taken[key] = snapshot(call) if call is not None else None
    return taken[key]


def snapshot(call: Call) -> CallContext:
    """The call as it stands, frozen."""
    audience: set[str] = set()
    live: list[ChannelView] = []
    alive = call.live
    for chan in call.channels.values():
        if chan.agent is not None:
            audience.add(chan.agent)
        if chan.uniqueid in alive:
            live.append(_view(chan))
    if call.answered_by:
        audience.add(call.answered_by)
    if len(live) > 1:
        live.sort(key=_created_at)
    # Positional, in field order: built for most call events, and a keyword call of 15 parameters costs about
    # twice a positional one.
    return CallContext(
        call.linkedid, call.direction, call.caller, call.caller_name, call.called, call.queue,
        call.started_at, call.answered_at, call.answered_by, call.transferred_to, call.origin,
        tuple(live),  # channels
        tuple(call.rung),  # agents_rung
        tuple(call.agents_answered),
        frozenset(audience),
        call.pbx,
        call.in_queue,
    )


def _view(chan: Channel) -> ChannelView:
    phase: LegPhase
    if chan.up_at is not None:
        phase = "talking"
    elif chan.rang_at is not None or chan.state in ("Ringing", "Ring"):
        phase = "ringing"
    else:
        phase = "dialing"
    view = chan.view
    # A channel's name, kind, agent and creation never change: only its phase and times are compared.
    if view is None or view.phase != phase or view.up_at != chan.up_at or view.rang_at != chan.rang_at:
        view = chan.view = ChannelView(  # positional, in field order (as CallContext above)
            chan.uniqueid, chan.name, chan.kind, chan.agent, phase, chan.created_at, chan.up_at, chan.rang_at)
    return view


def ended_audience(record: CallRecord) -> frozenset[str]:
    """Who may see a finished call: every agent whose phone was on it, was rung, answered, or took the transfer
    (the same agents who saw it while it was in progress)."""
    agents = {leg.agent for leg in record.legs if leg.agent is not None}
    agents.update(record.agents_answered)
    agents.update(record.agents_rung_not_answered)
    if record.answered_by:
        agents.add(record.answered_by)
    if record.transferred_to:
        agents.add(record.transferred_to)
    return frozenset(agents)


class CallView:
    """A read-only window on the calls in progress, in snapshots: what the edges get instead of the book."""

    def __init__(self, book: CallBook) -> None:
        self._book = book

    def show(self, book: CallBook) -> None:
        """Show ``book`` from now on: a PBX followed again after another node followed it starts a new book."""
        self._book = book

    def get(self, linkedid: str) -> CallContext | None:
        """The call in progress with this linkedid (or one merged into another: that one), else None."""
        call = self._book.calls.get(self._book.canonical(linkedid))
        return snapshot(call) if call is not None and call.live else None

    def in_progress(self, extension: str | None = None) -> list[CallContext]:
        """Every call in progress (``extension=None``), or those the extension takes part in."""
        out: list[CallContext] = []
        for call in self._book.calls.values():
            if not call.live:
                continue
            context = snapshot(call)
            if extension is None or extension in context.audience:
                out.append(context)
        return out

    def __contains__(self, linkedid: str) -> bool:
        call = self._book.calls.get(self._book.canonical(linkedid))
        return call is not None
