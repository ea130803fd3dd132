"""Small builders for the store tests: finished calls, missed entries and agents' misses.

Defaults describe an unanswered inbound call from a Moscow mobile to the support DID; each test
overrides only what its case is about.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cti.phones import normalize_number
from cti.records import AgentMiss, CallRecord, Direction, LegRecord, MissedEntry

T0 = 1_700_000_000.0


def make_call(
    linkedid: str,
    *,
    direction: Direction = "inbound",
    caller: str | None = "79161234567",
    called: str | None = "74951234567",
    answered: bool = False,
    answered_by: str | None = None,
    started_at: float = T0,
    **overrides: Any,
) -> CallRecord:
    record = CallRecord(
        linkedid=linkedid,
        direction=direction,
        caller=caller,
        caller_name=None,
        called=called,
        answered=answered,
        answered_by=answered_by if answered else None,
        missed_reason=None if answered else "no_answer",
        talk_seconds=30.0 if answered else 0.0,
        transferred_to=None,
        agents_rung_not_answered=(),
        recording=None,
        started_at=started_at,
        answered_at=started_at + 5.0 if answered else None,
        ended_at=started_at + 40.0,
        outcome="answered" if answered else "missed",
        linkedids=(linkedid,),
    )
    return dataclasses.replace(record, **overrides)


def missed_for(record: CallRecord, region: str = "RU") -> MissedEntry:
    """The register entry the call model opens for an unanswered inbound call."""
    return MissedEntry(
        linkedid=record.linkedid, caller=record.caller, caller_key=normalize_number(record.caller, region),
        caller_name=record.caller_name, called=record.called, queue=record.queue,
        reason=record.missed_reason or "no_answer", missed_at=record.started_at,
        ring_seconds=record.ring_seconds, agents_rung=record.agents_rung_not_answered,
    )


def leg(uniqueid: str, agent: str | None, **overrides: Any) -> LegRecord:
    base = LegRecord(
        uniqueid=uniqueid, channel=f"PJSIP/{agent or 'trunk'}-0000000{uniqueid[-1]}",
        role="agent" if agent else "caller", agent=agent, number=agent, started_at=T0, answered_at=None,
        ended_at=T0 + 10.0, status="no_answer", hangup_cause=19, hangup_cause_txt="No answer",
    )
    return dataclasses.replace(base, **overrides)


def agent_miss(record: CallRecord, agent: str, **overrides: Any) -> AgentMiss:
    base = AgentMiss(
        linkedid=record.linkedid, agent=agent, rang_at=record.started_at + 1.0, ring_seconds=15.0,
        reason="no_answer", answered_by=record.answered_by, caller=record.caller,
    )
    return dataclasses.replace(base, **overrides)
