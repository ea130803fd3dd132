"""What only the PostgreSQL store has: its migrations table, the URL in the settings, a database that goes away.

The contract (``test_store_contract.py`` and the other ``test_contract_*`` files) runs on it already; these are
its own machinery, as ``test_sqlite_store.py`` is the SQLite store's.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from companion.config import ConfigError, parse_config
from store import open_store
from store.migrate import Migration, MigrationError
from store.postgres import PostgresStore
from store.postgres.migrate import migrate, postgres_migrations
from store.repository import StoreError
from store.settings import StoreSettings
from tests.conftest import UNIT
from tests.postgres import cluster
from tests.store.builders import T0, make_call, missed_for


async def tables(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r[0] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
    finally:
        await conn.close()


async def versions(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY version")]
    finally:
        await conn.close()


async def empty_database() -> str:
    """A database without the store's schema: the template's copy with its tables dropped."""
    url = await cluster().fresh_database()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
    return url


async def test_opening_an_empty_database_migrates_it_once_and_keeps_the_data() -> None:
    url = await empty_database()
    assert await tables(url) == []
    async with PostgresStore.open(url) as store:
        record = make_call("keep")
        store.stage_call(record, missed_for(record), ())
    expected = [m.version for m in postgres_migrations()]
    assert await versions(url) == expected
    before = await tables(url)
    assert {"calls", "call_agents", "missed", "missed_history", "agent_misses", "live_events", "users",
            "api_tokens", "sessions", "contacts", "contact_phones", "vehicles", "call_contacts"} <= set(before)
    for _ in range(2):
        async with PostgresStore.open(url) as store:
            assert await store.list_calls() == [record]
            assert len(await store.list_missed()) == 1
    assert await tables(url) == before
    assert await versions(url) == expected


async def test_a_database_from_a_newer_program_is_not_opened() -> None:
    url = await cluster().fresh_database()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO schema_version (version, name) VALUES (9999, '9999_future.sql')")
    finally:
        await conn.close()
    with pytest.raises(MigrationError, match="newer than this program"):
        await PostgresStore.open(url)


async def test_a_failing_migration_changes_neither_schema_nor_version() -> None:
    url = await empty_database()
    good = Migration(1, "0001_one.sql", "CREATE TABLE one (x integer)")
    bad = Migration(2, "0002_bad.sql", "CREATE TABLE two (x integer); INSERT INTO nowhere VALUES (1)")
    conn = await asyncpg.connect(url)
    try:
        assert await migrate(conn, [good]) == 1
        with pytest.raises(MigrationError, match=r"0002_bad\.sql failed and was rolled back"):
            await migrate(conn, [good, bad])
    finally:
        await conn.close()
    assert await tables(url) == ["one", "schema_version"]
    assert await versions(url) == [1]


async def test_the_settings_url_chooses_postgresql_and_a_bad_scheme_is_refused_at_load() -> None:
    url = await cluster().fresh_database()
    async with open_store(StoreSettings(url=url, flush_interval=0.05, batch_size=3), region="RU") as store:
        store.stage_call(make_call("via-settings"), None, ())
        await store.flush()
        assert [c.linkedid for c in await store.list_calls()] == ["via-settings"]
    with pytest.raises(ConfigError, match=r"store.url.*postgresql://"):
        parse_config({"ami": {"username": "cti", "secret": "x"}, "store": {"url": "mysql://cti@db/cti"}})


async def test_an_unreachable_database_is_a_clear_error_that_shows_no_password() -> None:
    nobody = f"postgresql://cti:s3cret@127.0.0.1:{cluster().port}/no_such_database"
    with pytest.raises(StoreError, match="cannot open the store") as caught:
        await open_store(StoreSettings(url=nobody), region="RU")
    assert "s3cret" not in str(caught.value)


async def test_a_database_that_goes_away_keeps_items_staged_until_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = await cluster().fresh_database()
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(cluster().url("postgres"))
    try:
        async with PostgresStore.open(url, flush_interval=0.02 * UNIT) as store, asyncio.TaskGroup() as tg:
            writer = tg.create_task(store.run_writer())
            # The server restarts, say: every connection of the store is cut and no new one is let in.
            await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
            with caplog.at_level(logging.ERROR, logger="store"):
                store.stage_event("c1", [("Event", "Newchannel")], T0)
                store.stage_call(make_call("c1"), None, ())
                async with asyncio.timeout(10 * UNIT):
                    while not any("retrying" in r.getMessage() for r in caplog.records):
                        await asyncio.sleep(0.01 * UNIT)
            assert store.pending_count == 2

            await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            async with asyncio.timeout(10 * UNIT):
                while store.pending_count:
                    await asyncio.sleep(0.01 * UNIT)
            assert [c.linkedid for c in await store.list_calls()] == ["c1"]
            assert await store.live_events() == []  # still in staging order: the event, then its call
            writer.cancel()
    finally:
        await admin.close()


def test_the_store_imports_without_asyncpg_and_opening_postgresql_without_it_names_the_extra() -> None:
    script = (
        "import asyncio, sys\n"
        "sys.modules['asyncpg'] = None  # as if the postgresql extra were not installed\n"
        "from store import StoreSettings, open_store\n"
        "from store.repository import StoreError\n"
        "async def main():\n"
        "    try:\n"
        "        await open_store(StoreSettings(url='postgresql://cti@127.0.0.1:1/cti'), region='RU')\n"
        "    except StoreError as exc:\n"
        "        print(exc)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60 * UNIT,
                          cwd=Path(__file__).resolve().parents[2], check=False)
    assert done.returncode == 0, done.stderr
    assert "pip install 'cti-companion[postgresql]'" in done.stdout
