"""Effects carry their call's context: what a subscriber in its own task needs, taken when it happened.

Every recorded trace through the pure model and ``cti.context.enrich``, as the daemon runs them; the context
is checked against truth.json (who the call was from, who answered, who was rung) and against the moment:
a subscriber that reads an effect long after the book moved on still sees the call as it stood then.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from asterisk.messages import AmiMessage
from cti.context import CallView, enrich
from cti.effects import (
    CallAnswered,
    CallContext,
    CallDialing,
    CallEnded,
    CallRang,
    CallsMerged,
    CallStarted,
    CallTransferred,
    Effect,
    LegEnded,
)
from cti.model import CallBook, ModelConfig
from tests.traces import load_truth, trace_dirs


def enriched(trace: Path, book: CallBook | None = None) -> tuple[CallBook, list[Effect]]:
    """A trace's messages through the model and the enrich step, as ``Daemon.on_message`` runs them."""
    book = book or CallBook(ModelConfig())
    effects: list[Effect] = []
    for line in (trace / "ami.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if not isinstance(item.get("msg"), list):
            continue
        msg = AmiMessage.from_pairs(item["msg"], received_at=item["t"])
        if msg.event == "SuccessfulAuth":
            msg = AmiMessage.from_pairs([("Event", "CtiConnected"), ("PbxTime", msg.get("Timestamp"))],
                                        received_at=item["t"])
        effects.extend(enrich(book, book.apply(msg)))
    return book, effects


#: The effects about a call in progress (each with its PBX, and its context when the call was still on).
ABOUT_A_CALL = (CallStarted, CallDialing, CallRang, LegEnded, CallAnswered, CallTransferred, CallsMerged)


def truth_of(trace: Path) -> dict[str, dict[str, object]]:
    return {c["linkedid"]: c for c in load_truth(trace)}


@pytest.mark.parametrize("trace", trace_dirs(), ids=lambda p: p.name)
def test_every_effect_about_a_live_call_carries_a_context_that_agrees_with_truth(trace: Path) -> None:
    """A pop knows the call's direction and caller; an answer knows who else is on the call; an end knows its
    audience: every agent truth.json says was rung, answered, or took the transfer."""
    _, effects = enriched(trace)
    truth = truth_of(trace)
    for effect in effects:
        if isinstance(effect, (CallStarted, CallDialing, CallRang, CallAnswered, CallTransferred)):
            assert effect.context is not None, f"{type(effect).__name__} of {effect.linkedid} has no context"
            assert effect.context.linkedid == effect.linkedid or effect.linkedid in truth
        if isinstance(effect, CallRang):
            context = effect.context
            assert context is not None and effect.agent in context.audience
            assert context.caller == effect.caller and context.direction != "outbound"
            leg = next(c for c in context.legs if c.uniqueid == effect.uniqueid)
            assert (leg.agent, leg.name, leg.phase) == (effect.agent, effect.channel, "ringing")
            expected = truth.get(context.linkedid)
            if expected is not None:
                assert context.direction == expected["direction"]
        if isinstance(effect, CallAnswered):
            context = effect.context
            assert context is not None
            assert effect.answered_by in (context.answered_by, *context.agents_answered)
            assert effect.answered_by in effect.context.audience
        if isinstance(effect, CallEnded):
            r = truth.get(effect.record.linkedid)
            assert r is not None, f"a call truth.json does not know: {effect.record.linkedid}"
            rung = r["agents_rung_not_answered"] if effect.record.complete else []  # unseen before connecting
            wanted = {*rung, *([r["answered_by"]] if r["answered_by"] else [])}  # type: ignore[misc]
            missing = wanted - effect.audience
            assert not missing, f"{effect.record.linkedid}: {missing} may not see its end"


def test_a_context_is_the_call_as_it_stood_when_the_effect_happened() -> None:
    """Read after the whole trace was applied (a subscriber far behind), the pop of 07-queue still shows three
    phones ringing and nobody answering; the answer shows 102 talking; the book itself has no call left."""
    trace = next(t for t in trace_dirs() if t.name == "07-queue-ringall-answered")
    book, effects = enriched(trace)
    assert not book.calls
    pops = [e for e in effects if isinstance(e, CallRang)]
    assert sorted(p.agent for p in pops) == ["101", "102", "105"]
    last_pop = pops[-1].context
    assert last_pop is not None and last_pop.answered_by is None and last_pop.queue == "support"
    assert {leg.agent: leg.phase for leg in last_pop.legs} == {"101": "ringing", "102": "ringing", "105": "ringing"}
    answered = next(e for e in effects if isinstance(e, CallAnswered)).context
    assert answered is not None and answered.answered_by == "102"
    assert {leg.agent: leg.phase for leg in answered.legs}["102"] == "talking"
    with pytest.raises(dataclasses.FrozenInstanceError):
        answered.answered_by = "101"  # type: ignore[misc]


def test_the_call_view_hands_out_snapshots_of_calls_in_progress_only() -> None:
    """What the panel's state at connect and call control read: frozen copies, by linkedid or by agent."""
    trace = next(t for t in trace_dirs() if t.name == "13-blind-transfer-redirect")
    book = CallBook(ModelConfig())
    view = CallView(book)
    seen: list[CallContext] = []
    for line in (trace / "ami.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if not isinstance(item.get("msg"), list):
            continue
        effects = enrich(book, book.apply(AmiMessage.from_pairs(item["msg"], received_at=item["t"])))
        if any(isinstance(e, CallAnswered) for e in effects):
            now = view.get("1795479510.36")
            assert now is not None and "1795479510.36" in view
            assert [c.linkedid for c in view.in_progress("101")] == ["1795479510.36"]
            assert view.in_progress("102") == []
            seen.append(now)
    assert seen, "the call was answered"
    assert view.get("1795479510.36") is None and view.in_progress() == []
    first = seen[0]
    assert first.direction == "inbound" and first.caller == "79160001313" and first.answered_by == "101"
    assert first.channels[0].uniqueid == first.origin and first.channels[0].kind == "trunk"


def test_every_call_effect_of_a_pbx_names_that_pbx() -> None:
    """Two PBXs hand out the same linkedids and extensions: each effect says which PBX it is about, the one whose
    call had already ended when its context was taken included (the last leg's ``LegEnded``), so the panel can
    send it to that PBX's agents only."""
    for trace in trace_dirs():
        _, effects = enriched(trace, CallBook(ModelConfig(agent_pattern=r"1\d\d", pbx="spb")))
        about_calls = [e for e in effects if isinstance(e, ABOUT_A_CALL)]
        assert about_calls and {e.pbx for e in about_calls} == {"spb"}, trace.name
        assert {e.record.pbx for e in effects if isinstance(e, CallEnded)} == {"spb"}
        assert all(e.context.pbx == "spb" for e in about_calls if e.context is not None)
    _, default = enriched(next(t for t in trace_dirs() if t.name.startswith("07")))
    assert {e.pbx for e in default if isinstance(e, CallRang)} == {"main"}
