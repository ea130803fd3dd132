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
waits for the card, and whatever happens to that call meanwhile (answered, transferred) is queued behind
it. Other calls' messages are never held (a call is its (PBX, linkedid): two PBXs can hand out the same
linkedid). The lookups are bounded (:data:`MAX_CARD_LOOKUPS`) and a call's lookup is dropped when the call
ends, so a store or CRM that is behind costs pops their card, never memory.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import tzinfo

import httpx

from cti.directory import Card, Contact, build_card
from cti.effects import CallContext, CallEnded, CallRang, Effect
from cti.phones import is_withheld, normalize_number
from cti.records import DEFAULT_PBX, CallRecord
from store.repository import Store
from ui_bridge.settings import DirectorySettings

from . import messages as m
from .crm import MAX_ANSWER_BYTES, CrmAnswerError, crm_contacts, parse_answer
from .fanout import Fanout
from .hub import Hub, Message
from .mirror_sync import update_for
from .notifier import Notifier
from .outgoing import Messages, Outgoing

log = logging.getLogger(__name__)


class CardService:
    def __init__(self, settings: DirectorySettings, store: Callable[[], Store | None], region: str,
                 tz: tzinfo | None = None) -> None:
        self.settings = settings
        self._store = store
        self.region = region
        self.tz = tz
        # One for every card: it keeps its time and number memos, and shows numbers in the site's style.
        self._messages = Messages(tz, region, number_style=settings.number_style)
        self._crm_cache: dict[str, tuple[float, list[Contact]]] = {}
        self._http: httpx.AsyncClient | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def card_for(self, number: str | None, *, linkedid: str | None = None, pbx: str | None = None) -> Card:
        """The card of a caller: local and CRM data, within ``crm_timeout`` for the CRM part.

        ``pbx``: the PBX of the call ``linkedid`` (its agents see that PBX's last calls and missed calls of
        the number, never another PBX's); None: every PBX's."""
        store = self._store()
        if is_withheld(number) or store is None:
            return build_card(number, region=self.region, contacts=(), last_calls=(), open_missed=(),
                              now=time.time(), repeat_days=self.settings.repeat_days)
        key = normalize_number(number, self.region)
        crm = asyncio.ensure_future(self._crm(key)) if self.settings.crm_url and key else None
        try:
            # One call to the store's lookup lane (no listing can hold it up), every part indexed and LIMITed:
            # the same cost for a caller with 10,000 past calls as for a new one. One more last call than the
            # card shows, in case the newest is this very call.
            facts = await store.caller_facts(number or "", linkedid=linkedid, last_calls=self.settings.last_calls + 1,
                                             contacts=5 if key and len(key) > 6 else 0, open_missed=50,
                                             pbx=pbx or DEFAULT_PBX, pbxs=_only(pbx))
        except BaseException:  # cancelled (the call ended) or the store failed: the CRM request goes too
            if crm is not None:
                crm.cancel()
            raise
        contacts: list[Contact] = list(facts.contacts)
        attached = facts.attached
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
                          last_calls=_trim(list(facts.last_calls), linkedid, pbx, self.settings.last_calls),
                          open_missed=facts.open_missed,
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
        return self._messages.caller_card(card)


def _trim(calls: list[CallRecord], current: str | None, pbx: str | None, limit: int) -> list[CallRecord]:
    return [c for c in calls if c.linkedid != current or (pbx is not None and c.pbx != pbx)][:limit]


def _only(pbx: str | None) -> Collection[str] | None:
    return (pbx,) if pbx is not None else None


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

#: At most this many calls wait for their card at the same time. A site of the size this daemon serves
#: (tens of agents) has at most a few dozen calls ringing at one moment, so a healthy store never meets the
#: bound; lookups beyond it mean the store (or the CRM) is far behind, and the newest pop would wait behind
#: all of them anyway: it goes out at once with the card the PBX's number gives (as on a store failure)
#: instead of queueing without end (issue 10 measured 8,329 lookups pending and RSS 102 -> 917 MiB).
#: 64 is twice the busiest moment we expect, and 64 waiting calls cost a few hundred KiB at most.
MAX_CARD_LOOKUPS = 64
#: The "lookups over the bound" warning is logged at most once in this many seconds.
SHED_WARNING_INTERVAL = 60.0


@dataclass(eq=False)
class _Waiting:
    """A call whose card is on its way: its messages (each with its effect: the mirrors' part of its envelope is
    built when it goes out), in order; a pop (``True``) gets the card when it comes."""

    caller: str | None
    pbx: str
    items: deque[tuple[Outgoing, bool, Effect]] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class PopSequencer:
    """Between the notifier and the hub: pops carry their card; nothing of a call overtakes its pop.

    A call's lookup ends one of three ways, and each leaves nothing behind: the card comes (the call's
    messages go out, the card is kept while the call is in progress, for clients that connect mid-call);
    the call ends first (the lookup is cancelled: an ended call no longer needs its card, and its pop and
    end go out at once); or the lookup fails (the messages go out with the card the notifier built).
    """

    def __init__(self, notifier: Notifier, hub: Hub | Fanout, cards: CardService,
                 max_lookups: int = MAX_CARD_LOOKUPS) -> None:
        self.notifier = notifier
        #: Where the messages go: the hub, or every node's hub through the store's bus (``ui_bridge/fanout.py``).
        self.out = hub if isinstance(hub, Fanout) else Fanout(hub)
        self.hub = self.out.hub
        self.cards = cards
        self.max_lookups = max_lookups
        #: The calls waiting for their card, by (PBX, linkedid).
        self._calls: dict[tuple[str, str], _Waiting] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Pops sent without waiting for their card because ``max_lookups`` calls already waited.
        self.shed_over_bound = 0
        #: Lookups dropped because their call ended first.
        self.shed_ended = 0
        self._last_shed_warning = -math.inf
        #: Told of each pop and the lookup it waits for, if any (the pop latency of /metrics: ui_bridge/metrics.py).
        self.on_pop: Callable[[CallRang, asyncio.Future[None] | None], None] | None = None

    @property
    def lookups_in_flight(self) -> int:
        """Calls whose card is being looked up (at most ``max_lookups``)."""
        return len(self._calls)

    @property
    def pending_calls(self) -> list[str]:
        """The linkedids of the calls waiting for their card."""
        return [linkedid for _pbx, linkedid in self._calls]

    @property
    def tasks(self) -> int:
        """Lookup tasks not finished yet (a cancelled one finishes on the loop's next turn)."""
        return len(self._tasks)

    def on_effect(self, effect: Effect) -> None:
        """Runs for every effect: only a ``CallRang`` starts a lookup; anything else is a dict check, then
        its message goes out at once, or behind its call's pop when that pop waits for its card."""
        if isinstance(effect, CallRang):
            outgoing = self.notifier.for_effect(effect)
            if outgoing is not None:
                key = (effect.pbx, effect.linkedid)
                self._pop(key, effect.caller, outgoing, effect)
                if self.on_pop is not None:
                    self.on_pop(effect, getattr(self._calls.get(key), "task", None))
            return
        if isinstance(effect, CallEnded):
            self._ended(effect.record)
        waiting = self._waiting_for(effect) if self._calls else None
        if waiting is None and not self.hub.clients and not self.out.active:
            # Nobody is connected (and no other node may be): the message would go to no one, so it is not even
            # built (a client that connects later gets the calls and agents as they stand then).
            return
        outgoing = self.notifier.for_effect(effect)
        if outgoing is None:
            return
        if waiting is None:
            self._send(outgoing, effect)
        else:
            waiting.items.append((outgoing, False, effect))

    def _send(self, outgoing: Outgoing, effect: Effect, message: Message | None = None,
              card: m.CallerCard | None = None) -> None:
        """One message out: to the hub, or through the bus with the mirrors' part (``mirror_sync.update_for``)."""
        out = self.out
        if not out.active:  # one node: straight to its clients (the common case, on every effect: kept short)
            self.hub.publish(outgoing.message if message is None else message, outgoing.extensions, outgoing.pbx,
                             outgoing.everyone)
            return
        out.publish(outgoing.message if message is None else message, outgoing.extensions, outgoing.pbx,
                    update_for(effect, self.notifier, card), everyone=outgoing.everyone)

    def _waiting_for(self, effect: Effect) -> _Waiting | None:
        """The waiting call an effect is about, if any (only while some call waits for its card)."""
        linkedid = getattr(effect, "linkedid", None)
        if not linkedid:
            return None
        context: CallContext | None = getattr(effect, "context", None)
        if context is not None:
            return self._calls.get((context.pbx, linkedid))
        if isinstance(effect, CallEnded):
            return self._calls.get((effect.record.pbx, linkedid))
        # An event whose call had already ended when its context was taken (its PBX is not known): it belongs
        # behind a waiting pop of that linkedid, on whichever PBX (its CallEnded, next, releases them all).
        return next((w for (_pbx, lid), w in self._calls.items() if lid == linkedid), None)

    def _pop(self, key: tuple[str, str], caller: str | None, outgoing: Outgoing, effect: CallRang) -> None:
        waiting = self._calls.get(key)
        if waiting is not None:  # another phone of a call whose card is on its way: it gets the same card
            waiting.items.append((outgoing, True, effect))
            return
        if len(self._calls) >= self.max_lookups:
            self._shed(key[1])
            self._send(outgoing, effect)  # with the notifier's card
            return
        waiting = self._calls[key] = _Waiting(caller, key[0])
        waiting.items.append((outgoing, True, effect))
        task = waiting.task = asyncio.create_task(self._look_up(key, waiting))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _look_up(self, key: tuple[str, str], waiting: _Waiting) -> None:
        pbx, linkedid = key
        card: m.CallerCard | None
        try:
            card = self.cards.wire(await self.cards.card_for(waiting.caller, linkedid=linkedid,
                                                             pbx=pbx))
        except Exception:  # the store failed: the pop still goes out, with what the PBX said
            log.exception("card lookup for call %s (PBX %s) failed", linkedid, pbx)
            card = None
        if self._calls.get(key) is not waiting:  # its call ended meanwhile: everything went out then
            return
        del self._calls[key]
        if card is not None:
            self.notifier.remember_card(pbx, linkedid, card)
        self._release(waiting, card)

    def _ended(self, record: CallRecord) -> None:
        """The call is over: its card is forgotten, and a lookup still running is dropped, its messages sent."""
        for linkedid in {record.linkedid, *record.linkedids}:
            self.notifier.forget_card(record.pbx, linkedid)
            waiting = self._calls.pop((record.pbx, linkedid), None)
            if waiting is not None:
                self.shed_ended += 1
                if waiting.task is not None:
                    waiting.task.cancel()
                self._release(waiting, None)

    def _release(self, waiting: _Waiting, card: m.CallerCard | None) -> None:
        """Send a call's waiting messages in order; the pops with ``card``, or as built (``None``)."""
        for outgoing, is_pop, effect in waiting.items:
            message = outgoing.message
            if is_pop and card is not None:  # a new message: the one built is never changed
                message = ({**message, "card": card} if isinstance(message, dict)
                           else message.model_copy(update={"card": card}))
            self._send(outgoing, effect, message, card)
        waiting.items.clear()

    def _shed(self, linkedid: str) -> None:
        """Count (and now and then log) a pop sent without waiting for its card."""
        self.shed_over_bound += 1
        now = time.monotonic()
        if now - self._last_shed_warning >= SHED_WARNING_INTERVAL:
            self._last_shed_warning = now
            log.warning("%d calls already wait for their card (the store or the CRM is behind): call %s pops "
                        "without it (%d so far)", len(self._calls), linkedid, self.shed_over_bound)
