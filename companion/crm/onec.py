"""1C's connector (issue 16, ``docs/crm.md`` "1C"): the call events pushed to an HTTP service of the 1C base, and
kept for the base to pull.

**Push** (``[crm.onec] push_url``): each event of a call (``cti/crm/onec.py``) is one JSON ``POST`` to the base's
HTTP service (``https://1c.example.ru/base/hs/cti/events``) with Basic auth (a 1C user with the right to the
service), in the call's order, from the durable outbox. The answer says what happens next:

* 2xx: done;
* 401 or 403: the credentials or the user's rights are wrong; tried again (with a clear error: ``cti crm status``, the
  admin's panel) until the request is given up, so fixing the password in time loses nothing;
* 404: no such service (not published on the web server, a wrong path): tried again, with the same idea;
* 408, 429, 5xx, no answer (refused, timed out): tried again (a ``Retry-After`` honoured);
* any other 4xx (400: the service refused the event as such): given up, with the service's answer kept.

A repeat (the daemon killed between 1C's 2xx and "sent" being stored) carries the same ``delivery`` (also in the
``X-CTI-Delivery`` header): the service skips an id it has taken.

**Pull** (``[crm.onec] pull = true``): :class:`OneCFeed` answers ``GET /api/crm/1c/events`` (the route:
``ui_bridge/routes/crm_onec.py``): the events after a cursor, oldest first, waiting (long-poll) for new ones. The feed
reads the outbox itself (``crm_items_after``), whatever the state of its items, so an event is in the feed from the
moment it is queued. Without ``push_url`` nothing is sent: the sender marks each item sent at once, with no HTTP,
so the outbox shows nothing pending for 1C (and the leaky bucket is opened wide for it).

Recording links in an event are signed when the event is sent or read (``ui_bridge/signed_links.py``): they expire
``[crm] link_hours`` after 1C gets them. With no ``[crm] public_url`` the recordings are listed with ``url: null``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cti.crm import CrmEventKind, CrmItem, CrmName
from cti.crm.onec import OneCPlanner
from ui_bridge.crm_settings import OneCSettings, secret_value
from ui_bridge.signed_links import NoRecordingLink

from .connector import ConnectorDeps, GiveUp, RecordingLinks, Retry, SendResult, Sent
from .http_post import answer_text, post, retry_after
from .references import MissingValue, resolve, without_recordings
from .registry import CrmConfigError
from .webhook import DELIVERY_HEADER, EVENT_HEADER

if TYPE_CHECKING:
    from store.repository import Store

log = logging.getLogger(__name__)

#: The leaky bucket of a 1C that only pulls: nothing is sent, so nothing is to be held back.
PULL_ONLY_RATE = 1000.0
PULL_ONLY_BURST = 1000
#: The feed looks at the outbox this often while it waits, besides being woken by the push: events another node
#: queued (several nodes on one PostgreSQL) are found within this.
FEED_POLL_SECONDS = 1.0
#: The longest a pull may wait for new events, and the most events one answer holds.
MAX_WAIT_SECONDS = 60.0
MAX_EVENTS = 500


def event_json(item: CrmItem, links: RecordingLinks, answers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON 1C gets for ``item`` (pushed or pulled alike): its payload with the recording links signed now (None
    where no link can be made), its outbox id as ``delivery`` and its place in the call's sequence as ``seq``."""
    try:
        payload = resolve(item.payload, answers or {}, links)
    except NoRecordingLink:
        payload = resolve(without_recordings(item.payload), answers or {}, links)
    return {"delivery": item.id, "seq": item.seq, **payload}


class OneCConnector:
    """``[crm.onec]``: push (module docstring); with no ``push_url``, pull only: every item is "sent" at once."""

    name: CrmName = "onec"

    def __init__(self, settings: OneCSettings, deps: ConnectorDeps) -> None:
        if settings.push_url is None and not settings.pull:
            raise CrmConfigError("[crm.onec]: neither push_url (the 1C base's HTTP service) nor pull = true: 1C "
                                 "would get nothing")
        if settings.push_url is not None and not settings.username:
            raise CrmConfigError("[crm.onec]: push_url needs username (and password or password_env): the 1C "
                                 "user the HTTP service runs as")
        self.url = str(settings.push_url) if settings.push_url is not None else None
        self.auth = (settings.username or "", secret_value(settings.password, settings.password_env) or "")
        self.timeout = settings.timeout
        self.deps = deps
        self.planner = OneCPlanner(settings.users)
        self.rate = settings.rate if self.url is not None else PULL_ONLY_RATE
        self.burst = settings.burst if self.url is not None else PULL_ONLY_BURST
        #: The pull feed (``GET /api/crm/1c/events``) when ``pull = true``; the daemon hands it to the panel.
        self.feed = OneCFeed(deps.store, deps.links, clock=deps.clock) if settings.pull else None

    async def send(self, item: CrmItem, answers: Mapping[str, Any]) -> SendResult:
        if self.url is None:
            return Sent()  # pull only: the feed serves it from the outbox
        try:
            body = json.dumps(event_json(item, self.deps.links, answers), ensure_ascii=False,
                              separators=(",", ":")).encode("utf-8")
        except MissingValue as exc:
            return GiveUp(str(exc))
        headers = {"Content-Type": "application/json; charset=utf-8", DELIVERY_HEADER: str(item.id),
                   EVENT_HEADER: str(item.payload.get("event", item.kind)), "User-Agent": "cti-companion"}
        answer = await post(self.deps.http, self.url, who=f"1C ({self.url})", seconds=self.timeout, content=body,
                            headers=headers, auth=self.auth)
        if isinstance(answer, Retry):
            return answer
        status = answer.status_code
        if 200 <= status < 300:
            return Sent()
        text = answer_text(answer)
        said = f"1C ({self.url}): HTTP {status}" + (f": {text}" if text else "")
        if status in (401, 403):
            return Retry(f"{said}: the 1C user or password is wrong, or the user may not use the HTTP service "
                         "([crm.onec] username, password)")
        if status == 404:
            return Retry(f"{said}: no HTTP service at this address (is it published on the 1C web server? "
                         "[crm.onec] push_url)")
        if status in (408, 429) or status >= 500:
            return Retry(said, retry_after(answer.headers.get("Retry-After"), self.deps.clock()))
        if 300 <= status < 400:
            return GiveUp(f"{said} (redirected to {answer.headers.get('Location', '?')}: set [crm.onec] push_url "
                          "to the address that answers)")
        return GiveUp(said)


class OneCFeed:
    """The pull feed: the 1C events after a cursor, waiting for new ones (``ui_bridge.routes.crm_onec.OneCEvents``).

    Woken by :meth:`queued` (the push queued 1C events) and, meanwhile, looking at the outbox every
    :data:`FEED_POLL_SECONDS` (another node's events). A reader that waits holds no lock and no store connection.
    """

    def __init__(self, store: Callable[[], Store | None], links: RecordingLinks, *,
                 clock: Callable[[], float] = time.time, poll_seconds: float = FEED_POLL_SECONDS) -> None:
        self.store = store
        self.links = links
        self.clock = clock
        self.poll_seconds = poll_seconds
        self._changed = asyncio.Event()

    def queued(self) -> None:
        """Events for 1C were queued: the readers waiting look now."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def read(self, after: int, *, limit: int, wait: float) -> tuple[list[dict[str, Any]], int]:
        """Up to ``limit`` events with a ``delivery`` above ``after``, oldest first, and the cursor to ask with next
        (the last one's ``delivery``, else ``after``). None yet: waits up to ``wait`` seconds for one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, wait)
        while True:
            changed = self._changed  # taken before the read: a wake-up during it is not lost
            store = self.store()
            if store is None:
                raise RuntimeError("the store is not open")
            items = await store.crm_items_after("onec", after, limit=limit)
            if items:
                return [event_json(item, self.links) for item in items], items[-1].id
            left = deadline - loop.time()
            if left <= 0:
                return [], after
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(left, self.poll_seconds))


def connector(settings: OneCSettings, deps: ConnectorDeps) -> OneCConnector:
    """The registry's factory (``companion.crm.registry``)."""
    return OneCConnector(settings, deps)


# -- the documented event (docs/crm.md "1C": the JSON Schema is generated from these models) ---------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventCall(_Model):
    """The call the event is about."""

    id: str = Field(description="The call's id: PBX:LINKEDID; every event of one call has the same")
    pbx: str = Field(description="The PBX's id ([pbx] id)")
    linkedid: str = Field(description="Asterisk's linkedid of the call")
    direction: Literal["inbound", "outbound"] | None = Field(description="inbound or outbound")
    caller: str | None = Field(description="The calling number as the journal has it")
    called: str | None = Field(description="The called number (an inbound call: the DID or queue's number)")
    customer: str | None = Field(description="The customer's number: the caller of an inbound call, the called "
                                             "number of an outbound one")
    queue: str | None = Field(description="The queue the call came through")
    did: str | None = Field(description="The number the customer dialled (inbound)")


class EventRecording(_Model):
    index: int = Field(ge=0, description="The recording's place in the call's list")
    url: str | None = Field(description="A signed link that plays it without a login until it expires "
                                        "([crm] link_hours); null without [crm] public_url")


class EventResult(_Model):
    """``ended`` only: how the call ended."""

    outcome: Literal["answered", "missed", "failed"]
    missed_reason: str | None = Field(description="Why nobody answered (docs/missed-calls.md): no_answer, "
                                                  "abandoned, short_abandon, busy, voicemail, unavailable...")
    answered_by: str | None = Field(description="The extension that answered (inbound)")
    answered_user: str | int | None = Field(description="Its 1C user ([crm.onec] users)")
    started_at: str | None
    answered_at: str | None
    ended_at: str | None
    ring_seconds: float
    talk_seconds: float
    hung_up_by: str | None
    transferred_to: str | None
    agents_rung_not_answered: list[str]
    complete: bool = Field(description="false: the daemon was away for part of the call")
    recordings: list[EventRecording]


class EventWord(_Model):
    speaker: str = Field(description="agent, customer or unknown")
    text: str
    start: float = Field(description="Seconds into the recording")
    end: float


class EventTranscript(_Model):
    """``transcript`` only: what was said."""

    engine: str
    model: str
    language: str | None
    duration: float
    text: dict[str, str] = Field(description='{"agent": ..., "customer": ...}: each side\'s words in order')
    words: list[EventWord]


class EventStartedBy(_Model):
    """A call 1C started (``POST /api/crm/1c/calls``)."""

    request_id: str = Field(description="The request's id (the one 1C gave, else the one the answer named)")


class OneCEvent(_Model):
    """One event of a call, as 1C gets it (pushed or pulled)."""

    delivery: int = Field(ge=1, description="The event's id: increasing, unique; a repeat has the same. The pull "
                                            "feed's cursor")
    seq: int = Field(ge=1, description="Its place in its call's events (1, 2, ...)")
    event: CrmEventKind = Field(description="dialing (an outbound call dials the customer: the agent's call, before "
                                            "the answer), ringing, ring_stopped, answered, ended, transcript")
    call: EventCall
    at: str | None = Field(description="When it happened: ISO 8601 in UTC (2026-11-24T06:00:01.250Z)")
    agent: str | None = Field(description="The extension: whose phone rang or stopped ringing, who answered; "
                                          "an outbound call's (dialing too): the extension that called out")
    user: str | int | None = Field(description="The agent's 1C user ([crm.onec] users), else null")
    started_by: EventStartedBy | None = Field(default=None, description="Present on every event of a call 1C "
                                                                        "started")
    result: EventResult | None = Field(default=None, description="ended: how the call ended")
    transcript: EventTranscript | None = Field(default=None, description="transcript: what was said")


def event_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`OneCEvent` (``docs/crm.md`` holds it; a test keeps the two the same)."""
    return OneCEvent.model_json_schema()
