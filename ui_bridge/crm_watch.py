"""What people see of the CRM push (issue 16): each CRM's outbox, the requests given up, and putting one back.

The push's failures must be visible (``docs/crm.md``, "Watching the push"): a CRM that has been down for an hour
is a queue of requests growing older, and a request the CRM refused is one nobody will send unless someone looks.
One reading serves every place that shows it, so they cannot disagree:

* ``GET /api/health``'s ``crm`` part and the admin's «CRM» block (``GET /api/crm``, ``ui_bridge/routes/crm.py``,
  ``ui_bridge/static/crm.js``);
* ``/metrics``: ``cti_crm_lag_seconds``, ``cti_crm_pending``, ``cti_crm_given_up`` and the senders' counters
  (``ui_bridge/metrics.py``);
* ``cti crm status`` reads the same store methods from the command line (``companion/cli/crm.py``).

Two sources, each for what only it knows. The store's outbox (``store.repository.CrmOutbox``) says what waits, what
is given up and what was sent, for every node and across restarts. This node's senders (``companion/crm/sender.py``,
handed in as :attr:`CrmWatch.counts` by the daemon) say what they sent, retried and gave up since the process
started: the counters Prometheus wants (a counter per process; ``rate()`` copes with a restart), and the retries,
which the outbox keeps only as each request's tries.

Putting a given-up request back (:meth:`CrmWatch.retry`) queues it again as it was: its call's later requests that
were given up with it (a ``finish`` that needed the ``CALL_ID`` of a ``register`` given up) are put back by
:meth:`CrmWatch.retry_all`, in their call's order, which the store keeps (a call's request waits for its earlier
ones).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from cti.crm import CRM_NAMES, CrmItem, CrmName, CrmStatus
from store.repository import Store

from .api_models import CrmHealth

#: How many given-up requests the panel lists (the newest; ``cti crm status --failed`` reads more).
GIVEN_UP_SHOWN = 50


class SenderCounts(Protocol):
    """What the metrics read of one CRM's sender on this node (``companion.crm.sender``), since the process started."""

    @property
    def sent(self) -> int: ...

    @property
    def retried(self) -> int: ...

    @property
    def failed(self) -> int: ...


CountsReader = Callable[[], Mapping[str, SenderCounts]]


class StoreNotOpen(RuntimeError):
    """The daemon has not opened its store yet (or has closed it)."""


class CrmWatch:
    """The CRM push as an admin sees it: one reading of the outbox, the senders' counts, and «Повторить»."""

    def __init__(self, enabled: Sequence[str], store: Callable[[], Store | None],
                 clock: Callable[[], float] = time.time) -> None:
        #: The CRMs ``[crm]`` pushes to, in the configuration's fixed order (empty: the panel shows no CRM block).
        self.enabled: list[CrmName] = [name for name in CRM_NAMES if name in enabled]
        self._store = store
        self._clock = clock
        #: This node's senders' counts by CRM; set by the daemon once it has built them (None: no sender runs here).
        self.counts: CountsReader | None = None
        #: Tells this node's sender of a CRM to look at the outbox now (a request put back); set by the daemon.
        self.wake: Callable[[CrmName], None] | None = None
        #: What the last :meth:`read` found: the metrics' gauges (a scrape reads the store first, ``routes/ops.py``).
        self.last: list[CrmHealth] = []

    @property
    def configured(self) -> bool:
        return bool(self.enabled)

    def store(self) -> Store:
        store = self._store()
        if store is None:
            raise StoreNotOpen("the store is not open")
        return store

    def sender_counts(self) -> Mapping[str, SenderCounts]:
        reader = self.counts
        return reader() if reader is not None else {}

    async def read(self) -> list[CrmHealth]:
        """Each configured CRM (and any other one still holding requests in the outbox), in a fixed order."""
        statuses = {status.crm: status for status in await self.store().crm_status()}
        counts = self.sender_counts()
        now = self._clock()
        names = [*self.enabled, *(name for name in CRM_NAMES if name in statuses and name not in self.enabled)]
        self.last = found = [health_of(name, statuses.get(name), counts.get(name), now, name in self.enabled)
                             for name in names]
        return found

    async def refresh(self) -> None:
        """:meth:`read`, for a scrape: nothing to do without a CRM, and a store not open leaves the last reading."""
        if self.configured and self._store() is not None:
            await self.read()

    async def given_up(self, crm: CrmName | None = None, limit: int = GIVEN_UP_SHOWN) -> list[CrmItem]:
        """The requests given up, newest first."""
        return await self.store().list_crm_items(crm=crm, state="failed", limit=limit)

    def now(self) -> float:
        return self._clock()

    async def retry(self, item_id: int) -> list[CrmItem]:
        """Queue a given-up request again, due now, with its call's later requests given up after it (each call's in
        its order: the store sends a call's request only after its earlier ones). ``CrmItemNotFound`` for an unknown
        id; a request not given up is left as it is (and returned)."""
        store = self.store()
        now = self._clock()
        item = await store.crm_retry(item_id, at=now)
        later = [i for i in await store.list_crm_items(crm=item.crm, call=item.call, state="failed", limit=100_000)
                 if i.seq > item.seq]
        items = [item, *[await store.crm_retry(i.id, at=now) for i in sorted(later, key=lambda i: i.seq)]]
        self._wake({item.crm})
        return items

    async def retry_all(self, crm: CrmName | None = None) -> list[CrmItem]:
        """Every given-up request (of ``crm``) queued again, each call's in its order; returns them."""
        store = self.store()
        items = await store.list_crm_items(crm=crm, state="failed", limit=100_000)
        now = self._clock()
        done = [await store.crm_retry(item.id, at=now) for item in sorted(items, key=lambda i: (i.call, i.seq))]
        self._wake({item.crm for item in done})
        return done

    def _wake(self, crms: set[CrmName]) -> None:
        if self.wake is not None:
            for crm in sorted(crms):
                self.wake(crm)


def health_of(crm: CrmName, status: CrmStatus | None, counts: SenderCounts | None, now: float,
              configured: bool = True) -> CrmHealth:
    """One CRM's line: the outbox's figures (zeros for a CRM nothing was queued for yet) and this node's retries."""
    lag = 0.0
    if status is not None and status.oldest_pending_at is not None:
        lag = round(max(0.0, now - status.oldest_pending_at), 3)
    return CrmHealth(crm=crm, configured=configured, pending=status.pending if status else 0,
                     failed=status.failed if status else 0, sent=status.sent if status else 0, lag_seconds=lag,
                     retried=counts.retried if counts is not None else 0,
                     last_error=status.last_error if status else None)
