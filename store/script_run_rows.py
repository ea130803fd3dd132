"""The contact script's runs as both stores keep them: one row <-> :class:`store.repository.ScriptRun`.

Shared by ``store/sqlite/script_runs.py`` and ``store/postgres/script_runs.py`` (their SQL differs only in
placeholders): the runner's state is a JSON object in a text (SQLite) or json (PostgreSQL) column, written and read
here, so a run reads back equal on both.
"""

from __future__ import annotations

import json
from typing import Any, cast

from store.repository import ScriptRun, ScriptRunStatus

STATUSES: tuple[ScriptRunStatus, ...] = ("open", "registered", "ended", "discarded")
_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def state_json(state: dict[str, Any]) -> str:
    return _encode(state)


def run_from_row(row: Any) -> ScriptRun:
    """A ``script_runs`` row (a ``sqlite3.Row`` or an ``asyncpg.Record``: both read by column name)."""
    state = json.loads(row["state"] or "{}")
    status = row["status"]
    if status not in STATUSES:
        raise ValueError(f"script run #{row['id']}: unknown status {status!r}")
    return ScriptRun(id=int(row["id"]), pbx=row["pbx"], agent=row["agent"], linkedid=row["linkedid"],
                     script=row["script"], version=row["version"], status=cast(ScriptRunStatus, status),
                     state=state if isinstance(state, dict) else {}, revision=int(row["revision"]),
                     started_at=float(row["started_at"]), updated_at=float(row["updated_at"]))


def open_filter(pbx: str | None, agent: str | None, linkedid: str | None, mark: str) -> tuple[str, list[Any]]:
    """The WHERE clause of :meth:`ScriptRuns.open_script_runs` and its parameters, each placeholder ``mark(n)``."""
    clauses, params = ["status = 'open'"], []
    for column, value in (("pbx", pbx), ("agent", agent), ("linkedid", linkedid)):
        if value is not None:
            params.append(value)
            clauses.append(f"{column} = {mark.format(n=len(params))}")
    return "WHERE " + " AND ".join(clauses), params
