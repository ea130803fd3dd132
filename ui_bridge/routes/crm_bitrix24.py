"""What Bitrix24 itself calls on this daemon (issue 16): the local application's install handler and the
click-to-call event ``ONEXTERNALCALLSTART``. Neither has a login: the portal proves itself by the
``application_token`` it handed over at the install.

* ``POST /crm/bitrix24/install``: the portal posts the application's OAuth tokens once it is added (the install
  callback of an application that «Использует только API» (uses the API only): ``auth[access_token]``,
  ``auth[refresh_token]``, ``auth[application_token]``, ``auth[member_id]``...; the ``AUTH_ID``/``REFRESH_ID``/
  ``member_id`` form of an install page is taken too). They are kept in the store (``crm_value("bitrix24",
  "oauth")``: :func:`token_record`), where the connector (``companion/crm/bitrix24_auth.py``) reads and refreshes
  them. With ``[crm.bitrix24] portal`` set, the form must name that portal; once installed, a second install must
  come from the same portal (``member_id``): nobody else can swap the tokens.
* ``POST /crm/bitrix24/event``: ``ONEXTERNALCALLSTART``, an agent clicked a number in a CRM card. Checked
  (``auth[application_token]`` as kept at the install, else 403; the fields' shapes, else 400), answered 200 at
  once, handled once per ``CALL_ID`` (the portal delivers an event again when an answer is slow): the Bitrix24 user
  is mapped to an extension (``[crm.bitrix24] users`` reversed, else ``user.get`` by the connector), the push is told
  to expect that call (``CrmCallStarts.expect``: it finishes that ``CALL_ID``, never registers another), and the
  call is originated as the panel's own click-to-call (``Commands.originate_for``). A call that cannot be made is
  logged and finished in Bitrix24 at once, with a failure code, through the outbox.

Without ``[crm.bitrix24]`` both routes answer 404.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cti.crm import CrmRequest
from store.repository import Store

from ..commands import Commands, RequestFailed
from ..crm_calls import CrmCallStarts
from ..crm_settings import Bitrix24Settings

log = logging.getLogger(__name__)

#: ``crm_value("bitrix24", OAUTH)``: the application's tokens (:func:`token_record`).
OAUTH = "oauth"
#: ``crm_value("bitrix24", EVENT_PREFIX + CALL_ID)``: a click-to-call event already taken.
EVENT_PREFIX = "event:"
#: The most form fields read from one request (a real event has about fifteen).
MAX_FIELDS = 100
#: What a ``CALL_ID`` looks like (``externalCall.<hex>.<epoch>``): letters, digits and ``._-``, bounded.
_CALL_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_USER_ID = re.compile(r"[0-9]{1,10}")
#: A number as a CRM card shows it: digits with ``+ ( ) - .`` and spaces, at least three digits, no letters.
_NUMBER = re.compile(r"\+?[0-9()\-. ]{3,40}")
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,256}")
#: ``finish``'s ``STATUS_CODE`` for a click-to-call that could not be started (Bitrix24: «направление недоступно»).
NOT_STARTED = "503"


def token_record(*, access_token: str, refresh_token: str, expires_at: float, domain: str, member_id: str,
                 application_token: str | None, client_endpoint: str | None = None) -> dict[str, Any]:
    """The application's tokens as the store keeps them (the connector's ``bitrix24_auth`` reads the same)."""
    return {"access_token": access_token, "refresh_token": refresh_token, "expires_at": expires_at,
            "domain": domain, "member_id": member_id, "application_token": application_token,
            "client_endpoint": client_endpoint}


class Bitrix24Users(Protocol):
    """Who a Bitrix24 user is on the PBX: their extension (the connector asks ``user.get`` for the inner phone)."""

    async def extension_of(self, user_id: int) -> str | None: ...


class BadForm(ValueError):
    """A request whose fields are missing or malformed: 400 with the reason."""


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadForm("the body is not UTF-8") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise BadForm(f"more than {MAX_FIELDS} fields") from None
    return dict(pairs)


def _field(form: Mapping[str, str], name: str, pattern: re.Pattern[str]) -> str:
    value = form.get(name)
    if value is None or value == "":
        raise BadForm(f"{name} is missing")
    if not pattern.fullmatch(value):
        raise BadForm(f"{name} is not valid")
    return value


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": "bad_request" if status == 400 else "refused", "message": message}},
                        status_code=status)


@dataclass
class Bitrix24Routes:
    """The two handlers: ``settings`` is ``[crm.bitrix24]`` (None: not configured), ``users`` the connector (set by the
    daemon)."""

    store: Callable[[], Store]
    commands: Commands
    settings: Bitrix24Settings | None = None
    #: The push's click-to-call expectations (the panel's ``crm_calls``, set by the daemon).
    starts: Callable[[], CrmCallStarts | None] = lambda: None
    users: Bitrix24Users | None = None
    clock: Callable[[], float] = time.time
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # -- the install -------------------------------------------------------------------------------------------

    async def install(self, request: Request) -> Response:
        if self.settings is None:
            return _error(404, "Bitrix24 is not configured here ([crm.bitrix24])")
        try:
            form = _form(await request.body())
            record = self._tokens(form)
        except BadForm as exc:
            return _error(400, str(exc))
        expected = self.settings.portal.host if self.settings.portal is not None else None
        if expected is not None and record["domain"].split(":")[0].lower() != expected.lower():
            log.warning("Bitrix24 install from %r refused: [crm.bitrix24] portal is %s", record["domain"], expected)
            return _error(403, "this daemon is set up for another portal")
        store = self.store()
        kept = await store.crm_value("bitrix24", OAUTH)
        if kept is not None and kept.get("member_id") not in (None, record["member_id"]):
            log.warning("Bitrix24 install from another portal (member_id %s) refused", record["member_id"])
            return _error(403, "the application is installed from another portal")
        if record["application_token"] is None and kept is not None:
            record["application_token"] = kept.get("application_token")
        await store.put_crm_value("bitrix24", OAUTH, record)
        log.info("Bitrix24 application installed on %s", record["domain"])
        return JSONResponse({"status": "success"})

    def _tokens(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The tokens of either install form: the install callback's ``auth[...]`` or an install page's
        ``AUTH_ID``/``REFRESH_ID``."""
        now = self.clock()
        if "auth[access_token]" in form:
            expires = form.get("auth[expires_in]") or "3600"
            if not expires.isdigit():
                raise BadForm("auth[expires_in] is not a number")
            application = form.get("auth[application_token]")
            endpoint = form.get("auth[client_endpoint]")
            return token_record(
                access_token=_field(form, "auth[access_token]", _TOKEN),
                refresh_token=_field(form, "auth[refresh_token]", _TOKEN),
                expires_at=now + min(int(expires), 24 * 3600),
                domain=_field(form, "auth[domain]", _DOMAIN), member_id=_field(form, "auth[member_id]", _TOKEN),
                application_token=_field(form, "auth[application_token]", _TOKEN) if application else None,
                client_endpoint=endpoint if endpoint and _ENDPOINT.fullmatch(endpoint) else None)
        if "AUTH_ID" in form:
            expires = form.get("AUTH_EXPIRES") or "3600"
            if not expires.isdigit():
                raise BadForm("AUTH_EXPIRES is not a number")
            return token_record(
                access_token=_field(form, "AUTH_ID", _TOKEN), refresh_token=_field(form, "REFRESH_ID", _TOKEN),
                expires_at=now + min(int(expires), 24 * 3600), domain=_field(form, "DOMAIN", _DOMAIN),
                member_id=_field(form, "member_id", _TOKEN), application_token=None)
        raise BadForm("no tokens: expected auth[access_token] or AUTH_ID")

    # -- click-to-call -----------------------------------------------------------------------------------------

    async def event(self, request: Request) -> Response:
        if self.settings is None:
            return _error(404, "Bitrix24 is not configured here ([crm.bitrix24])")
        try:
            form = _form(await request.body())
        except BadForm as exc:
            return _error(400, str(exc))
        store = self.store()
        kept = await store.crm_value("bitrix24", OAUTH)
        expected = kept.get("application_token") if kept is not None else None
        given = form.get("auth[application_token]", "")
        if not expected or not hmac.compare_digest(str(expected).encode(), given.encode()):
            log.warning("Bitrix24 event refused: its application_token is not the installed application's")
            return _error(403, "unknown application_token")
        try:
            if form.get("event", "").upper() != "ONEXTERNALCALLSTART":
                raise BadForm("event: only ONEXTERNALCALLSTART is handled here")
            call_id = _field(form, "data[CALL_ID]", _CALL_ID)
            user_id = int(_field(form, "data[USER_ID]", _USER_ID))
            number = _field(form, "data[PHONE_NUMBER]", _NUMBER)
        except BadForm as exc:
            return _error(400, str(exc))
        if not await store.put_crm_value("bitrix24", EVENT_PREFIX + call_id, {"at": self.clock()}, only_new=True):
            log.info("Bitrix24 click-to-call %s delivered again: already handled", call_id)
            return JSONResponse({"status": "duplicate"})
        task = asyncio.create_task(self._start(call_id, user_id, number), name=f"bitrix24-call-{call_id[:40]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return JSONResponse({"status": "accepted"})

    async def _start(self, call_id: str, user_id: int, number: str) -> None:
        """Originate the call Bitrix24 asked for (after the event's answer); a call that cannot be made is finished
        in Bitrix24 with :data:`NOT_STARTED`."""
        try:
            extension = await self._extension(user_id)
            if extension is None:
                raise LookupError(f"Bitrix24 user {user_id} has no extension (users, or their inner phone)")
            pbx = self._pbx()
            started_by = {"call_id": call_id, "user_id": user_id}
            starts = self.starts()
            if starts is not None:
                starts.expect("bitrix24", pbx, extension, number, started_by)
            try:
                await self.commands.originate_for("bitrix24", extension, number, pbx)
            except Exception as exc:
                if starts is not None and not (isinstance(exc, RequestFailed) and exc.code == "pbx_timeout"):
                    starts.forget("bitrix24", pbx, extension, number)  # refused: that call never comes
                raise
        except Exception as exc:  # any failure: logged, and the CRM's call closed rather than left open
            log.warning("Bitrix24 click-to-call %s for user %s to %s not started: %s", call_id, user_id, number,
                        exc)
            await self._finish_failed(call_id, user_id, str(exc) or type(exc).__name__)

    async def _extension(self, user_id: int) -> str | None:
        assert self.settings is not None
        for extension, user in self.settings.users.items():
            if str(user) == str(user_id):
                return extension
        return await self.users.extension_of(user_id) if self.users is not None else None

    def _pbx(self) -> str:
        """The PBX a click-to-call goes to: ``[crm.bitrix24] pbx``, else the one PBX followed."""
        assert self.settings is not None
        if self.settings.pbx is not None:
            return self.settings.pbx
        followed = list(self.commands.pbxs)
        if len(followed) != 1:
            raise LookupError("several PBXs are followed: say which one in [crm.bitrix24] pbx")
        return followed[0]

    async def _finish_failed(self, call_id: str, user_id: int, reason: str) -> None:
        started_by = {"call_id": call_id, "user_id": user_id}
        try:
            await self.store().queue_crm("bitrix24", f"crm:bitrix24:{call_id}",
                                         {"started_by": started_by, "registered": True, "finished": True},
                                         [CrmRequest("finish", {"CALL_ID": call_id, "USER_ID": user_id,
                                                                "DURATION": 0, "STATUS_CODE": NOT_STARTED,
                                                                "FAILED_REASON": reason[:200],
                                                                "ADD_TO_CHAT": 0})], at=self.clock())
        except Exception:
            log.exception("Bitrix24 click-to-call %s: its failure could not be queued", call_id)


_DOMAIN = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?")
_ENDPOINT = re.compile(r"https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?/rest/")

