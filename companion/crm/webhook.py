"""The generic webhook's connector (issue 16, ``docs/crm.md`` "Generic webhook"): each call event as a signed POST.

For a system that is none of the CRMs the daemon knows: ``[crm.webhook] url`` gets one JSON ``POST`` per event of a
call (``cti/crm/webhook.py`` plans them), in the call's order, from the durable outbox. The receiver checks:

* ``X-CTI-Signature: sha256=<hex>``: HMAC-SHA256 of the raw body with ``[crm.webhook] secret``: the event is ours;
* ``X-CTI-Delivery: <id>``: the outbox's id of the request; a request whose answer was lost (a timeout, the daemon
  killed between the receiver's 2xx and "sent" being stored) comes again with the same id and body, which the
  receiver skips;
* ``X-CTI-Event``: the event's kind (``dialing``, ``ringing``, ``ring_stopped``, ``answered``, ``ended``,
  ``transcript``).

The answer says what happens next: a 2xx is done; 408, 429, a 5xx or no answer at all (refused, timed out) is tried
again later (a ``Retry-After`` in seconds or as a date is honoured); any other 4xx is the receiver refusing the event
as such, given up with its answer kept (``cti crm status``). A redirect is given up too: the configured URL is
wrong, and following it would send a signed body where nobody said to.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

from cti.crm import CrmItem, CrmName, Planner
from cti.crm.webhook import WebhookPlanner
from ui_bridge.crm_settings import WebhookSettings, secret_value
from ui_bridge.signed_links import NoRecordingLink

from .connector import Connector, ConnectorDeps, GiveUp, Retry, SendResult, Sent
from .http_post import answer_text, post, retry_after
from .references import MissingValue, resolve, without_recordings
from .registry import CrmConfigError

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-CTI-Signature"
DELIVERY_HEADER = "X-CTI-Delivery"
EVENT_HEADER = "X-CTI-Event"


def signature(secret: str, body: bytes) -> str:
    """The ``X-CTI-Signature`` value of ``body``: ``sha256=`` and the hex HMAC-SHA256 with ``secret``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookConnector:
    """``[crm.webhook]``: one signed POST per event (module docstring)."""

    name: CrmName = "webhook"

    def __init__(self, settings: WebhookSettings, deps: ConnectorDeps) -> None:
        if settings.url is None:
            raise CrmConfigError("[crm.webhook]: url is not set")
        secret = secret_value(settings.secret, settings.secret_env)
        if not secret:
            raise CrmConfigError("[crm.webhook]: secret (or secret_env) is not set: the receiver could not tell our "
                                 "events from anyone's")
        self.url = str(settings.url)
        self.secret = secret
        self.timeout = settings.timeout
        self.deps = deps
        self.planner: Planner = WebhookPlanner(settings.users)
        self.rate = settings.rate
        self.burst = settings.burst

    def body(self, item: CrmItem, answers: Mapping[str, Any]) -> bytes:
        """The JSON sent for ``item``: its payload with the links filled in, and its delivery id and place in the
        call's sequence. ``MissingValue`` when a reference cannot be filled."""
        try:
            payload = resolve(item.payload, answers, self.deps.links)
        except NoRecordingLink:
            payload = resolve(without_recordings(item.payload), answers, self.deps.links)
        payload = {"delivery": item.id, "seq": item.seq, **payload}
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    async def send(self, item: CrmItem, answers: Mapping[str, Any]) -> SendResult:
        try:
            body = self.body(item, answers)
        except MissingValue as exc:
            return GiveUp(str(exc))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: signature(self.secret, body),
            DELIVERY_HEADER: str(item.id),
            EVENT_HEADER: str(item.payload.get("event", item.kind)),
            "User-Agent": "cti-companion",
        }
        answer = await post(self.deps.http, self.url, who=self.url, seconds=self.timeout, content=body,
                            headers=headers)
        if isinstance(answer, Retry):
            return answer
        status = answer.status_code
        if 200 <= status < 300:
            return Sent()
        text = answer_text(answer)
        said = f"{self.url}: HTTP {status}" + (f": {text}" if text else "")
        if status in (408, 429) or status >= 500:
            return Retry(said, retry_after(answer.headers.get("Retry-After"), self.deps.clock()))
        if 300 <= status < 400:
            return GiveUp(f"{said} (redirected to {answer.headers.get('Location', '?')}: set [crm.webhook] url to "
                          "the address that answers)")
        return GiveUp(said)


def connector(settings: WebhookSettings, deps: ConnectorDeps) -> Connector:
    """The registry's factory (``companion.crm.registry``)."""
    return WebhookConnector(settings, deps)
