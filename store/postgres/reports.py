"""The reports (``store/reports.py``'s shared statements) on the PostgreSQL store's reader pool, and their day counts
(``store/report_days.py``) made on the writer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

import asyncpg

from cti.reports import Report, ReportName, ReportQuery
from store import report_days
from store.postgres.base import Conn, PostgresBase
from store.postgres.params import positional
from store.reports import POSTGRES_REPORTS, build_report

#: What a rebuild locks against writers (SHARE: every node's inserts, updates and deletes of these wait for it, and
#: it waits for theirs), so that no row is counted under the zone being replaced.
COUNTED = "calls, contact_calls, contact_register, missed, agent_misses"


def _row(row: asyncpg.Record) -> asyncpg.Record:
    return row


def _numbered(sql: str, params: dict[str, Any]) -> list[Any]:
    text, args = positional(sql, params)
    return [text, *args]


class ReportOps(PostgresBase):
    """``report`` and ``keep_report_days``: the ``store.repository.Reports`` concern."""

    async def report(self, name: ReportName, query: ReportQuery) -> Report:
        async def run(sql: str, params: dict[str, Any]) -> Sequence[Any]:
            return await self._select(sql, params, _row)

        return await build_report(run, POSTGRES_REPORTS, name, query)

    async def keep_report_days(self, tz: tzinfo, *, rebuild: bool = False) -> bool:
        key = report_days.zone_key(tz)
        if key is None:
            raise ValueError("the reports' days are kept in a named zone (Europe/Moscow), not a fixed offset")
        spans = report_days.zone_spans(tz)

        async def work(conn: Conn) -> bool:
            if not rebuild and await conn.fetchval(report_days.KEPT_ZONE) == key:
                return False
            await conn.execute(f"LOCK TABLE {COUNTED} IN SHARE MODE")
            if not rebuild and await conn.fetchval(report_days.KEPT_ZONE) == key:  # another node made them
                return False
            for sql in report_days.clear_sql():
                await conn.execute(sql)
            rows = [positional(report_days.ZONE_ROW, {"since": float(s), "until": float(u), "offset": o, "zone": key})
                    for s, u, o in spans]
            await conn.executemany(rows[0][0], [args for _, args in rows])
            bounds = [tuple(await conn.fetchrow(sql) or (None, None)) for sql in report_days.BOUNDS]
            statements = report_days.rebuild_sql(POSTGRES_REPORTS.day_sql)
            for since, until, offset in report_days.spans_with_rows(spans, bounds):
                for sql in statements:
                    await conn.execute(*_numbered(sql, {"since": float(since), "until": float(until),
                                                        "offset": float(offset)}))
            return True

        return await self._manual(work)
