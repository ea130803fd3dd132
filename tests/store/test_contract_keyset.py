"""Keyset pages, against the interface: ``list_calls(after=)`` and ``list_missed(after=)`` walk a listing page by
page from the place of the previous page's last row, every row once and in order, whatever is saved meanwhile.

This is what the HTTP listings' ``next`` / ``?after=`` stand on (tests/ui_bridge/test_listing_cursors.py); a
PostgreSQL store passes it by implementing ``after`` with the same ``(started_at, linkedid)`` comparison.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from cti.records import CallRecord, MissedEntry
from store.repository import CallKey, MissedKey, Store
from tests.store.builders import T0, make_call, missed_for
from tests.store.test_contract_streams import FILTERS, NUMBERS, expected, year_of_calls


async def walk_calls(store: Store, page: int, **filters: Any) -> list[str]:
    """Every row of a listing, ``page`` at a time, each page starting after the last one's last row."""
    seen: list[str] = []
    after: CallKey | None = None
    while True:
        rows = await store.list_calls(limit=page, after=after, **filters)
        seen += [r.linkedid for r in rows]
        if len(rows) < page:
            return seen
        after = CallKey.of(rows[-1])


@pytest.fixture
async def journal(store: Store) -> list[CallRecord]:
    calls = year_of_calls()
    for record in calls:
        store.stage_call(record, None, ())
    await store.flush()
    return calls


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "all")
async def test_walking_pages_after_the_last_row_gives_every_row_once_in_order(
        store: Store, journal: list[CallRecord], filters: dict[str, Any]) -> None:
    for newest_first in (False, True):
        want = expected(journal, newest_first=newest_first, **filters)
        for page in (1, 2, 3, 7, 100):  # 3: pages end between calls of the same instant (the tie-break's case)
            assert await walk_calls(store, page, newest_first=newest_first, **filters) == want, (newest_first, page)


async def test_after_is_a_place_not_a_row_a_call_gone_from_the_listing_still_marks_where_to_go_on(
        store: Store, journal: list[CallRecord]) -> None:
    ordered = expected(journal)
    middle = next(c for c in journal if c.linkedid == ordered[20])
    rest = await store.list_calls(after=CallKey(middle.started_at, middle.linkedid + "~"))  # not a stored linkedid
    assert [r.linkedid for r in rest] == ordered[21:]
    newest = await store.list_calls(after=CallKey.of(middle), newest_first=True, limit=3)
    assert [r.linkedid for r in newest] == list(reversed(ordered[17:20]))
    assert await store.list_calls(after=CallKey(T0 + 10**6, "")) == []
    assert [r.linkedid for r in await store.list_calls(after=CallKey.of(middle), offset=2, limit=2)] == ordered[23:25]


async def test_a_walk_newest_first_is_not_shaken_by_calls_saved_meanwhile(store: Store) -> None:
    """Offset paging would show a row twice when a new call arrives at the top; the keyset walk goes on from its
    place: newer calls (before the place) are not in it, an older call saved late (after the place) is."""
    for i in range(30):
        store.stage_call(make_call(f"c{i:02d}", started_at=T0 + 10 * i), None, ())
    await store.flush()
    seen: list[str] = []
    after: CallKey | None = None
    page = 0
    while True:
        rows = await store.list_calls(limit=4, after=after, newest_first=True)
        seen += [r.linkedid for r in rows]
        if len(rows) < 4:
            break
        after = CallKey.of(rows[-1])
        page += 1
        store.stage_call(make_call(f"new{page}", started_at=T0 + 1000 + page), None, ())
        if page == 2:
            store.stage_call(make_call("late", started_at=T0 + 5), None, ())  # started long ago, ended only now
        await store.flush()
    assert seen == [f"c{i:02d}" for i in range(29, 0, -1)] + ["late", "c00"]


async def test_walking_the_register_after_the_last_entry_gives_every_entry_once_in_order(store: Store) -> None:
    calls = [make_call(f"m{i:02d}", caller=NUMBERS[i % 3], started_at=T0 + 5 * (i // 3)) for i in range(31)]
    for record in calls:
        store.stage_call(record, missed_for(record), ())
    await store.flush()
    for entry in (await store.list_missed())[::4]:
        assert entry.id is not None
        await store.close_missed(entry.id, "done")
    cases: list[dict[str, Any]] = [{}, {"status": "open"}, {"status": "closed"}, {"number": "89161234567"},
                                   {"since": T0 + 20, "until": T0 + 40}]
    for filters in cases:
        want = await store.list_missed(**filters)
        assert want, filters
        for page in (1, 2, 3, 50):  # three entries share each missed_at: the id breaks the tie
            seen: list[MissedEntry] = []
            after: MissedKey | None = None
            while True:
                entries = await store.list_missed(limit=page, after=after, **filters)
                seen += entries
                if len(entries) < page:
                    break
                after = MissedKey.of(entries[-1])
            assert seen == want, (filters, page)


async def test_entries_opened_during_a_walk_of_the_register_come_at_its_end(store: Store) -> None:
    for i in range(6):
        record = make_call(f"m{i}", started_at=T0 + i)
        store.stage_call(record, missed_for(record), ())
    await store.flush()
    first = await store.list_missed(limit=4)
    late = make_call("late", started_at=T0 + 100)
    store.stage_call(late, missed_for(late), ())
    await store.flush()
    rest = await store.list_missed(after=MissedKey.of(first[-1]))
    assert [e.linkedid for e in [*first, *rest]] == ["m0", "m1", "m2", "m3", "m4", "m5", "late"]
    with pytest.raises(ValueError, match="not stored"):
        MissedKey.of(dataclasses.replace(first[0], id=None))
