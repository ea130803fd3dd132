"""The daemon's live taps (issue 17): answered calls heard as they happen, their words pushed to the panel and kept.

:class:`LiveTaps` is a pipeline subscriber (``Daemon.subscribe``, its own bounded queue, :data:`LIVE_POLICY`). On a
call's first ``CallAnswered`` it decides whether to tap it: ``[live] calls`` / ``queues`` / ``dids`` choose the calls
as ``[recording] record`` does (the same rule, ``cti.recording.wants_recording``), the call's after-call model must be
a Vosk one (``recognizer.live.live_choice``: a line routed to Whisper is transcribed after the call only), and at most
``[live] max_taps`` calls are tapped at once (the others are transcribed after the call, as without ``[live]``).

**How the PBX is asked.** One AMI ``Originate`` per lane, dialling the daemon's own SIP endpoint
(``<technology>/<username>``, the tap registered there: ``companion/live/sip_tap.py``) with the caller id
``tap_user(tap_id, lane)`` (what the tap answers), and, once that call is answered, running ``ChanSpy`` on the
call's channel:

* two lanes when the call has both an agent's channel and the customer's (``[live] split_lanes``): ``agent`` spies on
  the agent's channel, ``customer`` on the customer's (``cti.recording.customer_channel``), each with option ``o``
  (only what that channel itself sends: one voice each), ``q`` (no beep, no name announced) and ``E`` (the spy ends
  when the spied channel hangs up); no ``w``/``W``/``B``: nobody can be whispered to;
* otherwise one ``mixed`` lane on whichever channel there is, without ``o`` (both voices).

ChanSpy runs as the Originate's ``Application`` (nothing to add to the dialplan; the AMI user needs the
``originate`` write class only: Asterisk asks ``system`` too just for applications that reach a shell, ``System``,
``Exec``, ``Eval``…; ``docs/pbx-setup.md``) or, with ``[live] spy_context``, in that dialplan context at extension
``spy``, reading ``CTI_SPY_CHANNEL`` and ``CTI_SPY_OPTIONS`` (for a site whose AMI user may not start applications).
Why the application by default: one action, no dialplan to keep in step with the daemon, the spied channel named
exactly.

The tap is told to expect the tap id *before* the Originate; each lane's call is waited for ``[live]
answer_timeout`` seconds. A lane that does not come (the spy failed, the PBX refused, the endpoint is unregistered)
is logged and counted (:attr:`LiveTaps.failures`); the call goes on and is transcribed after it ends, as before.

**What each lane does.** Its frames (``TappedCall``) are fed to a lane recogniser (``recognizer.live``, worker
processes); its results become ``call.transcript.partial`` / ``.final`` to the call's audience and the ``all``
subscribers; each final goes through the call's :class:`~recognizer.live_keywords.LiveKeywordWatch` (a list matched:
``call.flagged`` with ``live`` to the admins, once per list) and, while it begins in the first
:data:`~cti.speech_identify.WINDOW` seconds, through the identification (``cti/speech_identify.py``: the directory
asked through the store; a strong match is offered once as ``call.identify`` and never applied without the agent's
``identify.confirm``: ``ui_bridge/live_desk.py``).

**The end.** The call's ``CallEnded`` (or the daemon stopping) hangs both lanes up (``SipTap.hang_up``: BYE, the
threads and sockets gone), the recognisers settle their last words, and the finals are kept as the call's transcript
(``Transcriptions.keep_live_transcript``: engine ``vosk``, the model's name, speakers from the lanes, times moved
from the tap's clock to the call's answer, so QA's player opens about where the words are) unless the call has one
already. **Which transcript wins:** the after-call one, when the call was recorded and transcription queues it: it
decodes the whole recording offline (no lane dropped for lag, the full model's beam), and its job replaces the live
transcript when it finishes (``finish_transcription_job`` deletes the call's transcript first). The live one is
what QA sees until then, and for good on a call that was not recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from asterisk.connection import AmiError, AmiResponse
from asterisk.messages import AmiHeaderError, AmiMessage, action
from cti.directory import Contact
from cti.effects import CallAnswered, CallContext, CallEnded, ChannelView, Effect
from cti.keywords import KeywordList, KeywordMatch
from cti.live import Lane, LiveResult, TapInfo
from cti.recording import customer_channel, wants_recording
from cti.records import CallRecord
from cti.speech_identify import (
    LOOKUP_LIMIT,
    WINDOW,
    Lookup,
    Offer,
    SurnameIndex,
    hear,
    identify,
    lookups,
    surname_of,
    words_in_window,
)
from cti.transcripts import Transcript, Word
from recognizer.live import LiveLaneError, LiveModel, live_choice
from recognizer.live_keywords import LiveKeywordWatch
from recognizer.settings import TranscriptionSettings
from ui_bridge.api_models import LiveHealth
from ui_bridge.live_settings import LiveSettings

from ..pipeline import Policy
from .sip_messages import tap_user

if TYPE_CHECKING:
    from recognizer.live import LiveRecognizer, LiveWorkers
    from store.repository import Store
    from ui_bridge.messages import CallerCard
    from ui_bridge.outgoing import Messages, Outgoing

    from .sip_tap import SipTap, TappedCall

log = logging.getLogger("companion.live")

#: The live taps' subscriber only looks at answers and ends and starts a side task per tapped call: never shed
#: lightly (a lost CallEnded is a tap held until the PBX hangs it up), bounded anyway.
LIVE_POLICY = Policy(queue_size=10_000, when_full="drop_newest", timeout=30.0)
#: How long the directory's surnames are used before they are read again (contacts added meanwhile).
SURNAMES_SECONDS = 300.0
#: At shutdown, how long the taps get to hang up and settle their last words.
CLOSE_SECONDS = 10.0
#: Contacts read a page at a time for the surnames.
_PAGE = 2000

SendAction = Callable[[AmiMessage], Awaitable[AmiResponse]]


@dataclass(frozen=True, slots=True)
class _TapRules:
    """``[live]``'s choice of calls in the shape ``cti.recording.wants_recording`` reads (one rule for both)."""

    record: str
    queues: tuple[str, ...]
    dids: tuple[str, ...]
    layout: str = "mix"
    dialplan_side: str = "customer"


@dataclass(frozen=True, slots=True)
class SpyLane:
    """One spy call to ask for: the lane it carries, the channel spied on, ``ChanSpy``'s options."""

    lane: Lane
    channel: str
    options: str


def spy_lanes(context: CallContext, split: bool) -> list[SpyLane]:
    """The lanes of an answered call: agent and customer apart (option ``o`` on each side's own channel) when both
    channels are there and ``split``; else one mixed lane on the agent's channel (or the customer's). Pure."""
    agent = _agent_channel(context)
    customer = customer_channel(context)
    if customer is not None and agent is not None and customer.uniqueid == agent.uniqueid:
        customer = None
    if split and agent is not None and customer is not None:
        return [SpyLane("agent", agent.name, "qoE"), SpyLane("customer", customer.name, "qoE")]
    one = agent or customer
    return [] if one is None else [SpyLane("mixed", one.name, "qE")]


def _agent_channel(context: CallContext) -> ChannelView | None:
    """The answering agent's live phone (else the first agent's phone on the call)."""
    legs = context.legs
    return next((c for c in legs if c.agent == context.answered_by), legs[0] if legs else None)


def spy_originate(settings: LiveSettings, tap_id: str, spy: SpyLane, timeout: float) -> AmiMessage:
    """The ``Originate`` that makes the PBX call the tap with one lane's audio (see the module's docstring).
    Raises ``AmiHeaderError`` for a channel name that cannot go into an action."""
    user = tap_user(tap_id, spy.lane)
    common: dict[str, str] = {
        "Channel": f"{settings.technology}/{settings.username}", "CallerID": f'"{user}" <{user}>',
        "Timeout": str(round(timeout * 1000)), "Async": "true"}
    if settings.spy_context is None:
        return action("Originate", **common, Application="ChanSpy", Data=f"{spy.channel},{spy.options}")
    return action("Originate", **common, Context=settings.spy_context, Exten="spy", Priority="1",
                  Variable=f"CTI_SPY_CHANNEL={spy.channel},CTI_SPY_OPTIONS={spy.options}")


def record_at_answer(context: CallContext) -> CallRecord:
    """The call as known at its answer, in the shape the transcription's routes read (queue, DID, direction)."""
    direction = context.direction if context.direction in ("inbound", "outbound", "internal") else "inbound"
    return CallRecord(
        linkedid=context.linkedid, direction=cast(Any, direction), caller=context.caller,
        caller_name=context.caller_name, called=context.called, answered=True, answered_by=context.answered_by,
        missed_reason=None, talk_seconds=0.0, transferred_to=context.transferred_to, agents_rung_not_answered=(),
        recording=None, started_at=context.started_at, answered_at=context.answered_at, ended_at=None,
        outcome="answered", queue=context.queue, agents_answered=context.agents_answered, pbx=context.pbx)


@dataclass(eq=False)
class LiveCall:
    """One tapped call: its lanes' results so far, what was flagged and offered."""

    context: CallContext
    tap_id: str
    model: LiveModel
    watch: LiveKeywordWatch
    #: When the tap began (the daemon's clock): the lanes' times are seconds from here.
    started_at: float
    finals: list[LiveResult] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    #: The lanes that are being heard (their spy call came).
    lanes: list[Lane] = field(default_factory=list)
    #: The offer made (or dismissed): at most one per call.
    offer: Offer | None = None
    offer_closed: bool = False
    answers: dict[Lookup, Sequence[Contact]] = field(default_factory=dict)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.context.pbx, self.context.linkedid)


class LiveTaps:
    """Taps answered calls, pushes their live words, keeps them (the module's docstring).

    Args:
        settings: ``[live]``.
        transcription: ``[transcription]``: the model a call is decoded with, the keyword lists.
        tap: the SIP endpoint (started by :meth:`start`, stopped by :meth:`close`).
        workers: the live recognisers' pool (started and closed here too).
        send_to: a PBX's way of sending an AMI action (None: not followed here).
        store: the store (None while it is not open): the directory, the transcripts.
        messages: the panel's message builder; ``publish`` sends one (the panel's fan-out). Both None: no panel.
        card_of: the call's caller card as the panel has it (an offer of a contact it shows already is not made).
        region: the site's region for spoken phone numbers.
    """

    def __init__(self, settings: LiveSettings, transcription: TranscriptionSettings, *, tap: SipTap,
                 workers: LiveWorkers, send_to: Callable[[str], SendAction | None],
                 store: Callable[[], Store | None], messages: Messages | None = None,
                 publish: Callable[[Outgoing], None] | None = None,
                 card_of: Callable[[str, str], CallerCard | None] | None = None, region: str = "RU",
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.transcription = transcription
        self.tap = tap
        self.workers = workers
        self.send_to = send_to
        self.store = store
        self.messages = messages
        self.publish = publish
        self.card_of = card_of
        self.region = region
        self.clock = clock
        self.keywords: tuple[KeywordList, ...] = transcription.keyword_lists()
        self._rules = _TapRules(settings.calls, settings.queues, settings.dids)
        #: The calls tapped now, by (pbx, linkedid).
        self.calls: dict[tuple[str, str], LiveCall] = {}
        #: Calls decided already (tapped or not): one decision per call, a transfer's second answer changes nothing.
        self._decided: set[tuple[str, str]] = set()
        self._surnames: SurnameIndex | None = None
        self._surnames_at = -SURNAMES_SECONDS
        self._surnames_task: asyncio.Task[None] | None = None
        self._closing = False
        #: Counts (the health page, the tests): calls tapped, answered calls skipped because ``max_taps`` were busy,
        #: calls whose spy never came, lanes heard, live transcripts kept, offers made.
        self.tapped = 0
        self.over_limit = 0
        self.failures = 0
        self.last_failure: str | None = None
        self.lanes_heard = 0
        self.kept = 0
        self.offers = 0
        #: Seconds of lanes' audio the recognisers dropped because they fell behind (``[live] max_lag``).
        self.dropped_seconds = 0.0

    # -- the daemon's side ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the SIP endpoint (it registers in the background), start the recognisers and load the default model
        in them (the first call's lanes do not wait for it)."""
        if (warning := self.settings.capacity_warning()) is not None:
            log.warning("live: %s", warning)
        await self.tap.start()
        await self.workers.start()
        default = self.transcription.default_choice()
        if default.engine == "vosk" and default.model:
            await self.workers.preload([LiveModel.of(default, self.transcription)])

    def health(self) -> LiveHealth:
        """``GET /api/health``'s ``live`` part: the registration and the counts since start."""
        state = self.tap.registration
        return LiveHealth(registered=state.registered, registrations=state.registrations,
                          registration_failures=state.failures, registration_error=state.last_error,
                          taps=len(self.calls), max_taps=self.settings.max_taps, tapped=self.tapped,
                          over_limit=self.over_limit, failures=self.failures, last_failure=self.last_failure,
                          lanes_heard=self.lanes_heard, dropped_seconds=round(self.dropped_seconds, 1),
                          kept=self.kept, offers=self.offers)

    async def close(self) -> None:
        """Hang every tap up (their words are kept), then stop the endpoint and the recognisers."""
        self._closing = True
        calls = list(self.calls.values())
        for call in calls:
            call.ended.set()
        tasks = [c.task for c in calls if c.task is not None]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=CLOSE_SECONDS)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._surnames_task is not None:
            self._surnames_task.cancel()
        await self.tap.stop()
        await self.workers.close()

    async def on_effect(self, effect: Effect) -> None:
        """The pipeline subscriber: a first answer may start a tap, every effect of a tapped call refreshes its
        context (the audience grows with a transfer), its end tears the tap down."""
        if isinstance(effect, CallEnded):
            key = (effect.record.pbx, effect.record.linkedid)
            self._decided.discard(key)
            call = self.calls.get(key)
            if call is not None:
                call.ended.set()
            return
        context = getattr(effect, "context", None)
        if not isinstance(context, CallContext):
            return
        key = (context.pbx, context.linkedid)
        call = self.calls.get(key)
        if call is not None:
            call.context = context
            return
        if isinstance(effect, CallAnswered) and key not in self._decided and not self._closing:
            self._decided.add(key)
            self._consider(context)

    def _consider(self, context: CallContext) -> None:
        if not wants_recording(context, self._rules, recorded=False):
            return
        model = live_choice(record_at_answer(context), self.transcription)
        if model is None:
            log.debug("live: call %s on %s is routed to an engine that runs after the call only", context.linkedid,
                      context.pbx)
            return
        if len(self.calls) >= self.settings.max_taps:
            self.over_limit += 1
            log.info("live: %d calls are tapped already ([live] max_taps): call %s on %s is transcribed after it "
                     "ends", len(self.calls), context.linkedid, context.pbx)
            return
        call = LiveCall(context, secrets.token_hex(8), model, LiveKeywordWatch(self.keywords), self.clock())
        self.calls[call.key] = call
        self.tapped += 1
        call.task = asyncio.get_running_loop().create_task(self._run(call), name=f"live-{context.linkedid}")

    # -- one call -------------------------------------------------------------------------------------------------

    async def _run(self, call: LiveCall) -> None:
        tap_id = call.tap_id
        try:
            self.tap.expect(tap_id)
            tapped = await self._ask(call)
            if not tapped:
                return
            async with asyncio.TaskGroup() as group:
                lanes = [group.create_task(self._lane(call, lane)) for lane in tapped]
                ended = group.create_task(call.ended.wait())
                await asyncio.wait([*lanes, ended], return_when=asyncio.FIRST_COMPLETED)
                if not ended.done():  # the spy calls may end before the call does (the PBX hung them up)
                    await asyncio.wait(lanes)
                    ended.cancel()
                # The call ended (or the daemon stops): BYE to every lane, its thread and socket gone; each lane's
                # iteration ends there and its recogniser settles the last words.
                await self.tap.hang_up(tap_id)
        except Exception:
            log.exception("live: the tap of call %s on %s failed; it is transcribed after it ends",
                          call.context.linkedid, call.context.pbx)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.tap.hang_up(tap_id))
            self.calls.pop(call.key, None)
            await self._keep(call)

    async def _ask(self, call: LiveCall) -> list[TappedCall]:
        """The spy Originates sent and their calls waited for: the lanes that came."""
        context = call.context
        send = self.send_to(context.pbx)
        spies = spy_lanes(context, self.settings.split_lanes)
        if send is None or not spies:
            self._failed(call, "no channel to spy on" if send is not None else "the PBX is not followed here")
            return []
        waits = {spy.lane: asyncio.ensure_future(self._wait_call(call.tap_id, spy.lane)) for spy in spies}
        sent: list[Lane] = []
        for spy in spies:
            try:
                await send(spy_originate(self.settings, call.tap_id, spy, self.settings.answer_timeout))
                sent.append(spy.lane)
            except (AmiError, AmiHeaderError) as exc:
                self._failed(call, f"the spy Originate for the {spy.lane} lane failed: {exc}")
                waits.pop(spy.lane).cancel()
        came: list[TappedCall] = []
        for lane, wait in waits.items():
            try:
                came.append(await wait)
            except TimeoutError:
                self._failed(call, f"the PBX's spy call for the {lane} lane did not come within "
                                   f"{self.settings.answer_timeout:g} s")
        call.lanes = [c.lane for c in came]
        self.lanes_heard += len(came)
        if came:
            log.info("live: call %s on %s tapped (%s)", context.linkedid, context.pbx, ", ".join(call.lanes))
        return came

    async def _wait_call(self, tap_id: str, lane: Lane) -> TappedCall:
        async with asyncio.timeout(self.settings.answer_timeout):
            return await self.tap.wait_call(tap_id, lane)

    async def _lane(self, call: LiveCall, tapped: TappedCall) -> None:
        """One lane: its frames to a recogniser, its results to :meth:`take_result`, until the lane's call ends."""
        info = TapInfo(call.context.pbx, call.context.linkedid, tapped.lane, call.started_at, call.tap_id)
        try:
            recogniser = self.workers.open(info, call.model)
        except LiveLaneError as exc:
            self._failed(call, f"the {tapped.lane} lane has no recogniser: {exc}")
            return
        reader = asyncio.create_task(self._read(call, recogniser))
        try:
            async for frame in tapped:
                recogniser.feed(frame)
        finally:
            await recogniser.close()
            await reader
            self.dropped_seconds += recogniser.dropped_seconds

    async def _read(self, call: LiveCall, recogniser: LiveRecognizer) -> None:
        try:
            async for result in recogniser:
                await self.take_result(call, result)
        except LiveLaneError as exc:
            log.warning("live: the %s lane of call %s stopped: %s", recogniser.lane, call.context.linkedid, exc)

    def _failed(self, call: LiveCall, why: str) -> None:
        self.failures += 1
        self.last_failure = f"call {call.context.linkedid} (PBX {call.context.pbx}): {why}"
        log.warning("live: call %s on PBX %s: %s (it is transcribed after it ends)", call.context.linkedid,
                    call.context.pbx, why)

    # -- what is heard ----------------------------------------------------------------------------------------------

    async def take_result(self, call: LiveCall, result: LiveResult) -> None:
        """One result of a lane: to the panel; a final also to the keyword lists and, in the call's first
        :data:`WINDOW` seconds, to the identification (awaited: the directory is asked through the store)."""
        self._send(lambda messages: messages.transcript_part(call.context, result))
        if not result.final:
            return
        call.finals.append(result)
        hits = call.watch.final(result)
        if hits:
            call.flags.extend(hit.list for hit in hits)
            matches = [KeywordMatch(hit.list, hit.phrase, hit.speaker, hit.start) for hit in hits]
            log.info("live: call %s on %s flagged %s", call.context.linkedid, call.context.pbx,
                     ", ".join(m.list for m in matches))
            self._send(lambda messages: messages.call_flagged_live(call.context, matches))
        if not call.offer_closed and result.words and result.words[0].start < WINDOW:
            await self._identify(call)

    async def _identify(self, call: LiveCall) -> None:
        store = self.store()
        if store is None:
            return
        surnames = await self._surname_index(store)
        heard = [hear(words, lane, surnames, self.region) for lane, words in words_in_window(call.finals).items()]
        for lookup in lookups(heard):
            if lookup not in call.answers:
                call.answers[lookup] = await store.find_contacts(lookup.query, limit=LOOKUP_LIMIT)
        offer = identify(heard, lambda lookup: call.answers.get(lookup, ()))
        if offer is None or call.offer_closed:
            return
        card = self.card_of(call.context.pbx, call.context.linkedid) if self.card_of is not None else None
        if card is not None and any(c.id == offer.contact_id for c in card.contacts):
            call.offer_closed = True  # the card shows that contact already: nothing to ask
            return
        call.offer, call.offer_closed = offer, True
        self.offers += 1
        contact = next((c for answer in call.answers.values() for c in answer if c.id == offer.contact_id), None)
        log.info("live: call %s on %s: «%s?» offered (%s)", call.context.linkedid, call.context.pbx, offer.name,
                 ", ".join(offer.heard))
        self._send(lambda messages: messages.call_identify(call.context, offer, contact))

    async def _surname_index(self, store: Store) -> SurnameIndex:
        """The directory's surnames: read once, then again in the background every :data:`SURNAMES_SECONDS`."""
        if self._surnames is None:
            await self._read_surnames(store)
        elif self.clock() - self._surnames_at > SURNAMES_SECONDS and self._surnames_task is None:
            self._surnames_task = asyncio.get_running_loop().create_task(self._read_surnames(store))
        return self._surnames or SurnameIndex(())

    async def _read_surnames(self, store: Store) -> None:
        try:
            names: list[str] = []
            after = 0
            while True:
                page = await store.list_contacts(after_id=after, limit=_PAGE)
                names.extend(s for s in (surname_of(c.name) for c in page) if s is not None)
                if len(page) < _PAGE or page[-1].id is None:
                    break
                after = page[-1].id
            self._surnames, self._surnames_at = SurnameIndex(names), self.clock()
        finally:
            self._surnames_task = None

    def _send(self, build: Callable[[Messages], Outgoing]) -> None:
        if self.messages is not None and self.publish is not None:
            self.publish(build(self.messages))

    # -- the panel's requests (ui_bridge/live_desk.py) --------------------------------------------------------------

    def call_of(self, pbx: str, linkedid: str) -> LiveCall | None:
        return self.calls.get((pbx, linkedid))

    def close_offer(self, pbx: str, linkedid: str) -> None:
        """The agent answered «Это …?» (either way): no other offer for the call."""
        call = self.calls.get((pbx, linkedid))
        if call is not None:
            call.offer_closed = True

    # -- the end ----------------------------------------------------------------------------------------------------

    async def _keep(self, call: LiveCall) -> None:
        """The finals kept as the call's transcript (the module's docstring: which transcript wins)."""
        store = self.store()
        if store is None or not call.finals:
            return
        answered = call.context.answered_at
        shift = max(0.0, call.started_at - answered) if answered is not None else 0.0
        order = {"agent": 0, "customer": 1, "unknown": 2}
        words = sorted((Word(r.speaker, w.text, w.start + shift, w.end + shift, w.conf)
                        for r in call.finals for w in r.words), key=lambda w: (w.start, order[w.speaker]))
        if not words:
            return
        choice = call.model.choice
        transcript = Transcript(tuple(words), "vosk", Path(choice.model or call.model.model_dir).name,
                                duration=max(w.end for w in words), language=choice.language)
        try:
            if await store.keep_live_transcript(call.context.linkedid, transcript, pbx=call.context.pbx,
                                                call_started_at=call.context.started_at, at=self.clock(),
                                                flags=tuple(dict.fromkeys(call.flags))):
                self.kept += 1
        except Exception as exc:  # the store failed: the after-call transcription (if any) still comes
            log.warning("live: the transcript of call %s on %s was not kept: %s", call.context.linkedid,
                        call.context.pbx, exc)
