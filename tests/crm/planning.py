"""A trace's CRM events, and a planner run over them as the push runs it (one state per call): the pure tests of
each CRM's planner read real calls, not hand-made events."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from asterisk.messages import AmiMessage
from cti.context import enrich
from cti.crm import CrmCallEvent, CrmRequest, Planner, call_events
from cti.model import CallBook
from tests.traces import TRACES, load_messages


def trace_events(trace: str | Path) -> list[CrmCallEvent]:
    """The CRM events of a trace, in the order the pipeline would hand them to the push."""
    folder = trace if isinstance(trace, Path) else TRACES / trace
    book = CallBook()
    events: list[CrmCallEvent] = []
    for message in load_messages(folder):
        if message.event == "SuccessfulAuth":  # the connection's CtiConnected, with the PBX's clock (as the model's
            # trace tests stand it in: tests/cti/test_model_traces.py)
            message = AmiMessage.from_pairs([("Event", "CtiConnected"), ("PbxTime", message.get("Timestamp"))],
                                            received_at=message.received_at)
        for effect in enrich(book, book.apply(message)):
            events.extend(call_events(effect))
    return events


def plan_all(planner: Planner, events: Iterable[CrmCallEvent],
             states: dict[str, dict[str, Any]] | None = None) -> dict[str, list[CrmRequest]]:
    """Each call's requests, in order, with the planner's state kept per call as the outbox keeps it (``states``:
    given to read or to start from)."""
    states = {} if states is None else states
    out: dict[str, list[CrmRequest]] = {}
    for event in events:
        plan = planner.plan(states.get(event.key, {}), event)
        if plan.state is not None:
            states[event.key] = plan.state
        if plan.requests:
            out.setdefault(event.key, []).extend(plan.requests)
    return out
