"""Schema migrations: numbered ``.sql`` files applied in order, the version kept in ``PRAGMA user_version``.

Why not Alembic: the schema is a handful of tables and SQLite already has a version slot in its file
header. A migration is a file ``NNNN_what.sql`` in ``store/migrations/``; each one that is newer than the
database runs in its own transaction together with ``PRAGMA user_version = NNNN``, so a failed migration
leaves both the schema and the version as they were, and reopening a database applies nothing twice.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

import aiosqlite

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")


class MigrationError(Exception):
    """The schema cannot be brought up to date; the message says which migration and why."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(directory: Path | Traversable | None = None) -> list[Migration]:
    """The migrations in ``directory`` (default: the ``store.migrations`` package), by version.

    Raises:
        MigrationError: two files share a version, or the versions do not run 1, 2, 3, ... without gaps
            (a gap is almost always a file that was renamed or forgotten).
    """
    folder: Path | Traversable = directory if directory is not None else resources.files("store.migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"migration {migration.name}: expected version {expected:04d} "
                "(versions must run 0001, 0002, ... with no gaps or duplicates)"
            )
    return found


def pending(migrations: Sequence[Migration], current: int, elsewhere: str) -> list[Migration]:
    """The migrations newer than a database at version ``current``, in order (none: it is up to date).

    Raises:
        MigrationError: the database is newer than the newest migration: it was written by a newer program, and
            this one refuses a schema it does not know (``elsewhere`` ends the message: what else the user can do).
    """
    latest = migrations[-1].version if migrations else 0
    if current > latest:
        raise MigrationError(
            f"the database has schema version {current}, newer than this program knows ({latest}); "
            f"upgrade CTI Companion or {elsewhere}"
        )
    return [m for m in migrations if m.version > current]


async def plan(db: aiosqlite.Connection, migrations: Sequence[Migration] | None = None) -> tuple[int, list[Migration]]:
    """The database's schema version and the migrations :func:`migrate` would apply to it, without applying any
    (``cti store migrate --dry-run``). Raises ``MigrationError`` for a database newer than this program."""
    current = await schema_version(db)
    todo = list(migrations) if migrations is not None else load_migrations()
    return current, pending(todo, current, "use another store file")


async def schema_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def migrate(db: aiosqlite.Connection, migrations: Sequence[Migration] | None = None) -> int:
    """Apply every migration newer than the database, each in one transaction; return the new version.

    ``db`` must be in autocommit mode (``isolation_level=None``) so the explicit ``BEGIN`` here is the
    only transaction. A database written by a newer program (``user_version`` above the newest known
    migration) is refused rather than used with a schema this code does not know.
    """
    todo = list(migrations) if migrations is not None else load_migrations()
    current = await schema_version(db)
    for migration in pending(todo, current, "use another store file"):
        # executescript() runs the file as is (triggers and all) and commits anything pending first;
        # the BEGIN/COMMIT around it make the file and the version bump one transaction.
        script = f"BEGIN IMMEDIATE;\n{migration.sql}\n;PRAGMA user_version = {migration.version};\nCOMMIT;\n"
        try:
            await db.executescript(script)
        except sqlite3.Error as exc:
            await rollback(db)
            raise MigrationError(f"migration {migration.name} failed and was rolled back: {exc}") from exc
        log.info("store schema migrated to version %d (%s)", migration.version, migration.name)
        current = migration.version
    return current


async def rollback(db: aiosqlite.Connection) -> None:
    """Roll back if a transaction is still open (SQLite ends some on its own after an error)."""
    try:
        await db.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if "no transaction is active" not in str(exc):
            raise
