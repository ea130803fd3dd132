"""One PBX the daemon follows: its AMI connection, its call book and agent board, its journal of live events.

A daemon follows one or more PBXs (``[[pbxs]]``), each on its own connection with its own reconnect and resync,
into one store and one panel. A linkedid and an extension mean something only within their PBX, so each PBX has
its own core (``cti.model.CallBook`` and ``cti.agents.AgentBoard`` stamped with the PBX's id): nothing of one
PBX's calls can reach another's, and a PBX that drops or floods costs the others nothing but shared CPU.

What the links share is the daemon's (:class:`LinkHost`): the store the effects are staged into, the pipeline
the subscribers read, the daemon's TaskGroup for side tasks, and the pause of every link's reading while the
store is behind.

**Exactly one follower per PBX.** Several daemons may share one PostgreSQL store (``docs/deploy.md``): a link
follows its PBX only while it holds the store's lease ``pbx:<id>`` (an advisory lock on a connection of its own;
on SQLite a lock file beside the store, so two daemons on one file cannot both follow it). The others try again
every ``[cluster] lease_retry`` seconds; when the holder dies its database session ends, the lock with it, and the
next try takes over: it rebuilds the calls in progress from the live events the holder journaled, connects, and
the resync settles them (those that straddled the takeover are ``complete: false``; none is lost or doubled).
A link that loses its lease without stopping (its database connection dropped) stops reading that PBX at once
and throws its book away: the new holder journals those calls.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from asterisk.connection import AmiClient, AmiError, AmiNotConnected, AmiResponse
from asterisk.messages import AmiHeaderError, AmiMessage, action
from asterisk.settings import FollowedPbx, PbxSettings
from cti.agents import AgentBoard
from cti.context import CallView, enrich
from cti.effects import CallEnded, Effect, PbxLinkChanged, VariableWanted
from cti.model import AMI_FILTERS, CallBook, ModelConfig
from store.cluster import Lease
from store.repository import Store, StoreError

log = logging.getLogger(__name__)

#: The connection's own events that move the link's state (``asterisk/connection.py``, ``cti/resync.py``).
_LINK_EVENTS = frozenset(("CtiDisconnected", "CtiConnected", "CoreShowChannelsComplete"))


def model_config(pbx: PbxSettings) -> ModelConfig:
    return ModelConfig(
        trunks=frozenset(pbx.trunks),
        agent_pattern=pbx.agent_pattern,
        short_abandon_seconds=pbx.short_abandon_seconds,
        voicemail_apps=frozenset(a.lower() for a in pbx.voicemail_apps),
        region=pbx.default_region,
        pbx=pbx.id,
    )


class LinkHost(Protocol):
    """What a link uses of its daemon: the shared store, side tasks, the store's back-pressure."""

    @property
    def store(self) -> Store | None: ...

    def spawn(self, work: Coroutine[Any, Any, None]) -> bool: ...

    def store_behind(self, store: Store) -> None: ...


class PbxLink:
    """One followed PBX: AMI bytes in, its effects staged into the shared store and handed to the subscribers."""

    def __init__(self, pbx: FollowedPbx, host: LinkHost, publish: Callable[[list[Effect]], None], *,
                 max_pending: int, flush_interval: float) -> None:
        self.pbx = pbx
        self.id = pbx.id
        self._host = host
        #: Hands effects to every subscriber (``Pipeline.publish``), called for each event that made some.
        self._publish = publish
        config = model_config(pbx)
        self.book = CallBook(config)
        # One read of each event's time: the board shares the book's clock.
        self.agents = AgentBoard(config, clock=self.book.clock, pbx=pbx.id)
        #: The calls in progress as the edges see them: frozen snapshots, never the book itself.
        self.calls = CallView(self.book)
        self.client: AmiClient | None = None
        self.events_applied = 0
        #: The once-a-second ticks among ``events_applied`` (not from the PBX: /metrics counts events without them).
        self.ticks = 0
        #: Events a step of the core raised on (a bug: the fuzz of tests/cti/test_model_fuzz.py finds none);
        #: each cost only its own part of that event.
        self.events_failed = 0
        self._last_failure_log = -math.inf
        #: The lease this link follows its PBX under (None: another node follows it, or nobody yet).
        self.lease: Lease | None = None
        #: Times this link took its PBX's lease (1 at a start that finds it free; more after takeovers).
        self.leases_taken = 0
        #: Another node held the lease at the last try (the next lease taken is a takeover).
        self.stood_by = False
        #: Events of calls in progress not yet handed to the store, by call.
        self._journal: dict[str, list[AmiMessage]] = {}
        self._journal_handed_at = 0.0
        # Read for every event: kept here rather than looked up through the settings each time.
        self._max_pending = max_pending
        self._flush_interval = flush_interval
        #: The link as the panel shows it (``PbxLinkChanged``): up once logged in *and* resynced, down from the
        #: moment the connection ended; since when (the daemon's clock), down from the start until the first login.
        self.link_up = False
        #: Set as the daemon stops: the link going down then is this node leaving, not the PBX failing, so it is
        #: not announced (another node may be taking the PBX over and report its own link).
        self.stopping = False
        self.link_since = time.time()
        #: When the resync of the current session began (None: not resyncing).
        self._resync_from: float | None = None

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.connected

    @property
    def following(self) -> bool:
        """This node follows the PBX now (holds its lease)."""
        return self.lease is not None and self.lease.held

    async def take_lease(self, store: Store) -> bool:
        """Take the PBX's lease if nobody holds it; then rebuild its calls in progress and make its AMI client
        (the caller runs it). Never waits for a holder: False says another node follows the PBX (or the store
        cannot be reached now), try again later."""
        try:
            lease = await store.try_lease(f"pbx:{self.id}")
        except StoreError as exc:
            log.warning("PBX %s: cannot ask the store for its lease (%s); trying again", self.id, exc)
            return False
        if lease is None:
            self.stood_by = True
            return False
        self.lease = lease
        self.leases_taken += 1
        if self.stood_by:
            log.warning("PBX %s: took its lease over (the node that followed it is gone): following it now",
                        self.id)
        self.stood_by = False
        # What this process staged before (a lease lost and taken again) is committed first: the rebuild must not
        # revive a call it already saved.
        await store.flush()
        await self.rebuild(store)
        self.connect()
        return True

    async def follow(self, store: Store, retry: float) -> None:
        """Follow the PBX for as long as the daemon runs: while holding its lease, read it; without, try to take
        the lease every ``retry`` seconds. Cancelled at shutdown: the lease is released by the store's close,
        after the last staged write of this PBX is committed (so no other node takes over before it is)."""
        while True:
            if self.lease is None and not await self.take_lease(store):
                await asyncio.sleep(retry)
                continue
            lease, client = self.lease, self.client
            assert lease is not None and client is not None
            reading = asyncio.ensure_future(client.run())
            lost = asyncio.ensure_future(lease.lost.wait())
            try:
                done, _ = await asyncio.wait({reading, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (reading, lost):
                    task.cancel()
                await asyncio.gather(reading, lost, return_exceptions=True)
            if reading in done:  # the client never ends by itself: a bug in it ends the daemon, as it always did
                reading.result()
                return
            log.error("PBX %s: lost its lease (the store's connection dropped): stopped reading it; another node "
                      "may follow it now", self.id)
            self._start_over()

    def _start_over(self) -> None:
        """Forget the PBX's calls (the node that follows it now journals them) and wait for the lease again."""
        self.lease = None
        self.client = None
        self._resync_from = None
        config = self.book.config
        self.book = CallBook(config)
        self.agents = AgentBoard(config, clock=self.book.clock, pbx=self.id)
        self.calls.show(self.book)
        self._journal.clear()

    def connect(self) -> AmiClient:
        """The link's AMI client (run by the daemon in its TaskGroup): its own reconnect and resync."""
        ami = self.pbx.ami
        self.client = AmiClient(ami, self.on_message, filters=AMI_FILTERS if ami.use_filters else ())
        return self.client

    async def send_action(self, msg: AmiMessage) -> AmiResponse:
        """An action for this PBX on the link's connection (call control from the panel)."""
        if self.client is None:
            raise AmiNotConnected(f"the daemon is not connected to the PBX {self.id!r} yet")
        return await self.client.send_action(msg)

    def on_message(self, msg: AmiMessage) -> None:
        """The AMI sink: apply, journal, stage, publish. Synchronous and short: it runs per event (its budget
        is a few microseconds: no lookup here is repeated, nothing is built for a message that changed nothing)."""
        book = self.book
        # Each step of the pure core on its own: a bug one of them raises on costs this event that step's part,
        # never the effects of the others (a CallEnded still saved), the connection or the daemon. The ``try``s
        # cost nothing while nothing raises.
        try:
            effects: list[Effect] = book.apply(msg)
        except Exception:
            self._event_failed(msg, "the call model")
            effects = []
        if effects:
            try:
                effects = enrich(book, effects)
            except Exception:  # the effects go on without their context
                self._event_failed(msg, "the context of its effects")
        try:
            agent_effects = self.agents.apply(msg)
        except Exception:
            self._event_failed(msg, "the agent board")
            agent_effects = []
        if agent_effects:
            effects = [*effects, *agent_effects] if effects else list(agent_effects)
        self.events_applied += 1
        store = self._host.store
        if store is None:
            if msg.event in _LINK_EVENTS:
                self._link_event(msg.event)
            return
        touched = book.touched
        if touched is not None:
            journal = self._journal.get(touched)
            if journal is None:
                self._journal[touched] = [msg]
            else:
                journal.append(msg)
        if store.pending_count > self._max_pending:
            self._host.store_behind(store)
        if effects:
            # Persist, then publish: everything is staged before any subscriber sees an effect, so whatever a
            # subscriber does (raise, stall, fall behind) the journal loses nothing.
            for effect in effects:
                if isinstance(effect, CallEnded):
                    for linkedid in (effect.record.linkedid, *effect.record.linkedids):
                        self._journal.pop(linkedid, None)  # ended before its events were handed over
                    store.stage_call(effect.record, effect.missed, effect.agent_misses)
                elif isinstance(effect, VariableWanted):
                    self._host.spawn(self._get_variable(effect))
            self._publish(effects)
        if msg.received_at - self._journal_handed_at >= self._flush_interval:
            self.hand_over_journal(store, msg.received_at)
        if msg.event in _LINK_EVENTS:  # after the resync's own effects: a call that ended meanwhile ends first
            self._link_event(msg.event)

    def _link_event(self, event: str) -> None:
        """The link's state from the connection's own events: lost at ``CtiDisconnected``; back once the snapshot
        that follows ``CtiConnected`` is reconciled (``CoreShowChannelsComplete``): only then is what the panel shows
        of the PBX its truth again (a call that ended in the outage ended in the panel just before)."""
        if event == "CtiDisconnected":
            self._resync_from = None
            self._set_link(False)
        elif event == "CtiConnected":
            self._resync_from = time.monotonic()
        elif self._resync_from is not None:
            self._resync_from = None
            self._set_link(True)

    def _set_link(self, up: bool) -> None:
        if up == self.link_up:
            return
        self.link_up = up
        self.link_since = time.time()
        if up:
            log.info("PBX %s: link back (logged in and resynced)", self.id)
        if not self.stopping:
            self._publish([PbxLinkChanged(self.id, up, self.link_since)])

    def hand_over_journal(self, store: Store, now: float) -> None:
        """Stage the events of the calls still in progress (for the rebuild after a crash).

        Events are kept here for up to one ``flush_interval`` first: most calls end within it, and
        their events then never need writing at all; the others are committed at the next flush, as
        they would have been if staged at once.
        """
        self._journal_handed_at = now
        for linkedid, messages in self._journal.items():
            for message in messages:
                store.stage_event(linkedid, message.headers, message.received_at, pbx=self.id)
            messages.clear()
        self._journal = {k: v for k, v in self._journal.items() if k in self.book.calls}

    async def rebuild(self, store: Store) -> int:
        """Re-apply the journal of this PBX's calls that were in progress when the daemon last stopped.

        What happened to them while the daemon was down is lost: the journal ends with a ``CtiDisconnected``
        dated at its last event (the outage began then, at the latest), so the first resync reconciles them with
        the PBX's snapshot and marks them ``complete: false`` (cti/resync.py).
        """
        events = await store.live_events(self.id)
        received_at = 0.0
        for _linkedid, headers, received_at in events:
            msg = AmiMessage(headers=list(headers), received_at=received_at)
            try:
                self.book.apply(msg)
            except Exception:  # one bad journaled event must not stop every start from now on
                self._event_failed(msg, "the call model (rebuilding)")
        if events:
            self.book.apply(AmiMessage(headers=[("Event", "CtiDisconnected"), ("PbxTime", f"{self.book.now:.6f}"),
                                                ("Reason", "the daemon stopped")], received_at=received_at))
            log.info("PBX %s: rebuilt %d call(s) in progress from %d journaled events", self.id,
                     len(self.book.calls), len(events))
        return len(events)

    def tick(self) -> None:
        """Let the model's own time-outs expire even when the PBX is quiet (the daemon calls it once a second)."""
        tick = AmiMessage(headers=[("Event", "CtiTick")], received_at=time.time())
        self.ticks += 1
        try:
            self.on_message(tick)
        except Exception:  # raising here would end the TaskGroup, hence the daemon
            self._event_failed(tick, "the daemon")
        started = self._resync_from
        if started is not None and time.monotonic() - started > 2 * self.pbx.ami.action_timeout:
            # Logged in, but no snapshot came (CoreShowChannels refused or timed out: the connection logged why):
            # the link is up all the same, the calls as the live events tell them.
            self._resync_from = None
            self._set_link(True)

    def _event_failed(self, msg: AmiMessage, where: str) -> None:
        """Count and log an event a step of the core raised on: the traceback once, then a line a minute."""
        self.events_failed += 1
        now = time.monotonic()
        if now - self._last_failure_log >= 60 or self.events_failed == 1:
            self._last_failure_log = now
            log.error("PBX %s: %s raised on %s; that event skipped there (%d so far)", self.id, where, msg,
                      self.events_failed, exc_info=self.events_failed == 1)

    async def _get_variable(self, want: VariableWanted) -> None:
        """Ask the PBX for a variable the model missed, and feed the answer back as an event.

        The answer is fed in the read that brings it, before the events after it: if it waited for this task to
        resume, a ``Hangup`` in the same read could end the call first and its recording would be lost (issue 10,
        class 6). A channel that hung up meanwhile is answered ``No such channel``: nothing to feed.
        """
        if self.client is None:
            return

        def feed(response: AmiMessage) -> None:
            value = response.get("Value") if response.response.lower() == "success" else ""
            if value:
                self.on_message(AmiMessage(headers=[("Event", "CtiVariable"), ("Uniqueid", want.uniqueid),
                                                    ("Variable", want.variable), ("Value", value)],
                                           received_at=time.time()))

        try:
            await self.client.send_action(action("Getvar", Channel=want.channel, Variable=want.variable),
                                          on_response=feed)
        except (AmiError, AmiHeaderError) as exc:  # a channel name the PBX sent with a line break: not asked
            log.debug("Getvar %s on %s: %s", want.variable, want.channel, exc)
