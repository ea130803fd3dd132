"""One CRM's sender: takes the outbox's due requests and sends them, in order per call, within the CRM's rate.

Why a task per CRM, beside the push (``companion/crm/push.py``) rather than in it: the push only writes what is to be
sent (the outbox, ``store.repository.CrmOutbox``); sending waits for a CRM that may be slow, down or rate-limiting,
and that must never hold the pipeline, another CRM or a screen-pop. So each enabled CRM has a :class:`CrmSender` in
the daemon's TaskGroup, which:

* **takes** due requests with a lease (``take_crm``: at most one per call, and only once every earlier request of
  that call is sent or given up, so a call's requests go strictly in order while different calls go in parallel,
  up to :data:`PARALLEL` at once). Another node, or this one after a crash, takes a request again only once its
  lease has run out;
* **waits its turn** in the CRM's leaky bucket (``aiolimiter.AsyncLimiter``: ``burst`` at once after a quiet spell,
  then ``rate`` a second: Bitrix24's 2/s with a burst of 50);
* **sends** it through the connector (``companion/crm/connector.py``), which fills the references in
  (``references.resolve``) and says what came of it: ``Sent`` (kept with its answer), ``Retry`` (again after a
  growing wait, :func:`retry_at`, or the ``Retry-After`` the CRM asked for; given up once the request is
  ``[crm] give_up_hours`` old), ``GiveUp`` (kept failed with the reason: ``cti crm status``, the admin's panel). A
  connector that raises is a ``Retry`` (logged at most once a minute), never a dead sender;
* is **woken** by the push when it queues something (:meth:`CrmSender.wake`), else looks every
  :data:`POLL_SECONDS` (retries come due, another node's requests);
* keeps **counts** in memory (:meth:`CrmSender.stats`: sent, retried, failed, in flight, the lag of the oldest
  pending request), which the health page, the metrics and ``cti crm status`` read;
* **stops** (:meth:`CrmSender.stop`) by taking nothing more and giving the requests in flight a moment to finish
  (and be marked); what is cut off after that is sent again after its lease, and each connector makes that repeat
  harmless (``docs/crm.md``).

Time comes from ``clock`` (the tests move it); the waits are the event loop's own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from aiolimiter import AsyncLimiter

from cti.crm import CrmItem, CrmName
from ui_bridge.crm_settings import CrmSettings

from ..throttled_warning import ThrottledWarning
from .connector import Connector, GiveUp, Retry, SendResult, Sent

if TYPE_CHECKING:
    from store.repository import Store

log = logging.getLogger(__name__)

#: Requests of different calls one CRM's sender has in flight at once.
PARALLEL = 8
#: An idle sender looks at the outbox this often (retries due, requests another node queued).
POLL_SECONDS = 1.0
#: After the store failed (a locked database, PostgreSQL away) the sender waits this long, doubled up to the last.
STORE_RETRY_FIRST = 0.5
STORE_RETRY_MAX = 30.0
#: The exponent of the back-off stops growing here (the wait is capped by ``retry_max_seconds`` long before).
_MAX_EXPONENT = 64


@dataclass(frozen=True, slots=True)
class SenderStats:
    """One CRM's sending since start (``/api/health``, ``/metrics``, ``cti crm status``)."""

    crm: CrmName
    sent: int
    #: Tries that failed and were put back for later.
    retried: int
    #: Requests given up (refused, or retried until ``give_up_hours``).
    failed: int
    in_flight: int
    #: Seconds the oldest pending request has waited (as of the sender's last look at the outbox); 0: none waits.
    lag: float
    #: The last failure in words (None: none since start).
    last_error: str | None


def retry_at(item: CrmItem, now: float, settings: CrmSettings, after: float | None = None) -> float | None:
    """When ``item``, whose try failed ``now``, is tried again, or None: given up (it is ``give_up_hours`` old).

    ``item.attempts`` counts the tries so far, this one included (``take_crm`` counted it): the waits are
    ``retry_first_seconds`` × ``retry_factor`` to the power of the tries before, up to ``retry_max_seconds``;
    ``after`` (the CRM's ``Retry-After``) replaces the wait. The last try is at the give-up time itself."""
    # From the queueing, or from the admin's «Повторить»: a request put back gets a whole period again.
    deadline = (item.retried_at or item.created_at) + settings.give_up_hours * 3600
    if now >= deadline:
        return None
    if after is not None:
        wait = max(after, 0.0)
    else:
        exponent = min(max(item.attempts - 1, 0), _MAX_EXPONENT)
        wait = min(settings.retry_first_seconds * settings.retry_factor ** exponent, settings.retry_max_seconds)
    return min(now + wait, deadline)


class CrmSender:
    """Sends one CRM's outbox (module docstring). ``store`` is the daemon's (None while it is not open)."""

    def __init__(self, connector: Connector, settings: CrmSettings, store: Callable[[], Store | None], *,
                 clock: Callable[[], float] = time.time, parallel: int = PARALLEL,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self.connector = connector
        self.crm: CrmName = connector.name
        self.settings = settings
        self.store = store
        self.clock = clock
        self.parallel = parallel
        self.poll_seconds = poll_seconds
        self.limiter = AsyncLimiter(connector.burst, connector.burst / connector.rate)
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self.sent = self.retried = self.failed = 0
        #: Times the outbox was looked at (the tests wait for the first: the sender is idle then).
        self.looks = 0
        self._oldest_pending_at: float | None = None
        self._last_error: str | None = None
        #: A retry's line at most once a ``WARNING_INTERVAL`` (a CRM down fails every request), the count kept.
        self._warn = ThrottledWarning(log, "failure(s)")

    # -- the push's side ------------------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look at the outbox now (the push queued a request)."""
        self._wakeup.set()

    def stop(self) -> None:
        """Take nothing more; :meth:`run` returns once the requests in flight are done (the daemon bounds the wait)."""
        self._stopping.set()
        self._wakeup.set()

    def stats(self) -> SenderStats:
        oldest = self._oldest_pending_at
        lag = max(self.clock() - oldest, 0.0) if oldest is not None else 0.0
        return SenderStats(self.crm, self.sent, self.retried, self.failed, len(self._in_flight), lag,
                           self._last_error)

    # -- the task -------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Send due requests until :meth:`stop` (then finish those in flight) or cancelled (then they are cut off and
        sent again after their lease); a failing store is waited for, never the daemon's end."""
        log.info("CRM %s: sending its outbox (%g requests/s, burst %d)", self.crm, self.connector.rate,
                 self.connector.burst)
        delay = STORE_RETRY_FIRST
        try:
            async with asyncio.TaskGroup() as tg:
                while not self._stopping.is_set():
                    self._wakeup.clear()  # before looking: a request queued from now on wakes the wait below
                    try:
                        took = await self._take(tg)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # the store failed: the sender waits, the daemon goes on
                        log.warning("CRM %s: the outbox cannot be read (%s); trying again in %.1f s", self.crm, exc,
                                    delay)
                        await self._idle(delay)
                        delay = min(delay * 2, STORE_RETRY_MAX)
                        continue
                    delay = STORE_RETRY_FIRST
                    if took == 0 or len(self._in_flight) >= self.parallel:
                        await self._idle(self.poll_seconds)
                # Stopping: the group waits for the requests in flight (the daemon cancels it after its bound).
        finally:
            for task in self._in_flight.values():
                task.cancel()

    async def _take(self, tg: asyncio.TaskGroup) -> int:
        store = self.store()
        if store is None:
            return 0
        free = self.parallel - len(self._in_flight)
        if free <= 0:
            return 0
        items = await store.take_crm(self.crm, now=self.clock(), lease_seconds=self.settings.lease_seconds,
                                     limit=free)
        self.looks += 1
        for item in items:
            if item.id in self._in_flight:  # a lease shorter than our own try: it is ours already
                continue
            task = tg.create_task(self._send(store, item), name=f"crm-{self.crm}-{item.id}")
            self._in_flight[item.id] = task
            task.add_done_callback(partial(self._done, item.id))
        if not items:
            await self._note_lag(store)
        return len(items)

    def _done(self, item_id: int, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(item_id, None)
        self._wakeup.set()  # the call's next request may be due now

    async def _note_lag(self, store: Store) -> None:
        """The oldest pending request's time, for :meth:`stats` (read when the sender is idle: cheap then)."""
        for status in await store.crm_status():
            if status.crm == self.crm:
                self._oldest_pending_at = status.oldest_pending_at
                return
        self._oldest_pending_at = None

    async def _idle(self, seconds: float) -> None:
        """Wait for a wake-up (a request queued, one in flight done, :meth:`stop`) or ``seconds``."""
        try:
            async with asyncio.timeout(seconds):
                await self._wakeup.wait()
        except TimeoutError:
            pass

    # -- one request ----------------------------------------------------------------------------------------------

    async def _send(self, store: Store, item: CrmItem) -> None:
        """Send ``item`` (taken already) within the rate, and store what came of it. Never raises (but cancelled)."""
        if self._oldest_pending_at is None or item.created_at < self._oldest_pending_at:
            self._oldest_pending_at = item.created_at
        await self.limiter.acquire()
        result = await self._try(store, item)
        await self._keep(store, item, result)

    async def _try(self, store: Store, item: CrmItem) -> SendResult:
        try:
            answers = await store.crm_call_answers(self.crm, item.call)
            # The lease is what keeps another taker away: a try longer than it would be sent twice at once.
            async with asyncio.timeout(self.settings.lease_seconds * 0.9):
                return await self.connector.send(item, answers)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            return Retry(f"no answer within {self.settings.lease_seconds * 0.9:.0f} s")
        except Exception as exc:  # the connector's fault (or the store's): tried again later, never the task's end
            self._warn("CRM %s: request %d (%s of call %s) failed unexpectedly: %s: %s", self.crm, item.id,
                       item.kind, item.call, type(exc).__name__, exc, exc_info=True)
            return Retry(f"{type(exc).__name__}: {exc}")

    async def _keep(self, store: Store, item: CrmItem, result: SendResult) -> None:
        """Store what came of the try; a store that fails is tried again (a sent request marked late is better than
        one sent twice)."""
        delay = STORE_RETRY_FIRST
        while True:
            now = self.clock()
            try:
                if isinstance(result, Sent):
                    await store.crm_sent(item.id, result.answer, at=now)
                    self.sent += 1
                    log.debug("CRM %s: %s of call %s sent (request %d)", self.crm, item.kind, item.call, item.id)
                elif isinstance(result, GiveUp):
                    await store.crm_failed(item.id, result.reason, at=now, next_try_at=None)
                    self._given_up(item, result.reason)
                else:
                    next_try = retry_at(item, now, self.settings, result.after)
                    reason = result.reason if next_try is not None else (
                        f"still failing after {self.settings.give_up_hours:g} h: {result.reason}")
                    await store.crm_failed(item.id, reason, at=now, next_try_at=next_try)
                    if next_try is None:
                        self._given_up(item, reason)
                    else:
                        self.retried += 1
                        self._last_error = result.reason
                        self._warn("CRM %s: %s of call %s (request %d, try %d) failed: %s; next try in %.3g s",
                                   self.crm, item.kind, item.call, item.id, item.attempts, result.reason,
                                   next_try - now)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping.is_set() or delay > STORE_RETRY_MAX:
                    log.warning("CRM %s: cannot store the outcome of request %d (%s); it is sent again after its "
                                "lease", self.crm, item.id, exc)
                    return
                await asyncio.sleep(delay)
                delay *= 2

    def _given_up(self, item: CrmItem, reason: str) -> None:
        self.failed += 1
        self._last_error = reason
        log.warning("CRM %s: %s of call %s given up (request %d, %d tries): %s", self.crm, item.kind, item.call,
                    item.id, item.attempts, reason)

