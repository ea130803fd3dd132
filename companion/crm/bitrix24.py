"""Bitrix24's connector (issue 16, ``docs/crm.md`` "Bitrix24"): the planner's requests as REST calls.

Each outbox item (``cti/crm/bitrix24.py`` plans them) is one ``POST {portal}/rest/<method>.json`` with JSON
parameters and ``auth`` = the local application's access token (``bitrix24_auth.py``): the telephony methods
refuse an incoming webhook (``WRONG_AUTH_TYPE``). The methods that take one (``user.get``,
``telephony.externalCall.searchCrmEntities``) go through ``[crm.bitrix24] webhook_url`` when it is set.

What an answer means (Bitrix24 errors are ``{"error", "error_description"}``):

* ``result``: :class:`Sent`; ``register``'s ``CALL_ID`` is kept as the call's ``call_id`` for the later requests.
* ``expired_token``/``invalid_token``/``NO_AUTH_FOUND`` (401): the token is refreshed and the request sent again at
  once; refused again, :class:`Retry` (the application may be reinstalled meanwhile).
* ``QUERY_LIMIT_EXCEEDED`` (503), any 5xx, 429, no answer: :class:`Retry`.
* ``finish`` of a call Bitrix24 does not know as open, on a repeat (the answer to the first try was lost): the call
  is finished already, :class:`Sent`. A repeated ``register`` is harmless by itself: the portal answers the same
  ``CALL_ID`` for the same parameters.
* ``WRONG_AUTH_TYPE`` and any other 4xx: :class:`GiveUp`, with the portal's words.

``show``/``hide`` name users by id only: an agent the planner named by inner phone (no ``users`` entry) is looked
up with ``user.get`` (``UF_PHONE_INNER``), remembered while the daemon runs. The same lookup the other way
(:meth:`Bitrix24Connector.extension_of`) maps the user of a click-to-call to an extension.

Two requests are the connector's own (``route_to_responsible``): ``showResponsible`` asks
``telephony.externalCall.searchCrmEntities`` for the caller and shows the card to the first entity's
``ASSIGNED_BY_ID`` (kept as the call's ``responsible``; an unknown number: nothing to show, sent);
``hideResponsible`` hides it, unless the agent who answered is that user.

``attachRecord``: the portal fetches the recording's link while it answers, and the link serves calls of the
journal. The call's row was staged before its end reached the push (``docs/pipeline.md``: persist, then publish),
so the store is flushed first; a call still not there (its row staged on another node) is tried again shortly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from cti.crm import CrmItem, CrmName
from cti.crm.bitrix24 import Bitrix24Planner
from ui_bridge.crm_settings import Bitrix24Settings, secret_value
from ui_bridge.signed_links import NoRecordingLink

from .bitrix24_auth import AuthFailed, Bitrix24Tokens, NotInstalled
from .connector import ConnectorDeps, GiveUp, Retry, SendResult, Sent
from .http_post import post, retry_after
from .references import MissingValue, resolve
from .registry import CrmConfigError

log = logging.getLogger(__name__)

#: The planner's request kinds and the REST methods they are.
METHODS: Mapping[str, str] = {
    "register": "telephony.externalcall.register",
    "show": "telephony.externalcall.show",
    "hide": "telephony.externalcall.hide",
    "finish": "telephony.externalcall.finish",
    "attachRecord": "telephony.externalCall.attachRecord",
    "attachTranscription": "telephony.call.attachTranscription",
}
#: The connector's own requests (``route_to_responsible``), and the method they ask the responsible with.
RESPONSIBLE = frozenset({"showResponsible", "hideResponsible"})
SEARCH = "telephony.externalCall.searchCrmEntities"
#: Errors that mean "this token is no good": refresh it and try again.
TOKEN_ERRORS = frozenset({"expired_token", "invalid_token", "NO_AUTH_FOUND"})
#: How a portal says a call is not (or no longer) open: Bitrix24's words vary by version.
NOT_FOUND = ("NOT_FOUND", "CALL_NOT_FOUND", "ERROR_CALL_NOT_FOUND")
#: A ``QUERY_LIMIT_EXCEEDED`` without a ``Retry-After`` is tried again after this long (the bucket drains 2/s).
LIMIT_WAIT = 1.0
#: The most of an answer kept as an error.
ERROR_CHARS = 300


class Refused(Exception):
    """A REST call that did not give a result: what the sender should do about it."""

    def __init__(self, outcome: Retry | GiveUp, error: str | None = None) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome
        self.error = error


class Bitrix24Connector:
    """``[crm.bitrix24]`` (module docstring)."""

    name: CrmName = "bitrix24"

    def __init__(self, settings: Bitrix24Settings, deps: ConnectorDeps) -> None:
        if settings.portal is None:
            raise CrmConfigError("[crm.bitrix24]: portal is not set (https://<name>.bitrix24.ru)")
        if not settings.client_id or not secret_value(settings.client_secret, settings.client_secret_env):
            raise CrmConfigError("[crm.bitrix24]: client_id and client_secret (or client_secret_env) of the local "
                                 "application are needed to refresh its token")
        self.settings = settings
        self.deps = deps
        self.portal = str(settings.portal).rstrip("/")
        self.webhook = str(settings.webhook_url).rstrip("/") if settings.webhook_url is not None else None
        self.tokens = Bitrix24Tokens(settings, deps)
        self.planner = Bitrix24Planner(users=dict(settings.users), crm_create=settings.crm_create,
                                       line=settings.line, tz=deps.tz,
                                       route_to_responsible=settings.route_to_responsible)
        self.rate = settings.rate
        self.burst = settings.burst
        self._user_of_inner: dict[str, int] = {}

    # -- the outbox --------------------------------------------------------------------------------------------

    async def send(self, item: CrmItem, answers: Mapping[str, Any]) -> SendResult:
        method = METHODS.get(item.kind)
        if method is None and item.kind not in RESPONSIBLE:
            return GiveUp(f"not a Bitrix24 request: {item.kind!r}")
        try:
            params = resolve(item.payload, answers, self.deps.links)
        except MissingValue as exc:  # Bitrix24's one such value is register's CALL_ID
            return GiveUp(f"the call's register was given up: Bitrix24 has no CALL_ID for it ({exc})")
        except NoRecordingLink as exc:
            return GiveUp(f"no link to the recording can be made ([crm] public_url): {exc}")
        if item.kind == "attachRecord" and not await self._in_journal(item.payload.get("RECORD_URL")):
            return Retry("the call is not in the journal yet: its recording link would not be served", 0.5)
        try:
            if item.kind == "showResponsible":
                return await self._show_responsible(params)
            if item.kind == "hideResponsible":
                return await self._hide_responsible(params, answers)
            assert method is not None
            if item.kind in ("show", "hide"):
                params = await self._by_user_id(params)
                if not params.get("USER_ID"):
                    return GiveUp(f"{item.kind}: no Bitrix24 user has the inner phone "
                                  f"{', '.join(item.payload.get('USER_PHONE_INNER', []))} (map it in "
                                  "[crm.bitrix24] users, or set the user's «Внутренний номер»)")
            result = await self.call(method, params)
        except Refused as exc:
            if (item.kind == "finish" and item.attempts > 1 and exc.error is not None
                    and exc.error.upper() in NOT_FOUND):
                return Sent()  # the first try went through and its answer was lost: the call is finished
            return exc.outcome
        if item.kind == "register":
            call_id = result.get("CALL_ID") if isinstance(result, dict) else None
            if not call_id:
                return GiveUp(f"register answered no CALL_ID: {str(result)[:ERROR_CHARS]}")
            return Sent({"call_id": str(call_id)})
        return Sent()

    async def _in_journal(self, reference: Any) -> bool:
        """Whether the call a ``$recording`` reference names is in the journal, what was staged committed first
        (module docstring)."""
        where = reference.get("$recording") if isinstance(reference, dict) else None
        store = self.deps.store()
        if not isinstance(where, dict) or store is None:
            return True
        await store.flush()
        return await store.get_call(str(where.get("linkedid")), pbx=str(where.get("pbx"))) is not None

    # -- the responsible manager (route_to_responsible) --------------------------------------------------------

    async def _show_responsible(self, params: Mapping[str, Any]) -> SendResult:
        found = await self.call(SEARCH, {"PHONE_NUMBER": params.get("PHONE_NUMBER")}, webhook=True)
        entity = found[0] if isinstance(found, list) and found and isinstance(found[0], dict) else None
        user = str(entity.get("ASSIGNED_BY_ID") or "") if entity is not None else ""
        if not user.isdigit():
            return Sent()  # a number the CRM does not know: nobody is responsible for it
        await self.call(METHODS["show"], {"CALL_ID": params.get("CALL_ID"), "USER_ID": [int(user)]})
        return Sent({"responsible": int(user)})

    async def _hide_responsible(self, params: Mapping[str, Any], answers: Mapping[str, Any]) -> SendResult:
        responsible = answers.get("responsible")
        if not isinstance(responsible, int):
            return Sent()  # nobody was shown the card as responsible
        keep = params.get("KEEP")
        if isinstance(keep, Mapping):
            kept = keep.get("USER_ID")
            if kept is None and keep.get("USER_PHONE_INNER"):
                kept = await self.user_of_inner(str(keep["USER_PHONE_INNER"]))
            if kept is not None and str(kept) == str(responsible):
                return Sent()  # the responsible answered: their card stays
        await self.call(METHODS["hide"], {"CALL_ID": params.get("CALL_ID"), "USER_ID": [responsible]})
        return Sent()

    # -- REST --------------------------------------------------------------------------------------------------

    async def call(self, method: str, params: Mapping[str, Any], *, webhook: bool = False) -> Any:
        """``method`` with ``params``; its ``result``. Through the incoming webhook when ``webhook`` and one is set,
        else as the application (a token refreshed and the call made again once when the portal says it expired).
        Raises :class:`Refused`."""
        if webhook and self.webhook is not None:
            return await self._post(f"{self.webhook}/{method}.json", dict(params))
        try:
            token = await self.tokens.access_token()
            try:
                return await self._post(f"{self.portal}/rest/{method}.json", {**params, "auth": token})
            except Refused as exc:
                if exc.error not in TOKEN_ERRORS:
                    raise
                log.info("Bitrix24 said %s: refreshing the token", exc.error)
                kept = await self.tokens.current()
                if kept.get("access_token") == token:
                    kept = await self.tokens.refresh(kept)
                return await self._post(f"{self.portal}/rest/{method}.json",
                                        {**params, "auth": kept["access_token"]})
        except NotInstalled as exc:
            raise Refused(Retry(str(exc))) from None
        except AuthFailed as exc:
            raise Refused(Retry(str(exc))) from None
        except httpx.HTTPError as exc:  # the OAuth server's network
            raise Refused(Retry(f"cannot refresh the Bitrix24 token ({type(exc).__name__}: {exc})")) from None

    async def _post(self, url: str, params: dict[str, Any]) -> Any:
        where = url.rsplit("/", 1)[-1].removesuffix(".json")
        answer = await post(self.deps.http, url, who=where, seconds=self.settings.timeout, json=params)
        if isinstance(answer, Retry):
            raise Refused(answer)
        try:
            body = answer.json()
        except ValueError:
            body = None
        status = answer.status_code
        if status == 200 and isinstance(body, dict) and "result" in body and "error" not in body:
            return body["result"]
        error = str(body.get("error")) if isinstance(body, dict) and body.get("error") else None
        description = str(body.get("error_description") or "") if isinstance(body, dict) else ""
        said = f"{where}: HTTP {status}" + (f" {error}" if error else "") + (
            f": {description}" if description else
            (f": {' '.join(answer.text[:ERROR_CHARS].split())}" if error is None and answer.text else ""))
        if error == "QUERY_LIMIT_EXCEEDED":
            wait = retry_after(answer.headers.get("Retry-After"), self.deps.clock())
            raise Refused(Retry(said, wait if wait is not None else LIMIT_WAIT), error)
        if error in TOKEN_ERRORS or status in (408, 429) or status >= 500 or (status == 200 and error is None):
            raise Refused(Retry(said), error)
        if error == "WRONG_AUTH_TYPE":
            raise Refused(GiveUp(f"{said} (this method needs the local application, not the webhook)"), error)
        raise Refused(GiveUp(said), error)

    # -- users -------------------------------------------------------------------------------------------------

    async def _by_user_id(self, params: dict[str, Any]) -> dict[str, Any]:
        """``show``/``hide`` with the inner phones turned into user ids (those nobody has left out)."""
        inner = params.pop("USER_PHONE_INNER", None) or []
        ids = list(params.get("USER_ID") or [])
        for phone in inner:
            user = await self.user_of_inner(str(phone))
            if user is not None and user not in ids:
                ids.append(user)
        params["USER_ID"] = ids
        return params

    async def user_of_inner(self, phone: str) -> int | None:
        """The Bitrix24 user whose inner phone is ``phone`` (``user.get``), remembered; None: nobody's."""
        if phone in self._user_of_inner:
            return self._user_of_inner[phone]
        found = await self.call("user.get", {"FILTER": {"UF_PHONE_INNER": phone, "ACTIVE": True}}, webhook=True)
        if not isinstance(found, list) or not found or not str(found[0].get("ID", "")).isdigit():
            return None
        self._user_of_inner[phone] = int(found[0]["ID"])
        return self._user_of_inner[phone]

    async def extension_of(self, user_id: int) -> str | None:
        """The extension of Bitrix24 user ``user_id``: their inner phone (``user.get``); None when they have none
        or the portal cannot be asked (a click-to-call then fails, said in the log and to Bitrix24)."""
        for phone, user in self._user_of_inner.items():
            if user == user_id:
                return phone
        try:
            found = await self.call("user.get", {"FILTER": {"ID": user_id}}, webhook=True)
        except Refused as exc:
            log.warning("Bitrix24: cannot look user %s up: %s", user_id, exc)
            return None
        if not isinstance(found, list) or not found:
            return None
        phone = str(found[0].get("UF_PHONE_INNER") or "").strip()
        if not phone:
            return None
        self._user_of_inner[phone] = user_id
        return phone


def connector(settings: Bitrix24Settings, deps: ConnectorDeps) -> Bitrix24Connector:
    """The registry's factory (``companion.crm.registry``)."""
    return Bitrix24Connector(settings, deps)
