"""Printing journal rows for people (a table) and for programs (JSON, CSV).

The JSON objects are the records' own ``to_json()``; CSV has the same columns, lists joined with
``;``. One place decides the columns of the tables, so ``cti calls`` and ``cti demo`` look alike.
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
    table = Table(title=title, title_justify="left", header_style="bold", show_lines=False)
    for _key, label in columns:
        table.add_column(label, overflow="fold", no_wrap=False)
    for row in rows:
        style = "red" if row.get("outcome") == "missed" or row.get("status") == "open" else None
        table.add_row(*(cell(row.get(key)) for key, _ in columns), style=style)
    return table


def emit(rows: Sequence[dict[str, Any]], fmt: Format, columns: Sequence[tuple[str, str]], title: str,
         out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if fmt is Format.json:
        json.dump(list(rows), out, ensure_ascii=False, indent=1)
        out.write("\n")
    elif fmt is Format.csv:
        keys = list(rows[0].keys()) if rows else [k for k, _ in columns]
        writer = csv.DictWriter(out, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (";".join(map(str, v)) if isinstance(v, list) else v) for k, v in row.items()})
    else:
        # On a terminal, fit its width; piped into a file or grep, never cut a value.
        console = Console(file=out, width=None if out.isatty() else 400)
        console.print(render_table(rows, columns, title))
        if not rows:
            console.print("(nothing matches)")


def records_json(records: Sequence[Any], tz: tzinfo | None) -> list[dict[str, Any]]:
    return [r.to_json(tz) for r in records]
