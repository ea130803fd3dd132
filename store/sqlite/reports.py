"""The reports (``store/reports.py``'s shared statements) on the SQLite store's general reader, and their day counts
(``store/report_days.py``) made on the writer."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

import aiosqlite

from cti.reports import Report, ReportName, ReportQuery
from store import report_days
from store.reports import SQLITE_REPORTS, build_report
from store.sqlite.base import SqliteBase


def _row(row: sqlite3.Row) -> sqlite3.Row:
    return row


class ReportOps(SqliteBase):
    """``report`` and ``keep_report_days``: the ``store.repository.Reports`` concern. Each statement's rows are few
    (grouped counts, a listed page, the waits of a period's call-backs) and come back in one round trip."""

    async def report(self, name: ReportName, query: ReportQuery) -> Report:
        async def run(sql: str, params: dict[str, Any]) -> Sequence[Any]:
            return await self._select_few(sql, params, _row)

        return await build_report(run, SQLITE_REPORTS, name, query)

    async def keep_report_days(self, tz: tzinfo, *, rebuild: bool = False) -> bool:
        key = report_days.zone_key(tz)
        if key is None:
            raise ValueError("the reports' days are kept in a named zone (Europe/Moscow), not a fixed offset")
        spans = report_days.zone_spans(tz)

        async def work(db: aiosqlite.Connection) -> bool:
            async with db.execute(report_days.KEPT_ZONE) as cursor:
                kept = await cursor.fetchone()
            if kept is not None and kept[0] == key and not rebuild:
                return False
            for sql in report_days.clear_sql():
                await db.execute(sql)
            await db.executemany(report_days.ZONE_ROW, [{"since": s, "until": u, "offset": o, "zone": key}
                                                        for s, u, o in spans])
            bounds = []
            for sql in report_days.BOUNDS:
                async with db.execute(sql) as cursor:
                    bounds.append(tuple(await cursor.fetchone() or (None, None)))
            statements = report_days.rebuild_sql(SQLITE_REPORTS.day_sql)
            for since, until, offset in report_days.spans_with_rows(spans, bounds):
                for sql in statements:
                    await db.execute(sql, {"since": since, "until": until, "offset": offset})
            return True

        return await self._manual(work)
