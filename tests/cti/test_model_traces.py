"""The pure call model against every recorded trace: no socket, no loop, just events in.

The same check runs over TCP through the whole daemon in tests/integration/test_journal_traces.py;
this one pins failures on the model alone and runs in milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asterisk.messages import AmiMessage
from cti.effects import CallEnded, CallRang
from cti.model import CallBook, ModelConfig
from tests.traces import compare_with_cdr, compare_with_truth, load_cdr, load_truth, trace_dirs


def replay_into_model(trace: Path) -> tuple[CallBook, list[CallEnded], list[CallRang]]:
    """Feed a trace's received messages to a CallBook the way the connection would.

    The connection announces each login with ``CtiConnected`` carrying the PBX's clock (from a
    Ping); here the recorded ``SuccessfulAuth`` timestamp stands in for it.
    """
    book = CallBook(ModelConfig())
    ended: list[CallEnded] = []
    rang: list[CallRang] = []
    for line in (trace / "ami.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if not isinstance(item.get("msg"), list):
            continue
        msg = AmiMessage.from_pairs(item["msg"], received_at=item["t"])
        if msg.event == "SuccessfulAuth":
            msg = AmiMessage.from_pairs([("Event", "CtiConnected"), ("PbxTime", msg.get("Timestamp"))],
                                        received_at=item["t"])
        for effect in book.apply(msg):
            if isinstance(effect, CallEnded):
                ended.append(effect)
            elif isinstance(effect, CallRang):
                rang.append(effect)
    return book, ended, rang


@pytest.mark.parametrize("trace", trace_dirs(), ids=lambda p: p.name)
def test_model_journal_matches_truth_and_cdr(trace: Path) -> None:
    """Each call of the trace ends up in the journal exactly as truth.json and cdr.csv say."""
    book, ended, _ = replay_into_model(trace)
    assert not book.calls, f"calls left open: {list(book.calls)}"
    journal = [e.record.to_json() for e in ended]
    assert compare_with_truth(journal, load_truth(trace)) == []
    epoch = {}
    for e in ended:
        epoch[e.record.linkedid + ":start"] = e.record.started_at
        epoch[e.record.linkedid + ":end"] = e.record.ended_at or e.record.started_at
    assert compare_with_cdr(journal, load_cdr(trace), epoch=epoch) == []


def test_missed_register_holds_exactly_the_unanswered_inbound_calls() -> None:
    """A missed entry per unanswered inbound call, with the caller's number normalised for call-backs."""
    for trace in trace_dirs():
        _, ended, _ = replay_into_model(trace)
        for e in ended:
            r = e.record
            if r.direction == "inbound" and not r.answered:
                assert e.missed is not None and e.missed.reason == r.missed_reason
                assert e.missed.caller_key == (None if r.caller is None else r.caller)
            else:
                assert e.missed is None


def test_ringall_losers_are_recorded_against_each_agent() -> None:
    """Queue ringall: 101 and 105 rang while 102 answered: a per-agent miss each, not a centre miss."""
    _, ended, rang = replay_into_model(next(p for p in trace_dirs() if p.name.startswith("07-")))
    (e,) = ended
    assert e.missed is None
    assert {(m.agent, m.reason, m.answered_by) for m in e.agent_misses} == {
        ("101", "answered_elsewhere", "102"), ("105", "answered_elsewhere", "102")}
    assert sorted({r.agent for r in rang}) == ["101", "102", "105"]
    assert all(r.caller == "79161234500" and r.caller_name == "Кузьмин Алексей" for r in rang)


def test_replaying_a_resync_snapshot_twice_creates_no_duplicate_call() -> None:
    """CoreShowChannels answered twice (a reconnect) leaves one call per linkedid."""
    trace = next(p for p in trace_dirs() if p.name.startswith("25-"))
    book = CallBook(ModelConfig())
    items = []
    for line in (trace / "ami.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if isinstance(item.get("msg"), list) and dict(item["msg"]).get("Event", "").startswith("CoreShowChannel"):
            items.append(AmiMessage.from_pairs(item["msg"], received_at=item["t"]))
    for _ in range(2):
        book.apply(AmiMessage.from_pairs([("Event", "CtiConnected"), ("PbxTime", "1795480080.0")], received_at=1.0))
        for msg in items:
            book.apply(msg)
    assert sorted(book.calls) == ["1795480072.195", "1795480073.196", "1795480076.201"]
    assert book.calls["1795480072.195"].answered_by == "102"
    assert not book.calls["1795480072.195"].complete
