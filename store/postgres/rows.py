"""Rows of the PostgreSQL store's tables <-> the core's records (``cti.records``, ``store.repository``).

Tuples of a record are ``text[]`` (asyncpg hands them as lists), flags are booleans, a call's legs and an event's
headers are ``json`` text, times are ``double precision``: everything reads back equal to what was written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any, cast

import asyncpg

from cti.directory import Contact, ContactKind, Vehicle
from cti.records import AgentMiss, CallRecord, ClosedBy, Direction, LegRecord, MissedEntry, MissedStatus, Outcome
from store.repository import CallRow, Grant, HistoryAction, LiveEvent, MissedHistoryItem, Role, User

CALL_COLUMNS = (
    "linkedid", "direction", "caller", "caller_key", "caller_name", "called", "called_key", "answered",
    "answered_by", "missed_reason", "talk_seconds", "transferred_to", "agents_rung_not_answered",
    "recording", "started_at", "answered_at", "ended_at", "outcome", "ring_seconds", "queue", "did",
    "hangup_cause", "hangup_cause_txt", "hung_up_by", "recordings", "linkedids", "agents_answered",
    "complete", "legs", "pbx",
)
UPSERT_CALL = (
    f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(CALL_COLUMNS) + 1))}) "
    "ON CONFLICT (linkedid, pbx) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in CALL_COLUMNS if c not in ("linkedid", "pbx"))
)

MISSED_COLUMNS = (
    "linkedid", "caller", "caller_key", "caller_name", "called", "queue", "reason", "missed_at",
    "ring_seconds", "agents_rung", "status", "closed_at", "closed_by", "closed_linkedid", "comment", "pbx",
)

_LEG_FIELDS = tuple(f.name for f in fields(LegRecord))
_leg_values = attrgetter(*_LEG_FIELDS)
_encode = json.JSONEncoder(ensure_ascii=False).encode


def _legs_json(legs: Sequence[LegRecord]) -> str:
    return _encode([dict(zip(_LEG_FIELDS, _leg_values(leg), strict=True)) for leg in legs])


def call_row(r: CallRecord, caller_key: str | None, called_key: str | None) -> tuple[Any, ...]:
    """The ``calls`` row in :data:`CALL_COLUMNS` order."""
    return (
        r.linkedid, r.direction, r.caller, caller_key, r.caller_name, r.called, called_key,
        r.answered, r.answered_by, r.missed_reason, r.talk_seconds, r.transferred_to,
        list(r.agents_rung_not_answered), r.recording, r.started_at, r.answered_at, r.ended_at,
        r.outcome, r.ring_seconds, r.queue, r.did, r.hangup_cause, r.hangup_cause_txt, r.hung_up_by,
        list(r.recordings), list(r.linkedids), list(r.agents_answered), r.complete, _legs_json(r.legs), r.pbx,
    )


def call_agent_rows(r: CallRecord) -> list[tuple[str, float, str, str, bool, bool]]:
    """The ``call_agents`` rows of a call: each agent once, rung without answering and/or answering."""
    rung = set(r.agents_rung_not_answered)
    answered = set(r.agents_answered)
    if r.answered_by:
        answered.add(r.answered_by)
    return [(agent, r.started_at, r.linkedid, r.pbx, agent in rung, agent in answered)
            for agent in sorted(rung | answered) if agent]


def record_from_row(row: asyncpg.Record) -> CallRecord:
    return CallRecord(
        linkedid=row["linkedid"], direction=cast(Direction, row["direction"]), caller=row["caller"],
        caller_name=row["caller_name"], called=row["called"], answered=row["answered"],
        answered_by=row["answered_by"], missed_reason=row["missed_reason"], talk_seconds=row["talk_seconds"],
        transferred_to=row["transferred_to"], agents_rung_not_answered=tuple(row["agents_rung_not_answered"]),
        recording=row["recording"], started_at=row["started_at"], answered_at=row["answered_at"],
        ended_at=row["ended_at"], outcome=cast(Outcome, row["outcome"]), ring_seconds=row["ring_seconds"],
        queue=row["queue"], did=row["did"], hangup_cause=row["hangup_cause"],
        hangup_cause_txt=row["hangup_cause_txt"], hung_up_by=row["hung_up_by"],
        recordings=tuple(row["recordings"]), linkedids=tuple(row["linkedids"]),
        agents_answered=tuple(row["agents_answered"]), complete=row["complete"],
        legs=tuple(LegRecord(**leg) for leg in json.loads(row["legs"])), pbx=row["pbx"],
    )


#: The columns of a listing row (``CallRow``), in its order.
LISTING_COLUMNS = CallRow._fields
#: ``CallRow`` fields kept as a list in a row: a tuple in the record.
LIST_FIELDS = frozenset({"agents_rung_not_answered", "recordings", "agents_answered", "linkedids"})


def missed_args(entry: MissedEntry, key: str | None) -> tuple[Any, ...]:
    """The ``missed`` row in :data:`MISSED_COLUMNS` order."""
    return (entry.linkedid, entry.caller, key, entry.caller_name, entry.called, entry.queue, entry.reason,
            entry.missed_at, entry.ring_seconds, list(entry.agents_rung), entry.status, entry.closed_at,
            entry.closed_by, entry.closed_linkedid, entry.comment, entry.pbx)


def missed_from_row(row: asyncpg.Record) -> MissedEntry:
    return MissedEntry(
        id=row["id"], linkedid=row["linkedid"], caller=row["caller"], caller_key=row["caller_key"],
        caller_name=row["caller_name"], called=row["called"], queue=row["queue"], reason=row["reason"],
        missed_at=row["missed_at"], ring_seconds=row["ring_seconds"], agents_rung=tuple(row["agents_rung"]),
        status=cast(MissedStatus, row["status"]), closed_at=row["closed_at"],
        closed_by=cast("ClosedBy | None", row["closed_by"]), closed_linkedid=row["closed_linkedid"],
        comment=row["comment"], pbx=row["pbx"],
    )


def agent_miss_from_row(row: asyncpg.Record) -> AgentMiss:
    return AgentMiss(
        linkedid=row["linkedid"], agent=row["agent"], rang_at=row["rang_at"], ring_seconds=row["ring_seconds"],
        reason=row["reason"], answered_by=row["answered_by"], caller=row["caller"], pbx=row["pbx"],
    )


def history_from_row(row: asyncpg.Record) -> MissedHistoryItem:
    return MissedHistoryItem(
        entry_id=row["entry_id"], at=row["at"], action=cast(HistoryAction, row["action"]), by=row["by"],
        linkedid=row["linkedid"], comment=row["comment"],
    )


def headers_json(headers: Sequence[tuple[str, str]]) -> str:
    return _encode([list(h) for h in headers])


def live_event_from_row(row: asyncpg.Record) -> LiveEvent:
    return row["linkedid"], [(k, v) for k, v in json.loads(row["headers"])], row["received_at"]


def user_from_row(row: asyncpg.Record) -> User:
    return User(name=row["name"], role=cast(Role, row["role"]), extension=row["extension"],
                display_name=row["display_name"], password_hash=row["password_hash"], created_at=row["created_at"],
                pbxs=tuple(row["pbxs"]), email=row["email"])


def grant_from_row(row: asyncpg.Record) -> Grant:
    return Grant(user=user_from_row(row), expires_at=row["grant_expires"], last_used_at=row["grant_used"])


def contact_from_row(row: asyncpg.Record) -> Contact:
    """A contact read with its card (the phones and vehicles kept as json on its row)."""
    vehicles = tuple(
        Vehicle(id=v[0], make=v[1], model=v[2], year=v[3], plate=v[4], vin=v[5], contact_id=row["id"])
        for v in json.loads(row["vehicles"] or "[]")
    )
    return Contact(id=row["id"], name=row["name"], kind=cast(ContactKind, row["kind"]), email=row["email"],
                   notes=row["notes"], external_id=row["external_id"],
                   phones=tuple(json.loads(row["phones"] or "[]")), vehicles=vehicles)
