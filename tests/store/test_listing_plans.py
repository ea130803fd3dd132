"""Every listing filter is served by an index: SQLite's own query plans say so (no scan of the calls table).

The journal's cost must not grow with history (issue 10: a year of calls, 2,000,000 rows): a page of any listing
reads its rows off an index in the journal's order and stops at the page's end. ``EXPLAIN QUERY PLAN`` of the very
SQL the store runs shows how SQLite will execute it; a full scan reads ``SCAN calls`` with no index named.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from store.sqlite import SqliteStore
from store.sqlite.journal import CallFilter, calls_query
from store.sqlite.register import agent_misses_query, missed_query
from tests.store.builders import T0, agent_miss, missed_for
from tests.store.test_contract_streams import FILTERS, year_of_calls

TABLES = ("calls", "c", "a", "call_agents", "missed", "agent_misses")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore.open(tmp_path / "plans.sqlite") as s:
        for record in year_of_calls(200):
            s.stage_call(record, missed_for(record) if record.outcome == "missed" else None,
                         [agent_miss(record, a) for a in record.agents_rung_not_answered])
        await s.flush()
        yield s


async def plan(store: SqliteStore, sql: str, params: dict[str, Any]) -> list[str]:
    rows = await store.lanes.reader.execute_fetchall("EXPLAIN QUERY PLAN " + sql, params)
    return [str(row[3]) for row in rows]


def table_reads(steps: list[str]) -> list[str]:
    return [s for s in steps if re.match(rf"(SCAN|SEARCH) ({'|'.join(TABLES)})\b", s)]


def assert_indexed(steps: list[str], *, filtered: bool, merge_allowed: bool = False) -> None:
    reads = table_reads(steps)
    assert reads, steps
    for read in reads:
        assert "USING" in read, f"a full scan: {read!r} in {steps}"
        if filtered:
            assert read.startswith("SEARCH"), f"not narrowed by the filter: {read!r} in {steps}"
    sorts = [s for s in steps if "TEMP B-TREE" in s]
    if merge_allowed:  # the two sides of a number, each a LIMITed index walk, merged: at most two pages sorted
        assert all(s.startswith("USE TEMP B-TREE FOR ORDER BY") for s in sorts), steps
        assert sum("calls_caller_key" in r for r in reads) == 1 and sum("calls_called_key" in r for r in reads) == 1
    else:
        assert sorts == [], f"a sort of every matching row: {steps}"


#: The filters again, each of some PBXs: the condition is checked in the index that drives, no plan changes shape.
OF_PBXS: list[dict[str, Any]] = [{**f, "pbxs": ("main",) if i % 2 else ("main", "spb")} for i, f in enumerate(FILTERS)]


@pytest.mark.parametrize("filters", FILTERS + OF_PBXS,
                         ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "all")
async def test_every_journal_filter_reads_an_index_in_the_journals_order(store: SqliteStore,
                                                                         filters: dict[str, Any]) -> None:
    f = CallFilter(**filters)
    for newest_first in (False, True):
        for after in (None, (T0 + 60, "call-5", "main")):
            sql, params = calls_query(f, region="RU", newest_first=newest_first, after=after, limit=500)
            # PBXs alone narrow nothing an index could seek: the order's own index is walked, the PBX checked in it.
            assert_indexed(await plan(store, sql, params),
                           filtered=bool(filters.keys() - {"pbxs"}) or after is not None,
                           merge_allowed=f.number is not None and f.agent is None)


async def test_the_agent_filter_is_driven_by_the_agents_own_table(store: SqliteStore) -> None:
    sql, params = calls_query(CallFilter(agent="101"), region="RU", limit=100, newest_first=True)
    steps = await plan(store, sql, params)
    assert any(s.startswith("SEARCH a USING") for s in steps), steps  # call_agents' key: (agent, started_at, ...)
    assert not any("json_each" in s for s in steps) and "json_each" not in sql


async def test_the_screen_pops_query_is_two_limited_index_walks(store: SqliteStore) -> None:
    sql, params = calls_query(CallFilter(number="+7 916 123 45 67"), region="RU", newest_first=True, limit=6)
    assert_indexed(await plan(store, sql, params), filtered=True, merge_allowed=True)
    sql, params = missed_query(region="RU", status="open", number="+7 916 123 45 67", limit=50)
    assert_indexed(await plan(store, sql, params), filtered=True)


@pytest.mark.parametrize("filters", [
    {}, {"status": "open"}, {"status": "closed", "since": T0}, {"number": "89161234567"},
    {"number": "89161234567", "status": "open"}, {"number": "anonymous"}, {"since": T0 + 10, "until": T0 + 90},
    {"pbxs": ("main",)}, {"status": "open", "pbxs": ("main", "spb")}, {"number": "89161234567", "pbxs": ("spb",)},
], ids=str)
async def test_every_register_filter_reads_an_index_in_the_registers_order(store: SqliteStore,
                                                                           filters: dict[str, Any]) -> None:
    for after in (None, (T0 + 50, 7)):
        sql, params = missed_query(region="RU", after=after, limit=500, **filters)
        assert_indexed(await plan(store, sql, params), filtered=bool(filters.keys() - {"pbxs"}) or after is not None)


@pytest.mark.parametrize("filters", [{}, {"agent": "101"}, {"agent": "102", "since": T0 + 10},
                                     {"since": T0, "until": T0 + 100}, {"agent": "101", "pbxs": ("spb",)}], ids=str)
async def test_every_agent_misses_filter_reads_an_index(store: SqliteStore, filters: dict[str, Any]) -> None:
    full = {"agent": None, "since": None, "until": None, **filters}
    for after in (None, (T0 + 50, 7)):
        sql, params = agent_misses_query(after=after, limit=500, **full)
        assert_indexed(await plan(store, sql, params), filtered=bool(filters) or after is not None)
