"""``cti contacts import|export``: the client directory to and from CSV as 1C writes it."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cti.safe_text import terminal_text

from .app import contacts_app
from .errors import fail
from .loading import settings_from
from .options import ConfigOpt
from .storage import with_store

if TYPE_CHECKING:
    from rich.progress import Progress

    from store.repository import Store

#: Problems of an import listed one by one; past this many only their count.
SHOWN_PROBLEMS = 200


def _progress(transient: bool = False) -> Progress:
    """A progress bar on stderr, shown only on a terminal: stdout keeps the report, a log stays clean."""
    from rich.console import Console
    from rich.progress import Progress

    return Progress(console=Console(stderr=True), transient=transient, disable=not sys.stderr.isatty())


@contacts_app.command("import")
def contacts_import(
    file: Annotated[Path, typer.Argument(help="CSV file (UTF-8 or Windows-1251; ';' ',' or tab separated)")],
    config: ConfigOpt,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check every row and report; save nothing")] = False,
    encoding: Annotated[str | None, typer.Option(help="force an encoding (default: UTF-8, else cp1251)")] = None,
    delimiter: Annotated[str | None, typer.Option(help="force the separator (default: detected)")] = None,
) -> None:
    """Import contacts and their cars from CSV (as 1C exports them). All rows or none.

    A file that is no such table (UTF-16, an unknown byte, a quote never closed) is refused with the line to
    look at (exit status 2); rows with problems are listed by line and nothing is imported (exit status 1).
    """
    from cti.contacts_csv import CsvError, read_contacts, valid_delimiter

    settings = settings_from(config)
    if delimiter is not None and not valid_delimiter(delimiter):
        fail(f"--delimiter must be one character other than a quote or a line break, not {delimiter!r}")
    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"{file}: cannot read: {exc.strerror}")
    lines = data.count(b"\n") or 1
    with _progress(transient=True) as bar:
        task = bar.add_task("checking", total=lines)
        try:
            result = read_contacts(data, encoding=encoding, delimiter=delimiter,
                                   region=settings.pbx.default_region, on_row=lambda: bar.advance(task))
        except CsvError as exc:
            fail(f"{file}: {exc}")
    summary = terminal_text(f"{file}: {result.rows} rows ({result.encoding}, separator {result.delimiter!r}): "
                            f"{len(result.contacts)} contacts, {result.vehicles} cars")
    if result.problems:
        typer.echo(summary, err=True)
        for problem in result.problems[:SHOWN_PROBLEMS]:
            typer.echo(f"  {terminal_text(str(problem))}", err=True)
        if len(result.problems) > SHOWN_PROBLEMS:
            typer.echo(f"  ... and {len(result.problems) - SHOWN_PROBLEMS} more", err=True)
        fail(f"{len(result.problems)} problem(s) in {file}: nothing was imported; fix the rows and run again", 1)
    if dry_run:
        typer.echo(summary + " - all rows are fine (dry run: nothing saved)")
        return

    async def work(store: Store) -> int:
        with _progress() as bar:
            task = bar.add_task("importing", total=len(result.contacts))
            ids = await store.add_contacts(result.contacts, progress=lambda n: bar.advance(task, n))
        return len(ids)

    try:
        saved = with_store(settings, work)
    except sqlite3.IntegrityError as exc:
        fail(f"{file}: nothing was imported: {exc} (a contact with the same code exists already?)", 1)
    typer.echo(summary + f" - imported {saved} contacts")


@contacts_app.command("export")
def contacts_export(
    config: ConfigOpt,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")] = None,
    encoding: Annotated[str, typer.Option(help="utf-8 or cp1251 (for old 1C and Excel)")] = "utf-8",
    delimiter: Annotated[str, typer.Option(help="column separator")] = ";",
) -> None:
    """Export the whole directory as CSV: one row per car (a contact without one: one row).

    Written a page at a time; a file appears only when it is complete (written beside it, then renamed).
    """
    import io
    import os

    from cti.contacts_csv import valid_delimiter, write_contacts

    settings = settings_from(config)
    try:
        ascii_compatible = "name;\r\n".encode(encoding) == b"name;\r\n"
    except LookupError:
        fail(f"unknown encoding {encoding!r} (utf-8 or cp1251)")
    if not ascii_compatible:  # UTF-16 and the like: 1C, Excel and our own import would not read it back
        fail(f"--encoding {encoding}: use utf-8 or cp1251")
    if not valid_delimiter(delimiter):
        fail(f"--delimiter must be one character other than a quote or a line break, not {delimiter!r}")
    partial = output.with_name(output.name + ".partial") if output is not None else None
    if output is not None and output.is_dir():
        fail(f"{output} is a folder: give the file to write (-o {output / 'contacts.csv'})")
    if output is not None and not output.parent.is_dir():
        fail(f"{output}: the folder {output.parent} does not exist")
    try:
        raw = partial.open("wb") if partial is not None else sys.stdout.buffer
    except OSError as exc:
        fail(f"{output}: cannot write: {exc.strerror}")
    out = io.TextIOWrapper(raw, encoding=encoding, newline="", write_through=False)

    async def work(store: Store) -> int:
        after, rows = 0, 0
        while page := await store.list_contacts(after_id=after):
            rows += write_contacts(page, out, delimiter=delimiter, header=after == 0)
            after = page[-1].id or after
        if after == 0:
            write_contacts([], out, delimiter=delimiter)
        return rows

    complete = False
    try:
        rows = with_store(settings, work)
        out.flush()
        complete = True
    except UnicodeEncodeError as exc:
        fail(f"cannot write {encoding}: {exc.object[exc.start:exc.end]!r} has no {encoding} form; "
             "export in utf-8", 2)
    finally:
        if partial is not None and not complete:  # whatever stopped it: no half file left behind
            out.close()
            partial.unlink(missing_ok=True)
    if partial is not None and output is not None:
        out.close()
        os.replace(partial, output)
        typer.echo(f"{rows} rows written to {output}", err=True)
    else:
        out.detach()
