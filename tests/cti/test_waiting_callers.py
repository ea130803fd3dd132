"""Who waits in a queue now (``in_queue`` in the model, ``waiting_callers`` in cti/service_level.py), from the
recorded traces: a caller waits from ``QueueCallerJoin`` to ``QueueCallerLeave``, whatever happens to the call after.

The model is fed the trace's own events, message by message, and asked after each one; the moments asserted are
the trace's own events (found by name and uniqueid), never times written here.
"""

from __future__ import annotations

from collections.abc import Callable

from asterisk.messages import AmiMessage
from asterisk.replay import PbxState, load_trace
from cti.context import CallView
from cti.model import CallBook, ModelConfig
from cti.service_level import WaitingCaller, waiting_callers
from tests.traces import TRACES, load_messages


def _login(msg: AmiMessage) -> AmiMessage:
    """The recorded login stands for the connection's ``CtiConnected`` (as tests/cti/test_model_traces.py does)."""
    if msg.event == "SuccessfulAuth":
        return AmiMessage.from_pairs([("Event", "CtiConnected"), ("PbxTime", msg.get("Timestamp"))],
                                     received_at=msg.received_at)
    return msg


def waiting_after_each(trace: str) -> list[tuple[AmiMessage, list[WaitingCaller]]]:
    """Each message of the trace and who waits in a queue once the model has applied it."""
    book = CallBook(ModelConfig())
    view = CallView(book)
    out = []
    for msg in load_messages(TRACES / trace):
        book.apply(_login(msg))
        out.append((msg, waiting_callers(view.in_progress())))
    return out


def first(steps: list[tuple[AmiMessage, list[WaitingCaller]]], match: Callable[[AmiMessage], bool]) -> int:
    return next(i for i, (msg, _) in enumerate(steps) if match(msg))


def test_a_caller_waits_from_joining_the_queue_until_a_member_answers() -> None:
    steps = waiting_after_each("07-queue-ringall-answered")
    join = first(steps, lambda m: m.event == "QueueCallerJoin")
    # 102's DialEnd ANSWER comes a moment before the queue's QueueCallerLeave: the answered caller waits no more.
    answer = first(steps, lambda m: m.event == "DialEnd" and m.get("DialStatus") == "ANSWER")
    assert answer < first(steps, lambda m: m.event == "QueueCallerLeave")
    assert all(not waiting for _, waiting in steps[:join])
    (caller,) = steps[join][1]
    assert (caller.queue, caller.linkedid, caller.caller, caller.caller_name) == (
        "support", "1795479360.12", "79161234500", "Кузьмин Алексей")
    # The wait is counted from the call's arrival at the PBX (the caller's Newchannel), greeting included.
    arrival = next(m for m, _ in steps if m.event == "Newchannel" and m.get("Uniqueid") == "1795479360.12")
    assert caller.since == arrival.time
    assert all(waiting == [caller] for _, waiting in steps[join:answer])
    assert all(not waiting for _, waiting in steps[answer:])


def test_a_caller_the_queue_sends_to_voicemail_no_longer_waits_while_leaving_a_message() -> None:
    steps = waiting_after_each("10-queue-timeout-voicemail")
    leave = first(steps, lambda m: m.event == "QueueCallerLeave")
    assert [w.linkedid for w in steps[leave - 1][1]] == ["1795479425.23"]
    assert not steps[leave][1]
    # The call goes on (the caller leaves a message) and keeps its queue, but nobody waits any more.
    voicemail = first(steps, lambda m: m.event == "Newexten" and m.get("Application") == "VoiceMail")
    assert voicemail > leave
    book = CallBook(ModelConfig())
    for msg, _ in steps[: voicemail + 1]:
        book.apply(_login(msg))
    (call,) = CallView(book).in_progress()
    assert call.queue == "support" and not call.in_queue and call.live


def test_a_caller_who_hangs_up_in_the_queue_stops_waiting() -> None:
    steps = waiting_after_each("08-queue-abandon")
    abandon = first(steps, lambda m: m.event == "QueueCallerAbandon")
    assert [w.linkedid for w in steps[abandon - 1][1]] == ["1795479383.16"]
    assert not steps[-1][1]


def test_the_resync_listing_says_who_already_waits_when_the_daemon_connects() -> None:
    """25-resync-midcall: a caller already in queue support when the daemon logs in (a ``QueueEntry`` of the
    ``QueueStatus`` answer); the answered queue call, whose caller's channel still runs ``Queue()``, does not wait."""
    steps = waiting_after_each("25-resync-midcall")
    entry = first(steps, lambda m: m.event == "QueueEntry")
    (caller,) = steps[entry][1]
    assert (caller.linkedid, caller.queue, caller.caller) == ("1795480076.201", "support", "79161250028")
    leave = first(steps, lambda m: m.event == "QueueCallerLeave")
    assert all([w.linkedid for w in waiting] == ["1795480076.201"] for _, waiting in steps[entry:leave])
    assert all(not waiting for _, waiting in steps[leave:])


def test_a_caller_who_left_the_queue_during_an_outage_does_not_wait_after_the_resync() -> None:
    """10-queue-timeout-voicemail with the connection lost while the caller waits and back while they leave a
    message: the ``QueueCallerLeave`` is lost, and the resync's ``QueueStatus`` (from the replay PBX's own state,
    as Asterisk answers it) no longer lists them."""
    trace = load_trace(TRACES / "10-queue-timeout-voicemail")
    events = [e.message for e in trace.events]
    join = next(i for i, m in enumerate(events) if m.event == "QueueCallerJoin")
    voicemail = next(i for i, m in enumerate(events) if m.event == "Newexten" and m.get("Application") == "VoiceMail")
    pbx = PbxState()
    book = CallBook(ModelConfig())
    view = CallView(book)
    clock = trace.epoch0

    def cti(event: str) -> AmiMessage:
        return AmiMessage(headers=[("Event", event), ("PbxTime", f"{clock:.6f}")])

    def resync() -> None:
        book.apply(cti("CtiConnected"))
        book.apply(cti("CtiClock"))
        items = pbx.core_show_channels(clock, [])
        for item in items:
            book.apply(item)
        book.apply(AmiMessage(headers=[("Event", "CoreShowChannelsComplete"), ("ListItems", str(len(items)))]))
        for item in pbx.queue_status(clock, []):
            book.apply(item)

    resync()
    for i, msg in enumerate(events):
        pbx.apply(msg, clock)
        clock = msg.time if "Timestamp" in msg else clock
        if i <= join:
            book.apply(msg)
        if i == join:
            assert [w.linkedid for w in waiting_callers(view.in_progress())] == ["1795479425.23"]
            book.apply(cti("CtiDisconnected"))
        if i == voicemail:
            resync()
            break
    (call,) = view.in_progress()
    assert call.queue == "support" and not call.in_queue
    assert waiting_callers(view.in_progress()) == []


def test_a_caller_still_waiting_at_the_reconnect_waits_again_after_the_resync() -> None:
    """The same outage, back before the caller leaves: the ``QueueEntry`` of the resync puts them back as waiting."""
    trace = load_trace(TRACES / "10-queue-timeout-voicemail")
    events = [e.message for e in trace.events]
    join = next(i for i, m in enumerate(events) if m.event == "QueueCallerJoin")
    pbx = PbxState()
    book = CallBook(ModelConfig())
    clock = trace.epoch0
    for i, msg in enumerate(events[: join + 3]):
        pbx.apply(msg, clock)
        clock = msg.time if "Timestamp" in msg else clock
        if i <= join:
            book.apply(msg)
    book.apply(AmiMessage(headers=[("Event", "CtiDisconnected"), ("PbxTime", f"{clock:.6f}")]))
    book.apply(AmiMessage(headers=[("Event", "CtiConnected"), ("PbxTime", f"{clock:.6f}")]))
    assert waiting_callers(CallView(book).in_progress()) == []  # until the listing says otherwise
    items = pbx.core_show_channels(clock, [])
    for item in items:
        book.apply(item)
    book.apply(AmiMessage(headers=[("Event", "CoreShowChannelsComplete"), ("ListItems", str(len(items)))]))
    for item in pbx.queue_status(clock, []):
        book.apply(item)
    assert [w.linkedid for w in waiting_callers(CallView(book).in_progress())] == ["1795479425.23"]
