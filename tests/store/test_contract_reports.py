"""The reports managers read, against figures worked out by hand on a fixed fixture (``tests/store/report_fixture.py``),
on every store (tests/store/conftest): a contact without a call, a call without a contact, a repeat client, a booking
without a visit, a missed call called back and one never called back, two PBXs and two agents.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from store.repository import Store
from tests.store.report_fixture import DAY, DAY1, T0, fill, period


@pytest.fixture(params=["rows", "kept", "rebuilt"])
async def filled(store: Store, request: pytest.FixtureRequest) -> Store:
    """The fixture on a store that counts rows (never told its zone), that keeps the day counts while the rows are
    written (told its zone first: the triggers count), and that makes them from rows already there (told after):
    every report gives the same hand-worked figures from each."""
    if request.param == "kept":
        assert await store.keep_report_days(ZoneInfo("Europe/Moscow"))
    await fill(store)
    if request.param == "rebuilt":
        assert await store.keep_report_days(ZoneInfo("Europe/Moscow"))
        assert not await store.keep_report_days(ZoneInfo("Europe/Moscow"))  # told again: nothing to do
    return store


async def test_pbx_vs_registered_counts_each_agents_answered_calls_and_phone_contacts_per_day(filled: Store) -> None:
    report = (await filled.report("registered", period())).to_json()
    assert report["days"] == [
        {"day": "2026-03-10", "pbx": "main", "agent": "101", "answered": 2, "registered": 1, "unregistered": 1,
         "phone_contacts": 1},
        {"day": "2026-03-10", "pbx": "spb", "agent": "101", "answered": 1, "registered": 0, "unregistered": 1,
         "phone_contacts": 0},
        {"day": "2026-03-11", "pbx": "main", "agent": "102", "answered": 1, "registered": 1, "unregistered": 0,
         "phone_contacts": 2},
    ]
    assert report["totals"] == {"answered": 4, "registered": 2, "unregistered": 2, "phone_contacts": 3,
                                "registered_share": 0.5}
    assert report["agents"] == [
        {"pbx": "main", "agent": "101", "answered": 2, "registered": 1, "unregistered": 1, "phone_contacts": 1},
        {"pbx": "main", "agent": "102", "answered": 1, "registered": 1, "unregistered": 0, "phone_contacts": 2},
        {"pbx": "spb", "agent": "101", "answered": 1, "registered": 0, "unregistered": 1, "phone_contacts": 0},
    ]
    # The calls with no contact, newest first, with their recording and what "register now" sends.
    assert [(c["linkedid"], c["pbx"], c["agent"], c["recording"]) for c in report["unregistered"]] == [
        ("c2", "main", "101", "c2.wav"), ("c8", "spb", "101", None)]
    assert report["unregistered"][0]["caller_name"] == "Петров"
    assert report["unregistered"][0]["started_at"] == "2026-03-10T10:10:00.000+03:00"
    assert report["unregistered"][0]["register"] == {"type": "script.start", "channel": "phone",
                                                     "number": "79162222222", "linkedid": "c2", "pbx": "main"}
    assert report["unregistered_total"] == 2


async def test_pbx_vs_registered_narrowed_to_a_pbx_and_to_an_agent(filled: Store) -> None:
    main = (await filled.report("registered", period(pbxs=("main",)))).to_json()
    assert [(r["day"], r["agent"], r["answered"], r["registered"], r["phone_contacts"]) for r in main["days"]] == [
        ("2026-03-10", "101", 2, 1, 1), ("2026-03-11", "102", 1, 1, 2)]
    assert [c["linkedid"] for c in main["unregistered"]] == ["c2"]
    agent = (await filled.report("registered", period(agent="102"))).to_json()
    assert agent["totals"]["answered"] == 1 and agent["totals"]["phone_contacts"] == 2
    assert agent["unregistered"] == [] and agent["unregistered_total"] == 0
    # The first day only: the second day's calls and contacts are outside it.
    first = (await filled.report("registered", period(until=DAY1 + DAY))).to_json()
    assert first["totals"] == {"answered": 3, "registered": 1, "unregistered": 2, "phone_contacts": 1,
                               "registered_share": 0.3333}


async def test_a_call_registered_later_leaves_the_list_of_calls_with_no_contact(filled: Store) -> None:
    from tests.store.contact_drafts import follow

    await filled.save_contact(follow("directions", at=T0 + 900, linkedid="c2", caller="79162222222"),
                              repeat_days=180, run_id="late")
    report = (await filled.report("registered", period())).to_json()
    assert [c["linkedid"] for c in report["unregistered"]] == ["c8"]
    assert report["totals"]["registered"] == 3 and report["unregistered_total"] == 1


async def test_contact_statistics_by_day_week_client_type_channel_reason_and_repeat(filled: Store) -> None:
    report = (await filled.report("contacts", period())).to_json()
    assert report["totals"] == {"contacts": 4, "primary": 3, "repeat": 1, "repeat_share": 0.25}
    assert report["days"] == [{"day": "2026-03-10", "contacts": 2, "primary": 2, "repeat": 0},
                              {"day": "2026-03-11", "contacts": 2, "primary": 1, "repeat": 1}]
    assert report["weeks"] == [{"week": "2026-03-09", "contacts": 4, "primary": 3, "repeat": 1}]
    assert report["channels"] == [{"channel": "phone", "contacts": 3, "primary": 2, "repeat": 1},
                                  {"channel": "visit", "contacts": 1, "primary": 1, "repeat": 0}]
    assert report["client_kinds"] == [{"client_kind": None, "contacts": 2, "primary": 2, "repeat": 0},
                                      {"client_kind": "private", "contacts": 2, "primary": 1, "repeat": 1}]
    assert report["reasons"] == [{"reason": "repair_private", "contacts": 2, "primary": 1, "repeat": 1},
                                 {"reason": "other", "contacts": 1, "primary": 1, "repeat": 0},
                                 {"reason": "parts", "contacts": 1, "primary": 1, "repeat": 0}]
    agent = (await filled.report("contacts", period(agent="101"))).to_json()
    assert agent["totals"] == {"contacts": 2, "primary": 2, "repeat": 0, "repeat_share": 0.0}


async def test_the_funnel_for_primary_and_repeat_clients_per_agent_and_per_employee(filled: Store) -> None:
    report = (await filled.report("funnel", period())).to_json()
    assert report["clients"] == [
        {"clients": "all", "contacts": 4, "request": 3, "booking": 3, "visit": 2,
         "request_rate": 0.75, "booking_rate": 1.0, "visit_rate": 0.6667},
        {"clients": "primary", "contacts": 3, "request": 2, "booking": 2, "visit": 1,
         "request_rate": 0.6667, "booking_rate": 1.0, "visit_rate": 0.5},
        {"clients": "repeat", "contacts": 1, "request": 1, "booking": 1, "visit": 1,
         "request_rate": 1.0, "booking_rate": 1.0, "visit_rate": 1.0},
    ]
    assert report["totals"]["contacts"] == 4 and report["totals"]["visit"] == 2
    assert [(r["agent"], r["clients"], r["contacts"], r["request"], r["booking"], r["visit"])
            for r in report["agents"]] == [("101", "primary", 2, 2, 2, 1), ("102", "primary", 1, 0, 0, 0),
                                           ("102", "repeat", 1, 1, 1, 1)]
    assert [(r["employee"], r["employee_name"], r["clients"], r["contacts"], r["booking"], r["visit"])
            for r in report["employees"]] == [
        (None, None, "primary", 1, 0, 0), ("dmitry", "Дмитрий, мастер-приёмщик", "repeat", 1, 1, 1),
        ("elena", "Елена, мастер-приёмщик", "primary", 1, 1, 0), ("parts-desk", "Отдел запчастей", "primary", 1, 1, 1)]


async def test_missed_calls_by_reason_agents_misses_and_time_to_call_back(filled: Store) -> None:
    report = (await filled.report("missed", period())).to_json()
    assert report["reasons"] == [
        {"reason": "no_answer", "missed": 2, "callback": 2, "called_again": 0, "manual": 0, "open": 0},
        {"reason": "abandoned", "missed": 1, "callback": 0, "called_again": 0, "manual": 0, "open": 1},
    ]
    assert report["agents"] == [
        {"pbx": "main", "agent": "101", "misses": 2, "reasons": "busy: 1; no_answer: 1",
         "by_reason": {"busy": 1, "no_answer": 1}},
        {"pbx": "main", "agent": "102", "misses": 2, "reasons": "no_answer: 2", "by_reason": {"no_answer": 2}}]
    totals = report["totals"]
    assert (totals["missed"], totals["callback"], totals["open"], totals["agent_misses"]) == (3, 2, 1, 4)
    # c4 missed at +1200 s, reached at +3005 s: 1805 s; c9 at +2000 s, reached at +2600 s: 600 s.
    assert (totals["callback_count"], totals["callback_median_seconds"], totals["callback_p90_seconds"]) == (
        2, 1202.5, 1805.0)
    assert totals["called_back_share"] == 0.6667
    first = (await filled.report("missed", period(until=DAY1 + DAY, agent="101"))).to_json()
    assert first["totals"]["callback_median_seconds"] == 1805.0
    assert first["agents"] == [{"pbx": "main", "agent": "101", "misses": 1, "reasons": "no_answer: 1",
                                "by_reason": {"no_answer": 1}}]


async def test_a_report_of_an_empty_period_has_zeros_and_no_rows(filled: Store) -> None:
    empty = period(since=DAY1 - 7 * DAY, until=DAY1 - 6 * DAY)
    for name in ("registered", "contacts", "missed"):
        report = (await filled.report(name, empty)).to_json()  # type: ignore[arg-type]
        assert all(not report[t] for t in report if isinstance(report[t], list)), (name, report)
        assert not any(v for v in report["totals"].values()), (name, report["totals"])
    funnel = (await filled.report("funnel", empty)).to_json()
    assert funnel["agents"] == funnel["employees"] == []
    assert [(r["clients"], r["contacts"], r["visit"], r["visit_rate"]) for r in funnel["clients"]] == [
        ("all", 0, 0, None), ("primary", 0, 0, None), ("repeat", 0, 0, None)]
