"""``cti store copy``: a site's SQLite store moved into a PostgreSQL database, table to table, in one transaction.

**Table to table**, not through the records: every table the SQLite file holds is copied column by column into
the table of the same name, so nothing the SQLite store keeps is left behind (its full-text index aside: derived
from the transcripts, which PostgreSQL indexes itself, :data:`SEARCH_INDEXES`; a table of the file with no
counterpart in the PostgreSQL schema, or a column missing on either side, stops the copy before anything is
written), ids are kept as they are (a register entry's number, the history rows pointing at it, contacts and their
cars), and no record is decoded and encoded again. The two schemas are the same tables with each database's types
(``store/postgres/migrations/``, SQLite's ``store/migrations/``: the PBX columns of 0002 / 0007 included); a value
changes only its type on the way: a JSON array of text (SQLite) becomes ``text[]``, 0/1 a ``boolean``, JSON text
stays JSON text. The one column PostgreSQL has that
SQLite keeps implicitly is ``contact_phones.id`` (the order a contact's phones were given): SQLite's ``rowid``.

**All or nothing.** The target is migrated first, must hold no data (a copy refuses a non-empty database rather
than merge two sites' ids), and receives everything in one transaction, tables in the order of its foreign keys;
the counts are checked (source against target, table by table) before the commit. A failure or a count that
differs rolls everything back: the target is left empty and the copy can simply be run again.

**Constant memory.** The source is read in one read transaction (a consistent snapshot, even if a daemon still
wrote to it) through ``fetchmany`` batches, streamed into PostgreSQL's ``COPY`` (asyncpg's
``copy_records_to_table`` with an asynchronous iterator: a batch is read while the last one is on the wire).

**Ids go on from where they were.** Each identity column's sequence is set past the largest copied id, and past
the largest id SQLite ever gave (``sqlite_sequence``): a register entry's number is never reused, even if the
newest entries had been deleted.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiosqlite
import asyncpg

from store.migrate import MigrationError
from store.repository import StoreError
from store.settings import POSTGRES_SCHEMES, without_password
from store.upgrade import hide_password

#: Rows read from SQLite per round trip to its thread (and at most what memory holds of a table at a time).
BATCH = 2_000
#: PostgreSQL tables that are the store's machinery, not data: never copied, never counted.
MACHINERY = frozenset({"schema_version"})
#: The table copied last: the zone of the reports' day counts (its triggers count nothing while it is empty).
LAST = "report_zone"
#: SQLite's full-text indexes (FTS5 virtual tables, and their shadow tables ``<name>_data``, ``_idx`` …): derived
#: from the rows they index (0015's ``transcript_search`` from ``transcripts``), never copied; PostgreSQL indexes
#: the same columns itself (its 0010).
SEARCH_INDEXES = frozenset({"transcript_search"})


def is_search_index(table: str) -> bool:
    """``table`` is one of SQLite's full-text indexes or a shadow table of one (not copied, not counted)."""
    return any(table == index or table.startswith(index + "_") for index in SEARCH_INDEXES)


class BadUrl(ValueError):
    """A ``--from`` / ``--to`` that is not a store's address; the message says what is expected."""


class TargetNotEmpty(StoreError):
    """The target database already holds data (named tables); a copy never merges two sites."""


class CountMismatch(StoreError):
    """A table's row count in the target differs from the source's; the copy was rolled back."""

    def __init__(self, counts: Sequence[TableCount]) -> None:
        self.counts = tuple(counts)
        wrong = ", ".join(f"{c.table} ({c.source} in the source, {c.target} in the target)"
                          for c in counts if not c.matches)
        super().__init__(f"the counts differ: {wrong}; nothing was committed, the target is left as it was")


@dataclass(frozen=True, slots=True)
class TableCount:
    table: str
    source: int
    target: int

    @property
    def matches(self) -> bool:
        return self.source == self.target


@dataclass(frozen=True, slots=True)
class CopyReport:
    """A copy that committed: the schema versions and each table's counts (all equal)."""

    source: str
    target: str
    source_version: int
    target_version: int
    counts: tuple[TableCount, ...]

    @property
    def rows(self) -> int:
        return sum(c.target for c in self.counts)


class CopyProgress(Protocol):
    """Told how the copy goes, table by table (the CLI draws a bar per table)."""

    def table_started(self, table: str, rows: int) -> None: ...

    def rows_copied(self, table: str, rows: int) -> None: ...

    def table_done(self, table: str) -> None: ...


class _Silent:
    def table_started(self, table: str, rows: int) -> None:
        pass

    def rows_copied(self, table: str, rows: int) -> None:
        pass

    def table_done(self, table: str) -> None:
        pass


# -- addresses ---------------------------------------------------------------------------------------------------


def sqlite_path(url: str) -> Path:
    """The file of ``sqlite:PATH`` (relative or absolute) or ``sqlite:///abs/path`` (the URL form, no host)."""
    scheme, colon, rest = url.partition(":")
    if not colon or scheme.lower() != "sqlite":
        raise BadUrl(f"{url!r} is not a SQLite store: write sqlite:PATH (sqlite:cti.sqlite, sqlite:///var/lib/cti/"
                     "cti.sqlite)")
    if rest.startswith("//"):  # sqlite://HOST/PATH: the URL form, whose host must be empty
        host, slash, path = rest[2:].partition("/")
        if host or not slash:
            raise BadUrl(f"{url!r}: a SQLite file has no host; write sqlite:///absolute/path or sqlite:relative/path")
        rest = "/" + path
    if not rest or rest.endswith("/"):
        raise BadUrl(f"{url!r} names no file: write sqlite:PATH")
    return Path(rest).expanduser()


def postgres_url(url: str) -> str:
    """``url`` if it is a PostgreSQL database's address (``postgresql://user@host:port/db``)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise BadUrl(f"{without_password(url)!r} is not a URL: {exc}") from None
    if parts.scheme not in POSTGRES_SCHEMES:
        raise BadUrl(f"{without_password(url)!r} is not a PostgreSQL database: write "
                     "postgresql://user@host:port/database (the password in PGPASSWORD or ~/.pgpass)")
    if not parts.path.strip("/"):
        raise BadUrl(f"{without_password(url)!r} names no database: write postgresql://user@host:port/database")
    return url


# -- the plan ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    #: What is read from SQLite: the column, or ``rowid`` for a column SQLite keeps implicitly.
    source: str
    convert: Callable[[Any], Any] | None
    identity: bool


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    columns: tuple[_Column, ...]
    has_rowid: bool

    def select(self) -> str:
        """The rows in their rowid's order (a WITHOUT ROWID table's: its key's), so ids climb as COPY writes them."""
        columns = ", ".join(_ident(c.source) for c in self.columns)
        return f"SELECT {columns} FROM {_ident(self.name)}" + (" ORDER BY rowid" if self.has_rowid else "")


def _ident(name: str) -> str:
    return name if name == "rowid" else '"' + name.replace('"', '""') + '"'


def _text_array(value: Any) -> list[str]:
    items = json.loads(value) if isinstance(value, str) else None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"{value!r} is not a JSON list of text")
    return items


def _flag(value: Any) -> bool:
    if value not in (0, 1):
        raise ValueError(f"{value!r} is not a flag (0 or 1)")
    return bool(value)


def _integer(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value


def _real(value: Any) -> float:
    if not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return value


#: How a SQLite value becomes the value of a PostgreSQL column, by the column's type (``udt_name``).
CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "_text": _text_array, "bool": _flag, "int2": _integer, "int4": _integer, "int8": _integer,
    "float8": _real, "float4": _real, "text": _text, "json": _text, "jsonb": _text,
}


async def _plan(lite: aiosqlite.Connection, pg: asyncpg.Connection) -> list[_Table]:
    """Every table of the SQLite file, matched column for column with PostgreSQL's, in foreign-key order.

    Raises ``StoreError`` (before anything is written) when a table or a column has no counterpart."""
    async with lite.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                            "ORDER BY name") as cursor:
        tables = [str(row[0]) for row in await cursor.fetchall() if not is_search_index(str(row[0]))]
    rows = await pg.fetch("SELECT table_name, column_name, udt_name, is_identity FROM information_schema.columns "
                          "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position")
    target: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        target.setdefault(row["table_name"], []).append(row)
    plan: dict[str, _Table] = {}
    for table in tables:
        if table not in target or table in MACHINERY:
            raise StoreError(f"the SQLite store's table {table} has no counterpart in the PostgreSQL schema: this "
                             "program cannot copy it (nothing was written)")
        async with lite.execute(f"PRAGMA table_info({_ident(table)})") as cursor:
            names = [str(row[1]) for row in await cursor.fetchall()]
        async with lite.execute("SELECT 1 FROM sqlite_master WHERE name = ? AND sql LIKE '%WITHOUT ROWID%'",
                                (table,)) as cursor:
            has_rowid = await cursor.fetchone() is None
        columns: list[_Column] = []
        for row in target[table]:
            name, kind, identity = row["column_name"], row["udt_name"], row["is_identity"] == "YES"
            if name in names:
                source = name
            elif identity and has_rowid:  # contact_phones.id: SQLite keeps the order in the rowid
                source = "rowid"
            else:
                raise StoreError(f"table {table}: the PostgreSQL column {name} has no counterpart in the SQLite "
                                 "store (nothing was written)")
            if kind not in CONVERSIONS:
                raise StoreError(f"table {table}: the PostgreSQL column {name} has a type ({kind}) this copy "
                                 "does not convert to (nothing was written)")
            columns.append(_Column(name, source, CONVERSIONS[kind], identity))
        missing = [n for n in names if n not in {c.name for c in columns}]
        if missing:
            raise StoreError(f"table {table}: the SQLite column(s) {', '.join(missing)} have no counterpart in the "
                             "PostgreSQL schema (nothing was written)")
        plan[table] = _Table(table, tuple(columns), has_rowid)
    ordered = _fk_order(list(plan), await _references(pg))
    # The reports' day counts are copied as they are, and their zone last: until it is in, the target's triggers
    # (0009) count nothing, so no row copied is counted twice (store/report_days.py).
    ordered = [n for n in ordered if n != LAST] + [n for n in ordered if n == LAST]
    return [plan[name] for name in ordered]


async def _references(pg: asyncpg.Connection) -> dict[str, set[str]]:
    """Each table of the schema -> the tables its foreign keys point at."""
    rows = await pg.fetch("SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent "
                          "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                          "WHERE c.contype = 'f' AND n.nspname = current_schema()")
    refs: dict[str, set[str]] = {}
    for row in rows:
        refs.setdefault(row["child"].strip('"'), set()).add(row["parent"].strip('"'))
    return refs


def _fk_order(tables: list[str], refs: Mapping[str, set[str]]) -> list[str]:
    """``tables`` with every table after the tables it references (by name among equals: a stable order)."""
    done: list[str] = []
    left = sorted(tables)
    while left:
        # the first table (by name) whose parents among the tables still to copy are none but itself
        ready = next((t for t in left if not (refs.get(t, set()) - {t}) & set(left)), left[0])  # a cycle: none
        done.append(ready)
        left.remove(ready)
    return done


# -- the copy ----------------------------------------------------------------------------------------------------


async def copy_sqlite_to_postgres(source_url: str, target_url: str, *, batch: int = BATCH,
                                  progress: CopyProgress | None = None) -> CopyReport:
    """Copy every table of the SQLite store at ``source_url`` into the PostgreSQL database at ``target_url``.

    The target is migrated first and must hold no data. Both stores are brought to this program's schema (a SQLite
    file of an older version is migrated, as the daemon's next start would). Everything is one transaction on the
    target: on any failure nothing is committed.

    Raises:
        BadUrl: an address is not of the expected kind.
        TargetNotEmpty: the target holds data.
        CountMismatch: a table's counts differ (rolled back).
        MigrationError: either store is newer than this program.
        StoreError: a store cannot be reached, read or written, or the schemas do not match.
    """
    path = sqlite_path(source_url)
    postgres_url(target_url)
    shown = without_password(target_url)
    progress = progress or _Silent()
    if not await asyncio.to_thread(path.is_file):
        raise StoreError(f"no SQLite store at {path}")
    try:
        pg = await asyncpg.connect(target_url, timeout=10.0,
                                   server_settings={"application_name": "cti-companion copy"})
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, ValueError) as exc:
        raise StoreError(f"{shown}: cannot open the target: {hide_password(str(exc), target_url)}") from exc
    try:
        lite = await aiosqlite.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        await pg.close()
        raise StoreError(f"{path}: cannot open the source: {exc}") from exc
    try:
        return await _copy(lite, pg, path, shown, batch, progress)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot read the source: {exc}") from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise StoreError(f"{shown}: {hide_password(str(exc), target_url)}; nothing was committed") from exc
    finally:
        await lite.close()
        await pg.close()


async def _copy(lite: aiosqlite.Connection, pg: asyncpg.Connection, path: Path, shown: str, batch: int,
                progress: CopyProgress) -> CopyReport:
    from store.migrate import migrate as migrate_sqlite
    from store.postgres.migrate import migrate as migrate_postgres

    await lite.execute("PRAGMA busy_timeout = 5000")
    try:
        source_version = await migrate_sqlite(lite)
    except MigrationError as exc:
        raise MigrationError(f"the source {path}: {exc}") from None
    try:
        target_version = await migrate_postgres(pg)
    except MigrationError as exc:
        raise MigrationError(f"the target {shown}: {exc}") from None
    plan = await _plan(lite, pg)
    full = [t.name for t in plan if await pg.fetchval(f"SELECT EXISTS (SELECT 1 FROM {_ident(t.name)})")]
    if full:
        raise TargetNotEmpty(f"{shown} already holds data ({', '.join(full)}): a copy goes into an empty database "
                             "only (create one: createdb -O USER DATABASE); nothing was written")
    await lite.execute("BEGIN")  # one read transaction: every count and every row from the same snapshot
    try:
        source_counts = {t.name: await _count(lite, t.name) for t in plan}
        issued = await _sqlite_sequences(lite)
        counts: list[TableCount] = []
        async with pg.transaction():
            # Rows keep their ids: the triggers that number a new row (0013's CRM outbox order) leave them.
            await pg.execute("SET LOCAL cti.copying = 'on'")
            for table in plan:
                progress.table_started(table.name, source_counts[table.name])
                await pg.copy_records_to_table(table.name, columns=[c.name for c in table.columns],
                                               records=_rows(lite, table, batch, progress))
                progress.table_done(table.name)
                await _advance_identities(pg, table, issued.get(table.name, 0))
                target = int(await pg.fetchval(f"SELECT count(*) FROM {_ident(table.name)}"))
                counts.append(TableCount(table.name, source_counts[table.name], target))
            if not all(c.matches for c in counts):
                raise CountMismatch(counts)
    finally:
        await lite.execute("ROLLBACK")  # a read transaction: nothing to keep
    return CopyReport(str(path), shown, source_version, target_version, tuple(counts))


async def _count(lite: aiosqlite.Connection, table: str) -> int:
    async with lite.execute(f"SELECT count(*) FROM {_ident(table)}") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def _sqlite_sequences(lite: aiosqlite.Connection) -> dict[str, int]:
    """The largest id SQLite ever gave in each AUTOINCREMENT table (more than the largest left, if the newest rows
    were deleted); no such table: none."""
    async with lite.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'") as cursor:
        if await cursor.fetchone() is None:
            return {}
    async with lite.execute("SELECT name, seq FROM sqlite_sequence") as cursor:
        return {str(name): int(seq) for name, seq in await cursor.fetchall()}


async def _rows(lite: aiosqlite.Connection, table: _Table, batch: int,
                progress: CopyProgress) -> AsyncIterator[tuple[Any, ...]]:
    """The table's rows converted to PostgreSQL's types, read ``batch`` at a time."""
    converts = [c.convert for c in table.columns]
    async with lite.execute(table.select()) as cursor:
        while rows := list(await cursor.fetchmany(batch)):
            for row in rows:
                try:
                    yield tuple(None if v is None or f is None else f(v) for f, v in zip(converts, row, strict=True))
                except ValueError as exc:
                    raise StoreError(f"table {table.name}: a row cannot be copied ({_which(table, row)}): {exc}; "
                                     "nothing was committed") from None
            progress.rows_copied(table.name, len(rows))


def _which(table: _Table, row: Sequence[Any]) -> str:
    """The row's key for a message: its first column (an id, a linkedid, a name)."""
    return f"{table.columns[0].name} {row[0]!r}"


async def _advance_identities(pg: asyncpg.Connection, table: _Table, issued: int) -> None:
    """Set each identity column's sequence past the largest copied id (and past the largest SQLite ever issued),
    so the next row PostgreSQL numbers never takes an id that was copied or used before."""
    for column in table.columns:
        if not column.identity:
            continue
        largest = await pg.fetchval(f"SELECT max({_ident(column.name)}) FROM {_ident(table.name)}")
        last = max(int(largest or 0), issued)
        if last > 0:
            await pg.execute("SELECT setval(pg_get_serial_sequence($1, $2), $3, true)",
                             _ident(table.name), column.name, last)
