"""amoCRM's planner over the real traces' calls: one call per call at its end, its fields as amoCRM's calls API
documents them, ``call_status`` from our outcome."""

from __future__ import annotations

import pytest

from cti.crm import call_key
from cti.crm.amocrm import AmoCrmPlanner
from tests.crm.planning import plan_all, trace_events
from tests.traces import TRACES, load_truth, trace_ids


def only_call(trace: str, planner: AmoCrmPlanner | None = None) -> dict:
    planned = plan_all(planner or AmoCrmPlanner(), trace_events(trace))
    (requests,) = planned.values()
    (request,) = requests
    assert request.kind == "call"
    return request.payload


def test_an_answered_inbound_call_is_one_call_at_its_end() -> None:
    events = trace_events("01-direct-answered")
    planned = plan_all(AmoCrmPlanner({"103": 5001}, source="Колл-центр"), events)
    key = call_key("main", "1795479242.0")
    ended = next(e for e in events if e.kind == "ended")
    assert planned == {key: planned[key]}
    (request,) = planned[key]
    assert request.payload == {
        "direction": "inbound", "uniq": key, "duration": 9, "source": "Колл-центр", "phone": "79161234567",
        "call_status": 4, "created_at": int(ended.record.started_at),
        "responsible_user_id": 5001, "created_by": 5001,
        "link": {"$recording": {"pbx": "main", "linkedid": "1795479242.0", "index": 0}},
    }


def test_an_agent_not_in_users_is_left_to_amocrm() -> None:
    payload = only_call("01-direct-answered")
    assert "responsible_user_id" not in payload and "created_by" not in payload


def test_a_call_without_a_recording_has_no_link() -> None:
    assert "link" not in only_call("08-queue-abandon")


def test_an_outbound_call_is_the_customers_number_and_the_agent_who_called() -> None:
    payload = only_call("16-click-to-call-answered", AmoCrmPlanner({"101": "7001"}))
    assert payload["direction"] == "outbound"
    assert payload["phone"] == "89161234567"
    assert payload["call_status"] == 4
    assert payload["duration"] == 13
    assert payload["responsible_user_id"] == 7001


@pytest.mark.parametrize(("trace", "status"), [
    ("08-queue-abandon", 6),  # the caller gave up in the queue: not reached
    ("05-caller-hangup-ringing", 6),
    ("12-ringgroup-noanswer", 6),
    ("03-direct-noanswer-voicemail", 1),  # left a message
    ("04-direct-busy", 7),
    ("27-click-to-call-busy", 7),
    ("17-click-to-call-noanswer", 6),
])
def test_a_call_nobody_took_has_its_status_and_no_duration(trace: str, status: int) -> None:
    payload = only_call(trace, AmoCrmPlanner({"101": 1, "102": 2, "103": 3}))
    assert payload["call_status"] == status
    assert payload["duration"] == 0
    if payload["direction"] == "inbound":
        assert "responsible_user_id" not in payload  # nobody took it


def test_a_withheld_number_is_not_sent() -> None:
    assert plan_all(AmoCrmPlanner(), trace_events("23-cyrillic-anonymous")) == {}


@pytest.mark.parametrize("trace", trace_ids())
def test_every_external_call_with_a_number_is_one_call(trace: str) -> None:
    planned = plan_all(AmoCrmPlanner(), trace_events(trace))
    truth = load_truth(TRACES / trace)
    expected = {c["linkedid"] for c in truth if c["direction"] != "internal"
                and (c["caller"] if c["direction"] == "inbound" else c["called"])}
    assert {key.split(":", 1)[1] for key in planned} == expected
    for key, requests in planned.items():
        (request,) = requests
        call = next(c for c in truth if c["linkedid"] == key.split(":", 1)[1])
        assert request.payload["uniq"] == key
        assert (request.payload["call_status"] == 4) == call["answered"]
        # A call already up at the connection: its answer time is estimated from the channel's age (tests/traces.py).
        assert 0 <= request.payload["duration"] <= call["talk_seconds"] + 4


def test_an_end_seen_twice_is_sent_once() -> None:
    ended = [e for e in trace_events("01-direct-answered") if e.kind == "ended"]
    states: dict = {}
    assert len(plan_all(AmoCrmPlanner(), ended, states)) == 1
    assert plan_all(AmoCrmPlanner(), ended, states) == {}
