"""Caller cards for screen-pops: the local directory, optionally the CRM, never later than a deadline.

``CardService.card_for`` asks the store (contacts of the number, its last calls, its open missed calls)
and, when ``[directory] crm_url`` is set, the CRM over HTTP at the same time. The CRM gets at most
``crm_timeout`` seconds: a slow or broken CRM costs the pop that long at worst, and the pop then goes
out with the local card. CRM answers are cached per number for ``crm_cache_seconds``.

The CRM answers ``GET crm_url`` (``{number}`` replaced by the normalised number) with JSON: either
``{"contacts": [contact, ...]}`` or one contact object, where a contact is ``{"name", "kind"?, "phones"?,
"email"?, "notes"?, "vehicles"?: [{"make", "model", "year", "plate", "vin"}]}``; 404 means unknown. The answer
is untrusted input: :mod:`ui_bridge.crm` bounds it and cleans every string in it, so that nothing a CRM sends
can cost the agent the pop.

``PopSequencer`` keeps each call's messages in order while its card is looked up: the ``call.ringing``
waits for the card, and whatever happens to that call meanwhile (answered, ended) is queued behind
it. Other calls' messages are never held.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo

import httpx

from cti.config import DirectorySettings
from cti.directory import Card, Contact, build_card
from cti.effects import CallEnded, CallRang, Effect
from cti.phones import is_withheld, normalize_number
from cti.plates import display_plate
from cti.records import CallRecord, iso_time
from store.sqlite import SqliteStore

from . import messages as m
from .crm import MAX_ANSWER_BYTES, CrmAnswerError, crm_contacts, parse_answer
from .hub import Hub
from .notifier import Notifier, Outgoing

log = logging.getLogger(__name__)


class CardService:
    def __init__(self, settings: DirectorySettings, store: Callable[[], SqliteStore | None], region: str,
                 tz: tzinfo | None = None) -> None:
        self.settings = settings
        self._store = store
        self.region = region
        self.tz = tz
        self._crm_cache: dict[str, tuple[float, list[Contact]]] = {}
        self._http: httpx.AsyncClient | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def card_for(self, number: str | None, *, linkedid: str | None = None) -> Card:
        """The card of a caller: local and CRM data, within ``crm_timeout`` for the CRM part."""
        store = self._store()
        if is_withheld(number) or store is None:
            return build_card(number, region=self.region, contacts=(), last_calls=(), open_missed=(),
                              now=time.time(), repeat_days=self.settings.repeat_days)
        key = normalize_number(number, self.region)
        crm = asyncio.ensure_future(self._crm(key)) if self.settings.crm_url and key else None
        # The four queries are sent together: the store's thread runs them back to back, so the pop pays
        # one trip through the (possibly busy) event loop rather than four.
        found, attached, last, missed = await asyncio.gather(
            store.find_contacts(number or "", limit=5) if key and len(key) > 6 else _nothing(),
            store.contact_of_call(linkedid) if linkedid is not None else _none(),
            store.list_calls(number=number, limit=self.settings.last_calls + 1, newest_first=True),
            store.list_missed(status="open", number=number, limit=50),
        )
        contacts: list[Contact] = list(found)
        if attached is not None:  # the agent's choice comes first, even on a shared number
            contacts = [attached, *(c for c in contacts if c.id != attached.id)]
        sources = ["local"]
        if crm is not None:
            try:
                found = await asyncio.wait_for(crm, self.settings.crm_timeout)
            except TimeoutError:
                log.warning("CRM lookup of %s took over %.1f s: the pop goes out with local data",
                            key, self.settings.crm_timeout)
            else:
                if found:
                    contacts += found
                    sources.append("crm")
        return build_card(number, region=self.region, contacts=contacts,
                          last_calls=_trim(last, linkedid, self.settings.last_calls), open_missed=missed,
                          now=time.time(), repeat_days=self.settings.repeat_days, current_linkedid=linkedid,
                          sources=sources)

    async def _crm(self, key: str | None) -> list[Contact]:
        if key is None:
            return []
        cached = self._crm_cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.settings.crm_cache_seconds:
            return cached[1]
        if self._http is None:
            # identity: a compressed answer would be expanded before the size cap could count it
            self._http = httpx.AsyncClient(timeout=self.settings.crm_timeout,
                                           headers={"Accept-Encoding": "identity"})
        url = self.settings.crm_url.replace("{number}", key)
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code == 404:
                    contacts: list[Contact] = []
                else:
                    response.raise_for_status()
                    contacts = crm_contacts(parse_answer(await _bounded_body(response)))
        except (httpx.HTTPError, httpx.InvalidURL, CrmAnswerError) as exc:
            log.warning("CRM lookup of %s failed: %s", key, str(exc) or type(exc).__name__)
            return []
        if self.settings.crm_cache_seconds > 0:
            self._crm_cache[key] = (now, contacts)
        return contacts

    def wire(self, card: Card) -> m.CallerCard:
        return m.CallerCard(
            number=card.number, withheld=card.withheld, name=card.contact.name if card.contact else None,
            status=card.status, contacts=[contact_info(c) for c in card.contacts],
            last_calls=[_summary(r, self.tz) for r in card.last_calls], open_missed=len(card.open_missed),
            sources=list(card.sources),
        )


async def _nothing() -> list[Contact]:
    return []


async def _none() -> Contact | None:
    return None


def contact_info(contact: Contact) -> m.ContactInfo:
    return m.ContactInfo(
        id=contact.id, name=contact.name, kind=contact.kind, phones=list(contact.phones), email=contact.email,
        notes=contact.notes, source="local" if contact.id is not None else "crm",
        vehicles=[m.VehicleInfo(make=v.make, model=v.model, year=v.year,
                                plate=display_plate(v.plate) if v.plate else None, vin=v.vin)
                  for v in contact.vehicles],
    )


def _summary(record: CallRecord, tz: tzinfo | None) -> m.CallSummary:
    return m.CallSummary(linkedid=record.linkedid, started_at=iso_time(record.started_at, tz) or "",
                         direction=record.direction, outcome=record.outcome, answered_by=record.answered_by,
                         missed_reason=record.missed_reason)


def _trim(calls: list[CallRecord], current: str | None, limit: int) -> list[CallRecord]:
    return [c for c in calls if c.linkedid != current][:limit]


async def _bounded_body(response: httpx.Response) -> bytes:
    """The answer's body, at most :data:`~ui_bridge.crm.MAX_ANSWER_BYTES`; CrmAnswerError beyond that."""
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise CrmAnswerError(f"the answer is {declared} bytes (at most {MAX_ANSWER_BYTES} are read)")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise CrmAnswerError(f"the answer is over {MAX_ANSWER_BYTES} bytes")
    return bytes(body)


# -- keeping each call's messages in order while its card is looked up -------------------------------------


@dataclass
class _CallQueue:
    items: deque[Outgoing | asyncio.Future[Outgoing]] = field(default_factory=deque)
    card: asyncio.Future[Card] | None = None


class PopSequencer:
    """Between the notifier and the hub: pops carry their card; nothing of a call overtakes its pop."""

    def __init__(self, notifier: Notifier, hub: Hub, cards: CardService) -> None:
        self.notifier = notifier
        self.hub = hub
        self.cards = cards
        self._calls: dict[str, _CallQueue] = {}
        #: The card of each call in progress, for clients that connect mid-call (``state``).
        self.known: dict[str, m.CallerCard] = notifier.known_cards
        self._tasks: set[asyncio.Task[None]] = set()

    def on_effect(self, effect: Effect) -> None:
        outgoing = self.notifier.for_effect(effect)
        linkedid = getattr(effect, "linkedid", None) or (
            effect.record.linkedid if isinstance(effect, CallEnded) else None)
        if isinstance(effect, CallEnded):
            self.known.pop(effect.record.linkedid, None)
        if outgoing is None:
            return
        if isinstance(effect, CallRang):
            queue = self._calls.setdefault(effect.linkedid, _CallQueue())
            if queue.card is None:
                queue.card = asyncio.ensure_future(self.cards.card_for(effect.caller, linkedid=effect.linkedid))
            pop: asyncio.Future[Outgoing] = asyncio.get_running_loop().create_future()
            queue.items.append(pop)
            task = asyncio.ensure_future(self._complete(effect.linkedid, queue, queue.card, pop, outgoing))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        waiting = self._calls.get(linkedid) if linkedid else None
        if waiting is None:
            self.hub.publish(outgoing.message, outgoing.extensions)
        else:
            waiting.items.append(outgoing)

    async def _complete(self, linkedid: str, queue: _CallQueue, card: asyncio.Future[Card],
                        pop: asyncio.Future[Outgoing], outgoing: Outgoing) -> None:
        try:
            wire = self.cards.wire(await card)
        except Exception:  # the store failed: the pop still goes out, with what the PBX said
            log.exception("card lookup for call %s failed", linkedid)
            wire = self.notifier.card(getattr(outgoing.message, "caller", None))
        self.known[linkedid] = wire
        message = outgoing.message.model_copy(update={"card": wire})
        pop.set_result(Outgoing(message, outgoing.extensions))
        self._flush(linkedid, queue)

    def _flush(self, linkedid: str, queue: _CallQueue) -> None:
        while queue.items:
            head = queue.items[0]
            if isinstance(head, asyncio.Future):
                if not head.done():
                    return
                head = head.result()
            queue.items.popleft()
            self.hub.publish(head.message, head.extensions)
        if self._calls.get(linkedid) is queue:
            del self._calls[linkedid]
