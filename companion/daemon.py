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
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from asterisk.connection import AmiClient, AmiError, AmiResponse
from asterisk.messages import AmiMessage, action
from companion.threads import tune_threads
from cti.agents import AgentBoard
from cti.context import CallView
from cti.control import other_party
from cti.model import CallBook
from store import open_store
from store.repository import RegisterChange, Store
from ui_bridge.alerts import AlertEngine, thresholds
from ui_bridge.api_models import Health, RecordingHealth, StoreHealth, SubscriberHealth
from ui_bridge.cards import CardService, PopSequencer
from ui_bridge.commands import Commands
from ui_bridge.fanout import Fanout
from ui_bridge.http import Panel
from ui_bridge.hub import Hub
from ui_bridge.notifier import Notifier
from ui_bridge.pbxs import PbxHandle
from ui_bridge.script_desk import ScriptDesk
from ui_bridge.script_library import load_library
from ui_bridge.server import PanelServer
from ui_bridge.supervisor import Supervisor

from .config import Settings
from .pbx_link import PbxLink
from .pipeline import Handler, Pipeline, Policy, Subscriber
from .recorder import Recorder
from .retention import run_retention

if TYPE_CHECKING:
    from .crm.service import CrmService
    from .live.manager import LiveTaps
    from .mailer import Mailer
    from .transcriber import JobResult, Transcriber

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
#: While the database cannot be written, the backlog is tried again after a delay doubling up to this.
DRAIN_RETRY_MAX_SECONDS = 5.0
#: At shutdown the subscribers get this long to take what is queued for them (the panel's last messages).
SUBSCRIBER_DRAIN_SECONDS = 2.0
#: The panel's subscriber: it only builds messages and offers them to the clients' queues (the hub sheds a
#: slow client on its own), so it is never behind unless the event loop is; the bound is for that case.
PANEL_POLICY = Policy(queue_size=10_000, when_full="drop_oldest", timeout=None)
#: The supervisor's figures' subscriber only adds each ended call to its day's counts (``ui_bridge/supervisor.py``).
SUPERVISOR_POLICY = Policy(queue_size=10_000, when_full="drop_oldest", timeout=None)
#: The alerts' subscriber only files each ended queue call in its service-level window (``ui_bridge/alerts.py``).
ALERTS_POLICY = Policy(queue_size=10_000, when_full="drop_oldest", timeout=None)
#: The contact script's subscriber launches a run on an answered inbound call and feeds transfers their results: a
#: store write or two per call, never to be shed (a lost CallAnswered is a script that never opens), bounded anyway.
SCRIPTS_POLICY = Policy(queue_size=10_000, when_full="drop_newest", timeout=30.0)
#: The reminders' subscriber closes the reminders an answered call reached: a read per ended call (a write when one
#: closes); like the scripts', never to be shed lightly (a lost CallEnded is a reminder left open), bounded anyway.
REMINDERS_POLICY = Policy(queue_size=10_000, when_full="drop_newest", timeout=30.0)
#: The recorder's subscriber only looks at answers and ends and starts a side task per call to record: never shed
#: lightly (a lost CallAnswered is a call left unrecorded), bounded anyway.
RECORDER_POLICY = Policy(queue_size=10_000, when_full="drop_newest", timeout=30.0)
#: At shutdown the mailer gets this long to finish the mail it is sending (and mark it sent) before it is cancelled.
MAILER_STOP_SECONDS = 10.0


class Daemon:
    """One or more PBXs (a :class:`~companion.pbx_link.PbxLink` each), one store, one pipeline, one panel."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pipeline = Pipeline()
        self.store: Store | None = None
        #: The followed PBXs by id, in the configuration's order; each its own connection, book and board.
        self.links: dict[str, PbxLink] = {
            pbx.id: PbxLink(pbx, self, self.pipeline.publish, max_pending=settings.store.max_pending,
                            flush_interval=settings.store.flush_interval)
            for pbx in settings.followed()
        }
        #: The first PBX (a single-PBX daemon's only one): what ``book``, ``client`` and ``on_message`` are.
        self.link = next(iter(self.links.values()))
        self.ready = asyncio.Event()
        self._tasks: asyncio.TaskGroup | None = None
        self._asking: set[asyncio.Task[None]] = set()
        #: Set while the store has too much unwritten work: reading from every PBX is paused until the
        #: backlog is committed (memory stays bounded under any load).
        self.backlogged: asyncio.Event | None = None
        self._flush_interval = settings.store.flush_interval
        self.store_pauses = 0
        self._last_pause_warning = -math.inf
        #: Times committing the backlog failed while reading was paused (a locked or full database).
        self.store_failures = 0
        self.panel: Panel | None = None
        self.panel_server: PanelServer | None = None
        self.cards: CardService | None = None
        self.sequencer: PopSequencer | None = None
        #: The supervisor's live figures (``ui_bridge/supervisor.py``), of the PBXs this node follows.
        self.supervisor: Supervisor | None = None
        #: The supervisor's alerts (``[alerts]``), evaluated for the PBXs this node follows.
        self.alerts: AlertEngine | None = None
        #: The contact script's runs (``[scripts]``; ``ui_bridge/script_desk.py``), when scripts are loaded.
        self.scripts: ScriptDesk | None = None
        #: Set by whatever queues an e-mail in the outbox on this node (the complaints' desk): the mailer sends it at
        #: once instead of at its next poll (``companion/mailer.py``).
        self.mail_queued = asyncio.Event()
        if settings.http.enabled:
            self._build_panel()
        #: The transcription queue's subscriber and runners (``[transcription] enabled``; ``companion/transcriber.py``).
        self.transcriber: Transcriber | None = None
        if settings.transcription.enabled:
            self._build_transcriber()
        #: Starts the recordings ``[recording] record`` asks for (``companion/recorder.py``); None: only the
        #: dialplan records.
        self.recorder: Recorder | None = None
        if settings.recording.record != "never":
            self.recorder = Recorder(settings.recording, self._sender, self._spawn)
            self.subscribe(self.recorder.on_effect, name="recorder", policy=RECORDER_POLICY)
        #: Sends the store's e-mail outbox (``[mail] host`` set; ``companion/mailer.py``); None: mails wait in it.
        self.mailer: Mailer | None = None
        if settings.mail.enabled:
            from .mailer import Mailer  # aiosmtplib only for a daemon that sends mail

            self.mailer = Mailer(settings.mail, lambda: self.store, wake=self.mail_queued, tz=settings.pbx.tzinfo())
        #: The CRM push (``[crm]`` with a CRM's section; ``companion/crm/``, ``docs/crm.md``); None: no CRM.
        self.crm: CrmService | None = None
        if settings.crm.enabled:
            self._build_crm()
        #: Live audio (``[live] enabled``; ``companion/live/manager.py``): answered calls tapped over SIP, their words
        #: pushed as they are said; None: calls are transcribed after they end only.
        self.live: LiveTaps | None = None
        if settings.live.enabled:
            self._build_live()

    def _build_live(self) -> None:
        """The live taps: the SIP endpoint, the live recognisers, a pipeline subscriber that taps answered calls, and
        the panel's live requests (``ui_bridge/live_desk.py``)."""
        from recognizer.live import LiveWorkers
        from ui_bridge.live_desk import LiveDesk

        from .live.manager import LIVE_POLICY, LiveTaps
        from .live.sip_tap import SipTap  # pyVoIP (the optional `live` extra) only for a daemon that taps

        settings, panel = self.settings, self.panel
        self.live = live = LiveTaps(
            settings.live, settings.transcription, tap=SipTap(settings.live),
            workers=LiveWorkers(settings.live.workers, max_lag=settings.live.max_lag), send_to=self._sender,
            store=lambda: self.store,
            messages=panel.notifier.messages if panel is not None else None,
            publish=None if panel is None else (lambda out: panel.fanout.publish(out.message, out.extensions, out.pbx)),
            card_of=None if panel is None else (lambda pbx, linkedid: panel.notifier.known_cards.get((pbx, linkedid))),
            region=settings.pbx.default_region)
        self.subscribe(live.on_effect, name="live", policy=LIVE_POLICY)
        if panel is not None:
            desk = LiveDesk(self.pbx_handles(), panel.notifier, panel.fanout, self.cards, lambda: self.store,
                            send=panel.commands.send, close_offer=live.close_offer)
            panel.commands.live = desk.request

    def _build_panel(self) -> None:
        """The WebSocket/HTTP edge over every followed PBX (``self.pbx_handles()``): effects → notifier → fan-out
        → hub; requests → commands → each PBX's AMI actions. Times and numbers are read as the first PBX's.

        On a PostgreSQL store the daemon is one node of several: every panel message goes through the store's bus
        to every node's clients, and the PBXs another node follows are mirrored (``ui_bridge/fanout.py``; it runs
        in ``Panel.run``). On SQLite (one process) messages go straight to this hub."""
        settings = self.settings
        pbxs = self.pbx_handles()
        notifier = Notifier(pbxs, settings.pbx.tzinfo(), settings.pbx.default_region,
                            number_style=settings.directory.number_style)
        hub = Hub(settings.http.client_queue_size)
        fanout = Fanout(hub, lambda: self.store, across_nodes=settings.store.backend == "postgresql")
        commands = Commands(pbxs, notifier, lambda: self.store, settings.http)
        self.cards = cards = CardService(settings.directory, lambda: self.store, settings.pbx.default_region,
                                         settings.pbx.tzinfo())
        self.sequencer = sequencer = PopSequencer(notifier, fanout, cards)
        self.supervisor = supervisor = Supervisor(pbxs, notifier.messages, fanout, lambda: self.store,
                                                  settings.supervisor.service_level_seconds)
        self.panel = panel = Panel(settings.http, hub, notifier, commands, lambda: self.store, pbxs,
                                   tls=settings.http.tls_cert is not None, cards=cards, health=self.health, node=self,
                                   fanout=fanout, supervisor=supervisor, register=settings.missed_register,
                                   reminders=settings.reminders, qa=settings.qa, recording=settings.recording,
                                   complaints=settings.complaints, crms=settings.crm.enabled, crm=settings.crm)
        sequencer.on_pop = panel.metrics.pops.on_pop  # the pop latency histogram of /metrics
        panel.complaints.wake_mailer = self.mail_queued.set  # a complaint's e-mails go out at once (the mailer)
        self.panel_server = PanelServer(panel.app, settings.http)
        self.subscribe(sequencer.on_effect, name="panel", policy=PANEL_POLICY)
        self.subscribe(supervisor.on_effect, name="supervisor", policy=SUPERVISOR_POLICY)
        self.subscribe(panel.reminders.on_effect, name="reminders", policy=REMINDERS_POLICY)
        self.alerts = alerts = AlertEngine(
            thresholds(settings.alerts, settings.supervisor.service_level_seconds), pbxs, lambda: self.store,
            notifier.messages, lambda out: fanout.publish(out.message, out.extensions, out.pbx))
        commands.acknowledge_alert = alerts.acknowledge
        if settings.scripts.folder is not None:  # every script checked now: a broken one stops the start (ConfigError)
            self.scripts = desk = ScriptDesk(load_library(settings.scripts), lambda: self.store, fanout,
                                             notifier.messages, pbxs, settings.scripts, transfer=commands.run,
                                             cards=cards, repeat_days=settings.directory.repeat_days,
                                             reminders=panel.reminders)
            commands.scripts = desk.request
            self.subscribe(desk.on_effect, name="scripts", policy=SCRIPTS_POLICY)
        if alerts.rules.service_level_below > 0:  # the window of ended queue calls is all it needs of the effects
            self.subscribe(alerts.on_effect, name="alerts", policy=ALERTS_POLICY)

    def _build_crm(self) -> None:
        """The CRM push: a pipeline subscriber writing each CRM's requests to the store's outbox, a sender per CRM, the
        panel's click-to-call expectations and counts, the transcripts pushed once stored (``companion/crm/``)."""
        from .crm.push import PUSH_POLICY
        from .crm.service import CrmService  # httpx and the connectors only for a daemon that pushes

        self.crm = crm = CrmService(self.settings.crm, lambda: self.store, hang_up=self.hang_up,
                                    region=self.settings.pbx.default_region, tz=self.settings.pbx.tzinfo())
        if not crm.senders:
            return  # every CRM configured has a problem (logged): nothing to push to
        self.subscribe(crm.push.on_effect, name="crm-push", policy=PUSH_POLICY)
        if self.panel is not None:
            self.panel.crm_calls = crm.push
            self.panel.onec_feed = crm.onec_feed  # 1C's pull feed (GET /api/crm/1c/events), None without pull
            if "bitrix24" in crm.senders:  # Bitrix24's click-to-call maps its users to extensions through it
                self.panel.bitrix24.users = crm.senders["bitrix24"].connector  # type: ignore[assignment]
            self.panel.crm_watch.counts = crm.stats
            self.panel.crm_watch.wake = crm.wake  # a request put back from the panel goes at once
        if self.transcriber is not None:
            told = self.transcriber.on_result
            push = crm.push

            def transcribed(result: JobResult) -> None:
                if told is not None:
                    told(result)
                if result.outcome == "done":
                    push.transcribed(result.job.pbx, result.job.linkedid)

            self.transcriber.on_result = transcribed

    async def hang_up(self, pbx: str, linkedid: str) -> bool:
        """Hang a call in progress up through its PBX's AMI (a CRM refused it: Zammad's ``reject``): the customer's
        channel, which ends the call for everyone. False when the call is not (or no longer) here or the PBX refused."""
        link = self.links.get(pbx)
        call = link.calls.get(linkedid) if link is not None and link.following else None
        party = other_party(call, None) if call is not None else None
        if link is None or party is None:
            return False
        try:
            await link.send_action(action("Hangup", Channel=party.name, Cause="21"))  # 21: call rejected
        except AmiError as exc:
            log.warning("hang-up of call %s on PBX %s failed: %s", linkedid, pbx, exc)
            return False
        log.info("call %s on PBX %s hung up (a CRM rejected it)", linkedid, pbx)
        return True

    def _build_transcriber(self) -> None:
        """Calls' ends queue transcription jobs in the store; runners (one per worker process) work through them and
        push ``call.flagged``/``call.transcribed`` through the panel's fan-out (when there is a panel)."""
        from recognizer.job import run_job  # the recogniser's imports only for a daemon that transcribes
        from recognizer.pool import WorkerPool

        from .transcriber import TRANSCRIPTION_POLICY, Transcriber

        panel = self.panel
        publish = None if panel is None else (
            lambda out: panel.fanout.publish(out.message, out.extensions, out.pbx))
        self.transcriber = transcriber = Transcriber(
            self.settings, lambda: self.store, WorkerPool(self.settings.transcription.workers, run_job),
            messages=panel.notifier.messages if panel is not None else None, publish=publish)
        self.subscribe(transcriber.on_effect, name="transcription", policy=TRANSCRIPTION_POLICY)

    # -- the first PBX's parts, under the names a single-PBX daemon has always had ----------------------

    @property
    def book(self) -> CallBook:
        return self.link.book

    @property
    def agents(self) -> AgentBoard:
        return self.link.agents

    @property
    def calls(self) -> CallView:
        return self.link.calls

    @property
    def client(self) -> AmiClient | None:
        return self.link.client

    @property
    def on_message(self) -> Callable[[AmiMessage], None]:
        """The first PBX's AMI sink (``bench/pipeline.py`` feeds it directly)."""
        return self.link.on_message

    @property
    def events_applied(self) -> int:
        """AMI messages (and ticks) applied, all PBXs together."""
        return sum(link.events_applied for link in self.links.values())

    @property
    def events_failed(self) -> int:
        return sum(link.events_failed for link in self.links.values())

    @property
    def ticks(self) -> int:
        return sum(link.ticks for link in self.links.values())

    async def _keep_report_days(self, store: Store) -> None:
        """The reports' day counts in the site's zone (``store/report_days.py``), counted from the rows the first time
        and after the zone changes (seconds for a year), before any PBX is followed. No named zone: reports count
        rows."""
        from store.report_days import zone_key

        tz = self.settings.pbx.tzinfo()
        if tz is None or zone_key(tz) is None:
            return
        started = time.monotonic()
        if await store.keep_report_days(tz):
            log.info("CTI Companion: the reports' day counts made in %s from the store's rows (%.1f s)", zone_key(tz),
                     time.monotonic() - started)

    def followable(self) -> list[PbxLink]:
        """The PBXs this node may follow (``[cluster] follow``; all by default), whether it holds them now or not."""
        allowed = self.settings.cluster.follow
        return [link for link in self.links.values() if allowed is None or link.id in allowed]

    def pbx_handles(self) -> dict[str, PbxHandle]:
        """What the panel needs of each followed PBX (``ui_bridge/pbxs.py``), by id."""
        return {link.id: _handle(link) for link in self.links.values()}

    # -- what the links share (companion.pbx_link.LinkHost) --------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, None]) -> bool:
        return self._spawn(work)

    def store_behind(self, store: Store) -> None:
        self._pause_for_store(store)

    def _on_register_change(self, change: RegisterChange) -> None:
        if self.panel is not None:
            self.panel.on_register_change(change)
        if self.alerts is not None:
            self.alerts.on_register_change(change)

    def _sender(self, pbx: str) -> Callable[[AmiMessage], Coroutine[Any, Any, AmiResponse]] | None:
        """How to send an action to the PBX ``pbx`` (the recorder's MixMonitor), None when it is not one of ours."""
        link = self.links.get(pbx)
        return link.send_action if link is not None else None

    async def send_action(self, msg: AmiMessage) -> AmiResponse:
        """An action for the first PBX (a single-PBX daemon's); the panel sends through each PBX's handle."""
        return await self.link.send_action(msg)

    def subscribe(self, handler: Handler, *, name: str | None = None, policy: Policy | None = None) -> Subscriber:
        """Give ``handler`` every effect from now on, in order, in its own task behind its own bounded queue.

        The one call a newcomer (contact scripts, transcription jobs, a CRM push) needs: nothing on the AMI
        read path changes. A handler that raises, stalls or falls behind costs only itself (``policy``;
        ``pipeline.stats()`` has its counts); the store and the other subscribers get everything.
        """
        return self.pipeline.subscribe(handler, name=name, policy=policy)

    def health(self) -> Health:
        """What ``GET /api/health`` shows an admin: the AMI link, each subscriber's counts, the store's backlog."""
        store = self.store
        errors = [f"{link.id}: {link.client.last_error}" if len(self.links) > 1 else link.client.last_error
                  for link in self.links.values() if link.client is not None and link.client.last_error]
        return Health(
            ami_connected=all(link.connected for link in self.links.values() if link.following),
            ami_error="; ".join(errors) or None,
            events_applied=self.events_applied,
            events_failed=self.events_failed,
            calls_in_progress=sum(len(link.book.calls) for link in self.links.values()),
            subscribers=[SubscriberHealth.model_validate(s) for s in self.pipeline.stats()],
            store=StoreHealth(pending=store.pending_count if store is not None else 0,
                              max_pending=self.settings.store.max_pending, pauses=self.store_pauses,
                              failures=self.store_failures),
            recording=RecordingHealth.model_validate(self.recorder) if self.recorder is not None else None,
            live=self.live.health() if self.live is not None else None,
        )

    @property
    def listener_failures(self) -> int:
        """Effects some subscriber raised on (all subscribers together; per subscriber: ``pipeline.stats()``)."""
        return self.pipeline.failures

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

    def _pause_for_store(self, store: Store) -> None:
        """Stop reading from the PBX until the store's backlog is committed (:meth:`_drain`)."""
        if self.backlogged is not None:
            # Already paused, but a new connection (a PBX dropped one we did not read) reads again.
            self._pause_reading()
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
        self._pause_reading()

    def _pause_reading(self) -> None:
        for link in self.links.values():
            if link.client is not None and not link.client.reading_paused:
                link.client.pause_reading()

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
            for link in self.links.values():
                if link.client is not None:
                    link.client.resume_reading()
            self.backlogged = None
            backlogged.set()

    async def wait_for_store(self) -> None:
        """Return once the store is not behind (what a paused socket does for the real reader)."""
        backlogged = self.backlogged
        if backlogged is not None:
            await backlogged.wait()

    async def _tick(self) -> None:
        """Once a second, let the model's own time-outs expire even when the PBX is quiet."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            for link in self.links.values():
                link.tick()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; the store is flushed and closed on the way out."""
        settings = self.settings
        async with open_store(settings.store, region=settings.pbx.default_region) as store:
            self.store = store
            store.on_register_change(self._on_register_change)
            await self._keep_report_days(store)
            mine = self.followable()
            for link in mine:  # the PBXs nobody follows yet are taken at once (another node's, later or never)
                if await link.take_lease(store):
                    log.info("CTI Companion: following PBX %s, AMI %s:%d", link.id, link.pbx.ami.host,
                             link.pbx.ami.port)
                else:
                    log.info("CTI Companion: PBX %s is followed by another node; taking it over if that one "
                             "stops", link.id)
            log.info("CTI Companion: store %s", (settings.store.url and "PostgreSQL") or settings.store.path)
            async with asyncio.TaskGroup() as tg:
                self._tasks = tg
                # The subscribers' tasks live in this group: whatever ends it (the stop below, or any task of it
                # failing) cancels and awaits them too. A subscriber's own failure never ends it (pipeline.py).
                self.pipeline.attach(tg)
                writer = tg.create_task(store.run_writer(), name="store-writer")
                retry = settings.cluster.lease_retry
                amis = {tg.create_task(link.follow(store, retry), name=f"pbx-{link.id}") for link in mine}
                ticker = tg.create_task(self._tick(), name="model-tick")
                # The panel's background work: the sweep of revoked sessions' sockets (here or by the CLI, once a
                # second) and, across nodes, the fan-out, the mirrors and the forwarding of call control.
                background = tg.create_task(self.panel.run(), name="panel-background") if self.panel else None
                alerts = tg.create_task(self.alerts.run(), name="alerts") if self.alerts else None
                figures = tg.create_task(self.supervisor.run(), name="supervisor") if self.supervisor else None
                scripts = tg.create_task(self.scripts.run(), name="scripts") if self.scripts else None
                retention = (tg.create_task(run_retention(settings.recording, lambda: self.store), name="retention")
                             if settings.recording.keep_days is not None else None)
                transcription = (tg.create_task(self.transcriber.run(), name="transcription")
                                 if self.transcriber else None)
                mail = tg.create_task(self.mailer.run(), name="mailer") if self.mailer else None
                crm = tg.create_task(self.crm.run(), name="crm") if self.crm is not None else None
                if self.live is not None:
                    await self.live.start()  # the tap binds its SIP port and registers; the recognisers start
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
                for link in mine:
                    link.stopping = True
                for ami in amis:
                    ami.cancel()
                ticker.cancel()
                # The AMI session logs off first (events may still arrive until Goodbye): then no effect is
                # left to come, and the last ones reach the subscribers (the panel's clients before their
                # sockets close) within the bound.
                await asyncio.wait({*amis, ticker})
                for ami in amis:
                    if not ami.cancelled() and ami.exception() is not None:
                        raise ami.exception()  # type: ignore[misc]  # as the AMI client's own failure always did
                await self.pipeline.close(SUBSCRIBER_DRAIN_SECONDS)
                if self.live is not None:
                    await self.live.close()  # every tap hung up, its words kept; the SIP endpoint and workers gone
                if self.panel is not None:
                    await self.panel.close()  # the fan-out's last messages reach the bus before its sender stops
                if background is not None:
                    background.cancel()
                if alerts is not None:
                    alerts.cancel()
                if figures is not None:
                    figures.cancel()
                if scripts is not None:
                    scripts.cancel()
                if retention is not None:
                    retention.cancel()
                if mail is not None and self.mailer is not None:
                    self.mailer.stop()  # the mail being sent is finished and marked sent, not sent again next start
                    await asyncio.wait({mail}, timeout=MAILER_STOP_SECONDS)
                    mail.cancel()
                if crm is not None and self.crm is not None:
                    await self.crm.stop(crm)  # the requests in flight finish and are marked sent, within a bound
                if transcription is not None and self.transcriber is not None:
                    transcription.cancel()  # a job in flight goes back to the queue; the workers are stopped
                    await asyncio.wait({transcription})
                    await self.transcriber.pool.close()
                if self.cards is not None:
                    await self.cards.close()
                if panel is not None:
                    panel.cancel()
                writer.cancel()
            # Calls still in progress are journaled, so that the next start rebuilds them.
            for link in self.links.values():
                link.hand_over_journal(store, time.time())
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


def _handle(link: PbxLink) -> PbxHandle:
    """The panel's view of one link, read through the link each time: a link that lost its PBX's lease starts a new
    book and board (``PbxLink._start_over``), and the panel must see those."""
    return PbxHandle(link.pbx, link.calls, lambda: link.agents.agents(),
                     lambda extension: link.agents.member_interfaces(extension), link.send_action,
                     lambda: link.connected, lambda: link.following, lambda: (link.link_up, link.link_since),
                     queues=lambda: link.agents.queues, pbx_time=lambda: time.time() + link.book.clock.offset)


@contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM and SIGINT ask for a clean shutdown (the store is flushed, nothing lost) while the block runs; after
    it, each signal has the handler it had before. (The event loop alone would leave Python's default SIGINT handler
    behind, even where SIGINT was ignored: a daemon started in the background by a shell, or ``cti demo`` run
    in-process by a host program.)"""
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)


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
    daemon = Daemon(settings)
    with stop_on_signals(stop):
        async with asyncio.TaskGroup() as tg:
            tg.create_task(daemon.run(stop))
            await daemon.ready.wait()
            log.debug("garbage collector: %d start-up objects frozen", freeze_startup_heap())
