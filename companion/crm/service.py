"""The CRM push's parts as the daemon runs them (issue 16): one object, so ``companion/daemon.py`` only hooks it in.

Built when ``[crm]`` has a CRM's section (nothing CRM-related exists otherwise): the one ``httpx.AsyncClient`` every
connector shares, the signed recording links (``ui_bridge/signed_links.py``, their key read from the store at
start), a connector per CRM (``companion/crm/registry.py``: a CRM that cannot be built is a problem in the log, the
others go on), the push (the pipeline subscriber, ``push.py``) and a sender per CRM (``sender.py``).

:meth:`CrmService.run` runs the senders and the push's transcript task in the daemon's TaskGroup; :meth:`stop` lets
the requests in flight finish (and be marked sent) within a bound, then cancels; what is cut off is sent again after
its lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import tzinfo
from typing import TYPE_CHECKING

import httpx

from cti.crm import CrmName
from ui_bridge.crm_settings import CrmSettings
from ui_bridge.signed_links import SignedLinks

from .connector import ConnectorDeps
from .push import CrmPush
from .registry import build_connectors
from .sender import POLL_SECONDS, CrmSender, SenderStats

if TYPE_CHECKING:
    from store.repository import Store

    from .onec import OneCFeed

log = logging.getLogger(__name__)

#: At shutdown the requests in flight get this long to finish and be marked, before they are cut off.
STOP_SECONDS = 5.0
#: Connections the shared client keeps open (all CRMs together).
MAX_CONNECTIONS = 40
#: Seconds the shared client waits for a connection before a request counts as failed (a CRM down must fail fast).
CONNECT_SECONDS = 5.0


class CrmService:
    """Everything the push needs, built from ``[crm]`` (module docstring). ``hang_up(pbx, linkedid)``: a call hung up
    through AMI (Zammad's ``reject``); ``region``: how numbers are read; ``tz``: the site's zone
    (``[pbx] timezone``)."""

    def __init__(self, settings: CrmSettings, store: Callable[[], Store | None], *,
                 hang_up: Callable[[str, str], Awaitable[bool]] | None = None, region: str = "RU",
                 clock: Callable[[], float] = time.time, poll_seconds: float | None = None,
                 tz: tzinfo | None = None) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        timeout = max((getattr(settings, name).timeout for name in settings.enabled), default=15.0)
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(CONNECT_SECONDS, timeout)),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS // 2))
        self.links = SignedLinks(None, str(settings.public_url) if settings.public_url else None,
                                 settings.link_hours, clock)
        built = build_connectors(settings, ConnectorDeps(store=store, http=self.http, links=self.links, clock=clock,
                                                         hang_up=hang_up, tz=tz))
        #: The CRMs that could not be built, in words (``cti check-config`` says the same from the settings).
        self.problems = built.problems
        self.senders: dict[CrmName, CrmSender] = {
            crm: CrmSender(connector, settings, store, clock=clock, poll_seconds=poll_seconds or POLL_SECONDS)
            for crm, connector in built.connectors.items()}
        self._sender_tasks: list[asyncio.Task[None]] = []
        self.push = CrmPush({crm: c.planner for crm, c in built.connectors.items()}, store, self.wake, clock=clock,
                            region=region)
        #: 1C's pull feed (``[crm.onec] pull``: ``companion/crm/onec.py``), handed to the panel; woken with 1C's sender.
        self.onec_feed: OneCFeed | None = None
        if "onec" in built.connectors:
            from .onec import OneCConnector

            onec = built.connectors["onec"]
            self.onec_feed = onec.feed if isinstance(onec, OneCConnector) else None

    def wake(self, crm: CrmName) -> None:
        """``crm``'s sender looks at the outbox now (something was queued for it)."""
        sender = self.senders.get(crm)
        if sender is not None:
            sender.wake()
        if crm == "onec" and self.onec_feed is not None:
            self.onec_feed.queued()  # the 1C bases waiting on the pull feed read it now

    def stats(self) -> dict[str, SenderStats]:
        """Each running sender's counts (``ui_bridge.crm_watch.CrmWatch.counts``)."""
        return {crm: sender.stats() for crm, sender in self.senders.items()}

    async def run(self) -> None:
        """The senders and the transcripts' task, until cancelled (:meth:`stop` ends the senders first)."""
        store = self.store()
        if store is not None and self.settings.public_url is not None:
            try:
                await self.links.load(store)
            except Exception as exc:  # the calls go without their recording links until the next start
                log.error("CRM push: the recording links' key cannot be read (%s); calls are pushed without links",
                          exc)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.push.run(), name="crm-transcripts")
            self._sender_tasks = [tg.create_task(sender.run(), name=f"crm-sender-{crm}")
                                  for crm, sender in self.senders.items()]

    async def stop(self, task: asyncio.Task[None], within: float = STOP_SECONDS) -> None:
        """Stop ``task`` (:meth:`run`'s): the senders finish what is in flight within ``within`` s, then everything is
        cancelled and the HTTP client closed."""
        for sender in self.senders.values():
            sender.stop()
        if self._sender_tasks:
            await asyncio.wait(self._sender_tasks, timeout=within)
        task.cancel()
        await asyncio.wait({task})
        await self.http.aclose()
