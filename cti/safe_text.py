"""Strings from outside made harmless where they are written: on a terminal, and in a spreadsheet.

A caller chooses their SIP display name and number, an agent types contacts and comments, a CSV file
brings whatever its author put in it. None of that may act on the admin's terminal or spreadsheet:

* On a terminal, :func:`terminal_text` shows control characters (C0 and C1 controls with ESC among
  them, DEL, line and paragraph separators, bidi overrides and isolates) as visible escapes such as ``\\x1b``,
  so a name cannot move the cursor, clear or recolour the screen, set the window title or plant an OSC 8
  hyperlink, and cannot reorder the text around it. rich markup is not escaped here: printing goes through
  :func:`rich_text`, a :class:`rich.text.Text`, which rich never parses for markup or emoji codes.
* In a CSV file, :func:`csv_cell` prefixes with ``'`` a cell a spreadsheet would read as a formula
  (OWASP "CSV injection"): one starting with ``= + - @``, TAB or CR, or their full-width forms. A cell
  that is only a number or phone numbers (``+7 916 123-45-67, 8 (495) 111-22-33``, ``-5``) is left alone:
  made of digits, spaces and ``( ) + , . -``, it can name no function and no other program, and 1C or a
  spreadsheet must still read it as the phone it is. :func:`csv_value` undoes exactly what ``csv_cell``
  did, so an export imported back gives the same data. :func:`csv_cells` writes a row of them: every CSV the
  daemon writes from rows (the reports, the QA report, the complaints) goes through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when used: a listing that prints no rich text does not pay for rich's import
    from rich.text import Text

#: Besides C0 controls, what a terminal acts on: DEL, C1 controls (``\x9b`` is CSI), the line and paragraph
#: separators, and the bidi marks, embeddings, overrides and isolates.
_NOT_C0 = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
#: Characters shown as escapes on a terminal: all of those, and C0 (TAB and newline too: a cell is one line).
_CONTROL = re.compile(f"[\x00-\x1f{_NOT_C0}]")
#: What ``json.dumps`` leaves raw (it escapes C0 itself; its newlines between items are the layout).
_JSON_RAW = re.compile(f"[{_NOT_C0}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def terminal_text(value: str) -> str:
    """``value`` with every control character replaced by a visible escape (``\\x1b``, ``\\u202e``)."""
    if value.isprintable():  # the usual cell, checked in C: every character above is Cc, Cf, Zl or Zp
        return value
    return _CONTROL.sub(_escape, value)


def rich_text(value: str, style: str = "") -> Text:
    """``value`` as rich prints it literally: no markup, no emoji codes, no control characters."""
    from rich.text import Text

    return Text(terminal_text(value), style=style)


def json_for_terminal(text: str) -> str:
    """JSON text with the characters JSON leaves raw but a terminal acts on written as ``\\uXXXX``.

    ``json.dumps(ensure_ascii=False)`` escapes C0 controls but not DEL, C1 controls, bidi overrides or the
    line separators; escaped, they decode to the same data. Outside strings JSON text is pure ASCII, so
    replacing them anywhere in the text changes only how the strings are written.
    """
    if text.isascii() and "\x7f" not in text:  # the usual row: of all those, ASCII has DEL only
        return text
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


#: First characters that make a spreadsheet read a cell as a formula (OWASP), with their full-width forms.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
#: The first characters of a value :func:`csv_cell` may prefix (a formula start, or a quote before one).
CSV_MAY_QUOTE = frozenset(_FORMULA_START) | {"'"}
#: A number or a list of phone numbers: no letters, so no function and no DDE link.
_NUMBER = re.compile(r"[+-][0-9 ()+,.-]*[0-9][0-9 ()+,.-]*", re.ASCII)


def _needs_quote(value: str) -> bool:
    """Whether :func:`csv_cell` prefixes ``value``: a formula start, or a quote written before one by its author."""
    value = value.lstrip("'")
    return value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value)


def csv_cell(value: str) -> str:
    """The cell to write for ``value``: ``'`` in front of what a spreadsheet would run as a formula.

    A value whose author already wrote ``'`` before a formula start (``'=x``) gets one more, so that
    :func:`csv_value` can tell our quote from theirs.
    """
    if value[:1] not in CSV_MAY_QUOTE:  # the usual cell (a name, a time, a number without a sign): nothing to check
        return value
    return "'" + value if _needs_quote(value) else value


def csv_value(cell: str) -> str:
    """The value :func:`csv_cell` wrote ``cell`` for: our leading ``'`` removed, any other kept."""
    return cell[1:] if cell.startswith("'") and _needs_quote(cell[1:]) else cell


def csv_cells(row: Mapping[str, Any], columns: Iterable[str]) -> list[str]:
    """A row's cells in ``columns``' order: None empty, flags 1/0, numbers as they print, text through
    :func:`csv_cell` (nothing a spreadsheet would run as a formula)."""
    cells = []
    for key in columns:
        value = row.get(key)
        if isinstance(value, bool):
            value = "1" if value else "0"
        cells.append("" if value is None else csv_cell(str(value)))
    return cells
