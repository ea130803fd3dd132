"""The client directory on the PostgreSQL store: contacts with their phones and vehicles, calls attached by hand.

The rows and the searches are the SQLite store's (``store/sqlite_directory.py``: the keys are computed in Python,
the search box's query becomes one indexed ``WHERE``), run here on the pools and the writer's transactions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import asyncpg

from cti.directory import Contact, Query, parse_query
from cti.records import DEFAULT_PBX
from store import sqlite_directory as directory_sql
from store.postgres import rows
from store.postgres.base import Conn, PostgresBase
from store.repository import ContactNotFound

_INSERT_CONTACT = ("INSERT INTO contacts (id, name, name_key, kind, email, notes, external_id, created_at, "
                   "updated_at, phones_json, vehicles_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
_INSERT_PHONE = "INSERT INTO contact_phones (contact_id, number, number_key) VALUES ($1, $2, $3)"
_INSERT_VEHICLE = ("INSERT INTO vehicles (id, contact_id, make, model, year, plate, plate_key, plate_base, "
                   "plate_number, vin) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")


async def insert_contacts(conn: Conn, contacts: Sequence[Contact], region: str) -> list[int]:
    """Insert contacts with their phones and vehicles inside the caller's transaction; their new ids, in order.

    The ids follow the largest ones in the tables, as in the SQLite store: the tables are locked against other
    writers (readers go on) until the transaction ends, so two imports at once cannot take the same ids.
    """
    await conn.execute("LOCK TABLE contacts, vehicles IN EXCLUSIVE MODE")
    row = await conn.fetchrow(directory_sql.NEXT_IDS)
    assert row is not None
    contact_rows, phones, vehicles = directory_sql.contact_rows(contacts, int(row[0]), int(row[1]), region,
                                                                time.time())
    await conn.executemany(_INSERT_CONTACT, contact_rows)
    if phones:
        await conn.executemany(_INSERT_PHONE, phones)
    if vehicles:
        await conn.executemany(_INSERT_VEHICLE, vehicles)
    return [int(r[0]) for r in contact_rows]


class DirectoryOps(PostgresBase):
    """The ``store.repository.Directory`` concern."""

    async def add_contacts(self, contacts: Iterable[Contact], *, chunk_size: int = 2000,
                           progress: Callable[[int], None] | None = None) -> list[int]:
        """Save contacts (with phones and vehicles); all or nothing.

        Written ``chunk_size`` at a time, each chunk its own short transaction, so the daemon's own writes never
        wait long behind an import; if a chunk fails, the chunks already written are deleted again before the
        error is raised. ``progress(n)`` after each chunk.
        """
        written: list[int] = []
        try:
            for chunk in directory_sql.chunks(contacts, chunk_size):
                async def work(conn: Conn, chunk: list[Contact] = chunk) -> list[int]:
                    return await insert_contacts(conn, chunk, self.region)

                written += await self._manual(work)
                if progress is not None:
                    progress(len(chunk))
        except BaseException:
            if written:
                async def undo(conn: Conn) -> None:
                    await conn.execute("DELETE FROM contacts WHERE id = ANY($1::bigint[])", written)

                await self._manual(undo)
            raise
        return written

    async def add_contact(self, contact: Contact) -> Contact:
        [contact_id] = await self.add_contacts([contact])
        return await self.get_contact(contact_id)

    async def get_contact(self, contact_id: int) -> Contact:
        found = await self._select(directory_sql.SELECT_CONTACTS + "WHERE c.id = $1", (contact_id,),
                                   rows.contact_from_row)
        if not found:
            raise ContactNotFound(contact_id)
        return found[0]

    async def find_contacts(self, query: str | Query, *, limit: int = 20) -> list[Contact]:
        return await self._find_contacts(query, limit, self.lanes.reader)

    async def _find_contacts(self, query: str | Query, limit: int, lane: asyncpg.Pool) -> list[Contact]:
        parsed = parse_query(query, self.region) if isinstance(query, str) else query
        if parsed is None or limit <= 0:
            return []
        found: dict[int | None, Contact] = {}
        for where, params in directory_sql.where_queries(parsed, limit):  # best first, until `limit` are found
            for contact in await self._select(directory_sql.SELECT_CONTACTS + where, params, rows.contact_from_row,
                                              lane):
                found.setdefault(contact.id, contact)
            if len(found) >= limit:
                break
        return list(found.values())[:limit]

    async def list_contacts(self, *, after_id: int = 0, limit: int = 1000) -> list[Contact]:
        return await self._select(directory_sql.SELECT_CONTACTS + "WHERE c.id > $1 ORDER BY c.id LIMIT $2",
                                  (after_id, limit), rows.contact_from_row)

    async def count_contacts(self) -> int:
        found = await self._select("SELECT count(*) FROM contacts", (), lambda r: int(r[0]))
        return found[0]

    async def attach_call(self, linkedid: str, contact_id: int, by: str | None, *, pbx: str = DEFAULT_PBX) -> None:
        async def work(conn: Conn) -> None:
            if await conn.fetchval("SELECT 1 FROM contacts WHERE id = $1 FOR KEY SHARE", contact_id) is None:
                raise ContactNotFound(contact_id)
            await conn.execute(
                "INSERT INTO call_contacts (pbx, linkedid, contact_id, attached_by, attached_at) "
                "VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (linkedid, pbx) DO UPDATE SET contact_id = excluded.contact_id, "
                "attached_by = excluded.attached_by, attached_at = excluded.attached_at",
                pbx, linkedid, contact_id, by, time.time())

        await self._manual(work)

    async def contact_of_call(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> Contact | None:
        return await self._contact_of_call(linkedid, pbx, self.lanes.reader)

    async def _contact_of_call(self, linkedid: str, pbx: str, lane: asyncpg.Pool) -> Contact | None:
        found = await self._select(
            directory_sql.SELECT_CONTACTS
            + "WHERE c.id = (SELECT contact_id FROM call_contacts WHERE pbx = $1 AND linkedid = $2)",
            (pbx, linkedid), rows.contact_from_row, lane)
        return found[0] if found else None
