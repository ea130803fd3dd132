"""Printing journal rows for people (a table) and for programs (JSON, CSV), a row at a time.

The JSON objects are the records' own ``to_json()``; CSV has the same columns, lists joined with
``;``. One place decides the columns of the tables, so every listing of a kind looks alike.

A listing can be a year of calls, so nothing here holds every row: each format is a writer fed one row
after another (:func:`stream` from an async iterator, :func:`emit` from a list) that prints as it goes.
JSON is one array written element by element, exactly as ``json.dumps(rows, indent=1)`` would write it;
CSV goes through the csv module row by row; a table takes its column widths from its first rows
(:data:`TABLE_SAMPLE`), fitted to the terminal, and keeps them: a longer value later folds inside its cell.
A table drawn by rich needs every row before it prints and took 2 s per 1,000 rows of the journal.

Every value comes from outside (a caller's display name, a comment, a contact), so each is written
through :mod:`cti.safe_text`: in a table as literal text with control characters shown as escapes, in
JSON exact (with what a terminal would act on escaped), in CSV with formulas neutralised.
"""

from __future__ import annotations

import builtins
import csv
import json
import math
import os
import sys
from collections.abc import AsyncIterable, Iterable, Sequence
from enum import StrEnum
from typing import Any, Protocol, TextIO

from rich.cells import cell_len, chop_cells, set_cell_size

from cti.safe_text import csv_cell, json_for_terminal, terminal_text

Row = dict[str, Any]
Columns = Sequence[tuple[str, str]]

#: How many rows a table reads before it fixes its column widths and starts printing.
TABLE_SAMPLE = 200
#: The narrowest a column is squeezed to when the table is wider than the terminal.
MIN_COLUMN = 3
#: Columns sized for their longest possible value rather than the sample's: an Asterisk linkedid is
#: ``<epoch>.<sequence>`` and its sequence only grows (to 10 digits), so the first rows' ids are shorter than the
#: later ones and a year's table would fold nearly every row's id onto a second line.
GROWING_COLUMNS = {"linkedid": 21}


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
    """A value as a table shows it: lists joined with ``;``, seconds to a tenth, ISO times as local time."""
    if isinstance(value, str):  # the common case first: a table prints hundreds of thousands of cells
        if len(value) > 19 and value[10:11] == "T":
            return value[:19].replace("T", " ")  # ISO time -> readable local time in a table
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return str(value)


def csv_row(row: Row) -> Row:
    """A row's CSV cells: lists joined with ``;``, every text cell safe to open in a spreadsheet."""
    out: Row = {}
    for key, value in row.items():
        if isinstance(value, list | tuple):
            value = ";".join(map(str, value))
        out[key] = csv_cell(value) if isinstance(value, str) else value
    return out


class RowWriter(Protocol):
    """Prints rows as they are given; ``close()`` ends the output (the JSON array, the table's border)."""

    def write(self, row: Row) -> None: ...

    def close(self) -> None: ...


def writer(fmt: Format, columns: Columns, title: str, out: TextIO | None = None) -> RowWriter:
    """The writer of ``fmt`` on ``out`` (default: stdout as it is at the call, which a test runner may swap)."""
    out = out or sys.stdout
    if fmt is Format.json:
        return JsonWriter(out)
    if fmt is Format.csv:
        return CsvWriter(out, columns)
    return TableWriter(out, columns, title)


def emit(rows: Iterable[Row], fmt: Format, columns: Columns, title: str, out: TextIO | None = None) -> int:
    """Print ``rows`` in ``fmt``; how many there were."""
    target = writer(fmt, columns, title, out)
    count = 0
    for row in rows:
        target.write(row)
        count += 1
    target.close()
    return count


async def stream(rows: AsyncIterable[Row], fmt: Format, columns: Columns, title: str,
                 out: TextIO | None = None) -> int:
    """Print rows as they come from ``rows`` (a store's listing), holding at most a table's sample of them."""
    target = writer(fmt, columns, title, out)
    count = 0
    async for row in rows:
        target.write(row)
        count += 1
    target.close()
    return count


class JsonWriter:
    """One JSON array, element by element, the same text as ``json.dumps(rows, ensure_ascii=False, indent=1)``."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = False

    def write(self, row: Row) -> None:
        self.write_object(_indented(row, 1))

    def element_prefix(self) -> str:
        """What goes before the next element (the array's opening or a comma), for a caller writing it itself."""
        head = ",\n " if self.started else "[\n "
        self.started = True
        return head

    def write_object(self, text: str, *, terminal_safe: bool = False) -> None:
        """Add one element already written as JSON at the array's nesting (``_indented(row, 1)``);
        ``terminal_safe``: its strings already went through ``json_for_terminal``."""
        text = (",\n " if self.started else "[\n ") + text
        self.out.write(text if terminal_safe else json_for_terminal(text))
        self.started = True

    def close(self) -> None:
        self.out.write("\n]\n" if self.started else "[]\n")
        self.out.flush()


def _indented(value: Any, level: int) -> str:
    """``value`` as ``json.dumps(..., ensure_ascii=False, indent=1)`` writes it at nesting ``level``.

    Written here because ``json.dumps`` with an indent runs its pure-Python encoder: three times slower, and a
    month's export is 100,000 rows. Scalars go through the json module's own C string encoder and float form.
    """
    if isinstance(value, str):
        return _json_string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value) if math.isfinite(value) else json.dumps(value)
    inner = "\n" + " " * (level + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{" + inner + ("," + inner).join(
            f"{_json_string(str(k))}: {_indented(v, level + 1)}" for k, v in value.items()) + "\n" + " " * level + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        return "[" + inner + ("," + inner).join(_indented(v, level + 1) for v in value) + "\n" + " " * level + "]"
    return json.dumps(value, ensure_ascii=False, indent=1)  # anything else: as json.dumps would (or its error)


#: The json module's string encoder (its C one when compiled), with ensure_ascii=False.
_json_string = json.encoder.encode_basestring


def json_value(value: Any) -> str:
    """``value`` as a field of an array's element (nesting 2), as :class:`JsonWriter` writes it; text and null
    first, the common cells."""
    if value.__class__ is str:
        return _json_string(value)
    if value is None:
        return "null"
    return _indented(value, 2)


class CsvWriter:
    """A header (the first row's keys, or the columns' when there is no row), then one line per row."""

    def __init__(self, out: TextIO, columns: Columns) -> None:
        # Into a file or a pipe the data is exact; on a terminal a person reads it: control characters escaped.
        self.target: Any = _TerminalText(out) if _isatty(out) else out
        self.out = out
        self.columns = columns
        self.csv: csv.DictWriter[str] | None = None

    def _start(self, keys: list[str]) -> csv.DictWriter[str]:
        self.csv = csv.DictWriter(self.target, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        self.csv.writeheader()
        return self.csv

    def write(self, row: Row) -> None:
        (self.csv or self._start(list(row.keys()))).writerow(csv_row(row))

    def write_cells(self, keys: Sequence[str], cells: list[Any]) -> None:
        """One line of cells already made safe (``csv_row``'s work done), under ``keys`` (the header, if first).

        The usual line, no cell holding a comma, a quote or a line break, is the cells joined with commas,
        exactly what the csv module writes for it at twice its cost; any other goes through the csv module.
        """
        if self.csv is None:
            self._start(list(keys))
        assert self.csv is not None
        line = ",".join([v if v.__class__ is str else _csv_plain(v) for v in cells])
        if line.count(",") == len(cells) - 1 and '"' not in line and "\n" not in line and "\r" not in line:
            self.target.write(line + "\n")
        else:
            self.csv.writer.writerow(cells)

    def writes_text_as_is(self) -> bool:
        """Whether the text of a line reaches the output unchanged (not a terminal, whose text is escaped)."""
        return self.target is self.out

    def write_lines(self, keys: Sequence[str], text: str) -> None:
        """Lines already written as the csv module writes their rows (each ending in a newline), under ``keys``
        (the header, if first); only where :meth:`writes_text_as_is`."""
        if self.csv is None:
            self._start(list(keys))
        self.out.write(text)

    def close(self) -> None:
        if self.csv is None:
            self._start([k for k, _ in self.columns])
        self.out.flush()


def _csv_plain(value: Any) -> str:
    """A cell that is not text, as the csv module writes it: None empty, the rest ``str()`` (a float's repr)."""
    return "" if value is None else str(value)


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except ValueError:  # closed
        return False


class _TerminalText:
    """A writer that escapes control characters on the way to a terminal (the csv module's line ends kept)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def write(self, text: str) -> int:
        body, newline = (text[:-1], "\n") if text.endswith("\n") else (text, "")
        return self.out.write(terminal_text(body) + newline)


#: SGR codes of the table's styles, as rich writes them (used only when rich would use colour).
_BOLD, _ITALIC, _RED, _RESET = "\x1b[1m", "\x1b[3m", "\x1b[31m", "\x1b[0m"


class TableWriter:
    """A boxed table like rich's (heavy head, folded cells), printed as rows come.

    The widths come from the header and the first :data:`TABLE_SAMPLE` rows, squeezed to the terminal's width
    (piped into a file or grep, the table is as wide as its values: nothing is ever cut). A row of an open
    missed entry or a missed call is red on a terminal that shows colour.
    """

    def __init__(self, out: TextIO, columns: Columns, title: str) -> None:
        self.out = out
        self.keys = [key for key, _ in columns]
        self.labels = [terminal_text(label) for _, label in columns]
        self.title = terminal_text(title)
        self.max_width: int | None = None
        self.styled = self.red = False
        if not _plain_output(out):
            from rich.console import Console

            console = Console(file=out, highlight=False)
            # Fit a terminal's width only when the output really is one (FORCE_COLOR makes rich call anything a
            # terminal, and a file or a pipe must get whole values).
            self.max_width = console.width if _isatty(out) else None
            self.styled = console.color_system is not None
            self.red = self.styled and not console.no_color
        self.sample: list[tuple[list[str], bool]] | None = []
        self.widths: list[int] = []

    def write(self, row: Row) -> None:
        cells = [terminal_text(cell(row.get(key))) for key in self.keys]
        self.write_cells(cells, row.get("outcome") == "missed" or row.get("status") == "open")

    def write_cells(self, cells: list[str], missed: bool) -> None:
        """One row as its cells under the columns, already escaped (``terminal_text(cell(value))``)."""
        if self.sample is None:
            self._print_row(cells, missed)
            return
        self.sample.append((cells, missed))
        if len(self.sample) >= TABLE_SAMPLE:
            self._start()

    def close(self) -> None:
        empty = self.sample == []
        if self.sample is not None:
            self._start()
        self._line("└" + "┴".join("─" * (w + 2) for w in self.widths) + "┘")
        if empty:
            self.out.write("(nothing matches)\n")
        self.out.flush()

    def _start(self) -> None:
        """Fix the widths from the sample, print the title, the header and the sampled rows."""
        sample, self.sample = self.sample or [], None
        self.widths = _fit([max([cell_len(label), GROWING_COLUMNS.get(self.keys[i], 0),
                                 *(cell_len(cells[i]) for cells, _ in sample)])
                            for i, label in enumerate(self.labels)], self.max_width)
        if self.title:
            total = sum(self.widths) + 3 * len(self.widths) + 1
            title = set_cell_size(self.title, max(total, cell_len(self.title)))
            self._line(f"{_ITALIC}{title}{_RESET}" if self.styled else title)
        self._line("┏" + "┳".join("━" * (w + 2) for w in self.widths) + "┓")
        self._print_cells(self.labels, "┃", _BOLD if self.styled else "")
        self._line("┡" + "╇".join("━" * (w + 2) for w in self.widths) + "┩")
        for cells, missed in sample:
            self._print_row(cells, missed)

    def _print_row(self, cells: list[str], missed: bool) -> None:
        self._print_cells(cells, "│", _RED if missed and self.red else "")

    def _print_cells(self, cells: list[str], bar: str, style: str) -> None:
        widths = self.widths
        # Terminal cells of each value: its length when ASCII (numbers, times, most names), else rich's count.
        sizes = [len(text) if text.isascii() else cell_len(text) for text in cells]
        if all(size <= width for size, width in zip(sizes, widths, strict=True)):  # one line, the usual row
            lines = [[text + " " * (width - size) for text, size, width in zip(cells, sizes, widths, strict=True)]]
        else:
            parts = [chop_cells(text, width) if size > width else [text]
                     for text, size, width in zip(cells, sizes, widths, strict=True)]
            lines = [[set_cell_size(p[n] if n < len(p) else "", width) for p, width in zip(parts, widths, strict=True)]
                     for n in range(max(len(p) for p in parts))]
        for pieces in lines:
            if style:
                self._line(bar + bar.join(f"{style} {piece} {_RESET}" for piece in pieces) + bar)
            else:
                self._line(bar + " " + f" {bar} ".join(pieces) + " " + bar)

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")


def _plain_output(out: TextIO) -> bool:
    """Whether rich would see no terminal in ``out`` (so no colour and no width to fit) without asking it: not a
    terminal, and none of what makes rich call one a terminal anyway (``TTY_COMPATIBLE=1``, ``FORCE_COLOR``, a
    Jupyter kernel). A listing into a file or a pipe then never imports rich's console (a tenth of its start-up).
    When unsure, False: rich decides."""
    env = os.environ
    return (not _isatty(out) and env.get("TTY_COMPATIBLE", "") != "1" and env.get("FORCE_COLOR") is None
            and not hasattr(builtins, "get_ipython"))


def _fit(widths: list[int], max_width: int | None) -> list[int]:
    """``widths`` narrowed, widest first, until the table (borders and padding too) fits ``max_width``."""
    if max_width is None:
        return widths
    widths = [max(1, w) for w in widths]
    excess = sum(widths) + 3 * len(widths) + 1 - max_width
    while excess > 0:
        widest = max(range(len(widths)), key=widths.__getitem__)
        if widths[widest] <= MIN_COLUMN:
            break
        widths[widest] -= 1
        excess -= 1
    return widths
