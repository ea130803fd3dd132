"""Bitrix24's planner, pure: real traces' events (``tests/crm/planning.py``) and hand-made ones.

Per call: ``register`` once at the first ring (``EXTERNAL_CALL_ID`` the PBX's call), ``show`` to each phone that
rings, ``hide`` for the others at the answer and for a phone that stops ringing, ``finish`` only at the end with the
outcome's ``STATUS_CODE`` and the agent who answered last, ``attachRecord`` after it for an answered call with a
recording, ``attachTranscription`` only after ``finish``. A call Bitrix24 started is only finished.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cti.crm import CrmCallEvent, CrmRequest
from cti.crm.bitrix24 import MISSED_STATUS, Bitrix24Planner, status_code
from cti.records import CallRecord
from cti.transcripts import Transcript, Word
from tests.crm.planning import plan_all, trace_events

PLANNER = Bitrix24Planner(users={"101": 1, "102": "2"})


def kinds(requests: list[CrmRequest]) -> list[str]:
    return [r.kind for r in requests]


def users(request: CrmRequest) -> tuple[list[Any], list[str]]:
    return list(request.payload.get("USER_ID", [])), list(request.payload.get("USER_PHONE_INNER", []))


def test_queue_call_rings_three_answered_by_one() -> None:
    (call,) = plan_all(PLANNER, trace_events("07-queue-ringall-answered")).values()
    assert kinds(call) == ["register", "show", "show", "show", "hide", "finish", "attachRecord"]
    register = call[0].payload
    assert register["TYPE"] == 2 and register["USER_ID"] == 1 and register["PHONE_NUMBER"] == "79161234500"
    assert register["EXTERNAL_CALL_ID"] == "main:1795479360.12" and register["SHOW"] == 0
    assert register["CRM_CREATE"] == 1 and register["LINE_NUMBER"] == "74951234567"
    assert register["CALL_START_DATE"].endswith("+00:00")
    assert [users(r) for r in call[1:4]] == [([1], []), ([2], []), ([], ["105"])]
    assert users(call[4]) == ([1], ["105"])  # the two others, when 102 answered
    finish = call[5].payload
    assert finish["CALL_ID"] == {"$remote": "call_id"} and finish["USER_ID"] == 2
    assert finish["STATUS_CODE"] == "200" and finish["DURATION"] == 13
    assert call[6].payload == {"CALL_ID": {"$remote": "call_id"}, "FILENAME": "1795479360.12.wav",
                               "RECORD_URL": {"$recording": {"pbx": "main", "linkedid": "1795479360.12",
                                                             "index": 0}}}


@pytest.mark.parametrize(("trace", "code", "sequence"), [
    ("08-queue-abandon", "603-S", ["register", "show", "show", "show", "hide", "hide", "hide", "finish"]),
    ("05-caller-hangup-ringing", "603-S", ["register", "show", "hide", "finish"]),
    ("12-ringgroup-noanswer", "304", ["register", "show", "show", "hide", "hide", "finish"]),
    ("03-direct-noanswer-voicemail", "304", ["register", "show", "hide", "finish"]),
    # The phone refused busy at once: never shown; the call is registered at its end.
    ("04-direct-busy", "486", ["register", "finish"]),
    ("17-click-to-call-noanswer", "304", ["register", "finish"]),
    ("27-click-to-call-busy", "486", ["register", "finish"]),
])
def test_a_missed_call_is_finished_with_its_code_and_no_record(trace: str, code: str, sequence: list[str]) -> None:
    (call,) = plan_all(PLANNER, trace_events(trace)).values()
    assert kinds(call) == sequence
    assert call[-1].payload["STATUS_CODE"] == code and call[-1].payload["DURATION"] == 0


def test_a_transfer_stays_one_call_finished_by_the_target() -> None:
    (call,) = plan_all(PLANNER, trace_events("13-blind-transfer-redirect")).values()
    assert kinds(call) == ["register", "show", "show", "hide", "finish", "attachRecord"]
    assert users(call[2]) == ([], ["104"]) and users(call[3]) == ([1], [])
    assert call[4].payload["USER_PHONE_INNER"] == "104" and call[4].payload["STATUS_CODE"] == "200"
    (unanswered,) = plan_all(PLANNER, trace_events("15-blind-transfer-noanswer")).values()
    assert kinds(unanswered) == ["register", "show", "show", "hide", "finish", "attachRecord"]
    assert unanswered[4].payload["USER_ID"] == 1  # 105 never took it: 101 answered last


def test_outbound_call_is_type_1_for_the_agent_who_dialled() -> None:
    (call,) = plan_all(PLANNER, trace_events("33-phone-outbound-remote-hangup")).values()
    assert kinds(call) == ["register", "finish", "attachRecord"]
    assert call[0].payload["TYPE"] == 1 and call[0].payload["USER_PHONE_INNER"] == "103"
    assert call[0].payload["PHONE_NUMBER"] == "84957770033" and "LINE_NUMBER" not in call[0].payload


def requests_by_event(planner: Bitrix24Planner, trace: str) -> list[tuple[str, list[CrmRequest]]]:
    """Each CRM event of a trace's one call and what the planner asked for at it."""
    state: dict[str, Any] = {}
    out = []
    for event in trace_events(trace):
        plan = planner.plan(state, event)
        state = plan.state if plan.state is not None else state
        out.append((event.kind, list(plan.requests)))
    return out


@pytest.mark.parametrize(("trace", "agent", "user", "number", "code", "talk"), [
    ("33-phone-outbound-remote-hangup", "103", {"USER_PHONE_INNER": "103"}, "84957770033", "200", 8),
    ("16-click-to-call-answered", "101", {"USER_ID": 1}, "89161234567", "200", 13),
    ("27-click-to-call-busy", "102", {"USER_ID": 2}, "89035550027", "486", 0),
    ("17-click-to-call-noanswer", "101", {"USER_ID": 1}, "84951112200", "304", 0),
])
def test_an_outbound_call_pops_its_card_when_the_pbx_dials_the_customer(
        trace: str, agent: str, user: dict[str, Any], number: str, code: str, talk: int) -> None:
    """Registered with its card shown (``SHOW`` 1) for the agent at ``dialing``, while the customer's phone rings;
    nothing at the customer's answer; finished at the end with the outcome's code."""
    steps = requests_by_event(PLANNER, trace)
    dialing, *rest, (last, end) = steps
    assert dialing[0] == "dialing"
    assert kinds(dialing[1]) == ["register"]
    register = dialing[1][0].payload
    assert register == {**user, "PHONE_NUMBER": number, "TYPE": 1, "CALL_START_DATE": register["CALL_START_DATE"],
                        "CRM_CREATE": 1, "SHOW": 1, "EXTERNAL_CALL_ID": register["EXTERNAL_CALL_ID"]}
    assert all(requests == [] for _, requests in rest)  # the answer (if any) sends nothing
    assert last == "ended" and kinds(end)[:1] == ["finish"]
    assert end[0].payload == {"CALL_ID": {"$remote": "call_id"}, **user, "DURATION": talk, "STATUS_CODE": code,
                              "ADD_TO_CHAT": 0}
    assert kinds(end)[1:] == (["attachRecord"] if code == "200" else [])


def test_an_outbound_call_seen_first_at_its_answer_still_pops_and_one_seen_at_its_end_does_not() -> None:
    """After a restart the dial may not have been seen: registered at the answer with its card, or at the end
    without one (the call is over)."""
    events = [e for e in trace_events("33-phone-outbound-remote-hangup") if e.kind != "dialing"]
    answered = PLANNER.plan({}, events[0])
    assert events[0].kind == "answered" and kinds(list(answered.requests)) == ["register"]
    assert answered.requests[0].payload["SHOW"] == 1
    ended = PLANNER.plan({}, events[-1])
    assert kinds(list(ended.requests)) == ["register", "finish", "attachRecord"]
    assert ended.requests[0].payload["SHOW"] == 0


def test_a_call_bitrix24_started_is_not_registered_again_at_its_dial() -> None:
    """ONEXTERNALCALLSTART registered it (and Bitrix24 showed its card): the dial sends nothing, the end finishes it."""
    started = {"started_by": {"call_id": "externalCall.abc.1", "user_id": 17}}
    states = {"main:1795479586.44": started}
    (call,) = plan_all(PLANNER, trace_events("16-click-to-call-answered"), states).values()
    assert kinds(call) == ["finish", "attachRecord"]
    assert call[0].payload["CALL_ID"] == "externalCall.abc.1" and call[0].payload["USER_ID"] == 17


def test_every_trace_finishes_each_call_once_after_its_register_and_never_before_the_end() -> None:
    from tests.traces import trace_ids

    for trace in trace_ids():
        events = trace_events(trace)
        states: dict[str, dict[str, Any]] = {}
        for key, call in plan_all(PLANNER, events, states).items():
            assert kinds(call).count("register") == 1, (trace, key)
            assert kinds(call).count("finish") == 1, (trace, key)
            finish = kinds(call).index("finish")
            assert kinds(call)[0] == "register" and set(kinds(call)[finish + 1:]) <= {"attachRecord"}
            assert states[key]["finished"] is True


def test_two_calls_from_one_number_at_once_have_their_own_external_call_id() -> None:
    events = [CrmCallEvent("ringing", "main", lid, 1000.0, "inbound", "79160000000", "74950000001", agent=agent)
              for lid, agent in (("1.1", "101"), ("1.2", "102"))]
    calls = plan_all(PLANNER, events)
    assert [c[0].payload["EXTERNAL_CALL_ID"] for c in calls.values()] == ["main:1.1", "main:1.2"]
    assert calls["main:1.1"][0].payload["PHONE_NUMBER"] == calls["main:1.2"][0].payload["PHONE_NUMBER"]


def record(**kw: Any) -> CallRecord:
    base: dict[str, Any] = dict(
        linkedid="9.1", direction="outbound", caller="101", caller_name=None, called="89160000000",
        answered=True, answered_by="89160000000", missed_reason=None, talk_seconds=42.4, transferred_to=None,
        agents_rung_not_answered=(), recording="a.wav", started_at=1000.0, answered_at=1003.0, ended_at=1045.0,
        outcome="answered", recordings=("a.wav",))
    base.update(kw)
    return CallRecord(**base)


def test_a_call_bitrix24_started_is_only_finished_with_its_call_id() -> None:
    started = {"started_by": {"call_id": "externalCall.abc.1", "user_id": 17}}
    answered = CrmCallEvent("answered", "main", "9.1", 1003.0, "outbound", "101", "89160000000", agent="101")
    plan = PLANNER.plan(started, answered)
    assert plan.requests == () and plan.state is not None
    ended = CrmCallEvent("ended", "main", "9.1", 1045.0, "outbound", "101", "89160000000", agent="101",
                         record=record())
    end = PLANNER.plan(plan.state, ended)
    assert kinds(list(end.requests)) == ["finish", "attachRecord"]
    assert end.requests[0].payload == {"CALL_ID": "externalCall.abc.1", "USER_ID": 17, "DURATION": 42,
                                       "STATUS_CODE": "200", "ADD_TO_CHAT": 0}
    assert end.requests[1].payload["CALL_ID"] == "externalCall.abc.1"


def test_transcript_goes_after_finish_in_whole_seconds_by_side() -> None:
    transcript = Transcript(words=(Word("agent", "Добрый", 0.4, 0.8, 1.0), Word("agent", "день", 0.9, 1.2, 1.0),
                                   Word("customer", "Здравствуйте", 1.5, 2.6, 1.0),
                                   Word("unknown", "да", 3.0, 3.1, 0.5)),
                            engine="vosk", model="m", duration=4.0)
    event = CrmCallEvent("transcript", "main", "9.1", 2000.0, "outbound", "101", "89160000000",
                         transcript=transcript)
    assert PLANNER.plan({"registered": True, "direction": "inbound"}, event).requests == ()
    plan = PLANNER.plan({"registered": True, "finished": True, "direction": "inbound"}, event)
    (request,) = plan.requests
    assert request.kind == "attachTranscription"
    assert request.payload["MESSAGES"] == [
        {"SIDE": "User", "START_TIME": 0, "STOP_TIME": 2, "MESSAGE": "Добрый день"},
        {"SIDE": "Client", "START_TIME": 1, "STOP_TIME": 4, "MESSAGE": "Здравствуйте да"}]
    assert plan.state is not None and PLANNER.plan(plan.state, event).requests == ()  # once


def test_every_missed_reason_the_model_gives_has_a_status_code() -> None:
    reasons = {"no_answer", "busy", "abandoned", "short_abandon", "caller_hangup_ringing", "voicemail",
               "unavailable", "failed"}
    assert reasons <= set(MISSED_STATUS)
    assert status_code(record(outcome="failed", answered=False, missed_reason="failed")) == "503"
    assert status_code(record(outcome="missed", answered=False, missed_reason="short_abandon")) == "603-S"


def test_call_start_date_is_the_sites_time_with_its_offset() -> None:
    """As the portal shows it to its users: the site's zone ([pbx] timezone), with its offset."""
    (moscow,) = plan_all(Bitrix24Planner(tz=ZoneInfo("Europe/Moscow")),
                         trace_events("07-queue-ringall-answered")).values()
    (utc,) = plan_all(PLANNER, trace_events("07-queue-ringall-answered")).values()
    here, there = (datetime.fromisoformat(c[0].payload["CALL_START_DATE"]) for c in (moscow, utc))
    assert moscow[0].payload["CALL_START_DATE"].endswith("+03:00") and here == there
    assert here.hour == (there.hour + 3) % 24


def test_the_responsible_manager_is_shown_the_card_after_the_first_agent_and_hidden_after() -> None:
    routing = Bitrix24Planner(users={"101": 1}, route_to_responsible=True)
    (answered,) = plan_all(routing, trace_events("07-queue-ringall-answered")).values()
    assert kinds(answered) == ["register", "show", "showResponsible", "show", "show", "hide", "hideResponsible",
                               "finish", "attachRecord"]
    assert answered[2].payload == {"CALL_ID": {"$remote": "call_id"}, "PHONE_NUMBER": "79161234500"}
    assert answered[6].payload == {"CALL_ID": {"$remote": "call_id"}, "KEEP": {"USER_PHONE_INNER": "102"}}
    (abandoned,) = plan_all(routing, trace_events("08-queue-abandon")).values()
    assert kinds(abandoned)[-2:] == ["hideResponsible", "finish"] and "KEEP" not in abandoned[-2].payload
    assert kinds(abandoned).count("showResponsible") == 1
    (outbound,) = plan_all(routing, trace_events("33-phone-outbound-remote-hangup")).values()
    assert "showResponsible" not in kinds(outbound)
    withheld = CrmCallEvent("ringing", "main", "7.1", 1000.0, "inbound", None, "74950000001", agent="101")
    assert kinds(list(routing.plan({}, withheld).requests)) == ["register", "show"]
