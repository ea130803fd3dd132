"""The supervisor's alerts, live: the rules of ``cti/alerts.py`` evaluated about once a second for the PBXs this node
follows, each alert kept in the store's history and told to the panels (``alert.raised`` / ``acknowledged`` /
``resolved``), and a supervisor's acknowledgement carried out.

What the rules need, and where it comes from:

* the callers waiting in a queue and the agents' states: each followed PBX's handle (``ui_bridge/pbxs.py``), read at
  each evaluation (frozen snapshots, never the live book);
* the queue calls that ended within the service-level window: kept from the ``CallEnded`` effects (the daemon
  subscribes :meth:`AlertEngine.on_effect` to its pipeline, with a bounded queue of its own: ``docs/pipeline.md``),
  and read from the journal when the node starts following a PBX (a restart loses none);
* the register's open entries: read from the store when the register changes here (:meth:`on_register_change`)
  and at least every ``MISSED_REFRESH_SECONDS`` (a call-back closed by the CLI or another node), never per tick.

A PBX is evaluated only while this node follows it and is connected to it, and not in the first
``SETTLE_SECONDS`` after the connection opened (the resync is rebuilding its calls and agents: an alert must not
resolve, then come back as a new one, because the calls were not known yet). When the node starts following a PBX,
the alerts the store holds active for it are taken over: a condition that still holds keeps its alert (a restart
raises nothing twice), one that ended is resolved.

Across several nodes (a PostgreSQL store) each PBX is evaluated by the node that follows it; the messages go through
the fan-out to every node's panels, and any node acknowledges (the store is shared).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Literal

from cti.alerts import Alert, Thresholds, WindowCall, changes, conditions
from cti.effects import CallEnded, Effect
from cti.records import MissedEntry
from cti.service_level import queue_call, waiting_callers
from store.repository import AlertAlreadyAcknowledged, AlertNotFound, RegisterChange, Store, StoreError, User
from ui_bridge.settings import AlertSettings

from .commands import RequestFailed, forbidden
from .outgoing import Messages, Outgoing
from .pbx_access import belongs
from .pbxs import PbxHandles

log = logging.getLogger(__name__)

#: How often the rules are evaluated (seconds).
TICK_SECONDS = 1.0
#: After the connection to a PBX opens, its rules wait this long for the resync to rebuild its calls and agents.
SETTLE_SECONDS = 2.0
#: The register's open entries are read again at least this often (seconds), besides after each change seen here.
MISSED_REFRESH_SECONDS = 60.0
#: Open entries older than this are the register's business, not an alarm (seconds): enabling the alert on a site
#: with a long-neglected register must not ring for every entry of last month.
MISSED_HORIZON_SECONDS = 86400.0
#: At most this many open entries are read per refresh (the oldest first within the horizon).
MISSED_LIMIT = 500
#: A failing evaluation (the store unreachable) is logged at most this often (seconds).
WARNING_INTERVAL = 60.0

Publish = Callable[[Outgoing], None]


def thresholds(settings: AlertSettings, service_level_seconds: float) -> Thresholds:
    """The rules' thresholds from ``[alerts]`` and ``[supervisor] service_level_seconds``."""
    return Thresholds(
        long_wait_seconds=settings.long_wait_seconds, service_level_below=settings.service_level_below,
        service_level_within=service_level_seconds, service_level_window=settings.service_level_window_minutes * 60,
        service_level_min_calls=settings.service_level_min_calls, paused_seconds=settings.paused_minutes * 60,
        missed_seconds=settings.missed_not_called_back_minutes * 60)


class AlertEngine:
    """Evaluates the alert rules for the followed PBXs, keeps each alert in the store, tells the panels."""

    def __init__(self, rules: Thresholds, pbxs: PbxHandles, store: Callable[[], Store | None], messages: Messages,
                 publish: Publish, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rules = rules
        self.pbxs = pbxs
        self._store = store
        self.messages = messages
        self.publish = publish
        self.clock = clock
        self.monotonic = monotonic
        #: Whether any kind is on: with none, the engine evaluates nothing (acknowledging old alerts still works).
        self.enabled = any(v > 0 for v in (rules.long_wait_seconds, rules.service_level_below, rules.paused_seconds,
                                           rules.missed_seconds))
        #: The active alerts of the PBXs taken over, by PBX, then by key.
        self._active: dict[str, dict[str, Alert]] = {}
        #: Recent queue calls by PBX, by linkedid (a call read from the journal and seen ending is one call).
        self._window: dict[str, dict[str, WindowCall]] = {}
        #: When the connection to each PBX was first seen open (monotonic), while it stays open.
        self._connected_since: dict[str, float] = {}
        self._missed: list[MissedEntry] = []
        self._missed_read = -math.inf
        self._missed_dirty = True
        self._last_warning = -math.inf
        self.evaluations = 0
        self.failures = 0

    # -- inputs --------------------------------------------------------------------------------------------------

    def on_effect(self, effect: Effect) -> None:
        """The pipeline's subscriber: a queue call that ended joins its PBX's service-level window."""
        if not isinstance(effect, CallEnded) or self.rules.service_level_below <= 0:
            return
        record = effect.record
        call = queue_call(record)
        if call is not None:
            ended = record.ended_at if record.ended_at is not None else record.started_at
            self._window.setdefault(record.pbx, {})[record.linkedid] = WindowCall(ended, call)

    def on_register_change(self, change: RegisterChange) -> None:
        """The register changed here: read its open entries again at the next evaluation."""
        if change.opened or change.updated:
            self._missed_dirty = True

    # -- the loop ------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Evaluate every ``TICK_SECONDS`` until cancelled (the daemon runs it in its TaskGroup, the store open).
        A failing evaluation (the store unreachable) is logged and tried again at the next tick."""
        if not self.enabled:
            return
        while True:
            try:
                await self.evaluate()
            except (StoreError, OSError) as exc:
                self._warn(f"alerts: evaluation failed ({exc}); trying again")
            except Exception:  # a bug here must not end the daemon: the alerts stop, the calls go on
                self.failures += 1
                log.exception("alerts: evaluation failed")
            await asyncio.sleep(TICK_SECONDS)

    async def evaluate(self) -> None:
        """One evaluation of every followed PBX: raise what began, resolve what ended."""
        store = self._store()
        if store is None:
            return
        now = self.clock()
        ready = []
        for handle in self.pbxs.values():
            pbx = handle.id
            if not handle.following():
                self._let_go(pbx)  # another node follows it now, and takes its alerts over
                continue
            if not handle.connected():
                self._connected_since.pop(pbx, None)  # unknown meanwhile: nothing raised, nothing resolved
                continue
            opened = self._connected_since.setdefault(pbx, self.monotonic())
            if self.monotonic() - opened < SETTLE_SECONDS:
                continue
            if pbx not in self._active:
                await self._take_over(store, pbx, now)
            ready.append(handle)
        if not ready:
            return
        if self.rules.missed_seconds > 0 and (self._missed_dirty or
                                              self.monotonic() - self._missed_read >= MISSED_REFRESH_SECONDS):
            self._missed_dirty = False
            self._missed_read = self.monotonic()
            self._missed = await store.list_missed(status="open", since=now - MISSED_HORIZON_SECONDS,
                                                   pbxs=[h.id for h in ready], limit=MISSED_LIMIT)
        for handle in ready:
            pbx = handle.id
            pbx_now = handle.pbx_time()  # the calls' and entries' times are the PBX's: waits are measured on its clock
            self._prune(pbx, pbx_now)
            found = conditions(
                pbx_now, self.rules, waiting=waiting_callers(handle.calls.in_progress()),
                window=self._window.get(pbx, {}).values(), agents=handle.agent_states(),
                open_missed=[e for e in self._missed if e.pbx == pbx])
            active = self._active[pbx]
            step = changes(active, found)
            for condition in step.raised:
                alert, new = await store.raise_alert(condition, at=now)
                active[condition.key] = alert
                if new:
                    log.info("alert raised: %s", condition.key)
                    self._tell("raised", alert)
            for key in step.resolved:
                alert = await store.resolve_alert(active.pop(key).id, at=now)
                log.info("alert resolved: %s", key)
                self._tell("resolved", alert)
        self.evaluations += 1

    async def _take_over(self, store: Store, pbx: str, now: float) -> None:
        """This node follows ``pbx`` (again): its active alerts, and its recent queue calls from the journal."""
        self._active[pbx] = {a.key: a for a in await store.active_alerts(pbxs=[pbx])}
        if self.rules.service_level_below > 0:
            window = self._window.setdefault(pbx, {})
            # A call that ended within the window may have started a while before it: twice the window back.
            async for record in store.iter_calls(since=now - 2 * self.rules.service_level_window, pbxs=[pbx]):
                call = queue_call(record)
                if call is not None and record.linkedid not in window:
                    ended = record.ended_at if record.ended_at is not None else record.started_at
                    window[record.linkedid] = WindowCall(ended, call)
        self._missed_dirty = True

    def _let_go(self, pbx: str) -> None:
        self._active.pop(pbx, None)
        self._window.pop(pbx, None)
        self._connected_since.pop(pbx, None)

    def _prune(self, pbx: str, now: float) -> None:
        start = now - self.rules.service_level_window
        calls = self._window.get(pbx, {})
        old = [linkedid for linkedid, item in calls.items() if item.ended_at < start]
        for linkedid in old:
            del calls[linkedid]

    def _tell(self, event: Literal["raised", "acknowledged", "resolved"], alert: Alert) -> None:
        self.publish(self.messages.for_alert(event, alert))

    def _warn(self, text: str) -> None:
        self.failures += 1
        now = self.monotonic()
        if now - self._last_warning >= WARNING_INTERVAL:
            self._last_warning = now
            log.warning("%s (%d failure(s) so far)", text, self.failures)

    # -- requests ------------------------------------------------------------------------------------------------

    async def acknowledge(self, user: User, alert_id: int) -> dict[str, object]:
        """``alert.ack``: an admin of the alert's PBX saw it. The reply carries the alert; every panel of the PBX
        gets ``alert.acknowledged``."""
        if user.role != "admin":
            raise forbidden("only admins acknowledge alerts")
        store = self._store()
        if store is None:
            raise RequestFailed("internal", "the store is not open yet; try again in a moment")
        try:
            alert = await store.get_alert(alert_id)
            if not belongs(user, alert.pbx):
                raise forbidden("this alert is another PBX's")
            alert = await store.acknowledge_alert(alert_id, user.name, at=self.clock())
        except AlertNotFound as exc:
            raise RequestFailed("not_found", str(exc)) from None
        except AlertAlreadyAcknowledged as exc:
            raise RequestFailed("conflict", f"already acknowledged by {exc.alert.acknowledged_by}",
                                by=exc.alert.acknowledged_by) from None
        except StoreError as exc:
            raise RequestFailed("internal", f"the store failed: {exc}") from None
        active = self._active.get(alert.pbx)
        if active is not None and alert.key in active and active[alert.key].id == alert.id:
            active[alert.key] = alert
        self._tell("acknowledged", alert)
        return {"alert": self.messages.alert_info(alert).model_dump()}
