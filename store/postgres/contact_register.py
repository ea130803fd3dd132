"""The contact register on the PostgreSQL store, as ``store/sqlite/contact_register.py``: saving a finished run,
setting stages, the listing.

Several nodes (and a DMS retrying) may share the database: two saves of the same run race on the run key's unique
index, the loser's savepoint rolls back (the client it created in the directory with it) and it returns the
winner's contact; a stage is set on the row locked ``FOR UPDATE``, so the same event sent twice at once is set once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from cti.contacts_register import (
    LinkedCall,
    RegisteredContact,
    StageMark,
    run_key,
    script_stages,
    stage_change,
)
from cti.directory import Contact
from cti.records import DEFAULT_PBX
from cti.scripts.model import STAGES, Stage
from cti.scripts.runner import ContactDraft
from store.contact_register_rows import (
    CALLS_OF,
    CALLS_ORDER,
    RegisterReads,
    calls_by_contact,
    client_and_repeat,
    contact_from_row,
    insert_sql,
    new_row,
)
from store.listing import POSTGRES
from store.postgres.base import Conn, PostgresBase
from store.postgres.directory import insert_contacts
from store.postgres.params import positional
from store.repository import RegisteredContactNotFound, StageConflict

_INSERT = insert_sql("${n}") + " RETURNING id"
_CALLS = CALLS_OF + "cc.contact_id = ANY($1::bigint[])" + CALLS_ORDER


class _Tx:
    """``store.contact_register_rows.Tx`` on the writer's transaction."""

    def __init__(self, conn: Conn, region: str) -> None:
        self.conn, self.region = conn, region

    async def rows(self, sql: str, params: dict[str, Any]) -> list[Any]:
        text, args = positional(sql, params)
        return list(await self.conn.fetch(text, *args))

    async def add_card(self, card: Contact) -> int:
        [contact_id] = await insert_contacts(self.conn, [card], self.region)
        return contact_id


class ContactRegisterOps(RegisterReads, PostgresBase):
    """``save_contact`` ... ``set_contact_stage``: the ``store.repository.ContactRegister`` concern."""

    _dialect = POSTGRES

    async def save_contact(self, draft: ContactDraft, *, repeat_days: float, run_id: int | str | None = None,
                           caller: str | None = None, workshop: str | None = None,
                           at: float | None = None) -> RegisteredContact:
        if draft.status != "registered":
            raise ValueError(f"only a registered run makes a contact (this one is {draft.status})")
        key = run_key(draft, run_id)
        saved_at = time.time() if at is None else at

        async def work(conn: Conn) -> int:
            found = await conn.fetchval("SELECT id FROM contact_register WHERE run_key = $1", key)
            if found is not None:
                return int(found)
            try:
                async with conn.transaction():  # a savepoint: another node's save of the same run wins the race
                    client, repeat = await client_and_repeat(_Tx(conn, self.region), draft, caller=caller,
                                                             repeat_days=repeat_days, region=self.region)
                    contact_id = int(await conn.fetchval(_INSERT, *new_row(
                        draft, key=key, client=client, repeat=repeat, workshop=workshop,
                        stages=script_stages(draft), saved_at=saved_at, route_as_json=False)))
                    if draft.linkedid is not None:
                        await conn.execute("INSERT INTO contact_calls (contact_id, pbx, linkedid) VALUES ($1, $2, $3)",
                                           contact_id, draft.pbx or DEFAULT_PBX, draft.linkedid)
            except asyncpg.UniqueViolationError:
                return int(await conn.fetchval("SELECT id FROM contact_register WHERE run_key = $1", key))
            return contact_id

        return await self.get_registered_contact(await self._manual(work))

    async def registered_contact_of_call(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> int | None:
        found = await self._select("SELECT min(contact_id) AS id FROM contact_calls WHERE linkedid = $1 AND pbx = $2",
                                   (linkedid, pbx), lambda row: row["id"])
        return int(found[0]) if found and found[0] is not None else None

    async def set_contact_stage(self, contact_id: int, stage: Stage, *, at: float, by: str,
                                external_id: str | None = None) -> tuple[RegisteredContact, bool]:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        mark = StageMark(stage, at, by, external_id)  # checks them before anything is written

        async def work(conn: Conn) -> bool:
            rows = await conn.fetch("SELECT * FROM contact_register WHERE id = $1 FOR UPDATE", contact_id)
            found = await _with_calls(conn, rows)
            if not found:
                raise RegisteredContactNotFound(contact_id)
            change = stage_change(found[0], stage, external_id)
            if change == "conflict":
                raise StageConflict(found[0], stage)
            if change == "same":
                return False
            await conn.execute(f"UPDATE contact_register SET {stage}_at = $2, {stage}_by = $3, "
                               f"{stage}_external_id = $4 WHERE id = $1", contact_id, float(mark.at), mark.by,
                               mark.external_id)
            return True

        changed = await self._manual(work)
        return await self.get_registered_contact(contact_id), changed

    async def _contacts(self, sql: str, params: dict[str, Any]) -> list[RegisteredContact]:
        """The contacts of a query on ``contact_register``, with their calls (one more indexed query per page)."""
        self._check_open()
        text, args = positional(sql, params)
        async with self.lanes.reader.acquire() as conn:
            return await _with_calls(conn, await conn.fetch(text, *args))


async def _with_calls(conn: Conn, rows: Sequence[Any]) -> list[RegisteredContact]:
    if not rows:
        return []
    linked = await conn.fetch(_CALLS, [int(r["id"]) for r in rows])
    calls: dict[int, list[LinkedCall]] = calls_by_contact(linked)
    return [contact_from_row(r, calls.get(int(r["id"]), ())) for r in rows]
