"""Rows of the SQLite store's tables <-> the core's records (``cti.records``, ``store.repository``).

Tuples of a record are JSON arrays in TEXT columns; a call's legs are one JSON list on its row (nothing filters on
legs). Kept apart so that every module of the store reads and writes a row the same way.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any, cast

from pydantic_core import to_json

from cti.records import AgentMiss, CallRecord, ClosedBy, Direction, LegRecord, MissedEntry, MissedStatus, Outcome
from store.repository import Grant, HistoryAction, LiveEvent, MissedHistoryItem, Role, User

CALL_COLUMNS = (
    "linkedid", "direction", "caller", "caller_key", "caller_name", "called", "called_key", "answered",
    "answered_by", "missed_reason", "talk_seconds", "transferred_to", "agents_rung_not_answered",
    "recording", "started_at", "answered_at", "ended_at", "outcome", "ring_seconds", "queue", "did",
    "hangup_cause", "hangup_cause_txt", "hung_up_by", "recordings", "linkedids", "agents_answered",
    "complete", "legs", "pbx",
)

MISSED_COLUMNS = (
    "linkedid", "caller", "caller_key", "caller_name", "called", "queue", "reason", "missed_at",
    "ring_seconds", "agents_rung", "status", "closed_at", "closed_by", "closed_linkedid", "comment", "pbx",
)

_LEG_FIELDS = tuple(f.name for f in fields(LegRecord))
#: A leg's values in :data:`_LEG_FIELDS` order, read in one C call.
_leg_values = attrgetter(*_LEG_FIELDS)
#: ``json.dumps(..., ensure_ascii=False)`` builds an encoder per call; a call's row needs five encodings, so one
#: encoder serves them all (``encode`` keeps no state between calls). Tuples encode as arrays.
_encode = json.JSONEncoder(ensure_ascii=False).encode


#: What ``json.dumps(..., ensure_ascii=False)`` escapes in a string: the quote, the backslash, control characters.
_ESCAPED = re.compile(r'["\\\x00-\x1f]')


def json_list(values: Sequence[str]) -> str:
    """``json.dumps(list(values), ensure_ascii=False)``, to the character (``listing_rows`` splits this text).

    Written every call's end, four times: strings that need no escape (extensions, file names, linkedids) are
    joined as they are; anything else goes through the encoder."""
    if not values:
        return "[]"
    try:
        joined = '", "'.join(values)
    except TypeError:  # not all strings: the encoder says what they become
        return _encode(values)
    if _ESCAPED.search(joined) is None:
        return f'["{joined}"]'
    return _encode(values)


def _legs_json(legs: Sequence[LegRecord]) -> str:
    """A call's legs as one JSON list of objects (keys in field order, as ``record_from_row`` reads them).

    Written at every call's end: pydantic's encoder (compact, UTF-8 as is) takes a quarter of the time of the
    standard library's. Only ``record_from_row`` reads it back (``json.loads``: the same values)."""
    names = _LEG_FIELDS
    return to_json([dict(zip(names, _leg_values(leg), strict=True)) for leg in legs]).decode()


def call_row(r: CallRecord, caller_key: str | None, called_key: str | None) -> tuple[Any, ...]:
    """The ``calls`` row in :data:`CALL_COLUMNS` order (positional: binding is cheaper than by name)."""
    return (
        r.linkedid, r.direction, r.caller, caller_key, r.caller_name, r.called, called_key,
        int(r.answered), r.answered_by, r.missed_reason, r.talk_seconds, r.transferred_to,
        json_list(r.agents_rung_not_answered), r.recording, r.started_at, r.answered_at, r.ended_at,
        r.outcome, r.ring_seconds, r.queue, r.did, r.hangup_cause, r.hangup_cause_txt, r.hung_up_by,
        json_list(r.recordings), json_list(r.linkedids), json_list(r.agents_answered), int(r.complete),
        _legs_json(r.legs), r.pbx,
    )


def call_agent_rows(r: CallRecord) -> list[tuple[str, float, str, str, int, int]]:
    """The ``call_agents`` rows of a call: each agent once, with whether they were rung without answering and
    whether they answered (``answered_by`` or one of ``agents_answered``)."""
    rung = set(r.agents_rung_not_answered)
    answered = set(r.agents_answered)
    if r.answered_by:
        answered.add(r.answered_by)
    return [(agent, r.started_at, r.linkedid, r.pbx, int(agent in rung), int(agent in answered))
            for agent in sorted(rung | answered) if agent]


def record_from_row(row: sqlite3.Row) -> CallRecord:
    return CallRecord(
        linkedid=row["linkedid"], direction=cast(Direction, row["direction"]), caller=row["caller"],
        caller_name=row["caller_name"], called=row["called"], answered=bool(row["answered"]),
        answered_by=row["answered_by"], missed_reason=row["missed_reason"], talk_seconds=row["talk_seconds"],
        transferred_to=row["transferred_to"],
        agents_rung_not_answered=tuple(json.loads(row["agents_rung_not_answered"])),
        recording=row["recording"], started_at=row["started_at"], answered_at=row["answered_at"],
        ended_at=row["ended_at"], outcome=cast(Outcome, row["outcome"]), ring_seconds=row["ring_seconds"],
        queue=row["queue"], did=row["did"], hangup_cause=row["hangup_cause"],
        hangup_cause_txt=row["hangup_cause_txt"], hung_up_by=row["hung_up_by"],
        recordings=tuple(json.loads(row["recordings"])), linkedids=tuple(json.loads(row["linkedids"])),
        agents_answered=tuple(json.loads(row["agents_answered"])), complete=bool(row["complete"]),
        legs=tuple(LegRecord(**leg) for leg in json.loads(row["legs"])), pbx=row["pbx"],
    )


def missed_row(entry: MissedEntry, key: str | None) -> dict[str, Any]:
    return {
        "linkedid": entry.linkedid, "caller": entry.caller, "caller_key": key, "caller_name": entry.caller_name,
        "called": entry.called, "queue": entry.queue, "reason": entry.reason, "missed_at": entry.missed_at,
        "ring_seconds": entry.ring_seconds, "agents_rung": json_list(entry.agents_rung),
        "status": entry.status, "closed_at": entry.closed_at, "closed_by": entry.closed_by,
        "closed_linkedid": entry.closed_linkedid, "comment": entry.comment, "pbx": entry.pbx,
    }


def missed_from_row(row: sqlite3.Row) -> MissedEntry:
    return MissedEntry(
        id=row["id"], linkedid=row["linkedid"], caller=row["caller"], caller_key=row["caller_key"],
        caller_name=row["caller_name"], called=row["called"], queue=row["queue"], reason=row["reason"],
        missed_at=row["missed_at"], ring_seconds=row["ring_seconds"],
        agents_rung=tuple(json.loads(row["agents_rung"])), status=cast(MissedStatus, row["status"]),
        closed_at=row["closed_at"], closed_by=cast("ClosedBy | None", row["closed_by"]),
        closed_linkedid=row["closed_linkedid"], comment=row["comment"], pbx=row["pbx"],
    )


def agent_miss_from_row(row: sqlite3.Row) -> AgentMiss:
    return AgentMiss(
        linkedid=row["linkedid"], agent=row["agent"], rang_at=row["rang_at"], ring_seconds=row["ring_seconds"],
        reason=row["reason"], answered_by=row["answered_by"], caller=row["caller"], pbx=row["pbx"],
    )


def history_from_row(row: sqlite3.Row) -> MissedHistoryItem:
    return MissedHistoryItem(
        entry_id=row["entry_id"], at=row["at"], action=cast(HistoryAction, row["action"]), by=row["by"],
        linkedid=row["linkedid"], comment=row["comment"],
    )


def live_event_from_row(row: sqlite3.Row) -> LiveEvent:
    return row["linkedid"], [(k, v) for k, v in json.loads(row["headers"])], row["received_at"]


def user_from_row(row: sqlite3.Row) -> User:
    return User(name=row["name"], role=cast(Role, row["role"]), extension=row["extension"],
                display_name=row["display_name"], password_hash=row["password_hash"], created_at=row["created_at"],
                pbxs=tuple(json.loads(row["pbxs"])), email=row["email"])


def grant_from_row(row: sqlite3.Row) -> Grant:
    return Grant(user=user_from_row(row), expires_at=row["grant_expires"], last_used_at=row["grant_used"])
