"""``cti report NAME``: the reports managers read (PBX vs registered, contact statistics, the funnel, missed calls).

The same query code as the panel's reports page and ``GET /api/reports/NAME`` (``Store.report`` with a
``cti.reports.ReportQuery``), printed as tables (each of the report's tables, after its totals), as the API's JSON, or
as the API's CSV (``cti.reports.write_report_csv``: ``;``-separated, formulas neutralised, UTF-8 or cp1251 for 1C and
Excel). Days are the site's (``[pbx] timezone``).
"""

from __future__ import annotations

import io
import json
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from companion.output import Format, emit

from .app import app
from .errors import fail
from .loading import pbx_filter, require_store, settings_from
from .options import ConfigOpt, FormatOpt, PbxOpt, UntilOpt
from .storage import with_store
from .when import time_range

if TYPE_CHECKING:
    from cti.reports import Report
    from store.repository import Store

NAMES = "registered (PBX vs registered), contacts (contact statistics), funnel, missed (missed calls)"


@app.command("report")
def report_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help=NAMES)],
    config: ConfigOpt,
    since: Annotated[str, typer.Option(help="from this time: 2026-11-01, '2026-11-24 09:00', 7d, today")],
    until: UntilOpt = None,
    fmt: FormatOpt = Format.table,
    pbx: PbxOpt = None,
    agent: Annotated[str | None, typer.Option(help="one agent's extension")] = None,
    unregistered: Annotated[int, typer.Option(min=0, max=1000, help="registered: calls with no contact listed")] = 100,
    encoding: Annotated[str, typer.Option(help="CSV: utf-8 or cp1251 (old 1C and Excel)")] = "utf-8",
) -> None:
    """A report over a period (at most a year): its figures as tables, JSON or CSV."""
    from cti.reports import REPORTS, ReportQuery

    settings = settings_from(config)
    if name not in REPORTS:
        fail(f"NAME must be one of {', '.join(REPORTS)}, not {name!r}")
    if encoding not in ("utf-8", "cp1251"):
        fail(f"--encoding must be utf-8 or cp1251, not {encoding!r}")
    if agent is not None and (not agent or len(agent) > 64 or not agent.isprintable()):
        fail("--agent must be an extension (at most 64 printable characters)")
    pbxs = pbx_filter(settings, pbx)
    start, end = time_range(since, until, settings)
    tz = settings.pbx.tzinfo()
    try:
        query = ReportQuery(start if start is not None else 0.0, end if end is not None else time.time(), tz=tz,
                            pbxs=tuple(pbxs) if pbxs is not None else None, agent=agent, unregistered=unregistered)
    except ValueError as exc:
        fail(f"--since/--until: {exc}")
    require_store(settings)

    async def query_store(store: Store) -> Report:
        from store.reason_titles import TITLES

        return await TITLES.report(store, await store.report(name, query))  # reasons by their titles, as the API

    report = with_store(settings, query_store)
    try:
        _print(report, fmt, encoding)
    except BrokenPipeError:
        raise
    except OSError as exc:
        fail(f"cannot write the report: {exc.strerror or exc}", 1)


def _print(report: Report, fmt: Format, encoding: str) -> None:
    from cti.reports import write_report_csv
    from cti.safe_text import json_for_terminal

    if fmt is Format.json:
        sys.stdout.write(json_for_terminal(json.dumps(report.to_json(), ensure_ascii=False, indent=1)) + "\n")
        return
    if fmt is Format.csv:
        out = io.TextIOWrapper(sys.stdout.buffer, encoding=encoding, errors="replace", newline="")
        write_report_csv(report, out)
        out.flush()
        out.detach()
        return
    totals = [{"figure": key, "value": value} for key, value in report.totals.items()]
    emit(totals, Format.table, (("figure", "Figure"), ("value", "Value")), f"Report: {report.name}")
    for table in report.tables:
        emit((dict(row) for row in table.rows), Format.table, table.columns, table.title)
    if "unregistered_total" in report.extra:
        shown = len(report.table("unregistered").rows)
        sys.stdout.write(f"Answered inbound calls with no contact: {report.extra['unregistered_total']} "
                         f"({shown} listed, newest first)\n")
