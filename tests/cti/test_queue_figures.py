"""The supervisor's figures (cti/queue_figures.py) from hand-made journal rows: each expected number is counted
by hand from the rows written in the test."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cti.effects import AgentStateChanged
from cti.queue_figures import DayFigures, day_bounds
from cti.service_level import WaitingCaller
from tests.store.builders import agent_miss, leg, make_call

MOSCOW = ZoneInfo("Europe/Moscow")  # UTC+3, no daylight saving
#: 2026-11-24 00:00 in Moscow, and a day from it.
DAY = datetime(2026, 11, 24, tzinfo=MOSCOW).timestamp()
NEXT = DAY + 86400


def board(ext: str, state: str, at: float, **kw: object) -> AgentStateChanged:
    return AgentStateChanged(extension=ext, name=kw.get("name"), state=state,  # type: ignore[arg-type]
                             paused=bool(kw.get("paused", False)), paused_reason=kw.get("reason"),  # type: ignore[arg-type]
                             paused_queues=(), queues=("support",), device_state="NOT_INUSE", at=at)


def test_the_day_runs_from_local_midnight_in_the_pbx_time_zone() -> None:
    # 2026-11-24 01:30 in Moscow is still 2026-11-23 22:30 UTC: its day starts at Moscow's midnight.
    at = datetime(2026, 11, 24, 1, 30, tzinfo=MOSCOW).timestamp()
    assert day_bounds(at, MOSCOW) == (DAY, NEXT)
    assert day_bounds(at, ZoneInfo("UTC")) == (DAY - 86400 + 3 * 3600, DAY + 3 * 3600)
    # A day with a daylight-saving change is 23 hours long (Berlin, 2026-03-29).
    berlin = ZoneInfo("Europe/Berlin")
    start, end = day_bounds(datetime(2026, 3, 29, 12, 0, tzinfo=berlin).timestamp(), berlin)
    assert (start, end - start) == (datetime(2026, 3, 29, tzinfo=berlin).timestamp(), 23 * 3600)


def test_a_call_counts_for_the_day_it_started_on_its_own_pbx() -> None:
    day = DayFigures("main", DAY, NEXT, within=20)
    assert not day.add_call(make_call("yesterday", queue="support", started_at=DAY - 10, ended_at=DAY + 30))
    assert not day.add_call(make_call("tomorrow", queue="support", started_at=NEXT))
    assert not day.add_call(make_call("elsewhere", queue="support", started_at=DAY + 60, pbx="spb"))
    assert day.add_call(make_call("first-second", queue="support", started_at=DAY))
    assert not day.add_call(make_call("first-second", queue="support", started_at=DAY)), "counted once"
    assert day.calls_counted == 1
    (support,) = day.queues([])
    assert support.unanswered == 1 and support.offered == 1


def test_queue_figures_from_the_days_rows() -> None:
    t = DAY + 9 * 3600  # 09:00
    rows = [
        # answered after 5 s of wait, 30 s of talk (make_call's defaults)
        make_call("a1", queue="support", answered=True, answered_by="101", started_at=t),
        # answered after 40 s, talk 50 s
        make_call("a2", queue="support", answered=True, answered_by="102", started_at=t + 100,
                  answered_at=t + 140, ended_at=t + 190, talk_seconds=50.0),
        # the caller hung up after 30 s: abandoned
        make_call("ab", queue="support", missed_reason="abandoned", started_at=t + 200, ended_at=t + 230),
        # 1 s: a short abandon, in no figure but its own
        make_call("sh", queue="support", missed_reason="short_abandon", started_at=t + 300, ended_at=t + 301),
        # the queue timed out to voicemail after 25 s
        make_call("vm", queue="support", missed_reason="voicemail", started_at=t + 400, ended_at=t + 425),
        # another queue, answered after 10 s
        make_call("s1", queue="sales", answered=True, answered_by="104", started_at=t + 500, answered_at=t + 510,
                  ended_at=t + 530, talk_seconds=20.0),
        # no queue at all: counts for no queue (but for its agent)
        make_call("direct", answered=True, answered_by="103", started_at=t + 600),
    ]
    day = DayFigures("main", DAY, NEXT, within=20)
    for row in rows:
        assert day.add_call(row)
    waiting = [WaitingCaller("main", "support", "w1", "79160000001", None, since=t + 700),
               WaitingCaller("main", "support", "w2", "79160000002", None, since=t + 650),
               WaitingCaller("spb", "support", "w3", "79160000003", None, since=t + 10)]  # another PBX's
    empty, sales, support = day.queues(waiting, known=["support", "empty"])  # by name
    assert (support.queue, support.waiting, support.longest_wait_since) == ("support", 2, t + 650)
    assert (support.answered, support.abandoned, support.short_abandoned, support.unanswered) == (2, 1, 1, 1)
    # Within 20 s: a1 (5 s) of a1, a2, ab, vm (the short abandon counts in neither part).
    assert support.service_level == pytest.approx(1 / 4)
    assert support.average_wait == pytest.approx((5 + 40) / 2)
    assert support.average_talk == pytest.approx((30 + 50) / 2)
    assert (sales.answered, sales.service_level, sales.average_wait, sales.average_talk) == (1, 1.0, 10.0, 20.0)
    # A queue the PBX listed with no call yet: listed, with no service level rather than 0 %.
    assert (empty.queue, empty.waiting, empty.offered, empty.service_level, empty.average_wait) == (
        "empty", 0, 0, None, None)


def test_agent_figures_from_the_days_rows_and_misses() -> None:
    t = DAY + 10 * 3600
    taken = make_call("c1", queue="support", answered=True, answered_by="101", started_at=t,
                      agents_answered=("101",), agents_rung_not_answered=("102",))
    second = make_call("c2", answered=True, answered_by="101", started_at=t + 100, talk_seconds=12.5,
                       agents_answered=("101",))
    # 101 took it and transferred it to 104: each agent's own answered legs (101: 20 s, 104: 35 s).
    transferred = make_call(
        "c3", queue="support", answered=True, answered_by="101", started_at=t + 200, talk_seconds=60.0,
        agents_answered=("101", "104"), transferred_to="104",
        legs=(leg("c3.1", None, role="caller", started_at=t + 200, ended_at=t + 265),
              leg("c3.2", "101", started_at=t + 201, answered_at=t + 205, ended_at=t + 225, status="ANSWER"),
              leg("c3.3", "104", started_at=t + 220, answered_at=t + 230, ended_at=t + 265, status="ANSWER")))
    day = DayFigures("main", DAY, NEXT, within=20)
    for row in (taken, second, transferred):
        day.add_call(row)
    assert day.add_miss(agent_miss(taken, "102", reason="answered_elsewhere"))
    assert not day.add_miss(agent_miss(taken, "102", reason="answered_elsewhere")), "counted once"
    assert day.add_miss(agent_miss(second, "105", rang_at=t + 101))
    assert not day.add_miss(agent_miss(second, "105", rang_at=DAY - 1)), "yesterday's"
    states = [board("101", "in_call", t + 500, name="Анна Смирнова"),
              board("102", "paused", t + 400, paused=True, reason="lunch"),
              board("103", "idle", t + 10)]
    by_ext = {a.extension: a for a in day.agents(states)}
    assert list(by_ext) == ["101", "102", "103", "104", "105"]
    anna = by_ext["101"]
    assert (anna.name, anna.state, anna.since, anna.calls, anna.misses) == ("Анна Смирнова", "in_call", t + 500, 3, 0)
    assert anna.talk_seconds == pytest.approx(30 + 12.5 + 20)
    assert (by_ext["102"].state, by_ext["102"].paused_reason, by_ext["102"].calls, by_ext["102"].misses) == (
        "paused", "lunch", 0, 1)
    assert (by_ext["103"].calls, by_ext["103"].talk_seconds) == (0, 0.0)
    # 104 and 105 are not on the board (yet): listed with their day, state unknown.
    assert (by_ext["104"].state, by_ext["104"].calls, by_ext["104"].talk_seconds) == ("unknown", 1, 35.0)
    assert (by_ext["105"].misses, by_ext["105"].since) == (1, None)
