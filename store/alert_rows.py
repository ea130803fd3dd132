"""The supervisor's alerts as both stores keep them: one row <-> :class:`cti.alerts.Alert`, and the queries' shape.

Shared by ``store/sqlite/alerts.py`` and ``store/postgres/alerts.py`` (their SQL differs only in placeholders): the
figures are a JSON object in a text column on both, written and read here, so a row reads back equal everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any, cast

from cti.alerts import ALERT_KINDS, Alert, AlertKind, Figure

COLUMNS = ("pbx", "key", "kind", "subject", "since", "figures", "raised_at", "acknowledged_at", "acknowledged_by",
           "resolved_at")
_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def figures_json(figures: Mapping[str, Figure]) -> str:
    return _encode(dict(figures))


def alert_from_row(row: Any) -> Alert:
    """An ``alerts`` row (a ``sqlite3.Row`` or an ``asyncpg.Record``: both read by column name)."""
    figures = json.loads(row["figures"] or "{}")
    kind = row["kind"]
    if kind not in ALERT_KINDS:
        raise ValueError(f"alert #{row['id']}: unknown kind {kind!r}")
    return Alert(id=int(row["id"]), key=row["key"], kind=cast(AlertKind, kind), pbx=row["pbx"],
                 subject=row["subject"], since=row["since"],
                 figures={str(k): v for k, v in figures.items()} if isinstance(figures, dict) else {},
                 raised_at=row["raised_at"], acknowledged_at=row["acknowledged_at"],
                 acknowledged_by=row["acknowledged_by"], resolved_at=row["resolved_at"])


def history_filter(pbxs: Collection[str] | None, active: bool | None, before: int | None, mark: str
                   ) -> tuple[str, list[Any]]:
    """The WHERE clause (``"WHERE ..."`` or ``""``) of a history page and its parameters, each placeholder written
    by ``mark(n)`` (``?`` or ``$n``)."""
    clauses: list[str] = []
    params: list[Any] = []

    def placeholder(value: Any) -> str:
        params.append(value)
        return mark.format(n=len(params))

    if pbxs is not None:
        clauses.append(f"pbx IN ({', '.join(placeholder(p) for p in pbxs) or 'NULL'})")
    if active is True:
        clauses.append("resolved_at IS NULL")
    elif active is False:
        clauses.append("resolved_at IS NOT NULL")
    if before is not None:
        clauses.append(f"id < {placeholder(before)}")
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params
