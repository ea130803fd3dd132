"""amoCRM's (and Kommo's) connector (issue 16, ``docs/crm.md`` "amoCRM / Kommo"): ``POST /api/v4/calls``.

Each outbox item is one finished call (``cti/crm/amocrm.py`` plans it), sent as a list of one call to
``{[crm.amocrm] base_url}/api/v4/calls`` with the account's **long-lived token** (``Authorization: Bearer``; amoCRM's
«Настройки» → «Интеграции» → a private integration → «Ключи и доступы» → «Долгосрочный токен»; Kommo the same), or
with the integration's **OAuth** access token (``client_id`` set: ``amocrm_auth.py``, the pair kept in the store,
refreshed before it runs out and when amoCRM answers 401, then the request sent again at once).

What amoCRM answers, by its meaning:

* 200 with the call in ``_embedded.calls`` (matched by ``request_id``): added; its amoCRM id and the card it went to
  are kept as the item's answer. 200 with the call in ``errors``, or 204: amoCRM took the request but added no call
  (it found no contact or company with that phone: its documented behaviour for an unknown number). That is the
  CRM's decision, not a failure to retry: ``Sent`` with ``{"added": false}`` and amoCRM's words, logged.
* 400 (``validation-errors``): the call as such is refused: given up with amoCRM's words (``cti crm status``).
* 401 with OAuth: the access token is refreshed and the request sent again at once; refused again, or the refresh
  refused (the refresh token expired or revoked), the request waits (``Retry``) with "run cti crm amocrm-code".
* 401 with a long-lived token: expired (a long-lived token has an end date) or revoked. Only the admin can renew it,
  so the request is kept and retried (with "the amoCRM token was refused: renew it" as its error, in ``cti crm
  status`` and the admin's panel) until ``[crm] give_up_hours``: a token renewed and the daemon restarted within
  that time loses no call. 402 (the account's paid period is over), 403 (the account or this address blocked) and
  404 / a redirect (``base_url`` wrong) are the same: the admin's to put right, retried meanwhile.
* 429 (more than 7 requests a second): retried after its ``Retry-After`` or the back-off; the sender's leaky bucket
  (``rate`` 7, ``burst`` 7) keeps under the limit to begin with. 5xx, no answer, a timeout: retried.

A repeat: amoCRM documents ``uniq`` as the integration's id of the call and promises no deduplication by it, so a
request sent again after a crash (amoCRM had added the call, the daemon was killed before "sent" was stored) adds
the call twice. The window is the moment between amoCRM's answer and the store's write; the outbox never sends a
request again otherwise (``docs/crm.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from cti.crm import CrmItem, CrmName
from cti.crm.amocrm import AmoCrmPlanner
from ui_bridge.crm_settings import AmoCrmSettings, secret_value
from ui_bridge.signed_links import NoRecordingLink

from .amocrm_auth import SIGN_IN_AGAIN, AmoCrmTokens
from .connector import ConnectorDeps, GiveUp, Retry, SendResult, Sent
from .http_post import post, retry_after
from .oauth_tokens import NoTokens, RefreshRefused
from .references import MissingValue, resolve, without_recordings
from .registry import CrmConfigError

log = logging.getLogger(__name__)

CALLS_PATH = "/api/v4/calls"
#: The ``request_id`` of the one call a request carries (amoCRM matches its answer to it).
REQUEST_ID = "0"
#: The most of an answer's body kept as the request's error.
ERROR_BODY_CHARS = 400
#: Refusals that the account's admin puts right: retried meanwhile, with what to do.
ADMIN_FIXES: Mapping[int, str] = {
    401: "the amoCRM token was refused (expired or revoked): renew it ([crm.amocrm] token or token_env) and restart",
    402: "the amoCRM account's paid period is over",
    403: "amoCRM refused access: the account, or this address for exceeding the rate limit, is blocked",
    404: "no amoCRM API at [crm.amocrm] base_url: set the account's address (https://example.amocrm.ru)",
}


class AmoCrmConnector:
    """``[crm.amocrm]``: one ``POST /api/v4/calls`` per finished call (module docstring)."""

    name: CrmName = "amocrm"

    def __init__(self, settings: AmoCrmSettings, deps: ConnectorDeps) -> None:
        if settings.base_url is None:
            raise CrmConfigError("[crm.amocrm]: base_url is not set (the account: https://example.amocrm.ru)")
        #: OAuth's pair (``client_id`` set), else None and :attr:`token` is the long-lived token.
        self.tokens: AmoCrmTokens | None = None
        token = secret_value(settings.token, settings.token_env)
        if settings.oauth:
            if not secret_value(settings.client_secret, settings.client_secret_env):
                raise CrmConfigError("[crm.amocrm]: client_secret (or client_secret_env) is not set: the "
                                     "integration's «Секретный ключ»")
            self.tokens = AmoCrmTokens(settings, store=deps.store, http=deps.http, clock=deps.clock)
        elif not token:
            raise CrmConfigError("[crm.amocrm]: token (or token_env) is not set: the account's long-lived token "
                                 "(or OAuth: client_id, client_secret, redirect_uri)")
        self.url = str(settings.base_url).rstrip("/") + CALLS_PATH
        self.token = token
        self.timeout = settings.timeout
        self.deps = deps
        self.planner = AmoCrmPlanner(settings.users, settings.source)
        self.rate = settings.rate
        self.burst = settings.burst

    def body(self, item: CrmItem, answers: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The JSON sent for ``item``: a list of its one call, the recording link filled in (left out when no link
        can be made). ``MissingValue`` when a reference cannot be filled."""
        try:
            call = resolve(item.payload, answers, self.deps.links)
        except NoRecordingLink:
            call = resolve(without_recordings(item.payload), answers, self.deps.links)
        call = {k: v for k, v in call.items() if v is not None}
        return [{**call, "request_id": REQUEST_ID}]

    async def send(self, item: CrmItem, answers: Mapping[str, Any]) -> SendResult:
        try:
            body = self.body(item, answers)
        except MissingValue as exc:
            return GiveUp(str(exc))
        if self.tokens is None:
            assert self.token is not None
            return self._outcome(item, await self._post(body, self.token))
        try:
            token = await self.tokens.access_token()
            response = await self._post(body, token)
            if isinstance(response, httpx.Response) and response.status_code == 401:
                log.info("amoCRM refused the access token: refreshing it")
                kept = await self.tokens.current()
                if kept.get("access_token") == token:  # else another sender (or node) refreshed it meanwhile
                    kept = await self.tokens.refresh(kept)
                response = await self._post(body, str(kept["access_token"]))
        except (NoTokens, RefreshRefused) as exc:
            return Retry(str(exc))
        except httpx.HTTPError as exc:  # the OAuth endpoint's network or 5xx
            return Retry(f"cannot refresh the amoCRM token ({type(exc).__name__}: {exc or 'no details'})")
        return self._outcome(item, response)

    async def _post(self, body: list[dict[str, Any]], token: str) -> httpx.Response | Retry:
        """The call sent with ``token``: amoCRM's answer, or what to do when none came."""
        headers = {"Authorization": f"Bearer {token}", "User-Agent": "cti-companion"}
        return await post(self.deps.http, self.url, who="amoCRM", seconds=self.timeout, json=body, headers=headers)

    def _outcome(self, item: CrmItem, response: httpx.Response | Retry) -> SendResult:
        if isinstance(response, Retry):
            return response
        status = response.status_code
        if status == 204:
            return self._not_added(item, "amoCRM answered 204 No Content")
        if 200 <= status < 300:
            return self._accepted(item, _json(response))
        said = f"amoCRM: HTTP {status}" + (f": {text}" if (text := _words(response)) else "")
        if status == 401 and self.tokens is not None:
            return Retry(f"amoCRM refused the OAuth access token just refreshed (the integration disabled or "
                         f"removed?): {SIGN_IN_AGAIN} ({said})")
        if status in ADMIN_FIXES:
            return Retry(f"{ADMIN_FIXES[status]} ({said})")
        if 300 <= status < 400:
            return Retry(f"amoCRM redirected to {response.headers.get('Location', '?')}: set [crm.amocrm] base_url "
                         f"to the account's address ({said})")
        if status in (408, 429) or status >= 500:
            return Retry(said, retry_after(response.headers.get("Retry-After"), self.deps.clock()))
        return GiveUp(said)

    def _accepted(self, item: CrmItem, body: Any) -> SendResult:
        if not isinstance(body, dict):
            return Retry("amoCRM: a 2xx answer that is not JSON")
        embedded = body.get("_embedded")
        calls = embedded.get("calls") if isinstance(embedded, dict) else None
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict) and str(call.get("request_id", REQUEST_ID)) == REQUEST_ID:
                answer = {k: call[k] for k in ("entity_id", "entity_type") if k in call}
                if "id" in call:
                    answer["amocrm_call_id"] = call["id"]
                return Sent(answer)
        errors = body.get("errors")
        said = _compact(errors) if errors else "no call in its answer"
        return self._not_added(item, f"amoCRM added no call: {said}")

    def _not_added(self, item: CrmItem, reason: str) -> SendResult:
        phone = item.payload.get("phone")
        log.info("CRM amocrm: call %s (%s) not added to amoCRM: %s", item.call, phone, reason)
        return Sent({"added": False, "reason": reason[:ERROR_BODY_CHARS]})


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _words(response: httpx.Response) -> str:
    """An error answer in a line: amoCRM's ``detail`` and validation errors, else the start of its body."""
    body = _json(response)
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("title", "detail") if body.get(k)]
        if body.get("validation-errors"):
            parts.append(_compact(body["validation-errors"]))
        if parts:
            return "; ".join(parts)[:ERROR_BODY_CHARS]
    return " ".join(response.text[:ERROR_BODY_CHARS].split())


def _compact(value: Any) -> str:
    """amoCRM's errors (nested lists of ``{"code", "path", "detail"}``) as one short line."""
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if "detail" in v or "code" in v:
                found.append(" ".join(str(v[k]) for k in ("path", "code", "detail") if v.get(k)))
            for inner in v.values():
                if isinstance(inner, (list, dict)):
                    walk(inner)
        elif isinstance(v, list):
            for inner in v:
                walk(inner)

    walk(value)
    return ("; ".join(found) or str(value))[:ERROR_BODY_CHARS]


def connector(settings: AmoCrmSettings, deps: ConnectorDeps) -> AmoCrmConnector:
    """The registry's factory (``companion.crm.registry``)."""
    return AmoCrmConnector(settings, deps)
