"""The supervisor's alerts on the PostgreSQL store, as ``store/sqlite/alerts.py``: raised, acknowledged, resolved.

Several nodes may share the database: two raising the same condition during a takeover both try to insert, the
partial unique index of ``0004_alerts.sql`` lets one in, and the other finds that alert (``raise_alert`` → False).
"""

from __future__ import annotations

from collections.abc import Collection

import asyncpg

from cti.alerts import Alert, Condition
from store.alert_rows import COLUMNS, alert_from_row, figures_json, history_filter
from store.postgres.base import Conn, PostgresBase
from store.repository import AlertAlreadyAcknowledged, AlertNotFound

_INSERT = (f"INSERT INTO alerts ({', '.join(COLUMNS)}) VALUES ({', '.join(f'${i}' for i in range(1, 11))}) "
           "RETURNING *")
_ACTIVE = "SELECT * FROM alerts WHERE pbx = $1 AND key = $2 AND resolved_at IS NULL"


class AlertOps(PostgresBase):
    """``raise_alert`` ... ``list_alerts``: the ``store.repository.Alerts`` concern."""

    async def raise_alert(self, condition: Condition, *, at: float) -> tuple[Alert, bool]:
        async def work(conn: Conn) -> tuple[Alert, bool]:
            found = await conn.fetchrow(_ACTIVE, condition.pbx, condition.key)
            if found is not None:
                return alert_from_row(found), False
            try:
                async with conn.transaction():  # a savepoint: another node's insert wins the race
                    row = await conn.fetchrow(_INSERT, condition.pbx, condition.key, condition.kind,
                                              condition.subject, condition.since, figures_json(condition.figures),
                                              at, None, None, None)
            except asyncpg.UniqueViolationError:
                return alert_from_row(await conn.fetchrow(_ACTIVE, condition.pbx, condition.key)), False
            return alert_from_row(row), True

        return await self._manual(work)

    async def acknowledge_alert(self, alert_id: int, by: str, *, at: float) -> Alert:
        async def work(conn: Conn) -> Alert:
            alert = await _fetch(conn, alert_id, lock=True)
            if alert.acknowledged_at is not None:
                raise AlertAlreadyAcknowledged(alert)
            row = await conn.fetchrow("UPDATE alerts SET acknowledged_at = $2, acknowledged_by = $3 WHERE id = $1 "
                                      "RETURNING *", alert_id, at, by)
            return alert_from_row(row)

        return await self._manual(work)

    async def resolve_alert(self, alert_id: int, *, at: float) -> Alert:
        async def work(conn: Conn) -> Alert:
            await conn.execute("UPDATE alerts SET resolved_at = $2 WHERE id = $1 AND resolved_at IS NULL",
                               alert_id, at)
            return await _fetch(conn, alert_id)

        return await self._manual(work)

    async def get_alert(self, alert_id: int) -> Alert:
        found = await self._select("SELECT * FROM alerts WHERE id = $1", (alert_id,), alert_from_row)
        if not found:
            raise AlertNotFound(alert_id)
        return found[0]

    async def active_alerts(self, *, pbxs: Collection[str] | None = None) -> list[Alert]:
        where, params = history_filter(pbxs, True, None, "${n}")
        return await self._select(f"SELECT * FROM alerts {where} ORDER BY id", tuple(params), alert_from_row)

    async def list_alerts(self, *, pbxs: Collection[str] | None = None, active: bool | None = None,
                          before: int | None = None, limit: int = 50) -> list[Alert]:
        where, params = history_filter(pbxs, active, before, "${n}")
        return await self._select(f"SELECT * FROM alerts {where} ORDER BY id DESC LIMIT ${len(params) + 1}",
                                  (*params, limit), alert_from_row)


async def _fetch(conn: Conn, alert_id: int, *, lock: bool = False) -> Alert:
    row = await conn.fetchrow("SELECT * FROM alerts WHERE id = $1" + (" FOR UPDATE" if lock else ""), alert_id)
    if row is None:
        raise AlertNotFound(alert_id)
    return alert_from_row(row)
