"""The client directory on the SQLite store: contacts with their phones and vehicles, calls attached by hand.

The SQL and the row shapes are ``store/sqlite_directory.py`` (also used by ``bench/directory.py``); this module
runs them on the store's lanes and transactions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import aiosqlite

from cti.directory import Contact, Query, parse_query
from cti.records import DEFAULT_PBX
from store import sqlite_directory as directory_sql
from store.repository import ContactNotFound
from store.sqlite.base import SqliteBase


class DirectoryOps(SqliteBase):
    """The ``store.repository.Directory`` concern."""

    async def add_contacts(self, contacts: Iterable[Contact], *, chunk_size: int = 2000,
                           progress: Callable[[int], None] | None = None) -> list[int]:
        """Save contacts (with phones and vehicles); all or nothing.

        Written ``chunk_size`` at a time, each chunk its own short transaction, so that the daemon's own
        writes (possibly in another process) never wait long for the file; if a chunk fails, the chunks
        already written are deleted again before the error is raised. ``progress(n)`` after each chunk.
        """
        written: list[int] = []
        try:
            for chunk in directory_sql.chunks(contacts, chunk_size):
                async def work(db: aiosqlite.Connection, chunk: list[Contact] = chunk) -> list[int]:
                    return await directory_sql.insert_contacts(db, chunk, self.region)

                written += await self._manual(work)
                if progress is not None:
                    progress(len(chunk))
        except BaseException:
            if written:
                async def undo(db: aiosqlite.Connection) -> None:
                    await db.executemany("DELETE FROM contacts WHERE id = ?", [(i,) for i in written])

                await self._manual(undo)
            raise
        return written

    async def add_contact(self, contact: Contact) -> Contact:
        [contact_id] = await self.add_contacts([contact])
        return await self.get_contact(contact_id)

    async def get_contact(self, contact_id: int) -> Contact:
        found = await self._select_few(directory_sql.SELECT_CONTACTS + "WHERE c.id = ?", (contact_id,),
                                       directory_sql.contact_from_row)
        if not found:
            raise ContactNotFound(contact_id)
        return found[0]

    async def find_contacts(self, query: str | Query, *, limit: int = 20) -> list[Contact]:
        return await self._find_contacts(query, limit, self.lanes.reader)

    async def _find_contacts(self, query: str | Query, limit: int, lane: aiosqlite.Connection) -> list[Contact]:
        parsed = parse_query(query, self.region) if isinstance(query, str) else query
        if parsed is None or limit <= 0:
            return []
        found: dict[int | None, Contact] = {}
        for where, params in directory_sql.where_queries(parsed, limit):  # best first, until `limit` are found
            for contact in await self._select_few(directory_sql.SELECT_CONTACTS + where, params,
                                                  directory_sql.contact_from_row, lane):
                found.setdefault(contact.id, contact)
            if len(found) >= limit:
                break
        return list(found.values())[:limit]

    async def list_contacts(self, *, after_id: int = 0, limit: int = 1000) -> list[Contact]:
        return await self._select(directory_sql.SELECT_CONTACTS + "WHERE c.id > ? ORDER BY c.id LIMIT ?",
                                  (after_id, limit), directory_sql.contact_from_row)

    async def count_contacts(self) -> int:
        found = await self._select_few("SELECT count(*) FROM contacts", (), lambda r: int(r[0]))
        return found[0]

    async def attach_call(self, linkedid: str, contact_id: int, by: str | None, *, pbx: str = DEFAULT_PBX) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            await self.get_contact(contact_id)  # raises ContactNotFound
            await db.execute(
                "INSERT INTO call_contacts (pbx, linkedid, contact_id, attached_by, attached_at) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (linkedid, pbx) DO UPDATE SET contact_id = excluded.contact_id, "
                "attached_by = excluded.attached_by, attached_at = excluded.attached_at",
                (pbx, linkedid, contact_id, by, time.time()))

        await self._manual(work)

    async def contact_of_call(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> Contact | None:
        return await self._contact_of_call(linkedid, pbx, self.lanes.reader)

    async def _contact_of_call(self, linkedid: str, pbx: str, lane: aiosqlite.Connection) -> Contact | None:
        found = await self._select_few(
            directory_sql.SELECT_CONTACTS
            + "WHERE c.id = (SELECT contact_id FROM call_contacts WHERE pbx = ? AND linkedid = ?)",
            (pbx, linkedid), directory_sql.contact_from_row, lane)
        return found[0] if found else None
