"""Printing journal rows for people (a table) and for programs (JSON, CSV).

The JSON objects are the records' own ``to_json()``; CSV has the same columns, lists joined with
``;``. One place decides the columns of the tables, so ``cti calls`` and ``cti demo`` look alike.

Every value comes from outside (a caller's display name, a comment, a contact), so each is written
through :mod:`cti.safe_text`: in a table as literal text with control characters shown as escapes, in
JSON exact (with what a terminal would act on escaped), in CSV with formulas neutralised.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from datetime import tzinfo
from enum import StrEnum
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from cti.safe_text import csv_cell, json_for_terminal, rich_text, terminal_text


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


CALL_COLUMNS = (
    ("started_at", "Started"), ("direction", "Dir"), ("caller", "Caller"), ("caller_name", "Name"),
    ("called", "Called"), ("queue", "Queue"), ("outcome", "Outcome"), ("answered_by", "Agent"),
    ("missed_reason", "Reason"), ("ring_seconds", "Ring s"), ("talk_seconds", "Talk s"),
    ("transferred_to", "Transfer"), ("agents_rung_not_answered", "Rung, no answer"), ("linkedid", "Linkedid"),
)
MISSED_COLUMNS = (
    ("id", "#"), ("missed_at", "When"), ("caller", "Caller"), ("caller_name", "Name"), ("called", "Called"),
    ("queue", "Queue"), ("reason", "Reason"), ("ring_seconds", "Waited s"), ("agents_rung", "Rung"),
    ("status", "Status"), ("closed_by", "Closed by"), ("comment", "Comment"),
)
AGENT_MISS_COLUMNS = (
    ("rang_at", "Rang at"), ("agent", "Agent"), ("caller", "Caller"), ("reason", "Reason"),
    ("ring_seconds", "Ring s"), ("answered_by", "Answered by"), ("linkedid", "Linkedid"),
)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, str) and len(value) > 19 and value[10:11] == "T":
        return value[:19].replace("T", " ")  # ISO time -> readable local time in a table
    return str(value)


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], title: str) -> Table:
    """The rows as a rich table; every cell and the title are text, never markup."""
    table = Table(title=rich_text(title), title_justify="left", header_style="bold", show_lines=False)
    for _key, label in columns:
        table.add_column(label, overflow="fold", no_wrap=False)
    for row in rows:
        style = "red" if row.get("outcome") == "missed" or row.get("status") == "open" else None
        table.add_row(*(rich_text(cell(row.get(key))) for key, _ in columns), style=style)
    return table


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row's CSV cells: lists joined with ``;``, every text cell safe to open in a spreadsheet."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, list | tuple):
            value = ";".join(map(str, value))
        out[key] = csv_cell(value) if isinstance(value, str) else value
    return out


def emit(rows: Sequence[dict[str, Any]], fmt: Format, columns: Sequence[tuple[str, str]], title: str,
         out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if fmt is Format.json:
        out.write(json_for_terminal(json.dumps(list(rows), ensure_ascii=False, indent=1)) + "\n")
    elif fmt is Format.csv:
        keys = list(rows[0].keys()) if rows else [k for k, _ in columns]
        # Into a file or a pipe the data is exact; on a terminal a person reads it: control characters escaped.
        target = _TerminalText(out) if out.isatty() else out
        writer = csv.DictWriter(target, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(csv_row(row))
    else:
        # On a terminal, fit its width; piped into a file or grep, never cut a value.
        console = Console(file=out, width=None if out.isatty() else 400, highlight=False)
        console.print(render_table(rows, columns, title))
        if not rows:
            console.print("(nothing matches)", markup=False)


class _TerminalText:
    """A writer that escapes control characters on the way to a terminal (the csv module's line ends kept)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def write(self, text: str) -> int:
        body, newline = (text[:-1], "\n") if text.endswith("\n") else (text, "")
        return self.out.write(terminal_text(body) + newline)


def records_json(records: Sequence[Any], tz: tzinfo | None) -> list[dict[str, Any]]:
    return [r.to_json(tz) for r in records]
