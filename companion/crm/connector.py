"""What the CRM sender needs of a connector (issue 16): one CRM's I/O half, over HTTP.

A connector sends one outbox item (``cti.crm.CrmItem``) and says what came of it, by the meaning of the CRM's
answer rather than its HTTP status alone:

* :class:`Sent`: accepted; ``answer`` keeps what later requests of the call refer to (``{"$remote": "call_id"}``).
  A repeat the CRM reports as already done (Bitrix24's ``finish`` of a finished call) is ``Sent`` too.
* :class:`Retry`: not now: the network, a 5xx, a rate limit (``QUERY_LIMIT_EXCEEDED``, 429: ``after`` from its
  ``Retry-After`` if it gave one), an expired token the connector could not refresh yet. The sender backs off and
  gives the item up after ``[crm] give_up_after``.
* :class:`GiveUp`: never: the CRM refuses the request as such (a 4xx that a retry cannot change, a reference to a
  value no answer gave because the request that would have given it was given up). Kept with the reason, shown in
  ``cti crm status`` and the admin's panel.

A connector is built by its module's ``connector(settings, deps)`` (:data:`ConnectorFactory`) and must not block
the event loop (``httpx.AsyncClient``). Its rate (``rate``/``burst``: a leaky bucket) is applied by the sender.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Protocol

import httpx

from cti.crm import CrmItem, CrmName, Planner
from store.repository import Store


@dataclass(frozen=True, slots=True)
class Sent:
    answer: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Retry:
    reason: str
    #: Seconds the CRM asked to wait (``Retry-After``); None: the sender's back-off.
    after: float | None = None


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


SendResult = Sent | Retry | GiveUp


class RecordingLinks(Protocol):
    """Signed, expiring links to a call's recording that a CRM may fetch without a login
    (``ui_bridge/signed_links.py``): a CRM never gets a path or an unsigned URL."""

    def url(self, pbx: str, linkedid: str, index: int) -> str: ...


@dataclass(frozen=True, slots=True)
class ConnectorDeps:
    """What the daemon hands every connector."""

    store: Callable[[], Store | None]
    http: httpx.AsyncClient
    links: RecordingLinks
    clock: Callable[[], float]
    #: Hang a call up through AMI (``pbx``, ``linkedid``): Zammad's ``reject``. True when the PBX took the action.
    hang_up: Callable[[str, str], Awaitable[bool]] | None = None
    #: The site's time zone (``[pbx] timezone``; None: the machine's): a date a CRM shows its users is written in it
    #: (Bitrix24's ``CALL_START_DATE``).
    tz: tzinfo | None = None


class Connector(Protocol):
    name: CrmName
    planner: Planner
    #: Requests per second the CRM allows, and how many may go at once after a quiet spell (a leaky bucket).
    rate: float
    burst: int

    async def send(self, item: CrmItem, answers: Mapping[str, Any]) -> SendResult:
        """Send ``item`` (its references resolved against ``answers``, the call's earlier answers, and
        ``deps.links``: ``companion/crm/references.py``)."""
        ...


ConnectorFactory = Callable[[Any, ConnectorDeps], Connector]
