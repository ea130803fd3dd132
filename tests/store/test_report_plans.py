"""Every report statement reads the index made for it, on SQLite and on PostgreSQL: the plans say so.

A report over a month of a year's store must cost the month's rows, and read them off an index alone (no table row
per call or contact): SQLite's ``EXPLAIN QUERY PLAN`` names a ``COVERING INDEX`` for each of the report's tables and
never ``SCAN`` s a table (one agent's contacts: a range of their agent's index, a fiftieth of the period's
rows); PostgreSQL's ``EXPLAIN`` (over 30,000 calls and contacts, ``ANALYZE``d, the report over a
tenth of them) reads each report table off an index, never with a ``Seq Scan``. The SQL asked about is the very SQL the
stores run (``store.reports``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cti.reports import ReportQuery, WholeDays
from store import report_days
from store.postgres import PostgresStore
from store.postgres.params import positional
from store.reports import (
    EMPLOYEE_NAME,
    POSTGRES_REPORTS,
    SQLITE_REPORTS,
    ReportDialect,
    contacts_sql,
    funnel_sql,
    missed_sql,
    registered_sql,
    unregistered_sql,
)
from store.sqlite import SqliteStore
from tests.postgres import cluster

T0 = 1773126000.0
ROWS = 30_000
#: The report indexes each table is read through (migrations 0013 / 0008), and the contact link's.
INDEXES = {"calls": "calls_report", "contact_register": "contact_register_report",
           "missed": "missed_report", "agent_misses": "agent_misses_report", "cc": "contact_calls_call"}


def statements(dialect: ReportDialect) -> list[tuple[str, dict[str, Any]]]:
    """Every statement of every report over a tenth of the rows, for all PBXs and for one PBX and agent."""
    out: list[tuple[str, dict[str, Any]]] = []
    for narrowed in ({}, {"pbxs": ("main",), "agent": "101"}):
        q = ReportQuery(T0 + ROWS * 0.45, T0 + ROWS * 0.55, **narrowed)  # type: ignore[arg-type]
        span = (q.since, q.until, 10800)
        out += [*registered_sql(dialect, q, span), unregistered_sql(dialect, q), contacts_sql(dialect, q, span),
                funnel_sql(dialect, q), *missed_sql(dialect, q)]
    return out


FILL = f"""
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
    INSERT INTO calls (linkedid, direction, caller, caller_key, answered, answered_by, talk_seconds, started_at,
                       outcome, missed_reason, pbx)
    SELECT 'gen-' || i, CASE i % 3 WHEN 0 THEN 'outbound' ELSE 'inbound' END, '7916' || (i % 400), '7916' || (i % 400),
           i % 4 != 0, CASE WHEN i % 4 != 0 THEN CAST(100 + i % 40 AS TEXT) END, 10, {T0} + i,
           CASE WHEN i % 4 != 0 THEN 'answered' ELSE 'missed' END, CASE WHEN i % 4 = 0 THEN 'no_answer' END,
           CASE WHEN i % 5 = 0 THEN 'spb' ELSE 'main' END FROM n;
"""


# -- SQLite -------------------------------------------------------------------------------------------------------


@pytest.fixture
async def lite(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore.open(tmp_path / "plans.sqlite") as s:
        await s._manual(lambda db: db.execute(FILL))  # 30,000 calls in one statement
        yield s


async def test_every_report_statement_reads_its_covering_index_on_sqlite(lite: SqliteStore) -> None:
    for sql, params in [*statements(SQLITE_REPORTS), (EMPLOYEE_NAME, {"employee": "dmitry"})]:
        rows = await lite.lanes.reader.execute_fetchall("EXPLAIN QUERY PLAN " + sql, params)
        steps = [str(row[3]) for row in rows]
        reads = [s for s in steps if s.startswith(("SCAN", "SEARCH"))]
        assert reads, (sql, steps)
        for read in reads:
            table = read.split()[1]
            assert read.startswith("SEARCH"), f"a scan of a whole table: {read} in {sql}"
            if sql is EMPLOYEE_NAME:  # a name: one row off the employee's index
                assert "contact_register_employee" in read, steps
            elif "LIMIT :limit" in sql and table == "calls":  # the listed calls: their row read for the list only
                assert f"INDEX {INDEXES[table]} " in read and not any("TEMP B-TREE" in s for s in steps), steps
            elif table == "contact_register" and "agent = :agent" in sql:  # one agent's contacts: a few rows
                assert "INDEX contact_register_agent (agent=? AND at>? AND at<?)" in read, (sql, read)
            else:
                assert f"COVERING INDEX {INDEXES[table]} " in read, f"not the report's own index: {read} in {sql}"


# -- PostgreSQL ---------------------------------------------------------------------------------------------------


@pytest.fixture
async def pg() -> AsyncIterator[PostgresStore]:
    """30,000 calls, their missed entries and agents' misses, 30,000 contacts (a third linked to a call), made by the
    server itself (``generate_series``), then ``ANALYZE``."""
    async with PostgresStore.open(await cluster().fresh_database()) as s:
        async with s.lanes.writer.acquire() as conn:
            await conn.execute(f"""
                INSERT INTO calls (linkedid, direction, caller, caller_key, answered, answered_by, talk_seconds,
                                   started_at, outcome, missed_reason, pbx)
                SELECT 'gen-' || i, CASE i % 3 WHEN 0 THEN 'outbound' ELSE 'inbound' END, '7916' || (i % 400),
                       '7916' || (i % 400), i % 4 != 0, CASE WHEN i % 4 != 0 THEN (100 + i % 40)::text END, 10,
                       {T0} + i, CASE WHEN i % 4 != 0 THEN 'answered' ELSE 'missed' END,
                       CASE WHEN i % 4 = 0 THEN 'no_answer' END, CASE WHEN i % 5 = 0 THEN 'spb' ELSE 'main' END
                FROM generate_series(1, {ROWS}) AS i;
                INSERT INTO missed (linkedid, caller, caller_key, reason, missed_at, ring_seconds, status, closed_at,
                                    closed_by)
                SELECT 'gen-' || i, '7916' || (i % 400), '7916' || (i % 400), 'no_answer', {T0} + i, 5,
                       CASE WHEN i % 8 = 0 THEN 'open' ELSE 'closed' END,
                       CASE WHEN i % 8 = 0 THEN NULL ELSE {T0} + i + 600 END,
                       CASE WHEN i % 8 = 0 THEN NULL ELSE 'callback' END
                FROM generate_series(4, {ROWS}, 4) AS i;
                INSERT INTO agent_misses (linkedid, agent, rang_at, ring_seconds, reason)
                SELECT 'gen-' || i, (100 + i % 40)::text, {T0} + i, 5, 'no_answer' FROM generate_series(1, {ROWS}) i;
                INSERT INTO contact_register (run_key, at, finished_at, channel, pbx, agent, client_kind, reason,
                                              employee, script, version, saved_at, request_at, booking_at, visit_at)
                SELECT 'gen-' || i, {T0} + i, {T0} + i + 60,
                       (ARRAY['phone', 'visit', 'internet', 'mobile', 'invitation'])[i % 5 + 1],
                       (ARRAY['main', 'spb'])[i % 2 + 1], (100 + i % 40)::text,
                       (ARRAY['private', 'corporate', 'partner', 'employee'])[i % 4 + 1],
                       (ARRAY['parts', 'repair_private', 'directions', 'other'])[i % 4 + 1],
                       (ARRAY['dmitry', 'elena', 'parts-desk', NULL])[i % 4 + 1], 'car-service', 'v1', {T0} + i,
                       CASE WHEN i % 2 = 0 THEN {T0} + i END, CASE WHEN i % 9 = 0 THEN {T0} + i END,
                       CASE WHEN i % 23 = 0 THEN {T0} + i END
                FROM generate_series(1, {ROWS}) AS i;
                INSERT INTO contact_calls (contact_id, pbx, linkedid)
                SELECT id, 'main', 'gen-' || id FROM contact_register WHERE id % 3 = 0;
                VACUUM ANALYZE;
            """.replace("VACUUM ANALYZE;", "ANALYZE;"))
        yield s


async def test_every_report_statement_reads_an_index_on_postgresql(pg: PostgresStore) -> None:
    async with pg.lanes.reader.acquire() as conn:
        for sql, params in [*statements(POSTGRES_REPORTS), (EMPLOYEE_NAME, {"employee": "dmitry"})]:
            text, args = positional(sql, params)
            shown = "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + text, *args))
            table = next(t for t in ("contact_register", "agent_misses", "missed", "calls") if f"FROM {t}" in sql)
            # The period's rows off an index, never the whole table. (Whether a call's contact is probed in
            # contact_calls' index or looked up in a hash of the links is the planner's cost choice: both are fine.)
            assert f"Seq Scan on {table} " not in shown, (sql, shown)
            assert "Index" in shown, (sql, shown)


async def test_the_day_counts_are_read_by_day_off_their_primary_key_on_sqlite(lite: SqliteStore) -> None:
    """A year's report reads 365 days of counts: each statement is one range of its table's key, never a scan."""
    days = WholeDays(first=20500, end=20865, start=0.0, stop=1.0)
    for pbxs in (None, ("main", "spb")):
        for sql, params in [report_days.answered_sql(days, pbxs), report_days.phone_contacts_sql(days, pbxs),
                            report_days.contact_kinds_sql(days, pbxs), report_days.funnel_agents_sql(days, pbxs),
                            report_days.funnel_employees_sql(days, pbxs), *report_days.missed_sql(days, pbxs)]:
            rows = await lite.lanes.reader.execute_fetchall("EXPLAIN QUERY PLAN " + sql, params)
            reads = [str(row[3]) for row in rows if str(row[3]).startswith(("SCAN", "SEARCH"))]
            assert reads and all(r.startswith("SEARCH") and "PRIMARY KEY (day>? AND day<?)" in r for r in reads), (
                sql, reads)
