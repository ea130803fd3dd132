"""The reports' day counts (``store/report_days.py``) give exactly what counting the rows gives, on every store.

A report over whole days of the kept zone reads the counts; the same report asked in a zone with the same clock and no
name (nothing is kept in it) counts the rows. The two are compared for periods that start and end at midnight, inside
a day, on one PBX, across a clock change, after the rows changed (a call saved again with another agent, an entry
closed by hand and reopened, a contact's stage set, a call registered later), after rows were deleted, and after the
zone itself changed.
The hand-worked figures of the same fixture are in ``test_contract_reports.py`` (the counts, kept or rebuilt, pass
them too).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cti.reports import REPORTS, ReportQuery
from store.repository import Store
from tests.store.builders import agent_miss, make_call, missed_for
from tests.store.contact_drafts import follow
from tests.store.report_fixture import DAY, DAY1, DAY3, T0, fill

MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")


class Unnamed(tzinfo):
    """``zone``'s clock under no name: the store keeps no day counts in it, so a report in it counts rows."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone

    def _as_zone(self, dt: datetime | None) -> datetime | None:
        return None if dt is None else dt.replace(tzinfo=self.zone)

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return self.zone.utcoffset(self._as_zone(dt))

    def dst(self, dt: datetime | None) -> timedelta | None:
        return self.zone.dst(self._as_zone(dt))

    def tzname(self, dt: datetime | None) -> str | None:
        return self.zone.tzname(self._as_zone(dt))

    def fromutc(self, dt: datetime) -> datetime:
        return self.zone.fromutc(dt.replace(tzinfo=self.zone)).replace(tzinfo=self)


async def both_ways(store: Store, query: ReportQuery) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every report from the day counts and from the rows."""
    assert isinstance(query.tz, ZoneInfo)
    rows = dataclasses.replace(query, tz=Unnamed(query.tz))
    return [((await store.report(name, query)).to_json(), (await store.report(name, rows)).to_json())
            for name in REPORTS]


def periods(tz: ZoneInfo = MOSCOW) -> list[ReportQuery]:
    """The fixture's days whole, cut inside a day at either end, one day, less than a day, one PBX, one agent."""
    return [ReportQuery(since, until, tz=tz, pbxs=pbxs, agent=agent) for since, until, pbxs, agent in (
        (DAY1, DAY3, None, None), (DAY1 - DAY, DAY3 + DAY, None, None), (T0 + 500, DAY3, None, None),
        (DAY1, T0 + DAY + 1000, None, None), (T0 + 500, T0 + DAY + 1000, None, None), (DAY1 + DAY, DAY3, None, None),
        (T0, T0 + 3000, None, None), (DAY1, DAY3, ("spb",), None), (DAY1, DAY3, ("main", "spb"), None),
        (T0 + 500, DAY3, ("main",), None), (DAY1, DAY3, None, "101"), (T0 + 500, DAY3, ("main",), "102"))]


async def assert_same(store: Store, queries: list[ReportQuery]) -> None:
    for query in queries:
        for counted, from_rows in await both_ways(store, query):
            assert counted == from_rows, (query, counted["report"])


async def test_the_counts_kept_as_rows_are_written_give_the_rows_figures(store: Store) -> None:
    assert await store.keep_report_days(MOSCOW)
    await fill(store)
    await assert_same(store, periods())
    # Not an empty comparison: the fixture's figures are there.
    [registered, *_] = await both_ways(store, periods()[0])
    assert registered[0]["totals"]["answered"] == 4 and registered[0]["totals"]["phone_contacts"] == 3


async def test_rows_changed_after_they_were_counted_are_counted_again(store: Store) -> None:
    ids = await fill(store)
    assert await store.keep_report_days(MOSCOW)
    # A call saved again (a resync) with another agent who answered, and a missed call saved again as answered.
    store.stage_call(make_call("c2", caller="79162222222", answered=True, answered_by="102", started_at=T0 + 600,
                               recording="c2.wav", caller_name="Петров"), None, [])
    store.stage_call(make_call("c6", caller="79164444444", answered=True, answered_by="101",
                               started_at=T0 + DAY + 100), None, [])
    await store.flush()
    # An entry closed by hand, another closed and opened again; stages set; a call registered after the fact.
    entries = {e.linkedid: e for e in await store.list_missed()}
    c9 = entries["c9"].id
    assert c9 is not None
    await store.reopen_missed(c9, "no: the customer did not get through", by="admin", at=T0 + DAY + 3000)
    await store.close_missed(c9, "wrote an e-mail", by="admin", at=T0 + DAY + 3100)
    await store.set_contact_stage(ids["K4"], "request", at=T0 + DAY + 900, by="dms", external_id="R-4")
    await store.set_contact_stage(ids["K1"], "visit", at=T0 + 2 * DAY, by="dms", external_id="V-1")
    await store.save_contact(follow("directions", at=T0 + 900, linkedid="c2", caller="79162222222"),
                             repeat_days=180, run_id="late")
    # A new call with its miss, and a contact on the second day, after the counts were made.
    late = make_call("c11", caller="79168888888", started_at=T0 + DAY + 4000)
    store.stage_call(late, missed_for(late), [agent_miss(late, "101")])
    await store.flush()
    await store.save_contact(follow("parts", at=T0 + DAY + 4100, linkedid=None, caller="79168888888",
                                    agent="101", channel="internet"), repeat_days=180, run_id="k5")
    await assert_same(store, periods())
    [registered, contacts, funnel, missed] = [counted for counted, _ in await both_ways(store, periods()[0])]
    assert registered["totals"] == {"answered": 5, "registered": 3, "unregistered": 2, "phone_contacts": 4,
                                    "registered_share": 0.6}
    assert contacts["totals"]["contacts"] == 6
    assert funnel["totals"]["visit"] == 3
    assert missed["totals"]["missed"] == 4 and missed["totals"]["manual"] == 1  # c6 answered at last keeps its entry


async def test_another_zone_makes_the_counts_again_and_the_first_zone_counts_rows(store: Store) -> None:
    await fill(store)
    assert await store.keep_report_days(MOSCOW)
    moscow = [counted for counted, _ in await both_ways(store, periods()[0])]
    # Calls and contacts around Berlin's clock change (2026-03-29, 02:00 -> 03:00) and its midnights.
    spring = datetime(2026, 3, 29, tzinfo=BERLIN).timestamp()
    for i, at in enumerate((spring - 60, spring + 30, spring + 2 * 3600 + 60, spring + 23 * 3600 - 30,
                            spring + 23 * 3600 + 30)):
        call = make_call(f"s{i}", caller=f"7916900000{i}", answered=True, answered_by="101", started_at=at)
        store.stage_call(call, None, [])
        await store.flush()
        await store.save_contact(follow("parts", at=at + 5, linkedid=f"s{i}" if i % 2 else None,
                                        caller=f"7916900000{i}"), repeat_days=180, run_id=f"s{i}")
    assert await store.keep_report_days(BERLIN)
    assert not await store.keep_report_days(BERLIN)
    around = [ReportQuery(spring - 86400, spring + 2 * 86400 - 3600, tz=BERLIN),
              ReportQuery(spring + 3600, spring + 2 * 86400 - 3600, tz=BERLIN),
              ReportQuery(spring, spring + 23 * 3600, tz=BERLIN), *periods(BERLIN)]
    await assert_same(store, around)
    [registered, *_] = [counted for counted, _ in await both_ways(store, around[0])]
    assert [(d["day"], d["answered"], d["registered"]) for d in registered["days"]] == [
        ("2026-03-28", 1, 0), ("2026-03-29", 3, 2), ("2026-03-30", 1, 0)]
    # Moscow's reports now count rows, with the same figures as before.
    assert [counted for counted, _ in await both_ways(store, periods()[0])] == moscow


async def test_a_zone_with_no_name_keeps_no_counts(store: Store) -> None:
    with pytest.raises(ValueError, match="named zone"):
        await store.keep_report_days(Unnamed(MOSCOW))


async def test_rows_deleted_are_counted_out(store: Store) -> None:
    """No code of the product deletes these rows today; an administrator's SQL (or a retention job) may: the counts
    follow, links removed with their contact included."""
    ids = await fill(store)
    assert await store.keep_report_days(MOSCOW)
    statements = ["DELETE FROM calls WHERE linkedid = 'c8'", f"DELETE FROM contact_register WHERE id = {ids['K3']}",
                  "DELETE FROM missed WHERE linkedid = 'c6'", "DELETE FROM agent_misses WHERE linkedid = 'c4'"]
    for sql in statements:
        await store._manual(lambda conn, sql=sql: conn.execute(sql))  # type: ignore[attr-defined]
    await assert_same(store, periods())
    [registered, contacts, _, missed] = [counted for counted, _ in await both_ways(store, periods()[0])]
    assert registered["totals"]["answered"] == 3 and registered["totals"]["registered"] == 1
    assert contacts["totals"]["contacts"] == 3 and missed["totals"]["missed"] == 2
    assert missed["totals"]["agent_misses"] == 2
