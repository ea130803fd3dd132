"""The contact script's runs on the PostgreSQL store, as ``store/sqlite/script_runs.py``.

Several nodes may share the database: two nodes launching a run for the same agent and call both try to insert, the
partial unique index of ``0006_script_runs.sql`` lets one in, and the other finds that run (``start_script_run`` →
False); a save names the revision it read, so a stale tab on another node fails instead of overwriting.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from store.postgres.base import Conn, PostgresBase
from store.repository import ScriptRun, ScriptRunChanged, ScriptRunNotFound, ScriptRunStatus
from store.script_run_rows import open_filter, run_from_row, state_json

_OF_CALL = "SELECT * FROM script_runs WHERE pbx = $1 AND linkedid = $2 AND agent = $3"
_INSERT = ("INSERT INTO script_runs (pbx, agent, linkedid, script, version, status, state, revision, started_at, "
           "updated_at) VALUES ($1, $2, $3, $4, $5, 'open', $6, 1, $7, $7) RETURNING *")


class ScriptRunOps(PostgresBase):
    """``keep_script_version`` ... ``open_script_runs``: the ``store.repository.ScriptRuns`` concern."""

    async def keep_script_version(self, name: str, version: str, source: str, *, at: float) -> None:
        async def work(conn: Conn) -> None:
            await conn.execute("INSERT INTO script_versions (name, version, source, loaded_at) VALUES ($1, $2, $3, $4) "
                               "ON CONFLICT (name, version) DO NOTHING", name, version, source, at)

        await self._manual(work)

    async def script_source(self, name: str, version: str) -> str | None:
        found = await self._select("SELECT source FROM script_versions WHERE name = $1 AND version = $2",
                                   (name, version), lambda row: str(row[0]))
        return found[0] if found else None

    async def kept_script_versions(self) -> list[tuple[str, str]]:
        return await self._select("SELECT name, version FROM script_versions ORDER BY loaded_at DESC, name, version",
                                  (), lambda row: (str(row[0]), str(row[1])))

    async def start_script_run(self, *, pbx: str, agent: str, linkedid: str | None, script: str, version: str,
                               state: dict[str, Any], at: float) -> tuple[ScriptRun, bool]:
        async def work(conn: Conn) -> tuple[ScriptRun, bool]:
            if linkedid is not None:
                found = await conn.fetchrow(_OF_CALL, pbx, linkedid, agent)
                if found is not None:
                    return run_from_row(found), False
            try:
                async with conn.transaction():  # a savepoint: another node's insert wins the race
                    row = await conn.fetchrow(_INSERT, pbx, agent, linkedid, script, version, state_json(state), at)
            except asyncpg.UniqueViolationError:
                return run_from_row(await conn.fetchrow(_OF_CALL, pbx, linkedid, agent)), False
            return run_from_row(row), True

        return await self._manual(work)

    async def save_script_run(self, run_id: int, *, state: dict[str, Any], status: ScriptRunStatus, revision: int,
                              at: float) -> ScriptRun:
        async def work(conn: Conn) -> ScriptRun:
            row = await conn.fetchrow(
                "UPDATE script_runs SET state = $2, status = $3, revision = revision + 1, updated_at = $4 "
                "WHERE id = $1 AND revision = $5 RETURNING *", run_id, state_json(state), status, at, revision)
            if row is None:
                raise ScriptRunChanged(await _fetch(conn, run_id))
            return run_from_row(row)

        return await self._manual(work)

    async def get_script_run(self, run_id: int) -> ScriptRun:
        found = await self._select("SELECT * FROM script_runs WHERE id = $1", (run_id,), run_from_row)
        if not found:
            raise ScriptRunNotFound(run_id)
        return found[0]

    async def open_script_runs(self, *, pbx: str | None = None, agent: str | None = None,
                               linkedid: str | None = None) -> list[ScriptRun]:
        where, params = open_filter(pbx, agent, linkedid, "${n}")
        return await self._select(f"SELECT * FROM script_runs {where} ORDER BY id", tuple(params), run_from_row)


async def _fetch(conn: Conn, run_id: int) -> ScriptRun:
    row = await conn.fetchrow("SELECT * FROM script_runs WHERE id = $1", run_id)
    if row is None:
        raise ScriptRunNotFound(run_id)
    return run_from_row(row)
