"""``cti store migrate [--dry-run]``: the configured store's schema brought up to date by hand, on both stores.

Real SQLite files and databases of the throwaway PostgreSQL cluster (tests/postgres.py), the command run
in-process (tests/cli_runner.py). The versions expected are the newest the packaged migrations reach.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import asyncpg

from store.migrate import load_migrations, migrate
from store.postgres.migrate import postgres_migrations
from tests.cli_runner import cti
from tests.daemon.conftest import write_config
from tests.store.test_store_copy import empty_database

SQLITE = load_migrations()
POSTGRES = postgres_migrations()


def config(tmp_path: Path, url: str = "") -> str:
    """A config whose [store] is ``journal.sqlite`` beside it, or the PostgreSQL database at ``url``."""
    path = write_config(tmp_path, 5038)
    if url:
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace('path = "journal.sqlite"', f'path = "journal.sqlite"\nurl = "{url}"', 1),
                        encoding="utf-8")
    return str(path)


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def test_a_fresh_sqlite_store_is_created_and_migrated_then_up_to_date(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    first = cti("store", "migrate", "--config", cfg).stdout
    assert f"schema migrated from version 0 to {SQLITE[-1].version}" in first, first
    assert all(f"applied {m.name}" in first for m in SQLITE), first
    assert user_version(tmp_path / "journal.sqlite") == SQLITE[-1].version
    again = cti("store", "migrate", "--config", cfg).stdout
    assert again.strip().endswith(f"schema version {SQLITE[-1].version}, up to date"), again


def test_a_dry_run_lists_what_would_run_and_changes_nothing(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    fresh = cti("store", "migrate", "--config", cfg, "--dry-run").stdout
    assert [line.strip() for line in fresh.splitlines() if "would apply" in line] == [
        f"would apply {m.name}" for m in SQLITE]
    assert "nothing was changed" in fresh and not (tmp_path / "journal.sqlite").exists()


async def test_an_older_sqlite_store_gets_only_the_migrations_it_lacks(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "journal.sqlite", isolation_level=None) as db:
        await migrate(db, SQLITE[:4])
    cfg = config(tmp_path)
    planned = cti("store", "migrate", "--config", cfg, "--dry-run").stdout
    assert [line.strip() for line in planned.splitlines() if "would apply" in line] == [
        f"would apply {m.name}" for m in SQLITE[4:]]
    assert user_version(tmp_path / "journal.sqlite") == 4
    done = cti("store", "migrate", "--config", cfg).stdout
    assert f"from version 4 to {SQLITE[-1].version}" in done and SQLITE[0].name not in done, done


def test_a_sqlite_store_newer_than_the_program_is_refused_untouched(tmp_path: Path) -> None:
    newer = SQLITE[-1].version + 1
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        db.execute(f"PRAGMA user_version = {newer}")
    for args in ((), ("--dry-run",)):
        ran = cti("store", "migrate", "--config", config(tmp_path), *args, check=False)
        assert ran.returncode == 1, ran.stdout
        assert f"schema version {newer}, newer than this program knows ({SQLITE[-1].version})" in ran.stderr
        assert "upgrade CTI Companion" in ran.stderr and "Traceback" not in ran.stderr
    assert user_version(tmp_path / "journal.sqlite") == newer


async def test_a_fresh_postgresql_database_is_migrated_then_up_to_date(tmp_path: Path) -> None:
    url = await empty_database()
    cfg = config(tmp_path, url)
    dry = cti("store", "migrate", "--config", cfg, "--dry-run").stdout
    assert f"would apply {POSTGRES[0].name}" in dry and url.rsplit("/", 1)[1] in dry, dry
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT to_regclass('schema_version')") is None  # a dry run creates nothing
        first = cti("store", "migrate", "--config", cfg).stdout
        assert f"schema migrated from version 0 to {POSTGRES[-1].version}" in first, first
        assert await conn.fetchval("SELECT max(version) FROM schema_version") == POSTGRES[-1].version
        again = cti("store", "migrate", "--config", cfg).stdout
        assert f"schema version {POSTGRES[-1].version}, up to date" in again, again
        await conn.execute("INSERT INTO schema_version (version, name) VALUES ($1, 'from a newer program')",
                           POSTGRES[-1].version + 1)
        newer = cti("store", "migrate", "--config", cfg, check=False)
        assert newer.returncode == 1 and "newer than this program knows" in newer.stderr, newer.stderr
    finally:
        await conn.close()


def test_an_unreachable_postgresql_store_is_one_line_without_its_password(tmp_path: Path) -> None:
    from tests.postgres import cluster

    url = f"postgresql://cti:hunter2-secret@127.0.0.1:{cluster().port}/no_such_database"
    ran = cti("store", "migrate", "--config", config(tmp_path, url), check=False)
    assert ran.returncode == 1 and "hunter2-secret" not in ran.stdout + ran.stderr
    assert "cti:***@" in ran.stderr and "no_such_database" in ran.stderr, ran.stderr
