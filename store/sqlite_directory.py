"""The client directory's SQL for ``SqliteStore``: contacts with their phones and vehicles.

Kept apart from ``sqlite.py`` (the call journal) because it is a different table family; ``SqliteStore``
calls these functions on its connections, inside its own transactions. A contact is read in one query,
its phones and vehicles folded in as JSON arrays, so a lookup is one round trip to SQLite's thread.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

import aiosqlite

from cti.directory import Contact, ContactKind, Query, Vehicle, name_key
from cti.makes import canonical_make
from cti.phones import normalize_number
from cti.plates import plate_key

#: Contacts with their phones and vehicles (kept as JSON on the contact's row, migration 0004); append
#: ``WHERE ...`` over ``c``.
SELECT_CONTACTS = """
SELECT c.id, c.name, c.kind, c.email, c.notes, c.external_id, c.phones_json AS phones, c.vehicles_json AS vehicles
FROM contacts c
"""


def contact_from_row(row: sqlite3.Row) -> Contact:
    vehicles = tuple(
        Vehicle(id=v[0], make=v[1], model=v[2], year=v[3], plate=v[4], vin=v[5], contact_id=row["id"])
        for v in json.loads(row["vehicles"] or "[]")
    )
    return Contact(id=row["id"], name=row["name"], kind=cast(ContactKind, row["kind"]), email=row["email"],
                   notes=row["notes"], external_id=row["external_id"],
                   phones=tuple(json.loads(row["phones"] or "[]")), vehicles=vehicles)


#: What a word inside a name follows: a space, or the opening quote or bracket of a company's name
#: (ООО «Ромашка», ЗАО "Вектор"), or the hyphen of a double surname.
WORD_STARTS = (" ", "«", '"', "“", "„", "'", "(", "-")
_ESCAPE = "'\\'"
#: LIKE's wildcards and its escape character, escaped (``ESCAPE '\\'``), so a typed ``%`` or ``_`` is itself.
_LIKE_SPECIAL = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})


def where_queries(query: Query, limit: int) -> list[tuple[str, dict[str, Any]]]:
    """The ``WHERE``s (each with its order and limit) that find contacts for a parsed query, best first.

    The store runs them in turn, keeping each contact once, until ``limit`` contacts are found. A name query:
    the names that start with the text (the index), then the names with a word that starts with it (a scan of
    the names in index order, which stops at ``limit``; ~0.1 s over a million contacts when few match), then
    the owners of the makes the text spells (the newest cars first, by the vehicles' rowid).
    """
    queries = [where_query(query, limit)]
    if query.kind != "name":
        return queries
    key = query.key.translate(_LIKE_SPECIAL)
    words = {f"word{i}": f"%{mark}{key}%" for i, mark in enumerate(WORD_STARTS)}
    queries.append((f"WHERE ({' OR '.join(f'c.name_key LIKE :{n} ESCAPE {_ESCAPE}' for n in words)}) "
                    "ORDER BY c.name_key, c.id LIMIT :limit", {**words, "limit": limit}))
    if query.makes:
        names = {f"make{i}": make for i, make in enumerate(query.makes)}
        queries.append((f"WHERE c.id IN (SELECT contact_id FROM vehicles WHERE make IN "
                        f"({', '.join(':' + n for n in names)}) AND contact_id IS NOT NULL "
                        "ORDER BY id DESC LIMIT :limit) ORDER BY c.name_key, c.id LIMIT :limit",
                        {**names, "limit": limit}))
    return queries


def where_query(query: Query, limit: int) -> tuple[str, dict[str, Any]]:
    """The first ``WHERE`` (and order and limit) that finds contacts for a parsed search box query: the whole
    answer except for a name query (:func:`where_queries`)."""
    params: dict[str, Any] = {"key": query.key, "limit": limit}
    if query.kind == "number":
        where = "c.id IN (SELECT contact_id FROM contact_phones WHERE number_key = :key)"
    elif query.kind == "name":
        # A prefix as a range, so the index on name_key serves it (LIKE would not, with NOCASE rules).
        params["upper"] = query.key + "\U0010ffff"
        where = "c.name_key >= :key AND c.name_key < :upper"
    elif query.kind == "plate":
        key = plate_key(query.key)
        params["base"] = key.base if key is not None else query.key
        where = ("c.id IN (SELECT contact_id FROM vehicles WHERE plate_base = :base "
                 "AND (plate_key = :key OR :key = :base))")
    else:  # plate_number: the three digits, ~1 in 1,000 cars: the newest cars first, straight off the index
        # (vehicles_plate_number holds the rowid, so ORDER BY id DESC LIMIT stops after `limit` entries
        # instead of sorting every car with those digits).
        where = ("c.id IN (SELECT contact_id FROM vehicles WHERE plate_number = :key AND contact_id IS NOT NULL "
                 "ORDER BY id DESC LIMIT :limit)")
    return f"WHERE {where} ORDER BY c.name_key, c.id LIMIT :limit", params


def vehicle_row(vehicle: Vehicle, contact_id: int | None) -> tuple[Any, ...]:
    key = plate_key(vehicle.plate) if vehicle.plate else None
    make = canonical_make(vehicle.make) if vehicle.make else None
    return (contact_id, make, vehicle.model, vehicle.year, vehicle.plate,
            key.full if key else None, key.base if key else None, key.number if key else None,
            vehicle.vin.upper() if vehicle.vin else None)


INSERT_VEHICLE = ("INSERT INTO vehicles (id, contact_id, make, model, year, plate, plate_key, plate_base, "
                  "plate_number, vin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


INSERT_CONTACT = ("INSERT INTO contacts (id, name, name_key, kind, email, notes, external_id, created_at, updated_at, "
                  "phones_json, vehicles_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_PHONE = "INSERT INTO contact_phones (contact_id, number, number_key) VALUES (?, ?, ?)"
NEXT_IDS = "SELECT (SELECT coalesce(max(id), 0) FROM contacts) + 1, (SELECT coalesce(max(id), 0) FROM vehicles) + 1"

Rows = list[tuple[Any, ...]]


def contact_rows(contacts: Sequence[Contact], first_contact: int, first_vehicle: int, region: str,
                 now: float) -> tuple[Rows, Rows, Rows]:
    """The rows of ``contacts``, ``contact_phones`` and ``vehicles`` for new contacts, ids given from the
    first free ones, so that a whole chunk is three ``executemany`` calls (one round trip each)."""
    rows: Rows = []
    phones: Rows = []
    vehicles: Rows = []
    vehicle_id = first_vehicle
    for contact_id, contact in enumerate(contacts, start=first_contact):
        seen: set[str] = set()
        shown: list[str] = []
        for number in contact.phones:
            key = normalize_number(number, region)
            if key and key not in seen:
                seen.add(key)
                phones.append((contact_id, number.strip(), key))
                shown.append(number.strip())
        cars = []
        for vehicle in contact.vehicles:
            car = vehicle_row(vehicle, contact_id)
            vehicles.append((vehicle_id, *car))
            cars.append([vehicle_id, car[1], car[2], car[3], car[4], car[8]])  # id, make, model, year, plate, vin
            vehicle_id += 1
        rows.append((contact_id, contact.name.strip(), name_key(contact.name), contact.kind, contact.email,
                     contact.notes, contact.external_id, now, now, json.dumps(shown, ensure_ascii=False),
                     json.dumps(cars, ensure_ascii=False)))
    return rows, phones, vehicles


async def insert_contacts(db: aiosqlite.Connection, contacts: Sequence[Contact], region: str) -> list[int]:
    """Insert contacts with their phones and vehicles; returns their new ids, in order.

    Must run inside a write transaction (``BEGIN IMMEDIATE``): the ids follow the largest ones in the tables.
    """
    async with db.execute(NEXT_IDS) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    first_contact, first_vehicle = int(row[0]), int(row[1])
    rows, phones, vehicles = contact_rows(contacts, first_contact, first_vehicle, region, time.time())
    await db.executemany(INSERT_CONTACT, rows)
    if phones:
        await db.executemany(INSERT_PHONE, phones)
    if vehicles:
        await db.executemany(INSERT_VEHICLE, vehicles)
    return [r[0] for r in rows]


def chunks(items: Iterable[Contact], size: int) -> Iterable[list[Contact]]:
    chunk: list[Contact] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
