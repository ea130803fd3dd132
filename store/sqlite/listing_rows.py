"""Rows of the ``calls`` table -> the lean listing rows (``store.repository.CallRow``) that ``cti calls`` prints.

Kept apart from ``rows.py`` (which maps whole records both ways): a listing reads only the columns of
``CallRecord.to_json``, never the legs (the last and largest column, often on overflow pages), and builds one
tuple per row. A list column holding ``[]`` (most of them) is not parsed at all.
"""

from __future__ import annotations

import json
import sqlite3

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
    if "\\" not in text and text.startswith('["') and text.endswith('"]'):
        items = tuple(text[2:-2].split('", "'))
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


def call_row(row: sqlite3.Row) -> CallRow:
    """One row selected with :func:`select_list` as a :class:`CallRow` (positional: cheaper than by name)."""
    (linkedid, direction, caller, caller_name, called, answered, answered_by, missed_reason, talk_seconds,
     transferred_to, rung, recording, started_at, answered_at, ended_at, outcome, ring_seconds, queue, did,
     hangup_cause, hangup_cause_txt, hung_up_by, recordings, agents_answered, complete, linkedids) = row
    return _new(CallRow, (
        linkedid, direction, caller, caller_name, called, bool(answered), answered_by, missed_reason, talk_seconds,
        transferred_to, _agents(rung), recording, started_at, answered_at, ended_at, outcome, ring_seconds, queue,
        did, hangup_cause, hangup_cause_txt, hung_up_by, _strings(recordings), _agents(agents_answered),
        bool(complete), _strings(linkedids)))
