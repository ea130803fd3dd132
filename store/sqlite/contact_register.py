"""The contact register on the SQLite store: saving a finished run, setting stages, the listing.

The rows, the listing's query and what a run's client is are ``store/contact_register_rows.py`` (shared with
PostgreSQL); this module runs them on the store's lanes and writer transactions. Saving is one transaction: the
run's key is looked up first (a retried save finds the first one's contact), then the new client is created in the
directory with the directory's own code (``store/sqlite_directory.py``), then the contact and its call.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import aiosqlite

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
from store import sqlite_directory as directory_sql
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
from store.listing import SQLITE
from store.repository import RegisteredContactNotFound, StageConflict
from store.sqlite.base import SqliteBase

_INSERT = insert_sql("?")


class _Tx:
    """``store.contact_register_rows.Tx`` on the writer's transaction."""

    def __init__(self, db: aiosqlite.Connection, region: str) -> None:
        self.db, self.region = db, region

    async def rows(self, sql: str, params: dict[str, Any]) -> list[Any]:
        return list(await self.db.execute_fetchall(sql, params))

    async def add_card(self, card: Contact) -> int:
        [contact_id] = await directory_sql.insert_contacts(self.db, [card], self.region)
        return contact_id


class ContactRegisterOps(RegisterReads, SqliteBase):
    """``save_contact`` ... ``set_contact_stage``: the ``store.repository.ContactRegister`` concern."""

    _dialect = SQLITE

    async def save_contact(self, draft: ContactDraft, *, repeat_days: float, run_id: int | str | None = None,
                           caller: str | None = None, workshop: str | None = None,
                           at: float | None = None) -> RegisteredContact:
        if draft.status != "registered":
            raise ValueError(f"only a registered run makes a contact (this one is {draft.status})")
        key = run_key(draft, run_id)
        saved_at = time.time() if at is None else at

        async def work(db: aiosqlite.Connection) -> int:
            async with db.execute("SELECT id FROM contact_register WHERE run_key = ?", (key,)) as cursor:
                found = await cursor.fetchone()
            if found is not None:
                return int(found[0])
            client, repeat = await client_and_repeat(_Tx(db, self.region), draft, caller=caller,
                                                     repeat_days=repeat_days, region=self.region)
            cursor = await db.execute(_INSERT, new_row(draft, key=key, client=client, repeat=repeat,
                                                       workshop=workshop, stages=script_stages(draft),
                                                       saved_at=saved_at, route_as_json=True))
            contact_id = int(cursor.lastrowid or 0)
            if draft.linkedid is not None:
                await db.execute("INSERT INTO contact_calls (contact_id, pbx, linkedid) VALUES (?, ?, ?)",
                                 (contact_id, draft.pbx or DEFAULT_PBX, draft.linkedid))
            return contact_id

        return await self.get_registered_contact(await self._manual(work))

    async def registered_contact_of_call(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> int | None:
        found = await self._select_few("SELECT min(contact_id) FROM contact_calls WHERE linkedid = ? AND pbx = ?",
                                       (linkedid, pbx), lambda row: row[0])
        return int(found[0]) if found and found[0] is not None else None

    async def set_contact_stage(self, contact_id: int, stage: Stage, *, at: float, by: str,
                                external_id: str | None = None) -> tuple[RegisteredContact, bool]:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        mark = StageMark(stage, at, by, external_id)  # checks them before anything is written

        async def work(db: aiosqlite.Connection) -> bool:
            contact = await self._fetch_on(db, contact_id)
            change = stage_change(contact, stage, external_id)
            if change == "conflict":
                raise StageConflict(contact, stage)
            if change == "same":
                return False
            await db.execute(f"UPDATE contact_register SET {stage}_at = ?, {stage}_by = ?, {stage}_external_id = ? "
                             "WHERE id = ?", (mark.at, mark.by, mark.external_id, contact_id))
            return True

        changed = await self._manual(work)
        return await self.get_registered_contact(contact_id), changed

    # -- reads -------------------------------------------------------------------------------------------------

    async def _contacts(self, sql: str, params: dict[str, Any]) -> list[RegisteredContact]:
        """The contacts of a query on ``contact_register``, with their calls (one more indexed query per page)."""
        self._check_open()
        rows = list(await self.lanes.reader.execute_fetchall(sql, params))
        return await self._with_calls(self.lanes.reader, rows)

    async def _fetch_on(self, db: aiosqlite.Connection, contact_id: int) -> RegisteredContact:
        rows = list(await db.execute_fetchall("SELECT * FROM contact_register WHERE id = ?", (contact_id,)))
        found = await self._with_calls(db, rows)
        if not found:
            raise RegisteredContactNotFound(contact_id)
        return found[0]

    @staticmethod
    async def _with_calls(db: aiosqlite.Connection, rows: Sequence[Any]) -> list[RegisteredContact]:
        if not rows:
            return []
        ids = [int(r["id"]) for r in rows]
        linked = await db.execute_fetchall(
            CALLS_OF + f"cc.contact_id IN ({', '.join('?' for _ in ids)})" + CALLS_ORDER, ids)
        calls: dict[int, list[LinkedCall]] = calls_by_contact(linked)
        return [contact_from_row(r, calls.get(int(r["id"]), ())) for r in rows]
