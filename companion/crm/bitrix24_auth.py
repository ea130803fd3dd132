"""The Bitrix24 local application's OAuth tokens (issue 16): kept in the store, refreshed before they run out.

Bitrix24 hands the tokens over at the install (``ui_bridge/routes/crm_bitrix24.py`` keeps them:
``crm_value("bitrix24", "oauth")``). The access token lasts an hour; the refresh token is good for one refresh
only: each refresh (``grant_type=refresh_token`` at ``[crm.bitrix24] oauth_url``) answers a new pair and the old
refresh token is dead. So a refresh is *claimed* first: the kept pair is rewritten with a ``refreshing`` mark (this
node's name and a deadline) by ``put_crm_value(..., expect=old)``, which only one of two nodes (or two senders)
wins. The winner asks the portal and writes the new pair in place of its claim; the loser waits for that pair and
uses it. So the old refresh token is sent to the portal once, never a second time by the node that lost the race.
A claim whose node died (its deadline passed) is taken over; the new pair a dead node got and never wrote is lost
with it, and the portal then refuses the old token: install the application again (``cti crm status`` says so).

The access token is refreshed :data:`REFRESH_BEFORE` seconds before it runs out, and at once when the portal says
``expired_token`` (a clock that drifted, a token revoked).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import httpx

from store.repository import Store
from ui_bridge.crm_settings import Bitrix24Settings, secret_value
from ui_bridge.routes.crm_bitrix24 import OAUTH, token_record

from .connector import ConnectorDeps

log = logging.getLogger(__name__)

#: Seconds before its end an access token is refreshed.
REFRESH_BEFORE = 300.0
#: How often a node that lost the race to refresh looks for the winner's pair (seconds).
CLAIM_POLL = 0.05


class NotInstalled(RuntimeError):
    """No tokens yet: the application was not installed on the portal (its install handler never called)."""


class AuthFailed(RuntimeError):
    """The portal refused to refresh (the application removed, its secret changed): install it again."""


class Bitrix24Tokens:
    """The tokens as the connector uses them: :meth:`access_token` for each request, :meth:`refresh` when the portal
    says the one it got has expired."""

    def __init__(self, settings: Bitrix24Settings, deps: ConnectorDeps) -> None:
        self.settings = settings
        self.deps = deps
        self._lock = asyncio.Lock()
        #: This node's name in a refresh it claims.
        self.node = secrets.token_hex(8)
        #: Refreshes this node waited for another node's claim instead of asking the portal itself.
        self.waited = 0

    def _store(self) -> Store:
        store = self.deps.store()
        if store is None:
            raise NotInstalled("the store is not open")
        return store

    async def current(self) -> dict[str, Any]:
        kept = await self._store().crm_value("bitrix24", OAUTH)
        if not kept or not kept.get("refresh_token"):
            raise NotInstalled("the Bitrix24 application is not installed yet (no tokens)")
        return dict(kept)

    async def access_token(self) -> str:
        """A token good for the next few minutes: the kept one, or a new one if it runs out within
        :data:`REFRESH_BEFORE`."""
        kept = await self.current()
        if float(kept.get("expires_at") or 0) - REFRESH_BEFORE <= self.deps.clock():
            kept = await self.refresh(kept)
        return str(kept["access_token"])

    async def refresh(self, stale: dict[str, Any]) -> dict[str, Any]:
        """A new pair in place of ``stale`` (the one a request was refused with), or the pair another refresh
        already put there (module docstring). Raises ``httpx.HTTPError`` (the network: try later),
        :class:`AuthFailed`."""
        async with self._lock:
            claim = await self._claim(stale)
            if claim is None:
                return await self.current()  # refreshed meanwhile, here or on another node
            try:
                answer = await self._ask(str(claim["refresh_token"]))
            except Exception:
                await self._release(claim)  # the token was perhaps not used: the next try (any node's) asks again
                raise
            if "error" in answer:
                await self._release(claim)
                raise AuthFailed(f"Bitrix24 refused to refresh the token: {answer.get('error')}: "
                                 f"{answer.get('error_description', '')}")
            fresh = token_record(
                access_token=str(answer["access_token"]), refresh_token=str(answer["refresh_token"]),
                expires_at=self.deps.clock() + float(answer.get("expires_in") or 3600),
                domain=str(claim.get("domain") or ""),
                member_id=str(answer.get("member_id") or claim.get("member_id")),
                application_token=claim.get("application_token"), client_endpoint=claim.get("client_endpoint"))
            if await self._store().put_crm_value("bitrix24", OAUTH, fresh, expect=claim):
                log.info("Bitrix24: access token refreshed")
                return fresh
            return await self.current()  # replaced meanwhile (the application installed again): that pair is live

    async def _claim(self, stale: dict[str, Any]) -> dict[str, Any] | None:
        """The kept pair marked as being refreshed by this node, or None once the pair is no longer ``stale``'s
        (another node refreshed it: waited for while its claim lasts)."""
        loop = asyncio.get_running_loop()
        wait_until = loop.time() + self._claim_seconds()
        counted = False
        while True:
            kept = await self.current()
            if kept.get("refresh_token") != stale.get("refresh_token"):
                return None
            other = kept.get("refreshing")
            now = self.deps.clock()
            if (isinstance(other, dict) and other.get("by") != self.node
                    and float(other.get("until") or 0) > now and loop.time() < wait_until):
                if not counted:
                    counted = True
                    self.waited += 1
                await asyncio.sleep(CLAIM_POLL)  # another node is asking the portal: its pair comes shortly
                continue
            mine = {**kept, "refreshing": {"by": self.node, "until": now + self._claim_seconds()}}
            if await self._store().put_crm_value("bitrix24", OAUTH, mine, expect=kept):
                return mine
            # Changed between the read and the write: read it again.

    async def _release(self, claim: dict[str, Any]) -> None:
        """The claim taken back (the pair as it was) after a refresh that got no new pair."""
        unmarked = {k: v for k, v in claim.items() if k != "refreshing"}
        try:
            await self._store().put_crm_value("bitrix24", OAUTH, unmarked, expect=claim)
        except Exception as exc:  # the claim then runs out by itself
            log.warning("Bitrix24: the token refresh's claim could not be released: %s", exc)

    def _claim_seconds(self) -> float:
        """How long a claim holds: the refresh's own timeout and a margin."""
        return self.settings.timeout + 5.0

    async def _ask(self, refresh_token: str) -> dict[str, Any]:
        secret = secret_value(self.settings.client_secret, self.settings.client_secret_env)
        response = await self.deps.http.get(str(self.settings.oauth_url), params={
            "grant_type": "refresh_token", "client_id": self.settings.client_id or "",
            "client_secret": secret or "", "refresh_token": refresh_token}, timeout=self.settings.timeout)
        if response.status_code >= 500:
            raise httpx.HTTPStatusError(f"the OAuth server answered {response.status_code}",
                                        request=response.request, response=response)
        try:
            answer = response.json()
        except ValueError:
            raise httpx.DecodingError("the OAuth server's answer is not JSON", request=response.request) from None
        if not isinstance(answer, dict) or ("error" not in answer and not answer.get("access_token")):
            return {"error": "invalid_answer", "error_description": "no access_token in the answer"}
        return answer
