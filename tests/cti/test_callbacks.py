"""The call-back rule (cti/callbacks.py): which finished call closes which open missed entry, with plain values."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from cti.callbacks import call_back_of, closed_by_call, closes
from cti.records import CallRecord, MissedEntry
from tests.store.builders import T0, make_call, missed_for

CUSTOMER = "+7 (916) 123-45-67"
_ids = itertools.count(1)


def entry(linkedid: str, caller: str | None = CUSTOMER, **overrides: Any) -> MissedEntry:
    """An open entry of a call missed from ``caller`` (saved before the calls of the tests)."""
    return dataclasses.replace(missed_for(make_call(linkedid, caller=caller)), id=next(_ids), **overrides)


def test_an_answered_outbound_call_to_the_number_written_otherwise_calls_the_customer_back() -> None:
    call = make_call("back", direction="outbound", caller="101", called="8 916 123 45 67", answered=True,
                     answered_by="101", started_at=T0 + 100)
    cb = call_back_of(call)
    assert cb is not None and cb.closed_by == "callback" and cb.number_key == "79161234567"
    [closed] = closed_by_call(cb, [entry("m1")])
    assert (closed.status, closed.closed_by, closed.closed_linkedid) == ("closed", "callback", "back")
    assert closed.closed_at == call.answered_at  # the moment the customer was reached


def test_the_customer_calling_again_and_being_answered_closes_their_entries() -> None:
    call = make_call("again", caller="79161234567", answered=True, answered_by="102", started_at=T0 + 100)
    cb = call_back_of(call)
    assert cb is not None and cb.closed_by == "called_again"
    assert [e.linkedid for e in closed_by_call(cb, [entry("m1"), entry("m2"), entry("m3", caller="74950000000")])] \
        == ["m1", "m2"]


@pytest.mark.parametrize("call", [
    make_call("unanswered-out", direction="outbound", caller="101", called=CUSTOMER),
    make_call("unanswered-in", caller=CUSTOMER),
    make_call("internal", direction="internal", caller="101", called="102", answered=True, answered_by="102"),
    make_call("withheld", caller="anonymous", answered=True, answered_by="101"),
    make_call("no-number", direction="outbound", caller="101", called=None, answered=True, answered_by="101"),
], ids=lambda c: c.linkedid)
def test_calls_that_reach_nobody_or_nobody_known_close_nothing(call: CallRecord) -> None:
    assert call_back_of(call) is None


def test_a_call_never_closes_the_entry_it_opens_itself_nor_one_of_its_merged_linkedids() -> None:
    call = make_call("own", caller=CUSTOMER, answered=True, answered_by="101", linkedids=("own", "own-2"))
    cb = call_back_of(call, opens=entry("own-3"))
    assert cb is not None
    assert not closes(cb, entry("own-2"))  # the entry of one of the call's own linkedids
    assert not closes(cb, entry("own-3"))  # the entry the call opens
    assert closes(cb, entry("m1"))


def test_closed_entries_and_withheld_entries_stay_as_they_are() -> None:
    cb = call_back_of(make_call("c", caller=CUSTOMER, answered=True, answered_by="101"))
    assert cb is not None
    assert not closes(cb, entry("m1", status="closed", closed_by="manual", closed_at=T0))
    assert not closes(cb, entry("m2", caller="anonymous", caller_key=None))


def test_a_call_with_no_answer_time_closes_at_its_end() -> None:
    call = make_call("c", caller=CUSTOMER, answered=True, answered_by="101", answered_at=None)
    cb = call_back_of(call)
    assert cb is not None and cb.at == call.ended_at


def test_a_call_closes_only_the_entries_of_its_own_pbx() -> None:
    """The register is per PBX: the customer reached from the Saint Petersburg PBX is still owed a call-back by the
    main site, whose entry of the same number stays open."""
    call = make_call("back", direction="outbound", caller="101", called=CUSTOMER, answered=True, answered_by="101",
                     started_at=T0 + 100, pbx="spb")
    cb = call_back_of(call)
    assert cb is not None and cb.pbx == "spb"
    main_entry, spb_entry = entry("m1"), entry("m1", pbx="spb")  # the same linkedid on two PBXs: two entries
    assert [(e.linkedid, e.pbx) for e in closed_by_call(cb, [main_entry, spb_entry])] == [("m1", "spb")]
    assert not closes(cb, main_entry)
    on_main = call_back_of(dataclasses.replace(call, pbx="main"))
    assert on_main is not None and closes(on_main, main_entry) and not closes(on_main, spb_entry)
