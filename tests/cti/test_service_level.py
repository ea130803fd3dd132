"""The service-level rule (cti/service_level.py) on plain journal rows."""

from __future__ import annotations

from cti.service_level import queue_call, service_level
from tests.store.builders import T0, make_call


def test_a_call_that_went_into_no_queue_is_no_queue_call() -> None:
    assert queue_call(make_call("direct")) is None
    assert queue_call(make_call("out", direction="outbound", queue="support")) is None


def test_the_wait_runs_from_arrival_to_the_answer_or_to_the_end() -> None:
    answered = queue_call(make_call("a", queue="support", answered=True, answered_by="101"))
    assert answered is not None and answered.wait_seconds == 5.0 and answered.answered
    left = queue_call(make_call("b", queue="support", missed_reason="abandoned", ended_at=T0 + 42.0))
    assert left is not None and left.wait_seconds == 42.0 and left.abandoned and not left.short_abandon


def test_short_abandons_count_in_neither_part_and_unanswered_calls_count_against() -> None:
    calls = [
        queue_call(make_call("fast", queue="support", answered=True, answered_by="101")),  # waited 5 s
        queue_call(make_call("slow", queue="support", answered=True, answered_by="102",
                             answered_at=T0 + 40.0, ended_at=T0 + 90.0)),
        queue_call(make_call("gone", queue="support", missed_reason="abandoned", ended_at=T0 + 30.0)),
        queue_call(make_call("oops", queue="support", missed_reason="short_abandon", ended_at=T0 + 1.0)),
        queue_call(make_call("vm", queue="support", missed_reason="voicemail", ended_at=T0 + 25.0)),
    ]
    counted = [c for c in calls if c is not None]
    assert service_level(counted, within=20) == 1 / 4
    assert service_level(counted, within=60) == 2 / 4
    assert [c.abandoned for c in counted] == [False, False, True, False, False]


def test_no_counted_call_is_no_service_level_not_zero() -> None:
    only_short = queue_call(make_call("oops", queue="support", missed_reason="short_abandon", ended_at=T0 + 1.0))
    assert only_short is not None
    assert service_level([only_short], within=20) is None
    assert service_level([], within=20) is None
