"""The migration runner: versioned .sql files, applied once each, in order, each in one transaction."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from store.migrate import MigrationError, load_migrations, migrate, schema_version

PACKAGED = Path(__file__).resolve().parents[2] / "store" / "migrations"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    async with aiosqlite.connect(tmp_path / "m.sqlite", isolation_level=None) as conn:
        yield conn


async def tables(db: aiosqlite.Connection) -> set[str]:
    async with db.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as cursor:
        return {row[0] async for row in cursor}


#: How many migrations the program has (the schema version of a fresh database).
LATEST = len(load_migrations())


def migrations_dir(tmp_path: Path, **extra: str) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for packaged in PACKAGED.glob("*.sql"):
        shutil.copy(packaged, folder)
    for name, sql in extra.items():
        (folder / f"{name}.sql").write_text(sql, encoding="utf-8")
    return folder


async def test_fresh_database_gets_the_whole_schema(db: aiosqlite.Connection) -> None:
    assert await migrate(db) == LATEST
    assert await schema_version(db) == LATEST
    assert {"calls", "agent_misses", "missed", "missed_history", "live_events", "users",
            "api_tokens"} <= await tables(db)


async def test_migrating_twice_applies_nothing_twice(db: aiosqlite.Connection) -> None:
    await migrate(db)
    await db.execute("INSERT INTO live_events (linkedid, headers, received_at) VALUES ('x', '[]', 1)")
    assert await migrate(db) == LATEST  # CREATE TABLE again would fail; data stays
    async with db.execute("SELECT count(*) FROM live_events") as cursor:
        assert (await cursor.fetchone()) == (1,)


async def test_a_new_migration_is_applied_alone_on_an_existing_database(
    db: aiosqlite.Connection, tmp_path: Path
) -> None:
    await migrate(db)
    folder = migrations_dir(tmp_path, **{f"{LATEST + 1:04d}_call_notes": "ALTER TABLE calls ADD COLUMN note TEXT;"})
    assert await migrate(db, load_migrations(folder)) == LATEST + 1
    async with db.execute("SELECT name FROM pragma_table_info('calls') WHERE name = 'note'") as cursor:
        assert await cursor.fetchone() is not None
    assert await migrate(db, load_migrations(folder)) == LATEST + 1


async def test_a_failing_migration_changes_neither_schema_nor_version(
    db: aiosqlite.Connection, tmp_path: Path
) -> None:
    await migrate(db)
    folder = migrations_dir(tmp_path, **{
        f"{LATEST + 1:04d}_broken":
            "CREATE TABLE notes (id INTEGER PRIMARY KEY);\nALTER TABLE no_such_table ADD COLUMN x;",
    })
    with pytest.raises(MigrationError, match=rf"{LATEST + 1:04d}_broken\.sql failed and was rolled back"):
        await migrate(db, load_migrations(folder))
    assert await schema_version(db) == LATEST
    assert "notes" not in await tables(db)


async def test_a_gap_in_the_versions_is_refused(tmp_path: Path) -> None:
    folder = migrations_dir(tmp_path, **{f"{LATEST + 2:04d}_skipped_one": "SELECT 1;"})
    with pytest.raises(MigrationError, match=f"expected version {LATEST + 1:04d}"):
        load_migrations(folder)


async def test_a_database_from_a_newer_program_is_refused(db: aiosqlite.Connection) -> None:
    await db.execute("PRAGMA user_version = 99")
    with pytest.raises(MigrationError, match="newer than this program"):
        await migrate(db)


def test_the_packaged_migrations_are_found() -> None:
    assert [m.name for m in load_migrations()][:1] == ["0001_initial.sql"]


async def test_a_directory_from_before_0004_gets_its_contact_cards_filled(db: aiosqlite.Connection) -> None:
    await migrate(db, load_migrations()[:3])
    await db.execute("INSERT INTO contacts (id, name, name_key, created_at, updated_at) "
                     "VALUES (1, 'Иванов Пётр', 'иванов петр', 0, 0)")
    await db.execute("INSERT INTO contact_phones VALUES (1, '8 916 123-45-67', '79161234567')")
    await db.execute("INSERT INTO contact_phones VALUES (1, '+7 495 111-22-33', '74951112233')")
    await db.execute("INSERT INTO vehicles (id, contact_id, make, plate) VALUES (5, 1, 'Kia', 'А123ВС77')")
    await migrate(db)
    async with db.execute("SELECT phones_json, vehicles_json FROM contacts WHERE id = 1") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    assert tuple(row) == ('["8 916 123-45-67","+7 495 111-22-33"]', '[[5,"Kia",null,null,"А123ВС77",null]]')


async def test_a_journal_from_before_0006_gets_its_agents_table_filled(tmp_path: Path) -> None:
    """A store written before 0006 kept the agents of a call only in JSON lists on its row: opened by this
    program, its agent filter finds the same calls through the new table (and no longer reads that JSON)."""
    from store.sqlite import SqliteStore
    from store.sqlite.rows import CALL_COLUMNS, call_row
    from tests.store.builders import T0, make_call

    path = tmp_path / "old.sqlite"
    calls = [
        make_call("rung-only", agents_rung_not_answered=("101", "102"), started_at=T0),
        make_call("answered", answered=True, answered_by="102", agents_rung_not_answered=("101",),
                  agents_answered=("102",), started_at=T0 + 10),
        make_call("transferred", answered=True, answered_by="103", agents_answered=("103", "104"), started_at=T0 + 20),
        make_call("nobody", started_at=T0 + 30),
    ]
    async with aiosqlite.connect(path, isolation_level=None) as old:
        await migrate(old, load_migrations()[:5])
        # The rows as the program of schema 5 wrote them (the same columns but the PBX, which came with 0007; it had
        # no agents table).
        columns = CALL_COLUMNS[:CALL_COLUMNS.index("pbx")]
        await old.executemany(f"INSERT INTO calls ({', '.join(columns)}) VALUES "
                              f"({', '.join('?' for _ in columns)})",
                              [call_row(c, None, None)[:len(columns)] for c in calls])

    async with SqliteStore.open(path) as store:
        assert await schema_version(store.lanes.writer) == LATEST
        agents = await store.lanes.reader.execute_fetchall(
            "SELECT agent, linkedid, rung_not_answered, answered FROM call_agents ORDER BY agent, started_at")
        assert [tuple(row) for row in agents] == [
            ("101", "rung-only", 1, 0), ("101", "answered", 1, 0), ("102", "rung-only", 1, 0),
            ("102", "answered", 0, 1), ("103", "transferred", 0, 1), ("104", "transferred", 0, 1)]
        assert [c.linkedid for c in await store.list_calls(agent="101")] == ["rung-only", "answered"]
        assert [c.linkedid for c in await store.list_calls(agent="104", newest_first=True)] == ["transferred"]
        assert await store.list_calls(agent="105") == []
