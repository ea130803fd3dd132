"""The reminders' closing rule (cti/reminders.py): which finished call closes which reminder, with plain values;
and when a reminder is due and overdue."""

from __future__ import annotations

import dataclasses
from typing import Any

from cti.records import LegRecord
from cti.reminders import Reminder, closed_by_call, closes, is_due, is_overdue, number_key, reminder_call
from tests.store.builders import T0, make_call

MASTER = "201"


def reminder(**overrides: Any) -> Reminder:
    """An open reminder for the master's extension to call +7 916 123-45-67 back, made at T0 on a call of its own."""
    base = Reminder(id=1, pbx="main", employee="ivanov", employee_name="Иванов", extension=MASTER,
                    number="+7 (916) 123-45-67", number_key=number_key("+7 (916) 123-45-67"), due_at=T0 + 3600,
                    created_at=T0, linkedid="origin")
    return dataclasses.replace(base, **overrides)


def talked(extension: str, at: float | None) -> LegRecord:
    return LegRecord(uniqueid=f"leg-{extension}", channel=f"PJSIP/{extension}-01", role="agent", agent=extension,
                     number=extension, started_at=T0, answered_at=at, ended_at=None, status="answered",
                     hangup_cause=None, hangup_cause_txt=None)


def test_the_master_calling_the_client_from_their_extension_closes_it_when_the_client_answers() -> None:
    call = reminder_call(make_call("back", direction="outbound", caller=MASTER, called="8 916 123 45 67",
                                   answered=True, answered_by="89161234567", started_at=T0 + 100))
    assert call is not None and call.number_key == "79161234567" and call.extensions == {MASTER}
    [closed] = closed_by_call(call, [reminder()])
    assert (closed.status, closed.closed_how, closed.closed_by, closed.closed_linkedid) == ("done", "call", "call",
                                                                                          "back")
    assert closed.closed_at == T0 + 105  # the moment the client was reached


def test_the_client_calling_in_and_reaching_the_master_closes_it_whoever_took_the_call_first() -> None:
    answered_by_master = make_call("in", caller="79161234567", answered=True, answered_by=MASTER, started_at=T0 + 10)
    assert closes(reminder_call(answered_by_master), reminder())  # type: ignore[arg-type]
    # An agent took it and passed it to the master, who answered: the master's leg talked.
    passed = make_call("in2", caller="79161234567", answered=True, answered_by="101", started_at=T0 + 10,
                       legs=(talked("101", T0 + 12), talked(MASTER, T0 + 40)))
    assert closes(reminder_call(passed), reminder())  # type: ignore[arg-type]


def test_calls_that_never_reached_the_client_from_the_master_close_nothing() -> None:
    assert reminder_call(make_call("missed", caller="79161234567")) is None  # unanswered
    assert reminder_call(make_call("internal", direction="internal", caller=MASTER, called="101",
                                   answered=True, answered_by="101")) is None
    assert reminder_call(make_call("withheld", caller=None, answered=True, answered_by=MASTER)) is None
    # Passed to the master, who never picked up:
    agent_only = reminder_call(make_call("agent", caller="79161234567", answered=True, answered_by="101",
                                         legs=(talked("101", T0 + 6), talked(MASTER, None))))
    assert agent_only is not None and not closes(agent_only, reminder())
    other_client = reminder_call(make_call("x", direction="outbound", caller=MASTER, called="84951112233",
                                           answered=True, answered_by="84951112233", started_at=T0 + 100))
    assert other_client is not None and not closes(other_client, reminder())


def test_only_later_calls_of_its_own_pbx_other_than_its_own_call_close_an_open_reminder() -> None:
    call = reminder_call(make_call("back", direction="outbound", caller=MASTER, called="89161234567",
                                   answered=True, started_at=T0 + 100))
    assert call is not None
    assert not closes(call, reminder(pbx="spb"))  # another site's extension 201
    assert not closes(call, reminder(created_at=T0 + 200))  # made after the call reached them
    assert not closes(call, reminder(linkedid="back"))  # the call the reminder was made on
    assert not closes(call, reminder(status="done"))
    assert not closes(call, reminder(extension=None))  # an employee with no phone: by hand only
    assert closes(call, reminder(linkedid=None))


def test_due_at_its_time_and_overdue_after_the_escalation_delay_while_open() -> None:
    r = reminder()
    assert not is_due(r, T0 + 3599) and is_due(r, T0 + 3600)
    assert not is_overdue(r, T0 + 3600 + 1799, 1800) and is_overdue(r, T0 + 3600 + 1800, 1800)
    assert not is_due(dataclasses.replace(r, status="cancelled"), T0 + 9999)
    assert r.belongs_to(name="someone", extension=MASTER) and not r.belongs_to(name="x", extension="202")
    assert dataclasses.replace(r, user_name="Ivan").belongs_to(name="ivan", extension=None)
    assert not r.belongs_to(name="x", extension=MASTER, pbxs=["spb"])
