"""The PostgreSQL store's schema migrations: ``store/postgres/migrations/NNNN_what.sql``, the version in a table.

Same rules as the SQLite store's (``store/migrate.py``, whose loader this reuses): versions run 0001, 0002, ...
with no gaps; each migration newer than the database runs in one transaction together with the update of
``schema_version``, so a failed one leaves schema and version as they were; a database newer than this program
is refused. PostgreSQL has transactional DDL, so a whole file is one ``execute`` inside the transaction.

Several processes may open one database at once (two daemons, the CLI): a transaction-level advisory lock makes
them migrate one after another, the later ones finding nothing left to do.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import resources

import asyncpg

from store.migrate import Migration, MigrationError, load_migrations, pending

log = logging.getLogger(__name__)

#: The advisory lock key every migrating process takes ("cti-migr" as an integer); any constant would do.
_LOCK_KEY = 0x6374692D6D696772


def postgres_migrations() -> list[Migration]:
    """The packaged migrations of the PostgreSQL store, by version."""
    return load_migrations(resources.files("store.postgres.migrations"))


async def schema_version(conn: asyncpg.Connection) -> int:
    """The database's schema version (0: a database this store has never opened)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    version = await conn.fetchval("SELECT max(version) FROM schema_version")
    return int(version or 0)


async def plan(conn: asyncpg.Connection,
               migrations: Sequence[Migration] | None = None) -> tuple[int, list[Migration]]:
    """The database's schema version and the migrations :func:`migrate` would apply to it, without applying any or
    creating anything (``cti store migrate --dry-run``). Raises ``MigrationError`` for a database newer than this
    program."""
    current = await schema_version(conn)
    todo = list(migrations) if migrations is not None else postgres_migrations()
    return current, pending(todo, current, "use another database")


async def migrate(conn: asyncpg.Connection, migrations: Sequence[Migration] | None = None) -> int:
    """Apply every migration newer than the database, each in one transaction; return the new version.

    Raises:
        MigrationError: the database is newer than this program, or a migration failed (it was rolled back).
    """
    todo = list(migrations) if migrations is not None else postgres_migrations()
    latest = todo[-1].version if todo else 0
    while True:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
                               "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            current = await schema_version(conn)
            if current > latest:
                raise MigrationError(
                    f"the database has schema version {current}, newer than this program knows ({latest}); "
                    "upgrade CTI Companion or use another database"
                )
            following = [m for m in todo if m.version > current]
            if not following:
                return current
            migration = following[0]
            try:
                await conn.execute(migration.sql)
                await conn.execute("INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                                   migration.version, migration.name)
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migration {migration.name} failed and was rolled back: {exc}") from exc
        log.info("store schema migrated to version %d (%s)", migration.version, migration.name)
