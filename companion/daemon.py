"""The composition root: config in, a running daemon out.

It connects the pieces once, at start-up, and holds no per-event logic:
``asterisk.connection.AmiClient`` (bytes → messages) → ``cti.model.CallBook`` (messages → effects)
→ ``cti.context.enrich`` (each effect gets its call's context) → ``store`` (effects → rows, staged
first) → ``companion.pipeline`` (every subscriber gets the effects in its own queue and task: the panel,
the terminal journal of ``cti demo``, whatever :meth:`Daemon.subscribe` adds). Everything runs in one
``asyncio.TaskGroup``, the subscribers' tasks included; SIGTERM/SIGINT set the stop event, the subscribers'
queues are drained within ``SUBSCRIBER_DRAIN_SECONDS``, the tasks are cancelled, and leaving the store's
``async with`` flushes what was staged. If a task of the group fails instead, the group cancels every other
one, subscribers included, before the error leaves :meth:`Daemon.run`.

After a crash the calls that were in progress are rebuilt from the event journal the store kept
(``live_events``) *before* connecting; the first resync then completes them: channels still up
go on, channels gone while the daemon was down are ended.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import signal
import time
from collections.abc import Coroutine
from typing import Any

from asterisk.connection import AmiClient, AmiError, AmiNotConnected, AmiResponse
from asterisk.messages import AmiHeaderError, AmiMessage, action
from companion.threads import tune_threads
from cti.agents import AgentBoard
from cti.context import CallView, enrich
from cti.effects import CallEnded, Effect, VariableWanted
from cti.model import AMI_FILTERS, CallBook, ModelConfig
from store import open_store
from store.repository import RegisterChange, Store
from ui_bridge.api_models import Health, StoreHealth, SubscriberHealth
from ui_bridge.cards import CardService, PopSequencer
from ui_bridge.commands import Commands
from ui_bridge.http import Panel
from ui_bridge.hub import Hub
from ui_bridge.notifier import Notifier
from ui_bridge.server import PanelServer

from .config import PbxSettings, Settings
from .pipeline import Handler, Pipeline, Policy, Subscriber

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
#: While the database cannot be written, the backlog is tried again after a delay doubling up to this.
DRAIN_RETRY_MAX_SECONDS = 5.0
#: At shutdown the subscribers get this long to take what is queued for them (the panel's last messages).
SUBSCRIBER_DRAIN_SECONDS = 2.0
#: The panel's subscriber: it only builds messages and offers them to the clients' queues (the hub sheds a
#: slow client on its own), so it is never behind unless the event loop is; the bound is for that case.
PANEL_POLICY = Policy(queue_size=10_000, when_full="drop_oldest", timeout=None)


def model_config(pbx: PbxSettings) -> ModelConfig:
    return ModelConfig(
        trunks=frozenset(pbx.trunks),
        agent_pattern=pbx.agent_pattern,
        short_abandon_seconds=pbx.short_abandon_seconds,
        voicemail_apps=frozenset(a.lower() for a in pbx.voicemail_apps),
        region=pbx.default_region,
    )


class Daemon:
    """One PBX, one call book, one store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.book = CallBook(model_config(settings.pbx))
        self.agents = AgentBoard(model_config(settings.pbx), clock=self.book.clock)  # one read of each event's time
        #: The calls in progress as the edges see them: frozen snapshots, never the book itself.
        self.calls = CallView(self.book)
        self.pipeline = Pipeline()
        self.store: Store | None = None
        self.client: AmiClient | None = None
        self.ready = asyncio.Event()
        self.events_applied = 0
        #: The once-a-second ticks among ``events_applied`` (not from the PBX: /metrics counts events without them).
        self.ticks = 0
        #: Events a step of the core raised on (a bug: the fuzz of tests/cti/test_model_fuzz.py finds none);
        #: each cost only its own part of that event.
        self.events_failed = 0
        self._last_failure_log = -math.inf
        self._tasks: asyncio.TaskGroup | None = None
        self._asking: set[asyncio.Task[None]] = set()
        #: Set while the store has too much unwritten work: reading from the PBX is paused until the
        #: backlog is committed (memory stays bounded under any load).
        self.backlogged: asyncio.Event | None = None
        #: Events of calls in progress not yet handed to the store, by call.
        self._journal: dict[str, list[AmiMessage]] = {}
        self._journal_handed_at = 0.0
        # Read for every event: kept here rather than looked up through the settings each time.
        self._max_pending = settings.store.max_pending
        self._flush_interval = settings.store.flush_interval
        self.store_pauses = 0
        self._last_pause_warning = -math.inf
        #: Times committing the backlog failed while reading was paused (a locked or full database).
        self.store_failures = 0
        self.panel: Panel | None = None
        self.panel_server: PanelServer | None = None
        self.cards: CardService | None = None
        self.sequencer: PopSequencer | None = None
        if settings.http.enabled:
            self._build_panel()

    def _build_panel(self) -> None:
        """The WebSocket/HTTP edge: effects → notifier → hub; requests → commands → AMI actions."""
        settings = self.settings
        notifier = Notifier(self.calls, settings.pbx.tzinfo(), settings.pbx.default_region, settings.pbx.agents)
        hub = Hub(settings.http.client_queue_size)
        commands = Commands(self.calls, settings.pbx, notifier, self.send_action, lambda: self.store,
                            self.agents.member_interfaces, settings.http)
        self.cards = cards = CardService(settings.directory, lambda: self.store, settings.pbx.default_region,
                                         settings.pbx.tzinfo())
        self.sequencer = sequencer = PopSequencer(notifier, hub, cards)
        self.panel = panel = Panel(settings.http, hub, notifier, commands, lambda: self.store, self.agents.agents,
                                   tls=settings.http.tls_cert is not None, cards=cards, calls=self.calls,
                                   health=self.health, node=self)
        sequencer.on_pop = panel.metrics.pops.on_pop  # the pop latency histogram of /metrics
        self.panel_server = PanelServer(panel.app, settings.http)
        self.subscribe(sequencer.on_effect, name="panel", policy=PANEL_POLICY)

    def _on_register_change(self, change: RegisterChange) -> None:
        if self.panel is not None:
            for outgoing in self.panel.notifier.for_register(change):
                self.panel.hub.publish(outgoing.message, outgoing.extensions)

    async def send_action(self, msg: AmiMessage) -> AmiResponse:
        """An action for the PBX on the daemon's connection (call control from the panel)."""
        if self.client is None:
            raise AmiNotConnected("the daemon is not connected to the PBX yet")
        return await self.client.send_action(msg)

    def subscribe(self, handler: Handler, *, name: str | None = None, policy: Policy | None = None) -> Subscriber:
        """Give ``handler`` every effect from now on, in order, in its own task behind its own bounded queue.

        The one call a newcomer (contact scripts, transcription jobs, a CRM push) needs: nothing on the AMI
        read path changes. A handler that raises, stalls or falls behind costs only itself (``policy``;
        ``pipeline.stats()`` has its counts); the store and the other subscribers get everything.
        """
        return self.pipeline.subscribe(handler, name=name, policy=policy)

    def health(self) -> Health:
        """What ``GET /api/health`` shows an admin: the AMI link, each subscriber's counts, the store's backlog."""
        client, store = self.client, self.store
        return Health(
            ami_connected=client is not None and client.connected,
            ami_error=client.last_error if client is not None else None,
            events_applied=self.events_applied,
            events_failed=self.events_failed,
            calls_in_progress=len(self.book.calls),
            subscribers=[SubscriberHealth.model_validate(s) for s in self.pipeline.stats()],
            store=StoreHealth(pending=store.pending_count if store is not None else 0,
                              max_pending=self.settings.store.max_pending, pauses=self.store_pauses,
                              failures=self.store_failures),
        )

    @property
    def listener_failures(self) -> int:
        """Effects some subscriber raised on (all subscribers together; per subscriber: ``pipeline.stats()``)."""
        return self.pipeline.failures

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
        store = self.store
        if store is None:
            return
        touched = book.touched
        if touched is not None:
            journal = self._journal.get(touched)
            if journal is None:
                self._journal[touched] = [msg]
            else:
                journal.append(msg)
        if store.pending_count > self._max_pending:
            self._pause_for_store(store)
        if effects:
            # Persist, then publish: everything is staged before any subscriber sees an effect, so whatever a
            # subscriber does (raise, stall, fall behind) the journal loses nothing.
            for effect in effects:
                if isinstance(effect, CallEnded):
                    for linkedid in (effect.record.linkedid, *effect.record.linkedids):
                        self._journal.pop(linkedid, None)  # ended before its events were handed over
                    store.stage_call(effect.record, effect.missed, effect.agent_misses)
                elif isinstance(effect, VariableWanted):
                    self._spawn(self._get_variable(effect))
            self.pipeline.publish(effects)
        if msg.received_at - self._journal_handed_at >= self._flush_interval:
            self._hand_over_journal(store, msg.received_at)

    def _hand_over_journal(self, store: Store, now: float) -> None:
        """Stage the events of the calls still in progress (for the rebuild after a crash).

        Events are kept here for up to one ``flush_interval`` first: most calls end within it, and
        their events then never need writing at all; the others are committed at the next flush, as
        they would have been if staged at once.
        """
        self._journal_handed_at = now
        for linkedid, messages in self._journal.items():
            for message in messages:
                store.stage_event(linkedid, message.headers, message.received_at)
            messages.clear()
        self._journal = {k: v for k, v in self._journal.items() if k in self.book.calls}

    async def _rebuild(self, store: Store) -> int:
        """Re-apply the journal of calls that were in progress when the daemon last stopped.

        What happened to them while the daemon was down is lost: the journal ends with a ``CtiDisconnected``
        dated at its last event (the outage began then, at the latest), so the first resync reconciles them with
        the PBX's snapshot and marks them ``complete: false`` (cti/resync.py).
        """
        events = await store.live_events()
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
            log.info("rebuilt %d call(s) in progress from %d journaled events", len(self.book.calls), len(events))
        return len(events)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> bool:
        """A short side task of the event path, in the daemon's TaskGroup (so cancelled at shutdown).

        Once the daemon is stopping (the group shutting down, or already gone) it is not started: an event
        the AMI session still delivers while it logs off must not raise from ``on_message`` (which would cost
        that event's other effects), and a task started outside the group would outlive the daemon. Returns
        whether it was started.
        """
        tasks = self._tasks
        try:
            if tasks is None:
                raise RuntimeError("the daemon is not running or is stopping")
            task = tasks.create_task(work)
        except RuntimeError as exc:  # "TaskGroup ... is shutting down"
            work.close()
            log.debug("side task %r not started: %s", work, exc)
            return False
        self._asking.add(task)
        task.add_done_callback(self._asking.discard)
        return True

    def _event_failed(self, msg: AmiMessage, where: str) -> None:
        """Count and log an event a step of the core raised on: the traceback once, then a line a minute."""
        self.events_failed += 1
        now = time.monotonic()
        if now - self._last_failure_log >= 60 or self.events_failed == 1:
            self._last_failure_log = now
            log.error("%s raised on %s; that event skipped there (%d so far)", where, msg, self.events_failed,
                      exc_info=self.events_failed == 1)

    def _pause_for_store(self, store: Store) -> None:
        """Stop reading from the PBX until the store's backlog is committed (:meth:`_drain`)."""
        if self.backlogged is not None:
            # Already paused, but a new connection (the PBX dropped one we did not read) reads again.
            if self.client is not None and not self.client.reading_paused:
                self.client.pause_reading()
            return
        backlogged = asyncio.Event()
        if not self._spawn(self._drain(store, backlogged)):
            return  # stopping: the last flush on the way out commits the backlog
        self.backlogged = backlogged
        self.store_pauses += 1
        now = time.monotonic()
        if now - self._last_pause_warning > 60:
            self._last_pause_warning = now
            log.warning("store is %d writes behind: pausing AMI reading until they are committed "
                        "(%d pause(s) so far)", store.pending_count, self.store_pauses)
        if self.client is not None:
            self.client.pause_reading()

    async def _drain(self, store: Store, backlogged: asyncio.Event) -> None:
        """Commit the backlog, then read from the PBX again.

        A database that cannot be written (locked by another process, a full disk) is waited for as the store's
        writer waits for it: tried again after a growing delay and logged, never an error that ends the daemon.
        Reading stays paused meanwhile (memory stays bounded, and the PBX holds its events in TCP or, past its
        ``writetimeout``, drops us and the next session resyncs), and resumes once the backlog is committed.
        """
        delay = self._flush_interval
        try:
            while True:
                try:
                    await store.flush()
                    return
                except Exception as exc:  # whatever the store raises: the daemon waits, as the writer does
                    self.store_failures += 1
                    now = time.monotonic()
                    if self.store_failures == 1 or now - self._last_pause_warning >= 60:
                        self._last_pause_warning = now
                        log.warning("store: cannot commit the %d writes behind (%s); AMI reading stays paused, "
                                    "trying again (%d failure(s) so far)", store.pending_count, exc,
                                    self.store_failures)
                if self.store is not store:
                    return  # the daemon is stopping
                await asyncio.sleep(delay)
                delay = min(delay * 2, DRAIN_RETRY_MAX_SECONDS)
        finally:
            if self.client is not None:
                self.client.resume_reading()
            self.backlogged = None
            backlogged.set()

    async def wait_for_store(self) -> None:
        """Return once the store is not behind (what a paused socket does for the real reader)."""
        backlogged = self.backlogged
        if backlogged is not None:
            await backlogged.wait()

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

    async def _tick(self) -> None:
        """Once a second, let the model's own time-outs expire even when the PBX is quiet."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            tick = AmiMessage(headers=[("Event", "CtiTick")], received_at=time.time())
            self.ticks += 1
            try:
                self.on_message(tick)
            except Exception:  # raising here would end the TaskGroup, hence the daemon
                self._event_failed(tick, "the daemon")

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; the store is flushed and closed on the way out."""
        settings = self.settings
        async with open_store(settings.store, region=settings.pbx.default_region) as store:
            await self._rebuild(store)
            self.store = store
            store.on_register_change(self._on_register_change)
            self.client = AmiClient(settings.ami, self.on_message,
                                    filters=AMI_FILTERS if settings.ami.use_filters else ())
            log.info("CTI Companion: AMI %s:%d, store %s", settings.ami.host, settings.ami.port, settings.store.path)
            async with asyncio.TaskGroup() as tg:
                self._tasks = tg
                # The subscribers' tasks live in this group: whatever ends it (the stop below, or any task of it
                # failing) cancels and awaits them too. A subscriber's own failure never ends it (pipeline.py).
                self.pipeline.attach(tg)
                writer = tg.create_task(store.run_writer(), name="store-writer")
                ami = tg.create_task(self.client.run(), name="ami-client")
                ticker = tg.create_task(self._tick(), name="model-tick")
                # Closes the sockets of sessions revoked or expired, here or by the CLI (once a second).
                sweep = tg.create_task(self.panel.sweep.run(), name="panel-sweep") if self.panel else None
                panel = None
                if self.panel_server is not None:
                    panel = tg.create_task(self.panel_server.run(), name="panel")
                    await self._started(self.panel_server, panel)
                self.ready.set()
                await stop.wait()
                log.info("stopping: flushing the store")
                self._tasks = None
                for task in list(self._asking):
                    task.cancel()
                ami.cancel()
                ticker.cancel()
                # The AMI session logs off first (events may still arrive until Goodbye): then no effect is
                # left to come, and the last ones reach the subscribers (the panel's clients before their
                # sockets close) within the bound.
                await asyncio.wait({ami, ticker})
                await self.pipeline.close(SUBSCRIBER_DRAIN_SECONDS)
                if sweep is not None:
                    sweep.cancel()
                if self.panel is not None:
                    await self.panel.close()
                if self.cards is not None:
                    await self.cards.close()
                if panel is not None:
                    panel.cancel()
                writer.cancel()
            # Calls still in progress are journaled, so that the next start rebuilds them.
            self._hand_over_journal(store, time.time())
            self.store = None
        log.info("stopped cleanly")


    @staticmethod
    async def _started(server: PanelServer, task: asyncio.Task[None]) -> None:
        """Wait until the panel listens (or failed to: then its error ends the daemon)."""
        started = asyncio.ensure_future(server.started.wait())
        await asyncio.wait([started, task], return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            started.cancel()
            await task  # raises the reason it could not start


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT ask for a clean shutdown (the store is flushed, nothing lost)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def freeze_startup_heap() -> int:
    """Move everything alive after start-up out of the garbage collector's sight.

    A full (generation 2) collection walks every tracked object; in a running daemon with 500 panel
    clients that walk took 33-88 ms (bench/popfanout, docs/benchmarks.md) and landed in the middle of a
    screen-pop. Modules, pydantic schemas, the routes and the config live as long as the process, so
    ``gc.freeze()`` after start-up takes them out of every later walk at no risk (nothing frozen is
    garbage). Objects created later (calls, client connections) are collected as usual.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def run_daemon(settings: Settings) -> None:
    tune_threads()  # companion/threads.py says why
    stop = asyncio.Event()
    install_stop_signals(stop)
    daemon = Daemon(settings)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(daemon.run(stop))
        await daemon.ready.wait()
        log.debug("garbage collector: %d start-up objects frozen", freeze_startup_heap())
