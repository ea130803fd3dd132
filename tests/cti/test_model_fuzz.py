"""The pure core under hostile input: real traces with their values made hostile never make it raise.

An AMI value can hold anything a caller, a trunk or a misconfigured PBX put there (docs/security.md), so
hostile input is normal input. Each example takes a real trace and spoils it: header values replaced by
control characters, huge or non-ASCII numbers, ``nan``, empty strings; headers removed or repeated; events
swapped; a ``Uniqueid`` reused; a ``Linkedid`` changed; a disconnect and a resync with a hostile ``Duration``
in the middle. ``CallBook.apply``, ``AgentBoard.apply`` and ``cti.context.enrich`` must never raise, the model
must never skip an event because a handler failed on it, and every ``CallEnded`` record must be one the
journal can save and show: valid field types, finite times, a 64-bit hang-up cause, JSON without ``NaN``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import asdict
from datetime import timedelta
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from asterisk.messages import AmiMessage
from cti.agents import AgentBoard
from cti.context import enrich
from cti.effects import CallEnded
from cti.model import CallBook, ModelConfig, missed_entry
from cti.records import AgentMiss, CallRecord, iso_time
from tests.conftest import UNIT
from tests.traces import load_messages, trace_dirs

#: Values a PBX field may hold that Python's number parsers mishandle, or that a terminal or a store chokes on.
HOSTILE = [
    "", " ", "²", "١٢٣", "１６", "9" * 30, "9" * 5000, "-1", "+16", "1_6", "0x10", "1e400", "nan", "inf", "-inf",
    "16 ", "\x00", "\r\n", "\x1b[2J", "\u202e", "<unknown>", "(null)", "00:00:0x", "99999999999:00:00",
    "00:61:00", "1:2:3:4", "1795479242.5.1", "17954792420000000000.0", "-1795479242.0", "None", "Up", "Ringing",
    "PJSIP/101", "PJSIP/101-00000001", "Local/600@queues-00000001;1", "ANSWER", "BUSY", "Иванов Пётр",
]
#: Values Python's number parsers mishandle (``str.isdigit`` says yes to the first three).
BAD_NUMBERS = ["²", "١٢٣", "１６", "9" * 30, "9" * 5000, "-1", "1e400", "nan", "inf", "1_6", " 16", "0x10"]
#: Headers the core reads as numbers.
NUMBER_KEYS = ("Cause", "Timestamp", "Status", "Paused")
#: Headers the core reads: numbers, ids, names, states.
READ_KEYS = ("Cause", "Timestamp", "Status", "Uniqueid", "Linkedid", "DestUniqueid", "Channel", "DestChannel",
             "ChannelStateDesc", "DestChannelStateDesc", "DialStatus", "DialString", "Exten", "CallerIDNum",
             "CallerIDName", "ConnectedLineNum", "Variable", "Value", "Queue", "Interface", "StateInterface",
             "Application", "AppData", "Paused", "Device", "State", "BridgeUniqueid", "TransfereeUniqueid",
             "TransferTargetUniqueid", "OrigTransfererUniqueid", "Response", "ActionID", "EventList", "Reason")
#: The traces the examples spoil: direct, queue, ring group, transfers, pickup, click-to-call, resync.
TRACE_NAMES = ("01-direct-answered", "05-caller-hangup-ringing", "07-queue-ringall-answered",
               "11-ringgroup-answered", "13-blind-transfer-redirect", "16-click-to-call-answered",
               "17-click-to-call-noanswer", "25-resync-midcall", "29-directed-pickup", "31-phone-blind-transfer-refer",
               "36-queue-member-unavailable")

#: Examples per run: about 5 s on a quiet machine (``CTI_FUZZ_EXAMPLES`` for a longer hunt).
EXAMPLES = int(os.environ.get("CTI_FUZZ_EXAMPLES", "400"))
_RECORD = TypeAdapter(CallRecord)
_MISS = TypeAdapter(AgentMiss)
_INT64 = 2**63


@cache
def trace(name: str) -> tuple[AmiMessage, ...]:
    folder = {p.name: p for p in trace_dirs()}[name]
    return tuple(_as_connection_would(m) for m in load_messages(folder))


def _as_connection_would(msg: AmiMessage) -> AmiMessage:
    """The recorded login stands for the connection's ``CtiConnected`` (tests/cti/test_model_traces.py)."""
    if msg.event == "SuccessfulAuth":
        return AmiMessage([("Event", "CtiConnected"), ("PbxTime", msg.get("Timestamp"))], msg.received_at)
    return msg


def hostile_values(messages: tuple[AmiMessage, ...]) -> st.SearchStrategy[str]:
    """Hostile strings, arbitrary text, and the trace's own ids and names put where they do not belong."""
    own = sorted({v for m in messages for k, v in m.headers if k in ("Uniqueid", "Linkedid", "DestUniqueid",
                                                                    "Channel", "DestChannel")})
    return st.one_of(st.sampled_from(HOSTILE), st.sampled_from(own), st.text(max_size=12),
                     st.from_regex(r"[0-9]{1,25}", fullmatch=True))


class Spoiled:
    """A trace with some events spoiled; its repr (what hypothesis prints for a failure) lists only the spoilings.

    A plain class: hypothesis would print a dataclass field by field, every message of the trace included.
    """

    def __init__(self, name: str, messages: list[AmiMessage]) -> None:
        self.name, self.messages = name, messages
        self.spoilings: list[str] = []

    def __repr__(self) -> str:
        return f"Spoiled({self.name!r}, {self.spoilings!r})"


@st.composite
def spoiled(draw: st.DrawFn) -> Spoiled:
    """A trace with a few of its events spoiled (each spoiling is one of the kinds in the module's docstring)."""
    name = draw(st.sampled_from(TRACE_NAMES))
    case = Spoiled(name, list(trace(name)))
    messages, values = case.messages, hostile_values(trace(name))
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(messages) - 1))
        kind = draw(st.sampled_from(("replace", "replace", "replace", "remove", "repeat", "swap", "resync")))
        if kind == "swap":
            j = draw(st.integers(0, len(messages) - 1))
            messages[i], messages[j] = messages[j], messages[i]
            case.spoilings.append(f"swap #{i} {messages[j].event} and #{j} {messages[i].event}")
            continue
        at = messages[i].received_at
        if kind == "resync":  # a drop here, then a snapshot item with a hostile value
            item = draw(st.sampled_from([m for m in trace("25-resync-midcall") if m.event == "CoreShowChannel"]))
            key = draw(st.sampled_from(("Duration", "ChannelStateDesc", "Uniqueid", "Linkedid", "Application")))
            value, clock = draw(values), draw(st.sampled_from((f"{at:.6f}", *HOSTILE)))
            spoilt = AmiMessage([(k, value if k == key else v) for k, v in item.headers], at)
            messages[i:i] = [
                AmiMessage([("Event", "CtiDisconnected"), ("Reason", "fuzz")], at),
                AmiMessage([("Event", "CtiConnected"), ("PbxTime", clock)], at),
                AmiMessage([("Event", "CtiClock"), ("PbxTime", clock)], at),
                spoilt,
                AmiMessage([("Event", "CoreShowChannelsComplete"), ("EventList", "Complete"),
                            ("ActionID", spoilt.get("ActionID"))], at),
            ]
            case.spoilings.append(f"resync at #{i}: PbxTime {clock!r}, {item.get('Channel')} {key}={value!r}")
            continue
        # Half the time a header the model reads (a number, an id, a state), in an event that has it.
        key = draw(st.sampled_from(NUMBER_KEYS) | st.sampled_from(READ_KEYS))
        having = [n for n, m in enumerate(messages) if key in m]
        if having and draw(st.booleans()):
            i = draw(st.sampled_from(having))
        headers = list(messages[i].headers)
        keys = [h[0] for h in headers]
        k = keys.index(key) if key in keys else draw(st.integers(0, len(headers) - 1))
        key = headers[k][0]
        if key == "Event":
            continue  # another event type altogether: covered by the swap and by the other traces
        value = draw(st.sampled_from(BAD_NUMBERS) if key in NUMBER_KEYS and draw(st.booleans()) else values)
        if kind == "replace":
            headers[k] = (key, value)
        elif kind == "remove":
            del headers[k]
        else:  # repeated: the hostile value before the real one (then it is the one read) or after it
            headers.insert(k if draw(st.booleans()) else k + 1, (key, value))
        messages[i] = AmiMessage(headers, at)
        case.spoilings.append(f"{kind} #{i} {messages[i].event} {key}" + ("" if kind == "remove" else f"={value!r}"))
    return case


class _Skips(logging.Handler):
    """What the model logged as skipped: an event it could not apply because a handler raised on it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.skipped: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "not understood" not in record.getMessage():
            return
        msg, exc = record.args if isinstance(record.args, tuple) and len(record.args) == 2 else (None, None)
        if isinstance(exc, KeyError) and isinstance(msg, AmiMessage) and exc.args and exc.args[0] not in msg:
            return  # a header the event cannot do without is missing: skipping it is the right answer
        self.skipped.append(record.getMessage()[:300])


def assert_valid(adapter: TypeAdapter[Any], value: Any) -> None:
    """Every field of the dataclass ``value`` has its declared type (the ``Literal``\\s included).

    pydantic does not look inside an instance of a plain dataclass, so its fields are validated as a dict;
    the result must equal the input (a ``"16"`` coerced to ``16`` would not).
    """
    fields = asdict(value)
    assert asdict(adapter.validate_python(fields)) == fields


def check_record(effect: CallEnded, config: ModelConfig) -> None:
    """The record is one the journal can save and show, with its missed entry and agent misses."""
    record = effect.record
    assert_valid(_RECORD, record)
    times = [record.started_at, record.answered_at, record.ended_at, record.talk_seconds, record.ring_seconds]
    times += [t for leg in record.legs for t in (leg.started_at, leg.answered_at, leg.ended_at)]
    assert all(t is None or math.isfinite(t) for t in times), times
    assert record.talk_seconds >= 0 and record.ring_seconds >= 0
    for cause in (record.hangup_cause, *(leg.hangup_cause for leg in record.legs)):
        assert cause is None or 0 <= cause < _INT64, cause
    json.dumps(record.to_json(), allow_nan=False)
    for t in (record.started_at, record.answered_at, record.ended_at):
        iso_time(t)
    entry = missed_entry(record, config)
    if entry is not None:
        json.dumps(entry.to_json(), allow_nan=False)
    for miss in effect.agent_misses:
        assert_valid(_MISS, miss)
        json.dumps(miss.to_json(), allow_nan=False)


def run_core(messages: list[AmiMessage]) -> list[CallEnded]:
    """Feed the core as ``Daemon.on_message`` does; return the calls that ended."""
    config = ModelConfig()
    book, agents = CallBook(config), AgentBoard(config)
    ended: list[CallEnded] = []
    for msg in messages:
        effects = book.apply(msg)
        if effects:
            effects = enrich(book, effects)
        agents.apply(msg)
        ended += [e for e in effects if isinstance(e, CallEnded)]
    # The model's own time-outs, as the daemon's tick lets them expire.
    last = messages[-1].received_at if messages else 0.0
    ended += [e for e in book.apply(AmiMessage([("Event", "CtiTick")], last + 60)) if isinstance(e, CallEnded)]
    for effect in ended:
        check_record(effect, config)
    return ended


@pytest.fixture
def skips() -> Iterator[_Skips]:
    handler = _Skips()
    logger = logging.getLogger("cti")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.mark.parametrize(("key", "value"), [("Cause", "²"), ("Cause", "9" * 30), ("Cause", "9" * 5000),
                                            ("Timestamp", "nan"), ("Timestamp", "inf"), ("Timestamp", "1e300"),
                                            ("Timestamp", "١٧٩٥٤٧٩٢٤٢")])
def test_one_hostile_value_costs_the_call_nothing(key: str, value: str, skips: _Skips) -> None:
    """A ``Cause`` of ``²`` or of 30 digits, a ``Timestamp`` of ``nan``: the call still ends, once, and is savable."""
    messages = [AmiMessage([(k, value if k == key else v) for k, v in m.headers], m.received_at)
                for m in trace("01-direct-answered")]
    (ended,) = run_core(messages)
    assert ended.record.linkedid == "1795479242.0" and ended.record.answered_by == "103"
    assert skips.skipped == []


@settings(max_examples=EXAMPLES, deadline=timedelta(seconds=2 * UNIT), database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=spoiled())
def test_the_core_never_raises_and_every_record_validates(case: Spoiled, skips: _Skips) -> None:
    """Spoiled traces: no exception, no event skipped because a handler raised, every CallEnded savable."""
    skips.skipped.clear()
    run_core(case.messages)
    assert skips.skipped == []
