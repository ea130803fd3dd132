"""The runner as the server uses it: a state saved as JSON and resumed, answers out of turn, hostile values, going
back, discarding, and the typed fields' readings."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.scripts import (
    Done,
    FieldContext,
    FieldSpec,
    Refused,
    RunContext,
    RunEnded,
    RunState,
    Script,
    answer,
    back,
    discard,
    load_script,
    start,
    state_from_json,
    state_to_json,
)
from cti.scripts.fields import MULTILINE_LIMIT, TEXT_LIMIT, read_field

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scripts"
T0 = 1773126000.0  # 2026-03-10 10:00 Moscow
CTX = RunContext(linkedid="1773126000.42", caller="79161234567", agent="101", tz="Europe/Moscow")


@pytest.fixture(scope="module")
def ru() -> Script:
    loaded = load_script((EXAMPLES / "car-service.ru.toml").read_text(encoding="utf-8"), "car-service.ru.toml")
    assert loaded.script is not None
    return loaded.script


def step(script: Script, state: RunState, step_id: str, value: object, at: float) -> RunState:
    result = answer(script, state, step_id, value, at)
    assert isinstance(result, Done), result
    return result.state


def through_json(script: Script, state: RunState) -> RunState:
    """What a reload does: the state as the server stores it (JSON text), read back."""
    restored = state_from_json(script, json.loads(json.dumps(state_to_json(state))))
    assert isinstance(restored, RunState), restored
    return restored


def test_a_state_saved_mid_transfer_resumes_where_the_agent_was(ru: Script) -> None:
    state = start(ru, T0, CTX)
    state = step(ru, state, "reason", {"option": "repair_private"}, T0 + 4)
    state = step(ru, state, "private_client", {"new": {"make": "Шкода", "plate": "а123вс77"}}, T0 + 30)
    state = step(ru, state, "private_master", {"employee": "elena"}, T0 + 33)
    restored = through_json(ru, state)
    assert restored == state
    assert restored.current == "private_master" and restored.transfer_pending
    # The second tab carries on with the restored state: the PBX's result, then the reminder.
    after = answer(ru, restored, "private_master", {"result": "not_answered"}, T0 + 60)
    assert isinstance(after, Done) and after.state.current == "callback"
    assert through_json(ru, after.state) == after.state


def test_a_finished_or_discarded_run_round_trips_too(ru: Script) -> None:
    state = start(ru, T0, CTX)
    state = step(ru, state, "reason", {"option": "other"}, T0 + 2)
    state = step(ru, state, "other", {"note": "вопрос"}, T0 + 9)
    done = step(ru, state, "registered", {}, T0 + 11)
    assert done.status == "registered" and through_json(ru, done) == done
    dropped = discard(ru, state, "звонок сорвался", T0 + 12)
    assert isinstance(dropped, Done) and dropped.state.status == "discarded"
    assert through_json(ru, dropped.state) == dropped.state


def test_a_state_is_restored_only_against_the_same_script_version(ru: Script) -> None:
    state = step(ru, start(ru, T0, CTX), "reason", {"option": "parts"}, T0 + 3)
    saved = state_to_json(state)
    edited = replace(ru, version="0123456789ab")
    refused = state_from_json(edited, saved)
    assert isinstance(refused, Refused) and refused.code == "script_mismatch"
    assert isinstance(answer(edited, state, "parts_request", {"part": "x"}, T0 + 5), Refused)


@pytest.mark.parametrize("tamper", [
    lambda s: s.update(stack="nonsense"),
    lambda s: s["stack"][0].update(step="parts_desk"),
    lambda s: s["stack"][0]["inputs"][0].__setitem__(1, {"option": "teleport"}),
    lambda s: s["stack"][0]["inputs"][0].__setitem__(0, float("nan")),
    lambda s: s.update(status="registered"),
    lambda s: s["context"].update(channel="pigeon"),
    lambda s: s.update(times=[["ghost", 1, 2]]),
    lambda s: s.update(format=99),
    lambda s: s.clear(),
])
def test_a_tampered_or_broken_state_is_refused_not_raised(ru: Script, tamper: object) -> None:
    state = step(ru, start(ru, T0, CTX), "reason", {"option": "parts"}, T0 + 3)
    saved = state_to_json(state)
    tamper(saved)  # type: ignore[operator]
    refused = state_from_json(ru, saved)
    assert isinstance(refused, Refused) and refused.code in ("bad_state", "script_mismatch")


def test_answering_a_step_that_is_not_current_errs_cleanly(ru: Script) -> None:
    state = start(ru, T0, CTX)
    refused = answer(ru, state, "private_master", {"employee": "elena"}, T0 + 1)
    assert isinstance(refused, Refused) and refused.code == "not_current"
    assert refused.message == "the current step is 'reason', not 'private_master'"
    assert isinstance(answer(ru, state, "no-such-step", {}, T0 + 1), Refused)
    finished = step(ru, step(ru, state, "reason", {"option": "wrong_number"}, T0 + 1), "not_a_contact", {}, T0 + 2)
    late = answer(ru, finished, "not_a_contact", {}, T0 + 3)
    assert isinstance(late, Refused) and late.code == "finished"


@pytest.mark.parametrize("value", [None, "repair_private", ["option"], {"option": "nope"}, {"choice": "parts"},
                                   {"option": {"deep": {"deeper": {"deepest": 1}}}}, {"option": float("inf")}])
def test_a_malformed_answer_is_refused(ru: Script, value: object) -> None:
    result = answer(ru, start(ru, T0, CTX), "reason", value, T0 + 1)
    assert isinstance(result, Refused) and result.code in ("bad_answer", "bad_value")


def test_a_hostile_text_is_kept_as_data_and_bounded(ru: Script) -> None:
    state = step(ru, start(ru, T0, CTX), "reason", {"option": "parts"}, T0 + 1)
    hostile = "<img src=x onerror=alert(1)>\r\nколодки\x1b[2J\x00 & «скобы»"
    moved = step(ru, state, "parts_request", {"part": hostile}, T0 + 5)
    kept = moved.stack[-2].answer
    assert kept is not None and kept["part"] == "<img src=x onerror=alert(1)> колодки[2J & «скобы»"
    too_big = answer(ru, state, "parts_request", {"part": "х" * 100_000}, T0 + 5)
    assert isinstance(too_big, Refused) and too_big.fields == {"part": f"too long: at most {TEXT_LIMIT} characters"}
    huge = answer(ru, state, "parts_request", {"part": "х" * 300_000}, T0 + 5)
    assert isinstance(huge, Refused) and huge.code == "too_long"
    note = step(ru, step(ru, start(ru, T0, CTX), "reason", {"option": "other"}, T0 + 1), "other",
                {"note": "строка 1\r\nстрока 2\n<b>жирно</b>"}, T0 + 2)
    assert note.stack[-2].answer == {"note": "строка 1\nстрока 2\n<b>жирно</b>"}
    assert json.loads(json.dumps(state_to_json(note))) == state_to_json(note)


def test_going_back_reopens_the_previous_step_and_keeps_the_time_spent(ru: Script) -> None:
    state = step(ru, start(ru, T0, CTX), "reason", {"option": "complaint"}, T0 + 3)
    went = back(ru, state, T0 + 10)
    assert isinstance(went, Done) and went.state.current == "reason" and went.state.route == ("reason",)
    state = step(ru, went.state, "reason", {"option": "other"}, T0 + 12)
    state = step(ru, state, "other", {"note": "x"}, T0 + 20)
    done = answer(ru, state, "registered", {}, T0 + 21)
    assert isinstance(done, Done)
    [ready] = done.effects
    draft = ready.draft  # type: ignore[union-attr]
    assert draft.route == ("reason", "other", "registered") and draft.reason == "other"
    assert [(t.step, t.seconds) for t in draft.times] == [("reason", 3), ("complaint", 7), ("reason", 2),
                                                          ("other", 8), ("registered", 1)]
    assert draft.seconds_at("reason") == 5


def test_there_is_no_way_back_over_a_transfer_or_from_the_first_step(ru: Script) -> None:
    state = start(ru, T0, CTX)
    first = back(ru, state, T0 + 1)
    assert isinstance(first, Refused) and first.code == "no_way_back"
    state = step(ru, state, "reason", {"option": "repair_private"}, T0 + 1)
    state = step(ru, state, "private_client", {"contact_id": 5}, T0 + 2)
    state = step(ru, state, "private_master", {"employee": "dmitry"}, T0 + 3)
    pending = back(ru, state, T0 + 4)
    assert isinstance(pending, Refused) and pending.code == "transfer_pending"
    again = answer(ru, state, "private_master", {"employee": "elena"}, T0 + 4)
    assert isinstance(again, Refused) and again.code == "transfer_pending"
    state = step(ru, state, "private_master", {"result": "not_answered"}, T0 + 20)
    over = back(ru, state, T0 + 21)
    assert isinstance(over, Refused) and over.message == "the transfer was made: it cannot be taken back"


def test_a_run_discarded_with_a_reason_ends_without_a_contact(ru: Script) -> None:
    state = step(ru, start(ru, T0, CTX), "reason", {"option": "parts"}, T0 + 1)
    assert isinstance(discard(ru, state, "  ", T0 + 2), Refused)
    dropped = discard(ru, state, "клиент положил трубку", T0 + 2)
    assert isinstance(dropped, Done)
    [ended] = dropped.effects
    assert isinstance(ended, RunEnded)
    assert (ended.draft.status, ended.draft.discard_reason, ended.draft.reason) == ("discarded",
                                                                                   "клиент положил трубку", "parts")


def test_a_reminder_needs_a_number_to_call_back(ru: Script) -> None:
    withheld = replace(CTX, caller=None)
    state = step(ru, start(ru, T0, withheld), "reason", {"option": "current_repair"}, T0 + 1)
    state = step(ru, state, "earlier", {"call": "1773000000.7"}, T0 + 2)
    state = step(ru, state, "repair_master", {"employee": "elena"}, T0 + 3)
    state = step(ru, state, "repair_master", {"result": "not_answered"}, T0 + 9)
    refused = answer(ru, state, "callback", {"due": "+2h"}, T0 + 10)
    assert isinstance(refused, Refused) and refused.fields == {"number": "no number to call back: type it"}
    past = answer(ru, state, "callback", {"due": "09:00", "number": "8 916 000-11-22"}, T0 + 10)
    assert isinstance(past, Refused) and past.fields == {"due": "'09:00' is in the past"}
    done = answer(ru, state, "callback", {"due": "18:00", "number": "8 916 000-11-22"}, T0 + 10)
    assert isinstance(done, Done)
    [reminder] = done.effects
    assert reminder.number == "79160001122" and reminder.due == "2026-03-10T18:00:00+03:00"  # type: ignore[union-attr]


FIELDS = FieldContext(now=T0, tz="Europe/Moscow", region="RU")


@pytest.mark.parametrize(("type_", "raw", "value"), [
    ("phone", "8 (916) 123-45-67", "79161234567"),
    ("phone", "+7 916 1234567", "79161234567"),
    ("plate", "a 123 bc 77 rus", "А 123 ВС 77"),
    ("make", "Njqjnf", "Toyota"),
    ("make", "тойо", "Toyota"),
    ("make", "Jaecoo", "Jaecoo"),
    ("date", "10.03", "2026-03-10"),
    ("date", "2026-12-31", "2026-12-31"),
    ("time", "9:05", "09:05"),
    ("datetime", "+90m", "2026-03-10T11:30:00+03:00"),
    ("datetime", "2026-03-11T08:00:00+00:00", "2026-03-11T11:00:00+03:00"),
    ("number", "2,5", 2.5),
    ("text", "  два   пробела ", "два   пробела"),
])
def test_typed_values_are_normalised(type_: str, raw: str, value: object) -> None:
    read = read_field(FieldSpec("f", type_, "F"), raw, FIELDS)  # type: ignore[arg-type]
    assert (read.value, read.error) == (value, None)


@pytest.mark.parametrize(("spec", "raw", "error"), [
    (FieldSpec("f", "phone", "F"), "101", "'101' is not a phone number"),
    (FieldSpec("f", "phone", "F"), "call me", "'call me' is not a phone number"),
    (FieldSpec("f", "plate", "F"), "!!!", "'!!!' is not a licence plate"),
    (FieldSpec("f", "make", "F"), "M", "'M' may be Mazda, Mercedes-Benz, Mitsubishi: type more letters"),
    (FieldSpec("f", "date", "F"), "31.02.2026", "'31.02.2026' is not a date (10.03.2026 or 2026-03-10)"),
    (FieldSpec("f", "date", "F", future=True), "01.03.2026", "2026-03-01 is in the past"),
    (FieldSpec("f", "date", "F"), "01.03.2062", "2062-03-01 is out of range"),
    (FieldSpec("f", "time", "F"), "25:00", "'25:00' is not a time (15:30)"),
    (FieldSpec("f", "number", "F", integer=True), "2.5", "expected a whole number"),
    (FieldSpec("f", "number", "F", maximum=10), "11", "at most 10"),
    (FieldSpec("f", "number", "F"), "1e400", "'1e400' is not a number"),
    (FieldSpec("f", "employee", "F", list="masters"), "ghost", "'ghost' is not in the list 'masters'"),
    (FieldSpec("f", "text", "F"), "", "required"),
    (FieldSpec("f", "text", "F", multiline=True), "я" * (MULTILINE_LIMIT + 1),
     f"too long: at most {MULTILINE_LIMIT} characters"),
    (FieldSpec("f", "text", "F"), 42, "expected text"),
])
def test_bad_values_get_a_clear_error(spec: FieldSpec, raw: object, error: str) -> None:
    read = read_field(spec, raw, FIELDS)
    assert read.error == error


def test_an_optional_field_left_empty_is_none() -> None:
    assert read_field(FieldSpec("f", "plate", "F", required=False), "  ", FIELDS).value is None
    assert read_field(FieldSpec("f", "date", "F", required=False), None, FIELDS).error is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.sampled_from(["repair_private", "repair_corporate", "current_repair", "parts", "complaint", "other",
                       "elena", "parts-desk", "answered", "not_answered", "+1h", "Шкода", "а123вс77", "8 916 1234567"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_KEYS = st.sampled_from(["option", "new", "contact_id", "vehicle_id", "found_by", "call", "contact", "employee",
                         "none", "result", "mode", "due", "note", "number", "part", "make", "model", "what",
                         "about", "when", "cars", "work", "date", "time", "person", "phone", "name", "plate"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.lists(st.dictionaries(_KEYS, _JSON, max_size=5), max_size=8))
def test_any_json_answer_is_done_or_refused_never_raised(ru: Script, route: list[dict[str, object]]) -> None:
    state = start(ru, T0, CTX)
    for n, value in enumerate(route):
        if state.current is None:
            break
        result = answer(ru, state, state.current, value, T0 + n)
        assert isinstance(result, Done | Refused)
        if isinstance(result, Done):
            state = result.state
            assert through_json(ru, state) == state
