"""The supervisor's alerts on the SQLite store: raised, acknowledged, resolved, and read back as a history.

Each change is one transaction on the writer (``SqliteBase._manual``); alerts are rare (a few a minute at worst),
so they share the writer with the staged batches at no cost. The partial unique index of ``0009_alerts.sql`` keeps
one unresolved alert per PBX and condition key.
"""

from __future__ import annotations

from collections.abc import Collection

import aiosqlite

from cti.alerts import Alert, Condition
from store.alert_rows import COLUMNS, alert_from_row, figures_json, history_filter
from store.repository import AlertAlreadyAcknowledged, AlertNotFound
from store.sqlite.base import SqliteBase

_INSERT = f"INSERT INTO alerts ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"


class AlertOps(SqliteBase):
    """``raise_alert`` ... ``list_alerts``: the ``store.repository.Alerts`` concern."""

    async def raise_alert(self, condition: Condition, *, at: float) -> tuple[Alert, bool]:
        async def work(db: aiosqlite.Connection) -> tuple[Alert, bool]:
            async with db.execute("SELECT * FROM alerts WHERE pbx = ? AND key = ? AND resolved_at IS NULL",
                                  (condition.pbx, condition.key)) as cursor:
                found = await cursor.fetchone()
            if found is not None:
                return alert_from_row(found), False
            cursor = await db.execute(_INSERT, (
                condition.pbx, condition.key, condition.kind, condition.subject, condition.since,
                figures_json(condition.figures), at, None, None, None))
            return await _fetch(db, int(cursor.lastrowid or 0)), True

        return await self._manual(work)

    async def acknowledge_alert(self, alert_id: int, by: str, *, at: float) -> Alert:
        async def work(db: aiosqlite.Connection) -> Alert:
            alert = await _fetch(db, alert_id)
            if alert.acknowledged_at is not None:
                raise AlertAlreadyAcknowledged(alert)
            await db.execute("UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ?",
                             (at, by, alert_id))
            return await _fetch(db, alert_id)

        return await self._manual(work)

    async def resolve_alert(self, alert_id: int, *, at: float) -> Alert:
        async def work(db: aiosqlite.Connection) -> Alert:
            await db.execute("UPDATE alerts SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL", (at, alert_id))
            return await _fetch(db, alert_id)

        return await self._manual(work)

    async def get_alert(self, alert_id: int) -> Alert:
        found = await self._select_few("SELECT * FROM alerts WHERE id = ?", (alert_id,), alert_from_row)
        if not found:
            raise AlertNotFound(alert_id)
        return found[0]

    async def active_alerts(self, *, pbxs: Collection[str] | None = None) -> list[Alert]:
        where, params = history_filter(pbxs, True, None, "?")
        return await self._select(f"SELECT * FROM alerts {where} ORDER BY id", tuple(params), alert_from_row)

    async def list_alerts(self, *, pbxs: Collection[str] | None = None, active: bool | None = None,
                          before: int | None = None, limit: int = 50) -> list[Alert]:
        where, params = history_filter(pbxs, active, before, "?")
        return await self._select(f"SELECT * FROM alerts {where} ORDER BY id DESC LIMIT ?", (*params, limit),
                                  alert_from_row, few=limit)


async def _fetch(db: aiosqlite.Connection, alert_id: int) -> Alert:
    async with db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        raise AlertNotFound(alert_id)
    return alert_from_row(row)
