"""The supervisor's figures kept live: the day's counts per PBX, folded from the journal's rows, pushed to admins.

Three parts, one job each:

* **Folding** (:meth:`Supervisor.on_effect`, a pipeline subscriber of its own: ``docs/pipeline.md``): each
  ``CallEnded`` brings its journal row and its agents' misses into its PBX's :class:`~cti.queue_figures.DayFigures`.
  The counts are the journal's own rows, so they agree with ``cti calls --since today`` by construction.
* **Loading** (in :meth:`Supervisor.run`): the day's rows already in the store, when the daemon starts, when the
  day turns (the PBX's time zone), and when this node starts following a PBX another node followed until then: a
  restart mid-day keeps the day's counts. A row both loaded and folded counts once (``DayFigures`` keys by
  linkedid).
* **Pushing** (in :meth:`Supervisor.run`, once a second): who waits in each queue (the calls in progress, through
  each PBX's :class:`~cti.context.CallView`) and each agent's state (the PBX's board) are read, the figures built,
  and a ``supervisor.figures`` message goes to the ``all`` subscribers (admins and QA) of that PBX only when it
  differs from the last one sent: so at most one a second per PBX, and none while nothing changes. Waits and times
  in a state tick in the browser from the times in the message. Queue joins and leaves make no effect
  (``cti/model.py``): reading the calls each second is what notices them, for a few microseconds per call.

``GET /api/supervisor`` (:meth:`Supervisor.read`) answers the same figures, freshly built, for each of the user's
PBXs: what the supervisor view and the wallboard load before the pushes, ordered against them by ``at``.

Across nodes: figures are built by the node that follows a PBX; its pushes reach every node's clients through the
fan-out (and are sent again every ``REFRESH_SECONDS`` while the bus is in use, for clients of other nodes that
connected meanwhile). ``GET /api/supervisor`` answers only the PBXs this node follows; a client of another node
gets the rest with the next push.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cti.effects import CallEnded, Effect
from cti.queue_figures import DayFigures, day_bounds
from cti.service_level import waiting_callers
from store.repository import Store, StoreClosed, User

from . import messages as m
from .fanout import Fanout
from .outgoing import Messages
from .pbx_access import visible
from .pbxs import PbxHandle, PbxHandles
from .routes.gate import api_error

log = logging.getLogger(__name__)

#: How often the figures are read and, when changed, pushed.
PUSH_SECONDS = 1.0
#: While the store's bus is in use (several nodes), the figures go out again this often even unchanged.
REFRESH_SECONDS = 30.0
#: After a failed load of the day's rows, the next try waits this long.
LOAD_RETRY_SECONDS = 5.0
#: The 403 of ``GET /api/supervisor``, for agents.
SUPERVISOR_IS_FOR = "the supervisor's figures are for admins and QA"


class Supervisor:
    """The day's figures of every PBX this node follows, and their pushes (module docstring)."""

    def __init__(self, pbxs: PbxHandles, messages: Messages, fanout: Fanout, store: Callable[[], Store | None],
                 within: float, clock: Callable[[], float] = time.time) -> None:
        self.pbxs = pbxs
        self.messages = messages
        self.fanout = fanout
        self._store = store
        #: ``[supervisor] service_level_seconds``.
        self.within = within
        self._clock = clock
        self._days: dict[str, DayFigures] = {}
        #: The days whose rows were loaded from the store (PBX -> the day's start).
        self._loaded: dict[str, float] = {}
        self._load_failed_at: dict[str, float] = {}
        #: The last figures pushed per PBX (without ``at``), and when.
        self._last: dict[str, tuple[dict[str, Any], float]] = {}
        self.pushed = 0

    # -- folding (the pipeline subscriber) -------------------------------------------------------------------

    def on_effect(self, effect: Effect) -> None:
        """A call's end: its journal row and its agents' misses count for the day of its PBX."""
        if not isinstance(effect, CallEnded):
            return
        record = effect.record
        day = self._day(record.pbx, self._clock())
        if day is None:
            return
        day.add_call(record)
        for miss in effect.agent_misses:
            day.add_miss(miss)

    def _day(self, pbx: str, now: float) -> DayFigures | None:
        """The PBX's figures of the day ``now`` falls in (new ones when the day turned); None: not a PBX of ours."""
        handle = self.pbxs.get(pbx)
        if handle is None:
            return None
        day = self._days.get(pbx)
        if day is None or not day.start <= now < day.end:
            start, end = day_bounds(now, handle.settings.tzinfo())
            day = self._days[pbx] = DayFigures(pbx, start, end, self.within)
        return day

    # -- loading and pushing ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Load and push until cancelled (the daemon runs it in its TaskGroup, the store open)."""
        while True:
            for handle in self.pbxs.values():
                try:
                    await self._keep(handle)
                except asyncio.CancelledError:
                    raise
                except Exception:  # one PBX's bad moment must not stop the figures of the others
                    log.exception("supervisor: the figures of PBX %s could not be updated", handle.id)
            await asyncio.sleep(PUSH_SECONDS)

    async def _keep(self, handle: PbxHandle) -> None:
        pbx = handle.id
        if not handle.following():  # another node follows it (and pushes its figures): forget ours
            self._days.pop(pbx, None)
            self._loaded.pop(pbx, None)
            self._last.pop(pbx, None)
            return
        now = self._clock()
        day = self._day(pbx, now)
        assert day is not None
        if self._loaded.get(pbx) != day.start and now - self._load_failed_at.get(pbx, -LOAD_RETRY_SECONDS) >= \
                LOAD_RETRY_SECONDS:
            await self._load(pbx, day)
        message = self.figures_of(handle, now)
        content = message.model_dump(exclude={"at"})
        last = self._last.get(pbx)
        refresh = self.fanout.active and last is not None and now - last[1] >= REFRESH_SECONDS
        if last is None or last[0] != content or refresh:
            self._last[pbx] = (content, now)
            self.fanout.publish(message, frozenset(), pbx)
            self.pushed += 1

    async def _load(self, pbx: str, day: DayFigures) -> None:
        """The day's journal rows and agents' misses already in the store, into ``day``."""
        store = self._store()
        if store is None:
            return
        try:
            async for record in store.iter_calls(since=day.start, until=day.end, pbxs=[pbx]):
                day.add_call(record)
            async for miss in store.iter_agent_misses(since=day.start, until=day.end, pbxs=[pbx]):
                day.add_miss(miss)
        except StoreClosed:
            raise
        except Exception as exc:  # a database that cannot be read now: the live counts go on, loaded later
            self._load_failed_at[pbx] = self._clock()
            log.warning("supervisor: the day's calls of PBX %s could not be read (%s); trying again in %.0f s",
                        pbx, exc, LOAD_RETRY_SECONDS)
            return
        self._loaded[pbx] = day.start
        log.debug("supervisor: PBX %s: %d calls of the day loaded", pbx, day.calls_counted)

    def figures_of(self, handle: PbxHandle, now: float) -> m.SupervisorFigures:
        """The figures of one PBX this node follows, now."""
        day = self._day(handle.id, now)
        assert day is not None
        tz = handle.settings.tzinfo()
        known = set(handle.queues())
        states = handle.agent_states()
        for state in states:
            known.update(state.queues)
        queues = day.queues(waiting_callers(handle.calls.in_progress()), known)
        return self.messages.supervisor_figures(
            handle.id, datetime.fromtimestamp(day.start, tz).date().isoformat(), now, self.within, queues,
            day.agents(states))

    # -- GET /api/supervisor ---------------------------------------------------------------------------------

    async def read(self, request: Request, user: User) -> Response:
        """The figures of each of the user's PBXs this node follows (admins and QA: the route table)."""
        now = self._clock()
        figures = [self.figures_of(self.pbxs[pbx], now).model_dump(mode="json")
                   for pbx in visible(user, list(self.pbxs)) if self.pbxs[pbx].following()]
        return JSONResponse({"figures": figures}, headers={"Cache-Control": "no-store"})


async def no_supervisor(request: Request, user: User) -> Response:
    """``GET /api/supervisor`` of a panel run without a daemon (a test bench): no figures to give."""
    return api_error(404, "not_found", "this panel runs without a daemon to take figures from")
