"""A CRM's OAuth token pair, kept in the store and refreshed before it runs out (issue 16): one keeper for every CRM
that signs in with OAuth (Bitrix24's local application, ``bitrix24_auth.py``; amoCRM's integration,
``amocrm_auth.py``). What differs per CRM (its token URL, its form, its answers) is the subclass's
:meth:`OAuthTokens._exchange`; what is the same is here.

The pair lives in the store (``crm_value(crm, key)``: ``access_token``, ``refresh_token``, ``expires_at`` and what the
CRM adds), so every node and every restart uses the same one. The refresh token is good for one refresh only: each
refresh answers a new pair and the old refresh token is dead. So a refresh is *claimed* first: the kept pair is
rewritten with a ``refreshing`` mark (this node's name and a deadline) by ``put_crm_value(..., expect=old)``, which
only one of two nodes (or two senders) wins. The winner asks the CRM and writes the new pair in place of its claim
(again compare-and-set: the new pair is kept atomically); the loser waits for that pair and uses it. So the old
refresh token is sent to the CRM once, never a second time by the node that lost the race. A claim whose node died
(its deadline passed) is taken over; the new pair a dead node got and never wrote is lost with it, and the CRM then
refuses the old token: the admin signs the integration in again (Bitrix24: installs the application again; amoCRM:
``cti crm amocrm-code``), which writes a new pair over whatever is kept.

The access token is refreshed :data:`REFRESH_BEFORE` seconds before it runs out, and at once when the CRM refuses it
(a clock that drifted, a token revoked): the connector calls :meth:`OAuthTokens.refresh` with the pair it used.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from cti.crm import CrmName
from store.repository import Store

log = logging.getLogger(__name__)

#: Seconds before its end an access token is refreshed.
REFRESH_BEFORE = 300.0
#: How often a node that lost the race to refresh looks for the winner's pair (seconds).
CLAIM_POLL = 0.05
#: The mark of a pair being refreshed (``{"by": node, "until": deadline}``), never sent anywhere.
REFRESHING = "refreshing"


class NoTokens(RuntimeError):
    """No pair kept yet (the integration never signed in: Bitrix24's install, amoCRM's code), or no store."""


class RefreshRefused(RuntimeError):
    """The CRM refused to refresh (the refresh token expired or revoked, the integration removed, its secret
    changed): only the admin can put it right, by signing the integration in again. The words say how."""


class OAuthTokens(ABC):
    """The pair as a connector uses it: :meth:`access_token` for each request, :meth:`refresh` when the CRM says the
    one it got is no good. ``label`` names the CRM in the log; ``missing`` is the error while no pair is kept."""

    def __init__(self, *, crm: CrmName, key: str, label: str, store: Callable[[], Store | None],
                 clock: Callable[[], float], claim_seconds: float, missing: str) -> None:
        self.crm: CrmName = crm
        self.key = key
        self.label = label
        self._store_of = store
        self.clock = clock
        #: How long a claim holds: the refresh's own timeout and a margin.
        self.claim_seconds = claim_seconds
        self.missing = missing
        self._lock = asyncio.Lock()
        #: This node's name in a refresh it claims.
        self.node = secrets.token_hex(8)
        #: Refreshes this node waited for another node's claim instead of asking the CRM itself.
        self.waited = 0

    @abstractmethod
    async def _exchange(self, claim: dict[str, Any]) -> dict[str, Any]:
        """The new pair (the record to keep, without the mark) for the refresh token of ``claim``. Raises
        :class:`RefreshRefused` (the CRM said no), ``httpx.HTTPError`` (the network, a 5xx: try later)."""

    def _store(self) -> Store:
        store = self._store_of()
        if store is None:
            raise NoTokens("the store is not open")
        return store

    async def current(self) -> dict[str, Any]:
        """The pair kept now (with its mark, if a refresh is under way)."""
        kept = await self._store().crm_value(self.crm, self.key)
        if not kept or not kept.get("refresh_token"):
            raise NoTokens(self.missing)
        return dict(kept)

    async def keep(self, record: dict[str, Any]) -> None:
        """A pair that signs the integration in (an install, a code), kept over whatever was there: a refresh under
        way then finds its claim gone and uses this pair."""
        await self._store().put_crm_value(self.crm, self.key, record)

    async def access_token(self) -> str:
        """A token good for the next few minutes: the kept one, or a new one if it runs out within
        :data:`REFRESH_BEFORE`."""
        kept = await self.current()
        if float(kept.get("expires_at") or 0) - REFRESH_BEFORE <= self.clock():
            kept = await self.refresh(kept)
        return str(kept["access_token"])

    async def refresh(self, stale: dict[str, Any]) -> dict[str, Any]:
        """A new pair in place of ``stale`` (the one a request was refused with), or the pair another refresh
        already put there (module docstring). Raises ``httpx.HTTPError`` (the network: try later),
        :class:`RefreshRefused`."""
        async with self._lock:
            claim = await self._claim(stale)
            if claim is None:
                return await self.current()  # refreshed meanwhile, here or on another node
            try:
                fresh = await self._exchange(claim)
            except Exception:
                await self._release(claim)  # the token was perhaps not used: the next try (any node's) asks again
                raise
            if await self._store().put_crm_value(self.crm, self.key, fresh, expect=claim):
                log.info("%s: access token refreshed", self.label)
                return fresh
            return await self.current()  # replaced meanwhile (signed in again): that pair is live

    async def _claim(self, stale: dict[str, Any]) -> dict[str, Any] | None:
        """The kept pair marked as being refreshed by this node, or None once the pair is no longer ``stale``'s
        (another node refreshed it: waited for while its claim lasts)."""
        loop = asyncio.get_running_loop()
        wait_until = loop.time() + self.claim_seconds
        counted = False
        while True:
            kept = await self.current()
            if kept.get("refresh_token") != stale.get("refresh_token"):
                return None
            other = kept.get(REFRESHING)
            now = self.clock()
            if (isinstance(other, dict) and other.get("by") != self.node
                    and float(other.get("until") or 0) > now and loop.time() < wait_until):
                if not counted:
                    counted = True
                    self.waited += 1
                await asyncio.sleep(CLAIM_POLL)  # another node is asking the CRM: its pair comes shortly
                continue
            mine = {**kept, REFRESHING: {"by": self.node, "until": now + self.claim_seconds}}
            if await self._store().put_crm_value(self.crm, self.key, mine, expect=kept):
                return mine
            # Changed between the read and the write: read it again.

    async def _release(self, claim: dict[str, Any]) -> None:
        """The claim taken back (the pair as it was) after a refresh that got no new pair."""
        unmarked = {k: v for k, v in claim.items() if k != REFRESHING}
        try:
            await self._store().put_crm_value(self.crm, self.key, unmarked, expect=claim)
        except Exception as exc:  # the claim then runs out by itself
            log.warning("%s: the token refresh's claim could not be released: %s", self.label, exc)
