"""Zammad's connector (issue 16, ``docs/crm.md`` "Zammad"): the Generic CTI events, and Zammad's ``reject``.

Each outbox item is one event (``newCall``, ``answer``, ``hangup``: ``cti/crm/zammad.py`` plans them) sent as JSON to
the endpoint Zammad's «Generic CTI» integration shows, ``https://zammad.example.com/api/v1/cti/<token>`` (``[crm.zammad]
url``, or the name of an environment variable holding it: the token in it is the only authentication).

What Zammad answers, by its meaning (its controller and ``Cti::Log.process``):

* 200 ``{}``: done. 200 ``{"action": "reject", "reason": "busy"}`` to an inbound ``newCall``: the caller is on
  Zammad's blocklist. With ``[crm.zammad] reject_hangs_up`` the call is hung up through AMI (``deps.hang_up``), unless
  it was answered meanwhile (the ``newCall`` came late: a conversation is never cut); the item is ``Sent`` with
  ``{"rejected": true}``, and the call's ``hangup`` still follows at its end, with the cause of what happened. 200
  ``{"action": "dial", ...}`` (Zammad's outbound caller ID) is noted and nothing else: the call is dialled already.
* 500 ``{"error": "Object already exists!"}`` to a ``newCall``: a ``newCall`` of this ``callId`` was logged before,
  so this is the repeat of one whose answer was lost (a timeout, the daemon killed before "sent" was stored): ``Sent``.
* 401 (the token refused), 404 (no such endpoint), 422 ``Feature is disabled`` / ``not configured``: the
  configuration is wrong, which the admin puts right (a restart with the right URL, the integration switched on):
  retried, with the reason in words, until ``[crm] give_up_hours``; ``cti crm status`` shows it meanwhile.
* 422 ``Invalid direction!`` and any other 4xx: refused as such: given up.
* Any other 5xx (Zammad hides its errors behind "Error ID …", also an ``answer`` or ``hangup`` of a ``callId`` it does
  not know), no answer, a timeout: retried.

An agent's real name (``user``) is the panel user's display name for the extension on that PBX, read from the store
(cached a minute), else the ``[crm.zammad] users`` entry, else the extension. The URL carries the token: it is never
written in an error or a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from cti.crm import CrmItem, CrmName
from cti.crm.zammad import NEW_CALL, ZammadPlanner
from ui_bridge.crm_settings import ZammadSettings, secret_value
from ui_bridge.signed_links import NoRecordingLink

from .connector import ConnectorDeps, GiveUp, Retry, SendResult, Sent
from .http_post import post, retry_after
from .references import MissingValue, resolve, without_recordings
from .registry import CrmConfigError

log = logging.getLogger(__name__)

#: Seconds the panel users' names are kept before they are read again.
NAMES_SECONDS = 60.0
#: The most of an answer's body kept as the request's error.
ERROR_BODY_CHARS = 300
#: Zammad's words for "this callId was logged already" (its ``humanize_error`` of a duplicate).
ALREADY_EXISTS = "already exists"
#: 422s that are Zammad's configuration, not the request: retried until the admin has put it right.
NOT_CONFIGURED = ("feature is disabled", "feature not configured")


class ZammadConnector:
    """``[crm.zammad]``: the Generic CTI events of each call (module docstring)."""

    name: CrmName = "zammad"

    def __init__(self, settings: ZammadSettings, deps: ConnectorDeps) -> None:
        url = str(settings.url) if settings.url is not None else secret_value(None, settings.url_env)
        if not url:
            raise CrmConfigError("[crm.zammad]: url (or url_env) is not set: the endpoint Zammad's Generic CTI "
                                 "integration shows, https://…/api/v1/cti/<token>")
        self.url = url
        self.timeout = settings.timeout
        self.reject_hangs_up = settings.reject_hangs_up
        self.users = {k: str(v) for k, v in settings.users.items()}
        self.deps = deps
        self.planner = ZammadPlanner(settings.users)
        self.rate = settings.rate
        self.burst = settings.burst
        self._names: dict[tuple[str, str], str] = {}
        self._names_at: float | None = None

    # -- sending --------------------------------------------------------------------------------------------------

    async def send(self, item: CrmItem, answers: Mapping[str, Any]) -> SendResult:
        try:
            payload = await self.payload(item, answers)
        except MissingValue as exc:
            return GiveUp(str(exc))
        response = await post(self.deps.http, self.url, who="Zammad", seconds=self.timeout, hide=self._hide,
                              json=payload, headers={"User-Agent": "cti-companion"})
        if isinstance(response, Retry):
            return response
        return await self._outcome(item, payload, response)

    async def payload(self, item: CrmItem, answers: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON sent for ``item``: agents named, references filled in (``MissingValue`` when one cannot be)."""
        payload = await self._named(item.payload)
        try:
            resolved: dict[str, Any] = resolve(payload, answers, self.deps.links)
        except NoRecordingLink:
            resolved = resolve(without_recordings(payload), answers, self.deps.links)
        return resolved

    async def _outcome(self, item: CrmItem, payload: dict[str, Any], response: httpx.Response) -> SendResult:
        status = response.status_code
        body = _json(response)
        error = str(body.get("error", "")) if isinstance(body, dict) else ""
        if 200 <= status < 300:
            if item.kind == NEW_CALL and isinstance(body, dict):
                if body.get("action") == "reject":
                    return Sent(await self._rejected(item, payload))
                if body.get("action") == "dial":
                    return Sent({"dial": {k: v for k, v in body.items() if k != "action"}})
            return Sent()
        text = error or " ".join(response.text[:ERROR_BODY_CHARS].split())
        said = f"Zammad: HTTP {status}" + (f": {self._hide(text)}" if text else "")
        if item.kind == NEW_CALL and status >= 500 and ALREADY_EXISTS in error.lower():
            return Sent({"repeated": True})  # the newCall of a try whose answer was lost: Zammad has the call
        if status == 401:
            return Retry(f"{said}: Zammad refused the token of [crm.zammad] url; set the endpoint its Generic CTI "
                         "integration shows")
        if status == 404:
            return Retry(f"{said}: no Generic CTI endpoint at [crm.zammad] url; set the one Zammad shows")
        if status == 422 and any(words in error.lower() for words in NOT_CONFIGURED):
            return Retry(f"{said}: switch on and configure Zammad's Generic CTI integration")
        if status in (408, 429) or status >= 500:
            return Retry(said, retry_after(response.headers.get("Retry-After"), self.deps.clock()))
        return GiveUp(said)

    async def _rejected(self, item: CrmItem, payload: dict[str, Any]) -> dict[str, Any]:
        """Zammad rejected an inbound call (its blocklist): hang it up if so configured and it is still unanswered.
        The item's answer says what was done."""
        answer: dict[str, Any] = {"rejected": True}
        if not self.reject_hangs_up or payload.get("direction") != "in" or self.deps.hang_up is None:
            return answer
        pbx, _, linkedid = item.call.partition(":")
        if await self._answered(item):
            log.info("CRM zammad: Zammad rejected call %s, answered meanwhile: not hung up", item.call)
            answer["hung_up"] = False
            return answer
        try:
            hung = await self.deps.hang_up(pbx, linkedid)
        except Exception as exc:  # the PBX away: the call goes on, the push too
            log.warning("CRM zammad: Zammad rejected call %s; hanging it up failed: %s", item.call, exc)
            hung = False
        log.info("CRM zammad: Zammad rejected call %s (its blocklist): %s", item.call,
                 "hung up" if hung else "the PBX did not hang it up (ended already?)")
        answer["hung_up"] = bool(hung)
        return answer

    async def _answered(self, item: CrmItem) -> bool:
        """The call was answered (or ended) by now, as far as the push has planned it."""
        store = self.deps.store()
        if store is None:
            return False
        state = await store.crm_call_state(self.name, item.call) or {}
        return bool(state.get("answered"))

    # -- agents' names --------------------------------------------------------------------------------------------

    async def _named(self, value: Any) -> Any:
        """``value`` with each ``{"$agent": {"pbx", "extension"}}`` replaced by that agent's real name."""
        if isinstance(value, dict):
            if set(value) == {"$agent"}:
                where = value["$agent"]
                return await self.agent_name(str(where.get("pbx", "")), str(where.get("extension", "")))
            return {k: await self._named(v) for k, v in value.items()}
        if isinstance(value, list):
            return [await self._named(v) for v in value]
        return value

    async def agent_name(self, pbx: str, extension: str) -> str:
        """The panel user's display name for ``extension`` on ``pbx``; else ``[crm.zammad] users``; else the
        extension."""
        now = self.deps.clock()
        if self._names_at is None or now - self._names_at >= NAMES_SECONDS or now < self._names_at:
            await self._read_names(now)
        return self._names.get((pbx, extension)) or self._names.get(("", extension)) \
            or self.users.get(extension) or extension

    async def _read_names(self, now: float) -> None:
        store = self.deps.store()
        if store is None:
            return
        try:
            users = await store.list_users()
        except Exception as exc:  # the store away: the extension (or the mapping) names the agent this time
            log.debug("CRM zammad: the panel users cannot be read (%s)", exc)
            return
        names: dict[tuple[str, str], str] = {}
        for user in users:
            if not user.extension or not user.display_name:
                continue
            for pbx in user.pbxs or ("",):  # no PBXs: every PBX's extension
                names.setdefault((pbx, user.extension), user.display_name)
        self._names = names
        self._names_at = now

    def _hide(self, text: str) -> str:
        """``text`` with the endpoint and its token taken out."""
        text = text.replace(self.url, "[crm.zammad] url")
        token = self.url.rstrip("/").rsplit("/", 1)[-1]
        return text.replace(token, "<token>") if len(token) >= 8 else text


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def connector(settings: ZammadSettings, deps: ConnectorDeps) -> ZammadConnector:
    """The registry's factory (``companion.crm.registry``)."""
    return ZammadConnector(settings, deps)
