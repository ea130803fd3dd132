"""amoCRM's (and Kommo's) OAuth tokens (issue 16, ``docs/crm.md`` "amoCRM / Kommo"): the integration's pair, kept in
the store (``crm_value("amocrm", "oauth")``) and refreshed by the shared keeper (``oauth_tokens.py``).

amoCRM's OAuth (``POST {base_url}/oauth2/access_token``, a JSON body of ``client_id``, ``client_secret``,
``grant_type``, ``redirect_uri`` and the ``code`` or the ``refresh_token``; the answer ``token_type``,
``expires_in``, ``access_token``, ``refresh_token``):

* The first pair comes from an authorization code: the admin copies it from the integration's «Ключи и доступы»
  (it lasts 20 minutes and works once) and runs ``cti crm amocrm-code CODE`` (:func:`exchange_code`), which keeps the
  pair over whatever was kept: a running daemon takes it at its next request, no restart.
* The access token lasts a day; the refresh token three months, and it rotates: each refresh answers a new pair and
  the old refresh token is dead. The keeper refreshes before the access token runs out and when amoCRM answers 401,
  one node at a time.
* A refresh amoCRM refuses (4xx: the refresh token unused for three months, revoked, the integration removed or its
  secret renewed) is :class:`~companion.crm.oauth_tokens.RefreshRefused` with words saying to run
  ``cti crm amocrm-code`` again: the connector keeps the requests waiting (``Retry``) meanwhile, so nothing is lost
  if that is done within ``[crm] give_up_hours``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx

from store.repository import Store
from ui_bridge.crm_settings import AmoCrmSettings, secret_value

from .oauth_tokens import OAuthTokens, RefreshRefused

#: ``crm_value("amocrm", OAUTH)``: the integration's pair.
OAUTH = "oauth"
TOKEN_PATH = "/oauth2/access_token"
#: The access token's life when amoCRM does not say (``expires_in``): a day.
DEFAULT_EXPIRES_IN = 86400.0
#: The most of an answer kept in an error.
ERROR_CHARS = 300
#: What an authorization code looks like (amoCRM's are some 800 characters of ``[0-9a-f]``): bounded, no spaces.
CODE = re.compile(r"[A-Za-z0-9._~+/=-]{8,4096}")
#: What the admin does when the pair is lost or refused.
SIGN_IN_AGAIN = ("take a new authorization code from the integration («Настройки» → «Интеграции» → the integration "
                 "→ «Ключи и доступы») and run: cti crm amocrm-code CODE")


class CodeRefused(RuntimeError):
    """amoCRM did not exchange the authorization code (its words; a code lasts 20 minutes and works once)."""


def token_url(settings: AmoCrmSettings) -> str:
    if settings.base_url is None:
        raise ValueError("[crm.amocrm] base_url is not set")
    return str(settings.base_url).rstrip("/") + TOKEN_PATH


def token_record(answer: dict[str, Any], now: float) -> dict[str, Any]:
    """The pair as the store keeps it, from amoCRM's answer."""
    return {"access_token": str(answer["access_token"]), "refresh_token": str(answer["refresh_token"]),
            "expires_at": now + float(answer.get("expires_in") or DEFAULT_EXPIRES_IN)}


async def ask(settings: AmoCrmSettings, http: httpx.AsyncClient, grant: dict[str, str]) -> httpx.Response:
    """``POST /oauth2/access_token`` with the integration's credentials and ``grant`` (the code or the refresh
    token). Raises ``httpx.HTTPError`` (no answer)."""
    body = {"client_id": settings.client_id or "",
            "client_secret": secret_value(settings.client_secret, settings.client_secret_env) or "",
            "redirect_uri": settings.redirect_uri or "", **grant}
    return await http.post(token_url(settings), json=body, timeout=settings.timeout, follow_redirects=False,
                           headers={"User-Agent": "cti-companion"})


def refusal(response: httpx.Response) -> str:
    """amoCRM's no in a line: ``HTTP 400: <hint>; <detail>`` (its OAuth errors carry ``hint``/``detail``; the OAuth
    standard's ``error``/``error_description`` are read too)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    parts: list[str] = []
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "hint", "error_description", "detail")
                 if isinstance(body.get(k), (str, int)) and str(body[k])]
    if not parts and response.status_code in (301, 302, 303, 307, 308):
        parts = [f"redirected to {response.headers.get('Location', '?')}: set [crm.amocrm] base_url to the "
                 "account's address"]
    said = "; ".join(parts) or " ".join(response.text[:ERROR_CHARS].split())
    return f"HTTP {response.status_code}" + (f": {said}" if said else "")[:ERROR_CHARS]


def _pair(response: httpx.Response) -> dict[str, Any] | None:
    """The answer when it is a pair; None otherwise."""
    try:
        body = response.json()
    except ValueError:
        return None
    if (response.status_code == 200 and isinstance(body, dict) and isinstance(body.get("access_token"), str)
            and isinstance(body.get("refresh_token"), str) and body["access_token"] and body["refresh_token"]):
        return body
    return None


class AmoCrmTokens(OAuthTokens):
    """The integration's pair as the connector uses it (module docstring)."""

    def __init__(self, settings: AmoCrmSettings, *, store: Callable[[], Store | None], http: httpx.AsyncClient,
                 clock: Callable[[], float]) -> None:
        super().__init__(crm="amocrm", key=OAUTH, label="amoCRM", store=store, clock=clock,
                         claim_seconds=settings.timeout + 5.0,
                         missing=f"amoCRM is not signed in yet (no OAuth tokens): {SIGN_IN_AGAIN}")
        self.settings = settings
        self.http = http

    async def _exchange(self, claim: dict[str, Any]) -> dict[str, Any]:
        response = await ask(self.settings, self.http,
                             {"grant_type": "refresh_token", "refresh_token": str(claim["refresh_token"])})
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise httpx.HTTPStatusError(f"amoCRM's OAuth answered {response.status_code}", request=response.request,
                                        response=response)
        pair = _pair(response)
        if pair is None:
            raise RefreshRefused(f"amoCRM refused to refresh the OAuth token ({refusal(response)}): the refresh "
                                 f"token expired (unused for three months) or was revoked: {SIGN_IN_AGAIN}")
        return token_record(pair, self.clock())

    async def sign_in(self, code: str) -> dict[str, Any]:
        """The first pair for ``code`` (an authorization code), kept over whatever was kept. Raises
        :class:`CodeRefused`, ``httpx.HTTPError`` (amoCRM not reached)."""
        if not CODE.fullmatch(code):
            raise CodeRefused("that is not an authorization code (copy it whole from «Ключи и доступы»)")
        response = await ask(self.settings, self.http, {"grant_type": "authorization_code", "code": code})
        pair = _pair(response)
        if pair is None:
            raise CodeRefused(f"amoCRM did not take the code ({refusal(response)}): a code lasts 20 minutes and "
                              "works once, and client_id, client_secret and redirect_uri must be the integration's "
                              "as «Ключи и доступы» shows them")
        record = token_record(pair, self.clock())
        await self.keep(record)
        return record
