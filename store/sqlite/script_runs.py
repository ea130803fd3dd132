"""The contact script's runs on the SQLite store (``store.repository.ScriptRuns``).

Each change is one transaction on the writer (``SqliteBase._manual``): a run is saved once per step an agent
answers, a few times a minute per agent. The partial unique index of ``0011_script_runs.sql`` keeps one run per
agent and call; ``revision`` makes a save from a stale tab fail instead of overwriting.
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from store.repository import ScriptRun, ScriptRunChanged, ScriptRunNotFound, ScriptRunStatus
from store.script_run_rows import open_filter, run_from_row, state_json
from store.sqlite.base import SqliteBase

_OF_CALL = "SELECT * FROM script_runs WHERE pbx = ? AND linkedid = ? AND agent = ?"


class ScriptRunOps(SqliteBase):
    """``keep_script_version`` ... ``open_script_runs``: the ``store.repository.ScriptRuns`` concern."""

    async def keep_script_version(self, name: str, version: str, source: str, *, at: float) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            await db.execute("INSERT OR IGNORE INTO script_versions (name, version, source, loaded_at) "
                             "VALUES (?, ?, ?, ?)", (name, version, source, at))

        await self._manual(work)

    async def script_source(self, name: str, version: str) -> str | None:
        found = await self._select_few("SELECT source FROM script_versions WHERE name = ? AND version = ?",
                                       (name, version), lambda row: str(row[0]))
        return found[0] if found else None

    async def kept_script_versions(self) -> list[tuple[str, str]]:
        return await self._select("SELECT name, version FROM script_versions ORDER BY loaded_at DESC, name, version",
                                  (), lambda row: (str(row[0]), str(row[1])))

    async def start_script_run(self, *, pbx: str, agent: str, linkedid: str | None, script: str, version: str,
                               state: dict[str, Any], at: float) -> tuple[ScriptRun, bool]:
        async def work(db: aiosqlite.Connection) -> tuple[ScriptRun, bool]:
            if linkedid is not None:
                async with db.execute(_OF_CALL, (pbx, linkedid, agent)) as cursor:
                    found = await cursor.fetchone()
                if found is not None:
                    return run_from_row(found), False
            cursor = await db.execute(
                "INSERT INTO script_runs (pbx, agent, linkedid, script, version, status, state, revision, "
                "started_at, updated_at) VALUES (?, ?, ?, ?, ?, 'open', ?, 1, ?, ?)",
                (pbx, agent, linkedid, script, version, state_json(state), at, at))
            return await _fetch(db, int(cursor.lastrowid or 0)), True

        return await self._manual(work)

    async def save_script_run(self, run_id: int, *, state: dict[str, Any], status: ScriptRunStatus, revision: int,
                              at: float) -> ScriptRun:
        async def work(db: aiosqlite.Connection) -> ScriptRun:
            cursor = await db.execute(
                "UPDATE script_runs SET state = ?, status = ?, revision = revision + 1, updated_at = ? "
                "WHERE id = ? AND revision = ?", (state_json(state), status, at, run_id, revision))
            run = await _fetch(db, run_id)
            if cursor.rowcount != 1:
                raise ScriptRunChanged(run)
            return run

        return await self._manual(work)

    async def get_script_run(self, run_id: int) -> ScriptRun:
        found = await self._select_few("SELECT * FROM script_runs WHERE id = ?", (run_id,), run_from_row)
        if not found:
            raise ScriptRunNotFound(run_id)
        return found[0]

    async def open_script_runs(self, *, pbx: str | None = None, agent: str | None = None,
                               linkedid: str | None = None) -> list[ScriptRun]:
        where, params = open_filter(pbx, agent, linkedid, "?")
        return await self._select(f"SELECT * FROM script_runs {where} ORDER BY id", tuple(params), run_from_row)


async def _fetch(db: aiosqlite.Connection, run_id: int) -> ScriptRun:
    async with db.execute("SELECT * FROM script_runs WHERE id = ?", (run_id,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        raise ScriptRunNotFound(run_id)
    return run_from_row(row)
