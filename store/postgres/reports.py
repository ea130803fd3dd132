"""The reports (``store/reports.py``'s shared statements) on the PostgreSQL store's reader pool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from cti.reports import Report, ReportName, ReportQuery
from store.postgres.base import PostgresBase
from store.reports import POSTGRES_REPORTS, build_report


def _row(row: asyncpg.Record) -> asyncpg.Record:
    return row


class ReportOps(PostgresBase):
    """``report``: the ``store.repository.Reports`` concern."""

    async def report(self, name: ReportName, query: ReportQuery) -> Report:
        async def run(sql: str, params: dict[str, Any]) -> Sequence[Any]:
            return await self._select(sql, params, _row)

        return await build_report(run, POSTGRES_REPORTS, name, query)
