"""What only the SQLite store has: its file, WAL, migrations at open, a bad item, a locked database."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import aiosqlite
import pytest

from companion.config import StoreSettings
from store.migrate import MigrationError, load_migrations
from store.repository import StoreError
from store.sqlite import SqliteStore
from tests.conftest import UNIT
from tests.store.builders import T0, make_call, missed_for


async def pragma(path: Path, name: str) -> object:
    async with aiosqlite.connect(path) as db, db.execute(f"PRAGMA {name}") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return row[0]


async def schema(path: Path) -> list[tuple[str, str]]:
    async with aiosqlite.connect(path) as db, db.execute(
        "SELECT type, name FROM sqlite_master ORDER BY type, name"
    ) as cursor:
        return [(row[0], row[1]) async for row in cursor]


async def test_open_creates_a_wal_database_with_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "new" / "cti.sqlite"
    path.parent.mkdir()
    async with SqliteStore.open(path) as store:
        assert await store.count_calls() == 0
    assert await pragma(path, "journal_mode") == "wal"
    assert await pragma(path, "user_version") == len(load_migrations())
    assert await pragma(path, "integrity_check") == "ok"


async def test_reopening_applies_no_migration_twice_and_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "cti.sqlite"
    async with SqliteStore.open(path) as store:
        record = make_call("keep")
        store.stage_call(record, missed_for(record), ())
    before = await schema(path)
    for _ in range(3):
        async with SqliteStore.open(path) as store:
            assert await store.list_calls() == [record]
            assert len(await store.list_missed()) == 1
    assert await schema(path) == before
    assert await pragma(path, "user_version") == len(load_migrations())


async def test_open_with_settings(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path / "cfg.sqlite", flush_interval=0.05, batch_size=3)
    async with SqliteStore.from_settings(settings, region="RU") as store:
        assert store.path == settings.path
        store.stage_call(make_call("s"), None, ())
    assert (tmp_path / "cfg.sqlite").exists()


async def test_a_database_from_a_newer_program_is_not_opened(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    async with aiosqlite.connect(path) as db:
        await db.execute(f"PRAGMA user_version = {len(load_migrations()) + 1}")
    with pytest.raises(MigrationError, match="newer than this program"):
        await SqliteStore.open(path)


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are not the calls you are looking for\n" * 100)
    with pytest.raises(StoreError, match=r"notes\.txt"):
        await SqliteStore.open(path)
    with pytest.raises(StoreError, match="cannot open"):
        await SqliteStore.open(tmp_path / "no-such-dir" / "cti.sqlite")


async def test_one_bad_item_does_not_cost_the_rest_of_its_batch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = [make_call(f"good-{i}", started_at=T0 + i) for i in range(5)]
    bad = make_call("bad", started_at=T0 + 2.5)
    # "closed" with nobody having closed it: the schema refuses it.
    broken_entry = dataclasses.replace(missed_for(bad), status="closed", closed_by=None)
    async with SqliteStore.open(tmp_path / "cti.sqlite") as store:
        for record in good[:3]:
            store.stage_call(record, missed_for(record), ())
        store.stage_call(bad, broken_entry, ())
        for record in good[3:]:
            store.stage_call(record, missed_for(record), ())
        with caplog.at_level(logging.WARNING, logger="store.sqlite"):
            await store.flush()
        assert await store.list_calls() == good
        assert len(await store.list_missed()) == 5
    assert any("dropped call bad and its missed entry" in r.getMessage() for r in caplog.records)


async def test_a_locked_database_keeps_items_staged_until_it_is_free(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cti.sqlite"
    async with (
        SqliteStore.open(path, flush_interval=0.02 * UNIT, busy_timeout=0.01) as store,
        aiosqlite.connect(path, isolation_level=None) as other,
        asyncio.TaskGroup() as tg,
    ):
        await other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        writer = tg.create_task(store.run_writer())
        store.stage_event("c1", [("Event", "Newchannel")], T0)
        store.stage_call(make_call("c1"), None, ())
        with caplog.at_level(logging.ERROR, logger="store.sqlite"):
            await asyncio.sleep(0.3 * UNIT)
        assert await store.count_calls() == 0
        assert store.pending_count == 2
        assert any("retrying" in r.getMessage() for r in caplog.records)

        await other.execute("COMMIT")
        async with asyncio.timeout(5 * UNIT):
            while await store.count_calls() != 1:
                await asyncio.sleep(0.01 * UNIT)
        assert await store.live_events() == []  # still in staging order: event, then its call
        writer.cancel()
