"""``cti store migrate`` and ``cti store copy``: the store's schema by hand, and a site moved to PostgreSQL.

Both stores migrate when they are opened; ``migrate`` lets an admin do it once, before starting daemons (several
nodes on one PostgreSQL), or see what an upgrade would change (``--dry-run``). ``copy`` moves an existing site's
SQLite file into an empty PostgreSQL database (:mod:`store.transfer`), a progress bar per table on stderr, the
counts of both sides on stdout. A password in a URL is never printed.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from companion.output import Format, emit
from cti.safe_text import terminal_text

from .app import store_app
from .errors import fail
from .loading import settings_from
from .options import ConfigOpt

if TYPE_CHECKING:
    from store.transfer import TableCount

COUNT_COLUMNS = (("table", "Table"), ("source", "SQLite"), ("target", "PostgreSQL"), ("check", "Check"))


@store_app.command("migrate")
def store_migrate(
    config: ConfigOpt,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list the migrations that would run; change nothing")]
    = False,
) -> None:
    """Bring the configured store's schema up to date ([store] path, or [store] url for PostgreSQL).

    The daemon does this itself when it starts; run it by hand to upgrade once before starting several daemons on
    one database. A store written by a newer version of CTI Companion is refused (exit status 1), untouched.
    """
    import asyncio

    from store.migrate import MigrationError
    from store.repository import StoreError
    from store.upgrade import migrate_store

    settings = settings_from(config)
    try:
        change = asyncio.run(migrate_store(settings.store, dry_run=dry_run))
    except (StoreError, MigrationError) as exc:
        fail(str(exc), 1)
    where = f"store {change.location}"
    if change.up_to_date:
        typer.echo(terminal_text(f"{where}: schema version {change.before}, up to date"))
        return
    verb = "would apply" if dry_run else "applied"
    for migration in change.migrations:
        typer.echo(terminal_text(f"  {verb} {migration.name}"))
    if dry_run:
        typer.echo(terminal_text(f"{where}: schema version {change.before}, {len(change.migrations)} migration(s) "
                                 f"to apply (up to version {change.after}); nothing was changed"))
    else:
        typer.echo(terminal_text(f"{where}: schema migrated from version {change.before} to {change.after}"))


@store_app.command("copy")
def store_copy(
    source: Annotated[str, typer.Option("--from", metavar="sqlite:PATH",
                                        help="the site's SQLite store: sqlite:PATH or sqlite:///absolute/path")],
    target: Annotated[str, typer.Option("--to", metavar="postgresql://USER@HOST/DB",
                                        help="an empty PostgreSQL database (the password: PGPASSWORD or ~/.pgpass)")],
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress",
                                                  help="progress bars on stderr (default: on a terminal only)")]
    = None,
) -> None:
    """Move a site's SQLite store into an empty PostgreSQL database, every table, ids kept.

    Stop the daemon first. The target is migrated, then filled in one transaction, table by table, and each
    table's count is checked against the source's before the commit. A target that already holds data is refused
    (no merge); on any failure or a count that differs nothing is committed (exit status 1), so the copy can be
    run again. The SQLite file is only read (it is first brought up to date if an older version wrote it).
    """
    import asyncio

    from store.migrate import MigrationError
    from store.repository import StoreError

    try:
        from store.transfer import BadUrl, CountMismatch, copy_sqlite_to_postgres, postgres_url, sqlite_path
    except ImportError as exc:
        if exc.name != "asyncpg":
            raise
        fail("copying to PostgreSQL needs the asyncpg driver: pip install 'cti-companion[postgresql]'", 1)
    try:
        sqlite_path(source)
        postgres_url(target)
    except BadUrl as exc:
        fail(str(exc))
    show = sys.stderr.isatty() if progress is None else progress
    with _bars(show) as bars:
        try:
            report = asyncio.run(copy_sqlite_to_postgres(source, target, progress=bars))
        except CountMismatch as exc:
            _print_counts(exc.counts)
            fail(str(exc), 1)
        except (StoreError, MigrationError) as exc:
            fail(str(exc), 1)
    _print_counts(report.counts)
    typer.echo(terminal_text(f"copied {report.rows} row(s) in {len(report.counts)} tables from {report.source} "
                             f"(schema {report.source_version}) to {report.target} (schema {report.target_version})"))


def _print_counts(counts: tuple[TableCount, ...]) -> None:
    rows = [{"table": c.table, "source": c.source, "target": c.target, "check": "ok" if c.matches else "DIFFERS"}
            for c in counts]
    emit(rows, Format.table, COUNT_COLUMNS, "Rows copied")


def _bars(show: bool) -> TableBars:
    return TableBars(Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
                              RowsPerSecond(), TimeRemainingColumn(), console=Console(stderr=True),
                              disable=not show))


class RowsPerSecond(ProgressColumn):
    """The table's copy rate in rows per second (rich's own speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "- rows/s", style="progress.data.speed")


class TableBars:
    """A bar per table (``store.transfer.CopyProgress``): rows copied of the table's, rows/s, time left."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.tasks: dict[str, tuple[TaskID, int]] = {}

    def __enter__(self) -> TableBars:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def table_started(self, table: str, rows: int) -> None:
        self.tasks[table] = (self.bars.add_task(terminal_text(table), total=rows), rows)

    def rows_copied(self, table: str, rows: int) -> None:
        self.bars.advance(self.tasks[table][0], rows)

    def table_done(self, table: str) -> None:
        task, rows = self.tasks[table]
        self.bars.update(task, completed=rows)
