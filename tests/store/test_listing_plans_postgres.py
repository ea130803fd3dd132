"""Every listing filter is served by an index on PostgreSQL too: no filter reads the whole table.

The PostgreSQL twin of ``test_listing_plans.py``: a journal, a register and a directory of a few thousand rows,
``ANALYZE``d so the planner knows them, then ``EXPLAIN`` of each query a page (LIMIT 50) or the card runs. A
plan that scans a table whole (``Seq Scan``) costs the table, not the page, and grows with the years.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from cti.directory import Contact, Vehicle, parse_query
from store import sqlite_directory as directory_sql
from store.postgres import PostgresStore
from store.postgres.journal import CallFilter, calls_query
from store.postgres.params import positional
from store.postgres.register import agent_misses_query, missed_query
from tests.postgres import cluster
from tests.store.builders import T0, agent_miss, make_call, missed_for

#: Rows of the journal: enough that reading a whole table costs more than a page's index walk, as it does on a
#: site's years (at a few thousand rows a hash join over the whole table is honestly the cheaper plan).
CALLS = 30_000


@pytest.fixture
async def store() -> AsyncIterator[PostgresStore]:
    """The journal, the register and the agents' misses made by the server itself (``generate_series``: seconds
    instead of a minute through the writer), plus calls and contacts through the store, then ``ANALYZE``."""
    async with PostgresStore.open(await cluster().fresh_database()) as s:
        for i in range(50):  # a few through the store: the fast path above writes what the store writes
            record = make_call(f"call-{i:05d}", started_at=T0 - 100 + i, agents_rung_not_answered=("120",))
            s.stage_call(record, missed_for(record), [agent_miss(record, "120")])
        await s.flush()
        await s.add_contacts([Contact(name=f"Клиент{i:04d} Пётр", phones=(f"7903{i:07d}",),
                                      vehicles=(Vehicle(plate=f"А{i % 1000:03d}ВС77"),)) for i in range(3000)])
        async with s.lanes.writer.acquire() as conn:
            await conn.execute(f"""
                INSERT INTO calls (linkedid, direction, caller, caller_key, called, called_key, answered,
                                   talk_seconds, started_at, outcome)
                SELECT 'gen-' || lpad(i::text, 7, '0'), (ARRAY['inbound', 'outbound', 'internal'])[i % 3 + 1],
                       '7916' || lpad((i % 400)::text, 7, '0'), '7916' || lpad((i % 400)::text, 7, '0'),
                       '7495' || lpad((i % 397)::text, 7, '0'), '7495' || lpad((i % 397)::text, 7, '0'),
                       i % 2 = 0, 0, {T0} + i, (ARRAY['answered', 'missed'])[i % 2 + 1]
                FROM generate_series(1, {CALLS}) AS i;
                INSERT INTO call_agents (agent, started_at, linkedid, rung_not_answered)
                SELECT (100 + i % 40)::text, {T0} + i, 'gen-' || lpad(i::text, 7, '0'), true
                FROM generate_series(1, {CALLS}) AS i;
                INSERT INTO missed (linkedid, caller, caller_key, reason, missed_at, ring_seconds, status, closed_by)
                SELECT 'gen-' || lpad(i::text, 7, '0'), '7916' || lpad((i % 400)::text, 7, '0'),
                       '7916' || lpad((i % 400)::text, 7, '0'), 'no_answer', {T0} + i, 5,
                       CASE WHEN i % 10 = 0 THEN 'open' ELSE 'closed' END,
                       CASE WHEN i % 10 = 0 THEN NULL ELSE 'manual' END
                FROM generate_series(1, {CALLS}, 2) AS i;
                INSERT INTO agent_misses (linkedid, agent, rang_at, ring_seconds, reason)
                SELECT 'gen-' || lpad(i::text, 7, '0'), (100 + i % 40)::text, {T0} + i, 5, 'no_answer'
                FROM generate_series(1, {CALLS}) AS i;
                ANALYZE;
            """)
        yield s


async def plan(store: PostgresStore, sql: str, params: dict[str, Any]) -> str:
    text, args = positional(sql, params)
    async with store.lanes.reader.acquire() as conn:
        return "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + text, *args))


JOURNAL: list[dict[str, Any]] = [
    {}, {"since": T0 + 100, "until": T0 + 3000}, {"number": "79160000007"}, {"agent": "120"},
    {"agent": "120", "since": T0 + 500}, {"direction": "inbound"}, {"outcome": "missed"},
    {"direction": "outbound", "since": T0 + 1000},
    {"pbxs": ("main",)}, {"agent": "120", "pbxs": ("main", "spb")}, {"number": "79160000007", "pbxs": ("spb",)},
]


async def test_every_journal_filter_reads_an_index_in_the_journals_order(store: PostgresStore) -> None:
    for filters in JOURNAL:
        for newest_first in (False, True):
            for after in (None, (T0 + 2000, "call-02000", "main")):
                sql, params = calls_query(CallFilter(**filters), region="RU", newest_first=newest_first, after=after,
                                          limit=50)
                shown = await plan(store, sql, params)
                assert "Seq Scan" not in shown, (filters, newest_first, after, shown)


async def test_every_register_and_agent_misses_filter_reads_an_index(store: PostgresStore) -> None:
    for filters in ({}, {"status": "open"}, {"number": "79160000007"}, {"status": "open", "number": "79160000007"},
                    {"since": T0 + 1000, "until": T0 + 2000}, {"status": "open", "pbxs": ("main", "spb")}):
        sql, params = missed_query(region="RU", limit=50, **filters)  # type: ignore[arg-type]
        shown = await plan(store, sql, params)
        assert "Seq Scan" not in shown, (filters, shown)
    for misses in ({"agent": "120", "since": None, "until": None}, {"agent": None, "since": T0 + 100, "until": None},
                   {"agent": "120", "since": None, "until": None, "pbxs": ("main",)}):
        sql, params = agent_misses_query(limit=50, **misses)  # type: ignore[arg-type]
        shown = await plan(store, sql, params)
        assert "Seq Scan" not in shown, (misses, shown)


async def test_every_directory_search_reads_an_index(store: PostgresStore) -> None:
    for typed in ("8 903 000-00-07", "клиент01", "А007ВС77", "007"):
        parsed = parse_query(typed, "RU")
        assert parsed is not None, typed
        where, params = directory_sql.where_query(parsed, 20)
        shown = await plan(store, directory_sql.SELECT_CONTACTS + where, params)
        assert "Seq Scan" not in shown, (typed, shown)
