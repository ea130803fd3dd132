"""The Bitrix24 local application's OAuth tokens (issue 16): kept in the store, refreshed before they run out.

Bitrix24 hands the tokens over at the install (``ui_bridge/routes/crm_bitrix24.py`` keeps them:
``crm_value("bitrix24", "oauth")``). The access token lasts an hour; the refresh token is good for one refresh
only: each refresh (``grant_type=refresh_token`` at ``[crm.bitrix24] oauth_url``) answers a new pair and the old
refresh token is dead. Keeping the pair, refreshing it :data:`REFRESH_BEFORE` seconds before it runs out, and the
claim that lets one node only spend a refresh token (the other waits for its pair) are the shared keeper's
(``oauth_tokens.py``); what is Bitrix24's is here: its token URL and form, and the record the install handler keeps
(:func:`ui_bridge.routes.crm_bitrix24.token_record`). A pair the portal refuses to refresh (the application removed,
its secret changed, or a dead node's pair lost): install the application again (``cti crm status`` says so).

The access token is refreshed at once too when the portal says ``expired_token`` (a clock that drifted, a token
revoked): ``bitrix24.py``.
"""

from __future__ import annotations

from typing import Any

import httpx

from ui_bridge.crm_settings import Bitrix24Settings, secret_value
from ui_bridge.routes.crm_bitrix24 import OAUTH, token_record

from .connector import ConnectorDeps
from .oauth_tokens import CLAIM_POLL, REFRESH_BEFORE, NoTokens, OAuthTokens, RefreshRefused

__all__ = ["CLAIM_POLL", "REFRESH_BEFORE", "AuthFailed", "Bitrix24Tokens", "NotInstalled"]

#: No tokens yet: the application was not installed on the portal (its install handler never called).
NotInstalled = NoTokens
#: The portal refused to refresh (the application removed, its secret changed): install it again.
AuthFailed = RefreshRefused


class Bitrix24Tokens(OAuthTokens):
    """The tokens as the connector uses them: :meth:`access_token` for each request, :meth:`refresh` when the portal
    says the one it got has expired."""

    def __init__(self, settings: Bitrix24Settings, deps: ConnectorDeps) -> None:
        super().__init__(crm="bitrix24", key=OAUTH, label="Bitrix24", store=deps.store, clock=deps.clock,
                         claim_seconds=settings.timeout + 5.0,
                         missing="the Bitrix24 application is not installed yet (no tokens)")
        self.settings = settings
        self.deps = deps

    async def _exchange(self, claim: dict[str, Any]) -> dict[str, Any]:
        answer = await self._ask(str(claim["refresh_token"]))
        if "error" in answer:
            raise AuthFailed(f"Bitrix24 refused to refresh the token: {answer.get('error')}: "
                             f"{answer.get('error_description', '')}")
        return token_record(
            access_token=str(answer["access_token"]), refresh_token=str(answer["refresh_token"]),
            expires_at=self.deps.clock() + float(answer.get("expires_in") or 3600),
            domain=str(claim.get("domain") or ""),
            member_id=str(answer.get("member_id") or claim.get("member_id")),
            application_token=claim.get("application_token"), client_endpoint=claim.get("client_endpoint"))

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
