"""Zammad's planner over the real traces' calls: newCall → answer → hangup per call, each event's fields as Zammad's
Generic CTI documents them, the cause from our outcome, and a hangup for every call that got a newCall."""

from __future__ import annotations

import dataclasses

import pytest

from cti.crm import call_key
from cti.crm.zammad import ZammadPlanner, agent_ref
from tests.crm.planning import plan_all, trace_events
from tests.traces import TRACES, load_truth, trace_ids


def kinds(requests: list) -> list[str]:
    return [r.kind for r in requests]


def test_an_answered_inbound_call_is_new_call_answer_hangup_with_the_agent() -> None:
    planned = plan_all(ZammadPlanner(), trace_events("01-direct-answered"))
    key = call_key("main", "1795479242.0")
    assert list(planned) == [key]
    new_call, answer, hangup = planned[key]
    call = {"from": "79161234567", "to": "74950000001", "direction": "in", "callId": key}
    assert new_call.payload == {"event": "newCall", **call}
    assert answer.payload == {"event": "answer", **call, "user": agent_ref("main", "103"), "answeringNumber": "103"}
    assert hangup.payload == {"event": "hangup", **call, "cause": "normalClearing", "answeringNumber": "103"}


def test_users_name_the_zammad_user_that_answered() -> None:
    planned = plan_all(ZammadPlanner({"103": "anna.s"}), trace_events("01-direct-answered"))
    _, answer, hangup = next(iter(planned.values()))
    assert answer.payload["answeringNumber"] == "anna.s"
    assert hangup.payload["answeringNumber"] == "anna.s"


def test_a_queue_call_names_its_queue_and_one_answer_though_three_phones_rang() -> None:
    planned = plan_all(ZammadPlanner(), trace_events("07-queue-ringall-answered"))
    requests = planned[call_key("main", "1795479360.12")]
    assert kinds(requests) == ["newCall", "answer", "hangup"]
    assert requests[0].payload["queue"] == "support"
    assert requests[1].payload["answeringNumber"] == "102"


@pytest.mark.parametrize(("trace", "cause"), [
    ("08-queue-abandon", "cancel"),
    ("05-caller-hangup-ringing", "cancel"),
    ("12-ringgroup-noanswer", "noAnswer"),
    ("03-direct-noanswer-voicemail", "noAnswer"),
    ("04-direct-busy", "busy"),
])
def test_a_missed_inbound_call_is_new_call_then_hangup_with_its_cause(trace: str, cause: str) -> None:
    planned = plan_all(ZammadPlanner(), trace_events(trace))
    (requests,) = planned.values()
    assert kinds(requests) == ["newCall", "hangup"]
    assert requests[1].payload["cause"] == cause
    assert "answeringNumber" not in requests[1].payload


def test_a_transfer_is_answered_once_by_the_first_agent() -> None:
    planned = plan_all(ZammadPlanner(), trace_events("13-blind-transfer-redirect"))
    (requests,) = planned.values()
    assert kinds(requests) == ["newCall", "answer", "hangup"]
    assert requests[1].payload["answeringNumber"] == "101"
    assert requests[2].payload["cause"] == "normalClearing"


def test_an_outbound_call_names_the_agent_who_calls_and_no_one_on_its_answer() -> None:
    planned = plan_all(ZammadPlanner(), trace_events("16-click-to-call-answered"))
    key = call_key("main", "1795479586.44")
    new_call, answer, hangup = planned[key]
    call = {"from": "101", "to": "89161234567", "direction": "out", "callId": key}
    assert new_call.payload == {"event": "newCall", **call, "user": agent_ref("main", "101")}
    # Zammad writes an answer's user over the called party's name: outbound that is the customer's.
    assert answer.payload == {"event": "answer", **call}
    assert hangup.payload == {"event": "hangup", **call, "cause": "normalClearing"}


@pytest.mark.parametrize(("trace", "agent", "number", "sequence", "cause"), [
    ("33-phone-outbound-remote-hangup", "103", "84957770033",
     [("dialing", ["newCall"]), ("answered", ["answer"]), ("ended", ["hangup"])], "normalClearing"),
    ("16-click-to-call-answered", "101", "89161234567",
     [("dialing", ["newCall"]), ("answered", ["answer"]), ("ended", ["hangup"])], "normalClearing"),
    ("27-click-to-call-busy", "102", "89035550027", [("dialing", ["newCall"]), ("ended", ["hangup"])], "busy"),
    ("17-click-to-call-noanswer", "101", "84951112200", [("dialing", ["newCall"]), ("ended", ["hangup"])],
     "noAnswer"),
])
def test_an_outbound_call_is_new_call_when_the_pbx_dials_the_customer(
        trace: str, agent: str, number: str, sequence: list[tuple[str, list[str]]], cause: str) -> None:
    """Zammad's caller log shows the outbound call from the dial (the customer's phone ringing), not from the answer:
    ``newCall`` at ``dialing`` with the agent who calls, ``answer`` when the customer answers, ``hangup`` at the end."""
    planner, state = ZammadPlanner(), {}
    steps = []
    for event in trace_events(trace):
        plan = planner.plan(state, event)
        state = plan.state if plan.state is not None else state
        steps.append((event.kind, plan.requests))
    assert [(kind, kinds(list(requests))) for kind, requests in steps] == sequence
    new_call = steps[0][1][0].payload
    assert new_call == {"event": "newCall", "from": agent, "to": number, "direction": "out",
                        "callId": new_call["callId"], "user": agent_ref("main", agent)}
    assert steps[-1][1][0].payload["cause"] == cause


@pytest.mark.parametrize(("trace", "cause"), [("27-click-to-call-busy", "busy"),
                                              ("17-click-to-call-noanswer", "noAnswer")])
def test_an_outbound_call_nobody_took_is_new_call_then_hangup(trace: str, cause: str) -> None:
    (requests,) = plan_all(ZammadPlanner(), trace_events(trace)).values()
    assert kinds(requests) == ["newCall", "hangup"]
    assert requests[0].payload["direction"] == "out"
    assert requests[1].payload["cause"] == cause


def test_a_withheld_number_is_anonymous() -> None:
    (requests,) = plan_all(ZammadPlanner(), trace_events("23-cyrillic-anonymous")).values()
    assert {r.payload["from"] for r in requests} == {"anonymous"}


def test_internal_calls_are_not_zammads_business() -> None:
    assert plan_all(ZammadPlanner(), trace_events("18-internal-call")) == {}


@pytest.mark.parametrize("trace", trace_ids())
def test_every_external_call_gets_new_call_first_and_hangup_last_once(trace: str) -> None:
    planned = plan_all(ZammadPlanner(), trace_events(trace))
    truth = {c["linkedid"]: c for c in load_truth(TRACES / trace)}
    external = {lid for lid, c in truth.items() if c["direction"] != "internal"}
    assert {key.split(":", 1)[1] for key in planned} == external
    for key, requests in planned.items():
        answered = truth[key.split(":", 1)[1]]["answered"]
        assert kinds(requests) == (["newCall", "answer", "hangup"] if answered else ["newCall", "hangup"]), key
        assert len({r.payload["callId"] for r in requests}) == 1
        first = {k: v for k, v in requests[0].payload.items() if k in ("from", "to", "direction")}
        assert all(all(r.payload[k] == v for k, v in first.items()) for r in requests)


def test_a_call_whose_answer_and_end_came_only_from_a_resync_gets_what_is_missing() -> None:
    """A call that rang before an outage and ended during it: the end (from the resync) sends the answer Zammad
    never got, then the hangup; Zammad would count an inbound call hung up in newCall as missed."""
    events = trace_events("01-direct-answered")
    ringing = [e for e in events if e.kind == "ringing"]
    ended = [e for e in events if e.kind == "ended"]
    states: dict = {}
    before = plan_all(ZammadPlanner(), ringing, states)
    after = plan_all(ZammadPlanner(), ended, states)
    assert [kinds(r) for r in before.values()] == [["newCall"]]
    assert [kinds(r) for r in after.values()] == [["answer", "hangup"]]
    # And the end seen a second time (a resync after a restart) sends nothing more.
    assert plan_all(ZammadPlanner(), ended, states) == {}


def test_a_call_first_seen_at_its_end_is_logged_whole() -> None:
    events = [e for e in trace_events("07-queue-ringall-answered") if e.kind == "ended"]
    (requests,) = plan_all(ZammadPlanner(), events).values()
    assert kinds(requests) == ["newCall", "answer", "hangup"]


def test_an_event_without_a_direction_waits_for_the_calls_end() -> None:
    event = next(e for e in trace_events("01-direct-answered") if e.kind == "answered")
    assert ZammadPlanner().plan({}, dataclasses.replace(event, direction=None)).requests == ()
