"""``cti store migrate``: the configured store's schema brought up to date before any daemon opens it.

Both stores migrate when they are opened, so a single site never needs this. It is for an admin who wants the
schema change done once, on purpose, before starting daemons (several nodes on one PostgreSQL database, each of
which would otherwise migrate at its first start, one after another behind the migrations' lock), and for seeing
what an upgrade would change (``dry_run``: the pending migrations, nothing applied, nothing created).

Only the configured backend's driver is imported, as in :func:`store.open_store`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from store.migrate import Migration
from store.repository import StoreError
from store.settings import StoreSettings

#: How long the SQLite migration waits for another process's write lock (a daemon committing a batch), in ms.
SQLITE_BUSY_MS = 5_000


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """What ``migrate_store`` found and did: the schema version before and after, and the migrations between."""

    #: Where the store is, without a password (``StoreSettings.location``).
    location: str
    before: int
    after: int
    #: The migrations applied (or, in a dry run, that would be), in order; empty: the store was up to date.
    migrations: tuple[Migration, ...]
    dry_run: bool

    @property
    def up_to_date(self) -> bool:
        return not self.migrations


async def migrate_store(settings: StoreSettings, *, dry_run: bool = False) -> SchemaChange:
    """Apply the configured store's pending migrations (none in a ``dry_run``) and say what changed.

    A SQLite file that does not exist yet is created (as the daemon's first start would), except in a dry run.

    Raises:
        MigrationError: the database is newer than this program (it is left untouched), or a migration failed
            (rolled back: schema and version stay as they were).
        StoreError: the store cannot be reached or opened.
    """
    if settings.backend == "postgresql":
        return await _postgres(settings, dry_run)
    return await _sqlite(settings.path, settings.location, dry_run)


async def _sqlite(path: Path, location: str, dry_run: bool) -> SchemaChange:
    import aiosqlite

    from store.migrate import load_migrations, migrate, plan

    if dry_run and not await asyncio.to_thread(path.exists):
        every = tuple(load_migrations())
        return SchemaChange(location, 0, every[-1].version if every else 0, every, dry_run)
    if not await asyncio.to_thread(path.parent.is_dir):
        raise StoreError(f"{location}: cannot open the store: the folder {path.parent} does not exist")
    try:
        db = await aiosqlite.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"{location}: cannot open the store: {exc}") from exc
    try:
        await db.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        before, todo = await plan(db)
        if dry_run:
            return SchemaChange(location, before, todo[-1].version if todo else before, tuple(todo), dry_run)
        # The store's own settings (store/sqlite/lanes.py): a file made here is the file the daemon would make.
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA foreign_keys = ON")
        after = await migrate(db)
        return SchemaChange(location, before, after, tuple(todo), dry_run)
    except sqlite3.Error as exc:
        raise StoreError(f"{location}: cannot use the store: {exc}") from exc
    finally:
        await db.close()


async def _postgres(settings: StoreSettings, dry_run: bool) -> SchemaChange:
    try:
        import asyncpg
    except ImportError:
        raise StoreError("a PostgreSQL store ([store] url) needs the asyncpg driver: "
                         "pip install 'cti-companion[postgresql]'") from None
    from store.postgres.migrate import migrate, plan

    location = settings.location
    try:
        conn = await asyncpg.connect(settings.url, timeout=10.0,
                                     server_settings={"application_name": "cti-companion migrate"})
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, ValueError) as exc:
        raise StoreError(f"{location}: cannot open the store: {hide_password(str(exc), settings.url)}") from exc
    try:
        before, todo = await plan(conn)
        if dry_run:
            return SchemaChange(location, before, todo[-1].version if todo else before, tuple(todo), dry_run)
        after = await migrate(conn)
        # Another process may have applied some of them meanwhile (behind the migrations' lock): what we did.
        return SchemaChange(location, before, after, tuple(m for m in todo if m.version <= after), dry_run)
    except asyncpg.PostgresError as exc:
        raise StoreError(f"{location}: cannot use the store: {hide_password(str(exc), settings.url)}") from exc
    finally:
        await conn.close()


def hide_password(text: str, url: str) -> str:
    """``text`` (a driver's message) with the password of ``url`` written ``***`` wherever it appears: a message
    about a database may quote its address, and the password must never reach a terminal or a log."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    if not password:
        return text
    for form in {password, unquote(password)}:
        text = text.replace(form, "***")
    return text
