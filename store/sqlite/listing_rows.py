"""Rows of the ``calls`` table -> the lean listing rows (``store.repository.CallRow``) that ``cti calls`` prints.

Kept apart from ``rows.py`` (which maps whole records both ways): a listing reads only the columns of
``CallRecord.to_json``, never the legs (the last and largest column, often on overflow pages), and builds one
tuple per row. A list column holding ``[]`` (most of them) is not parsed at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from store.repository import CallRow

#: The columns a listing reads, in ``CallRow``'s order.
LISTING_COLUMNS = CallRow._fields

_new = tuple.__new__
_loads = json.loads


def select_list(table: str = "") -> str:
    """The SELECT list of :data:`LISTING_COLUMNS`, each prefixed with ``table.`` when given."""
    prefix = f"{table}." if table else ""
    return ", ".join(prefix + column for column in LISTING_COLUMNS)


def _strings(text: str) -> tuple[str, ...]:
    """A JSON list of strings as ``rows.json_list`` writes it: ``[]`` and ``["a", "b"]`` without a backslash (no
    escape, so every ``"`` is a delimiter) are split as text; anything else is parsed."""
    if text == "[]":
        return ()
    if text[:2] == '["' and text[-2:] == '"]' and "\\" not in text:
        inner = text[2:-2]
        if '"' not in inner:  # one string, the usual list (a call's one linkedid, its one recording)
            return (inner,)
        items = tuple(inner.split('", "'))
        if text.count('"') == 2 * len(items):
            return items
    return tuple(_loads(text))


#: The agents' lists seen so far (a few hundred distinct ones on a site), each parsed once; bounded.
_AGENT_LISTS: dict[str, tuple[str, ...]] = {}
_AGENT_LISTS_KEPT = 4096


def _agents(text: str) -> tuple[str, ...]:
    try:
        return _AGENT_LISTS[text]
    except KeyError:
        if len(_AGENT_LISTS) >= _AGENT_LISTS_KEPT:
            _AGENT_LISTS.clear()
        found = _AGENT_LISTS[text] = _strings(text)
        return found


def call_row(row: Sequence[Any]) -> CallRow:
    """One row selected with :func:`select_list` (a tuple or an ``sqlite3.Row``) as a :class:`CallRow` (positional:
    cheaper than by name)."""
    (linkedid, direction, caller, caller_name, called, answered, answered_by, missed_reason, talk_seconds,
     transferred_to, rung, recording, started_at, answered_at, ended_at, outcome, ring_seconds, queue, did,
     hangup_cause, hangup_cause_txt, hung_up_by, recordings, agents_answered, complete, linkedids, pbx) = row
    return _new(CallRow, (
        linkedid, direction, caller, caller_name, called, bool(answered), answered_by, missed_reason, talk_seconds,
        transferred_to, _agents(rung), recording, started_at, answered_at, ended_at, outcome, ring_seconds, queue,
        did, hangup_cause, hangup_cause_txt, hung_up_by, _strings(recordings), _agents(agents_answered),
        bool(complete), _strings(linkedids), pbx))


#: How a column's stored value becomes the ``CallRow`` field's (columns not named here are taken as stored).
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "answered": bool, "complete": bool, "agents_rung_not_answered": _agents, "agents_answered": _agents,
    "recordings": _strings, "linkedids": _strings,
}
#: The columns every page is read with, for the next page to start after its last row (keyset paging).
ORDER_COLUMNS = ("started_at", "linkedid", "pbx")


class Projection:
    """Rows of some ``CallRow`` fields (``iter_call_pages(fields=..., stored=...)``): the columns to select, and the
    row maker.

    The select list is the fields (None: all of them), then the order columns if the fields lack them (a page's
    last row says where the next page starts: :meth:`key`). ``row(r)`` is the plain tuple of the fields, the few
    stored forms converted (flags to bools, JSON lists to tuples), nothing else touched; ``stored``: not even
    those, and a page of rows that hold just the fields is handed over as SQLite gave it (:meth:`rows`).
    """

    __slots__ = ("columns", "key_at", "row", "same", "width")

    def __init__(self, fields: Sequence[str] | None, *, stored: bool = False) -> None:
        if fields is not None:
            unknown = [f for f in fields if f not in LISTING_COLUMNS]
            if unknown or not fields:
                raise ValueError(f"not fields of a listing row: {unknown or 'none given'}")
        chosen = tuple(fields) if fields is not None else LISTING_COLUMNS
        self.width = len(chosen)
        self.columns = chosen + tuple(c for c in ORDER_COLUMNS if c not in chosen)
        self.key_at = tuple(self.columns.index(c) for c in ORDER_COLUMNS)
        steps = () if stored else tuple((i, _CONVERT[f]) for i, f in enumerate(chosen) if f in _CONVERT)
        width = self.width
        #: Whether a row as selected is already the row asked for.
        self.same = not steps and width == len(self.columns)
        if self.same:
            self.row: Callable[[tuple[Any, ...]], tuple[Any, ...]] = tuple
            return

        def row(r: tuple[Any, ...]) -> tuple[Any, ...]:
            values = list(r)
            for i, convert in steps:
                values[i] = convert(values[i])
            return tuple(values) if width == len(values) else tuple(values[:width])

        self.row = row

    def rows(self, found: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The rows of a page as selected (plain tuples), as asked for."""
        return found if self.same else list(map(self.row, found))

    def select_list(self, table: str = "") -> str:
        prefix = f"{table}." if table else ""
        return ", ".join(prefix + column for column in self.columns)

    def key(self, r: tuple[Any, ...]) -> tuple[float, str, str]:
        """(started_at, linkedid, pbx) of a row as selected (before :attr:`row`)."""
        return r[self.key_at[0]], r[self.key_at[1]], r[self.key_at[2]]
