"""The reports (``store/reports.py``'s shared statements) on the SQLite store's general reader."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from cti.reports import Report, ReportName, ReportQuery
from store.reports import SQLITE_REPORTS, build_report
from store.sqlite.base import SqliteBase


def _row(row: sqlite3.Row) -> sqlite3.Row:
    return row


class ReportOps(SqliteBase):
    """``report``: the ``store.repository.Reports`` concern. Each statement's rows are few (grouped counts, a listed
    page, the waits of a period's call-backs) and come back in one round trip."""

    async def report(self, name: ReportName, query: ReportQuery) -> Report:
        async def run(sql: str, params: dict[str, Any]) -> Sequence[Any]:
            return await self._select_few(sql, params, _row)

        return await build_report(run, SQLITE_REPORTS, name, query)
