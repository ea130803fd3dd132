"""Every filter of the contact register is served by an index, on SQLite and on PostgreSQL: the plans say so.

The register grows by a million and a half contacts a year (issue 13's benchmark); a page of any listing must read its
rows off an index in the register's order (``at``, ``id``) and stop at the page's end. The SQL asked about is the very
SQL the stores run (``store.contact_register_rows.listing_query``). SQLite's ``EXPLAIN QUERY PLAN`` reads ``SCAN
contact_register`` with no index named for a full scan and ``USE TEMP B-TREE`` for a sort of every matching row;
PostgreSQL's ``EXPLAIN`` (over 30,000 rows, ``ANALYZE``d) reads ``Seq Scan``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cti.contacts_register import ContactFilter, ContactKey
from store.contact_register_rows import listing_query
from store.listing import POSTGRES, SQLITE
from store.postgres import PostgresStore
from store.postgres.params import positional
from store.sqlite import SqliteStore
from tests.postgres import cluster
from tests.store.contact_drafts import ROUTES, follow

T0 = 1773126000.0
ROWS = 30_000

#: Each filter alone, some together, and the agent's own listing (their extension on their PBX).
FILTERS: list[dict[str, Any]] = [
    {}, {"since": T0 + 100, "until": T0 + 5000}, {"stage": "request"}, {"stage": "booking"}, {"stage": "visit"},
    {"reason": "parts"}, {"channel": "visit"}, {"client_kind": "corporate"}, {"agent": "102"},
    {"employee": "dmitry"}, {"pbxs": ("spb",)}, {"pbxs": ("main", "spb")}, {"agent": "101", "pbxs": ("main",)},
    {"stage": "booking", "since": T0 + 1000}, {"reason": "parts", "channel": "phone", "since": T0},
]


def queries(dialect: Any) -> list[tuple[str, str, dict[str, Any], bool]]:
    """Each filter's page query in both orders, from the start and after a place; and whether an index can seek it
    (a stage alone walks its partial index, which holds only the contacts with that flag; PBXs alone may walk the
    order's index, checking the PBX)."""
    out = []
    for filters in FILTERS:
        for newest_first in (False, True):
            for after in (None, ContactKey(T0 + 2000, 2000)):
                sql, params = listing_query(dialect, ContactFilter(**filters), after=after, limit=50,
                                            newest_first=newest_first)
                narrowed = bool(filters.keys() - {"stage", "pbxs"}) or after is not None
                out.append((f"{filters} newest_first={newest_first} after={after}", sql, params, narrowed))
    return out


# -- SQLite -------------------------------------------------------------------------------------------------------


@pytest.fixture
async def lite(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore.open(tmp_path / "plans.sqlite") as s:
        for i, route in enumerate(sorted(ROUTES) * 5):
            await s.save_contact(follow(route, at=T0 + i * 60, linkedid=f"c{i}"), repeat_days=180)
        yield s


async def test_every_register_filter_reads_an_index_in_its_order_on_sqlite(lite: SqliteStore) -> None:
    for what, sql, params, narrowed in queries(SQLITE):
        rows = await lite.lanes.reader.execute_fetchall("EXPLAIN QUERY PLAN " + sql, params)
        steps = [str(row[3]) for row in rows]
        reads = [s for s in steps if s.startswith(("SCAN contact_register", "SEARCH contact_register"))]
        assert reads, (what, steps)
        assert all("USING" in r for r in reads), f"a full scan for {what}: {steps}"
        if narrowed:
            assert all(r.startswith("SEARCH") for r in reads), f"not narrowed by the filter for {what}: {steps}"
        assert not [s for s in steps if "TEMP B-TREE" in s], f"a sort of every matching row for {what}: {steps}"


async def test_the_repeat_lookups_and_a_contacts_calls_read_indexes_on_sqlite(lite: SqliteStore) -> None:
    for sql in ("SELECT at FROM contact_register WHERE client_id = 1 AND at < 5 AND at >= 1 ORDER BY at DESC LIMIT 1",
                "SELECT cc.contact_id FROM contact_calls cc WHERE cc.linkedid = 'x' AND cc.pbx = 'main'"):
        steps = [str(r[3]) for r in await lite.lanes.reader.execute_fetchall("EXPLAIN QUERY PLAN " + sql)]
        assert all("USING" in s for s in steps if s.startswith(("SCAN", "SEARCH"))), steps


# -- PostgreSQL ---------------------------------------------------------------------------------------------------


@pytest.fixture
async def pg() -> AsyncIterator[PostgresStore]:
    """A register of 30,000 contacts made by the server itself (``generate_series``), a few through the store."""
    async with PostgresStore.open(await cluster().fresh_database()) as s:
        for i, route in enumerate(sorted(ROUTES)):
            await s.save_contact(follow(route, at=T0 - 1000 + i, linkedid=f"c{i}"), repeat_days=180)
        async with s.lanes.writer.acquire() as conn:
            await conn.execute(f"""
                INSERT INTO contact_register (run_key, at, finished_at, channel, pbx, agent, client_kind, reason,
                                              employee, script, version, saved_at, request_at, booking_at, visit_at)
                SELECT 'gen-' || i, {T0} + i, {T0} + i + 60,
                       (ARRAY['phone', 'visit', 'internet', 'mobile', 'invitation'])[i % 5 + 1],
                       (ARRAY['main', 'spb', 'msk'])[i % 3 + 1], (100 + i % 40)::text,
                       (ARRAY['private', 'corporate', 'partner', 'employee'])[i % 4 + 1],
                       (ARRAY['parts', 'repair_private', 'directions', 'other', 'complaint', 'current_repair',
                              'repair_corporate'])[i % 7 + 1],
                       (ARRAY['dmitry', 'elena', 'parts-desk', NULL])[i % 4 + 1], 'car-service', 'v1', {T0} + i,
                       CASE WHEN i % 2 = 0 THEN {T0} + i END, CASE WHEN i % 9 = 0 THEN {T0} + i END,
                       CASE WHEN i % 23 = 0 THEN {T0} + i END
                FROM generate_series(1, {ROWS}) AS i;
                ANALYZE;
            """)
        yield s


async def test_every_register_filter_reads_an_index_on_postgresql(pg: PostgresStore) -> None:
    async with pg.lanes.reader.acquire() as conn:
        for what, sql, params, _ in queries(POSTGRES):
            text, args = positional(sql, params)
            shown = "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + text, *args))
            assert "Seq Scan" not in shown, (what, shown)
