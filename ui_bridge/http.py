"""The panel's whole HTTP surface in one route table: pages, the JSON API and the WebSocket endpoint.

The table is also the policy table: each API route names, per method, the handler and who may call it
(``for_users(handler, *roles, refused=..., writes=...)`` or ``for_anyone``), and ``routes/gate.py`` checks
that once, before the handler runs: the session, the role, and the Origin of a write. The handlers live in
``ui_bridge/routes/``, one module per job.

Authentication: a login sets an HttpOnly, SameSite=Strict session cookie; thin clients that are not
browsers send ``Authorization: Bearer <token>`` (``cti users token``). Nothing but the login page and its
static files answers without one. Requests that change something and every WebSocket handshake must come
from the panel's own origin or one listed in ``[http] allowed_origins`` (a page elsewhere cannot use an
agent's cookie to place calls). API errors are ``{"error": {"code", "message"}}``.

The panel serves every PBX the daemon follows (``ui_bridge/pbxs.py``: one handle each); each user sees and acts
on their own PBXs only (``ui_bridge/pbx_access.py``). Across several nodes on one PostgreSQL, every message goes
through the store's bus to every node's clients (``ui_bridge/fanout.py``), and the PBXs another node follows are
shown from a mirror (``ui_bridge/mirror.py``, kept by ``ui_bridge/mirror_sync.py``): :meth:`Panel.run`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from asterisk.recording_files import RecordingSettings
from store.repository import LOGIN_ROLES, RegisterChange, Store
from ui_bridge.settings import HttpSettings, QaSettings, RegisterSettings, ReminderSettings

from .api_models import Health
from .attachments import MULTIPART_SLACK
from .auth import LoginThrottle
from .cards import CardService
from .commands import Commands
from .complaint_settings import ComplaintSettings
from .complaints import ComplaintDesk
from .crm_calls import CrmCallStarts
from .crm_settings import CrmSettings
from .crm_watch import CrmWatch
from .fanout import Fanout
from .forwarding import Forwarder
from .hub import Hub
from .limits import BodyLimit, EdgeMiddleware
from .metrics import Node, NodeMetrics
from .mirror_sync import MirrorSync
from .notifier import Notifier
from .pbxs import PbxHandles
from .register import RegisterDesk
from .reminders import ReminderDesk
from .routes.alerts import ALERTS_ARE_FOR, AlertHistory
from .routes.complaints import (
    COMPLAINTS_ARE_FILED_BY,
    COMPLAINTS_ARE_FOR,
    COMPLAINTS_ARE_WORKED_BY,
    FOREIGN_COMPLAINT,
    THE_CARD_IS_FOR,
    UPLOAD_PATH,
    ComplaintRoutes,
)
from .routes.contacts_register import (
    FOREIGN_STAGE,
    REGISTER_READS_ARE_FOR,
    STAGES_ARE_SET_BY,
    ContactRegisterRoutes,
)
from .routes.crm_bitrix24 import Bitrix24Routes
from .routes.crm_links import RecordingLinkRoute
from .routes.crm_onec import FOREIGN_ONEC, ONEC_IS_FOR, OneCEvents, OneCRoutes
from .routes.crm_watch import CRM_IS_FOR, FOREIGN_CRM, CrmRoutes
from .routes.directory import FOREIGN_EDIT, QA_READS_ONLY, Directory
from .routes.gate import PANEL_ONLY, Gate, Policy, for_anyone, for_users
from .routes.health import FOR_ADMINS, HealthReport
from .routes.journal import REGISTER_IS_FOR, Journal
from .routes.login import Login
from .routes.ops import Ops
from .routes.pages import Pages
from .routes.qa import FOREIGN_QA, QA_IS_FOR, QaRoutes
from .routes.register import SharedRegisterRoutes
from .routes.reminders import REMINDERS_ARE_FOR, ReminderRoutes
from .routes.reports import REPORTS_ARE_FOR, ReportRoutes
from .routes.websocket import LiveSocket
from .sessions import Sessions, SocketSweep
from .signed_links import SignedLinks
from .supervisor import SUPERVISOR_IS_FOR, Supervisor, no_supervisor

log = logging.getLogger(__name__)

#: The WebSocket handshake: any logged-in user, from the panel's own origin or an allowed one (an employee's socket
#: carries their reminders, and their own phone's calls as an agent's does).
SOCKET_POLICY = Policy(frozenset(LOGIN_ROLES), refused=PANEL_ONLY, writes="origin not allowed")
#: At shutdown, what the fan-out still has queued gets this long to reach the bus.
FANOUT_DRAIN_SECONDS = 1.0


class Panel:
    """The HTTP/WebSocket edge: builds the handlers and the route table that says who may call each."""

    def __init__(self, settings: HttpSettings, hub: Hub, notifier: Notifier, commands: Commands,
                 store: Callable[[], Store | None], pbxs: PbxHandles,
                 tls: bool = False, cards: CardService | None = None,
                 health: Callable[[], Health] | None = None, node: Node | None = None,
                 fanout: Fanout | None = None, supervisor: Supervisor | None = None,
                 register: RegisterSettings | None = None, reminders: ReminderSettings | None = None,
                 qa: QaSettings | None = None, recording: RecordingSettings | None = None,
                 complaints: ComplaintSettings | None = None, crms: Sequence[str] = (),
                 crm: CrmSettings | None = None) -> None:
        self.settings = settings
        self.hub = hub
        #: The way to the clients: this hub, or every node's through the store's bus (``fanout.across_nodes``).
        self.fanout = fanout if fanout is not None else Fanout(hub, store)
        #: The mirrors of the PBXs another node follows, kept from the fan-out's envelopes.
        self.mirrors = MirrorSync(self.fanout, notifier, pbxs, notifier.mirror)
        #: Call control for a PBX another node follows, carried out there (and for other nodes, here).
        self.forwarder = Forwarder(self.fanout.node, store, pbxs, commands)
        if self.fanout.across_nodes:
            commands.forward = self.forwarder.forward
        self._running = False
        self.notifier = notifier
        self.commands = commands
        self._store = store  # the daemon opens the store after the panel is built
        self.tls = tls
        self.cards = cards
        self.pbxs = pbxs  # each followed PBX: its calls in progress (frozen snapshots), agents, AMI link
        # Sessions live in the store (they survive a restart; the CLI revokes them); the sweep closes the
        # sockets of revoked or expired ones (the daemon runs ``sweep.run`` in its TaskGroup).
        self.sessions = Sessions(store, settings.session_hours * 3600)
        self.sweep = SocketSweep(hub, store)
        # In memory, per daemon: see ui_bridge/auth.py.
        self.limiter = LoginThrottle(settings.login_max_failures, settings.login_window_seconds)
        self.gate = gate = Gate(settings, self.sessions)

        pages = Pages(gate, language=settings.language)
        login = Login(gate, self.sessions, self.limiter, hub, self.store, tls)
        journal = Journal(self.store, notifier, list(pbxs))
        directory = Directory(self.store, notifier, self.fanout, cards, pbxs)
        # The register a team shares: claims, call-back results (ui_bridge/register.py), its grouped listing.
        self.register = RegisterDesk(store, notifier.messages, self.fanout, list(pbxs), register or RegisterSettings(),
                                     region=notifier.messages.region)
        commands.register = self.register.request
        # Call-back reminders (issue 13): kept, pushed when due, escalated, closed (ui_bridge/reminders.py).
        self.reminders = ReminderDesk(store, notifier.messages, self.fanout, list(pbxs),
                                      reminders or ReminderSettings(), region=notifier.messages.region)
        commands.reminders = self.reminders.request
        reminder_routes = ReminderRoutes(self.reminders)
        shared_register = SharedRegisterRoutes(self.store, notifier.messages, list(pbxs))
        alerts = AlertHistory(self.store, notifier.messages, list(pbxs))
        contacts = ContactRegisterRoutes(self.store, notifier, list(pbxs))  # the contact register (issue 13)
        reports = ReportRoutes(self.store, notifier, list(pbxs))  # the managers' reports (issue 13)
        # The CRM push as admins see it (issue 16): /api/health's part, /api/crm, /metrics (ui_bridge/crm_watch.py).
        self.crm_watch = CrmWatch(crms, store)
        #: The CRM push's click-to-call expectations (``ui_bridge/crm_calls.py``; set by the daemon; None: no push).
        self.crm_calls: CrmCallStarts | None = None
        # Recording links handed to CRMs, served without a login (ui_bridge/signed_links.py, routes/crm_links.py);
        # the key is the store's, read at the first link served (the push signs with the same: crm/service.py).
        crm = crm or CrmSettings()
        self.links = SignedLinks(None, str(crm.public_url) if crm.public_url else None, crm.link_hours, time.time)
        recording_links = RecordingLinkRoute(self.links, self.store, recording or RecordingSettings(), list(pbxs))
        #: 1C's pull feed (``companion.crm.onec.OneCFeed``; set by the daemon when ``[crm.onec] pull``).
        self.onec_feed: OneCEvents | None = None
        onec = OneCRoutes(self.store, commands, list(pbxs), configured=crm.onec is not None,
                          feed=lambda: self.onec_feed, starts=lambda: self.crm_calls)  # routes/crm_onec.py
        crm_routes = CrmRoutes(self.crm_watch, notifier.messages)
        # Bitrix24's calls on us (routes/crm_bitrix24.py): no login, the portal's application_token; the daemon sets
        # its user lookup (the connector).
        self.bitrix24 = Bitrix24Routes(self.store, commands, crm.bitrix24, starts=lambda: self.crm_calls)
        report = HealthReport(health, pbxs, notifier.mirror, crm=self.crm_watch)
        # The QA page (issue 14): transcripts, recordings, comments, scores, the report, the search (routes/qa.py).
        qa_routes = QaRoutes(self.store, notifier, list(pbxs), qa or QaSettings(), recording or RecordingSettings())
        # Complaints and claims (issue 15): registered, reviewed stage by stage, escalated (ui_bridge/complaints.py).
        complaint_settings = complaints or ComplaintSettings()
        self.complaints = ComplaintDesk(store, notifier.messages, self.fanout, complaint_settings, pbxs,
                                        mirrored=notifier.mirror.get)
        complaint_routes = ComplaintRoutes(self.complaints, settings.language)
        upload_limit = BodyLimit(UPLOAD_PATH, complaint_settings.max_attachment_bytes + MULTIPART_SLACK,
                                 f"a complaint's file is at most {complaint_settings.max_attachment_mb:g} MB")
        # /healthz, /readyz, /metrics (routes/ops.py); the pop latency is told by the daemon's PopSequencer.
        self.metrics = NodeMetrics(node, hub, self.fanout, crm=self.crm_watch)
        ops = Ops(settings, node, self.metrics)
        self.socket = LiveSocket(gate, SOCKET_POLICY, settings, hub, notifier, commands, self.sessions)
        self.app = Starlette(routes=[
            Route("/", pages.index),
            Route("/wallboard", pages.wallboard),  # the supervisor's figures for a TV (routes/pages.py)
            Route("/qa", pages.qa),  # the QA page: QA and admins (routes/pages.py, routes/qa.py)
            Route("/login", pages.login_page),
            Route("/healthz", ops.healthz),  # no login: probes (routes/ops.py)
            Route("/readyz", ops.readyz),
            Route("/crm/bitrix24/install", self.bitrix24.install, methods=["POST"]),  # routes/crm_bitrix24.py
            Route("/crm/bitrix24/event", self.bitrix24.event, methods=["POST"]),
            Route("/metrics", ops.scrape),  # [http] metrics_token, else this machine only (routes/ops.py)
            gate.route("/api/login", POST=for_anyone(login.login, writes="this origin may not log in here")),
            gate.route("/api/logout", POST=for_anyone(login.logout, writes="this origin may not log out here")),
            gate.route("/api/me", GET=for_users(login.me, *LOGIN_ROLES, refused=PANEL_ONLY)),
            gate.route("/api/health", GET=for_users(report.read, "admin", refused=FOR_ADMINS)),
            gate.route("/api/crm", GET=for_users(crm_routes.read, "admin", refused=CRM_IS_FOR)),  # routes/crm_watch.py
            gate.route("/api/crm/requests/{item_id}/retry",
                       POST=for_users(crm_routes.retry, "admin", refused=CRM_IS_FOR, writes=FOREIGN_CRM)),
            # 1C's API (routes/crm_onec.py): the pull feed of call events and click-to-call, for its token.
            gate.route("/api/crm/1c/events", GET=for_users(onec.events, "integration", "admin", refused=ONEC_IS_FOR)),
            gate.route("/api/crm/1c/calls", POST=for_users(onec.call, "integration", "admin", refused=ONEC_IS_FOR,
                                                           writes=FOREIGN_ONEC)),
            # A call's recording to a signed link a CRM holds, without a login (routes/crm_links.py).
            gate.route("/crm/recording/{token}", GET=for_anyone(recording_links.serve)),
            gate.route("/api/supervisor", GET=for_users(supervisor.read if supervisor is not None else no_supervisor,
                                                        "admin", "qa", refused=SUPERVISOR_IS_FOR)),
            gate.route("/api/calls", GET=for_users(journal.calls)),  # an agent's: their own (journal.py)
            gate.route("/api/missed", GET=for_users(journal.missed, "admin", "qa", refused=REGISTER_IS_FOR)),
            gate.route("/api/missed/groups",  # before /api/missed/{entry_id}, which would take "groups" for an id
                       GET=for_users(shared_register.groups, "admin", "qa", refused=REGISTER_IS_FOR)),
            # not {:int}: 5,000 digits made Starlette fail
            gate.route("/api/missed/{entry_id}",
                       GET=for_users(journal.missed_entry, "admin", "qa", refused=REGISTER_IS_FOR)),
            gate.route("/api/alerts", GET=for_users(alerts.list, "admin", "qa", refused=ALERTS_ARE_FOR)),
            gate.route("/api/reminders", GET=for_users(reminder_routes.list, "agent", "employee", "admin",
                                                       refused=REMINDERS_ARE_FOR)),
            gate.route("/api/contacts", GET=for_users(directory.search),
                       POST=for_users(directory.add, "agent", "admin", refused=QA_READS_ONLY,
                                      writes=FOREIGN_EDIT)),
            # The contact register: before /api/contacts/... routes that could take "register" for something else.
            gate.route("/api/contacts/register", GET=for_users(contacts.listing, "admin", "qa", "agent",
                                                               refused=REGISTER_READS_ARE_FOR)),
            gate.route("/api/contacts/register/{contact_id}",
                       GET=for_users(contacts.contact, "admin", "qa", "agent", refused=REGISTER_READS_ARE_FOR)),
            gate.route("/api/contacts/register/{contact_id}/stages",  # the DMS's integration API (and admins)
                       POST=for_users(contacts.set_stage, "admin", "integration", refused=STAGES_ARE_SET_BY,
                                      writes=FOREIGN_STAGE)),
            gate.route("/api/reports/{name}", GET=for_users(reports.read, "admin", "qa", refused=REPORTS_ARE_FOR)),
            gate.route("/api/calls/{linkedid}/contact",  # an agent's: calls their phone is on (directory.py)
                       POST=for_users(directory.attach, "agent", "admin", refused=QA_READS_ONLY,
                                      writes=FOREIGN_EDIT)),
            # The QA page's API: QA and admins only, the audio too (routes/qa.py).
            gate.route("/api/qa/checklist", GET=for_users(qa_routes.read_checklist, "qa", "admin", refused=QA_IS_FOR)),
            gate.route("/api/qa/report", GET=for_users(qa_routes.report, "qa", "admin", refused=QA_IS_FOR)),
            gate.route("/api/transcripts/search", GET=for_users(qa_routes.search, "qa", "admin", refused=QA_IS_FOR)),
            gate.route("/api/calls/{pbx}/{linkedid}/transcript",
                       GET=for_users(qa_routes.transcript, "qa", "admin", refused=QA_IS_FOR)),
            gate.route("/api/calls/{pbx}/{linkedid}/audio/{index}",
                       GET=for_users(qa_routes.audio, "qa", "admin", refused=QA_IS_FOR)),
            gate.route("/api/calls/{pbx}/{linkedid}/comments",
                       GET=for_users(qa_routes.comments, "qa", "admin", refused=QA_IS_FOR),
                       POST=for_users(qa_routes.add_comment, "qa", "admin", refused=QA_IS_FOR, writes=FOREIGN_QA)),
            gate.route("/api/calls/{pbx}/{linkedid}/scores",
                       GET=for_users(qa_routes.scores, "qa", "admin", refused=QA_IS_FOR),
                       POST=for_users(qa_routes.add_score, "qa", "admin", refused=QA_IS_FOR, writes=FOREIGN_QA)),
            # Complaints (routes/complaints.py): the fixed paths before /api/complaints/{complaint_id}.
            gate.route("/api/complaints",
                       GET=for_users(complaint_routes.listing, "agent", "employee", "admin", "qa",
                                     refused=COMPLAINTS_ARE_FOR),
                       POST=for_users(complaint_routes.register, "agent", "employee", "admin", "integration",
                                      refused=COMPLAINTS_ARE_FILED_BY, writes=FOREIGN_COMPLAINT)),
            gate.route("/api/complaints/options", GET=for_users(complaint_routes.options, "agent", "employee",
                                                                "admin", "qa", refused=COMPLAINTS_ARE_FOR)),
            gate.route("/api/complaints/from-call", GET=for_users(complaint_routes.from_call, "agent", "employee",
                                                                  "admin", refused=COMPLAINTS_ARE_WORKED_BY)),
            gate.route("/api/complaints/tasks", GET=for_users(complaint_routes.tasks, "agent", "employee", "admin",
                                                              refused=COMPLAINTS_ARE_WORKED_BY)),
            gate.route("/api/complaints/overdue", GET=for_users(complaint_routes.overdue, "agent", "employee",
                                                                "admin", refused=COMPLAINTS_ARE_WORKED_BY)),
            gate.route("/api/complaints/report", GET=for_users(complaint_routes.report, "agent", "employee",
                                                               "admin", "qa", refused=COMPLAINTS_ARE_FOR)),
            gate.route("/api/complaints/attachments/{attachment_id}",
                       GET=for_users(complaint_routes.download, "agent", "employee", "admin", "qa",
                                     refused=COMPLAINTS_ARE_FOR)),
            gate.route("/api/complaints/{complaint_id}",
                       GET=for_users(complaint_routes.card, "agent", "employee", "admin", "qa", "integration",
                                     refused=THE_CARD_IS_FOR)),
            *(gate.route(f"/api/complaints/{{complaint_id}}/{action}",
                         POST=for_users(handler, "agent", "employee", "admin", refused=COMPLAINTS_ARE_WORKED_BY,
                                        writes=FOREIGN_COMPLAINT))
              for action, handler in (("edit", complaint_routes.edit), ("move", complaint_routes.move),
                                      ("hand-over", complaint_routes.hand_over), ("answer", complaint_routes.answer),
                                      ("reassign", complaint_routes.reassign), ("plan", complaint_routes.plan_add),
                                      ("attachments", complaint_routes.upload))),
            gate.route("/api/complaints/{complaint_id}/plan/{row}",
                       POST=for_users(complaint_routes.plan_edit, "agent", "employee", "admin",
                                      refused=COMPLAINTS_ARE_WORKED_BY, writes=FOREIGN_COMPLAINT),
                       DELETE=for_users(complaint_routes.plan_remove, "agent", "employee", "admin",
                                        refused=COMPLAINTS_ARE_WORKED_BY, writes=FOREIGN_COMPLAINT)),
            WebSocketRoute("/ws", self.socket.endpoint),
            Route("/static/{name:path}", pages.asset),
        ], middleware=[Middleware(EdgeMiddleware, settings=settings,  # hosts, body limits, headers: limits.py
                                  large_bodies=(upload_limit,))])

    def store(self) -> Store:
        store = self._store()
        if store is None:
            raise RuntimeError("the store is not open")
        return store

    def on_register_change(self, change: RegisterChange) -> None:
        """The missed-call register changed (the store says so): each entry to its own PBX's ``all`` subscribers."""
        for outgoing in self.notifier.for_register(change):
            self.fanout.publish(outgoing.message, outgoing.extensions, outgoing.pbx)

    async def run(self) -> None:
        """The panel's background work, until cancelled (the daemon runs it in its TaskGroup, the store open): the
        sweep of revoked sessions' sockets and, across nodes, the fan-out's sender, the mirrors' upkeep and the
        forwarding of call control to the node that follows its PBX.
        A second call while it runs returns at once."""
        if self._running:
            return
        self._running = True
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.sweep.run(), name="panel-sweep")
                tg.create_task(self.register.run_expiry(), name="register-claims")  # claims whose time is up
                tg.create_task(self.reminders.run(), name="reminders")  # reminders due, overdue
                tg.create_task(self.complaints.run(), name="complaints")  # complaint tasks overdue: escalated
                if self.fanout.across_nodes:
                    tg.create_task(self.fanout.run(), name="panel-fanout")
                    tg.create_task(self.mirrors.run(), name="panel-mirrors")
                    tg.create_task(self.forwarder.run(), name="panel-forwarding")
        finally:
            self._running = False

    async def close(self) -> None:
        if self.fanout.active and not await self.fanout.flush(FANOUT_DRAIN_SECONDS):
            log.warning("panel fan-out: %d envelope(s) not published at shutdown", self.fanout.queued)
        await self.hub.close_all()
