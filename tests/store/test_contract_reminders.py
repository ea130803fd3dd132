"""Call-back reminders kept by the store, against the interface (every store runs it: tests/store/conftest).

What a master and a supervisor rely on: a reminder reads back as it was made (Cyrillic, the card), a retried
hand-over makes no second one, an assignee's list holds theirs only (by extension or by user), each reminder is
pushed as due once and escalated once however many nodes ask, an answered call between the extension and the
number closes it (and no other call does), and one closed by hand cannot be closed again. Plus the ``employee``
role: a user of it is kept with its extension.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from cti.reminders import NewReminder, ReminderCall
from store.repository import ReminderClosed, ReminderNotFound, Store, User
from tests.store.builders import T0
from tests.store.conftest import OpenStore

CARD = {"name": "Иванов Пётр", "company": None, "cars": ["Škoda Octavia А123ВС777"], "note": "«постоянный»"}


def new(extension: str | None = "201", *, number: str = "79161234567", due: float = T0 + 3600, run: int | None = 7,
        employee: str = "ivanov", pbx: str = "main", user: str | None = None) -> NewReminder:
    return NewReminder(pbx=pbx, employee=employee, employee_name="Иванов (мастер)", extension=extension,
                       number=number, number_key=number, due_at=due, created_at=T0, user_name=user, contact_id=None,
                       client_name="Иванов Пётр", card=CARD, note="перезвонить по ремонту", created_by="101",
                       run_id=run, linkedid="1795480456.101")


def call(extensions: frozenset[str] = frozenset({"201"}), *, number: str = "79161234567", at: float = T0 + 4000,
         linkedid: str = "1795490000.7", pbx: str = "main") -> ReminderCall:
    return ReminderCall(pbx=pbx, linkedid=linkedid, number_key=number, extensions=extensions, at=at,
                        own_linkedids=frozenset({linkedid}))


async def test_a_reminder_reads_back_as_made_and_a_retried_hand_over_makes_no_second(store: Store) -> None:
    made, fresh = await store.add_reminder(new())
    assert fresh and made.id > 0
    assert (made.pbx, made.employee, made.employee_name, made.extension, made.number, made.number_key) == (
        "main", "ivanov", "Иванов (мастер)", "201", "79161234567", "79161234567")
    assert (made.card, made.note, made.client_name, made.created_by, made.run_id, made.linkedid) == (
        CARD, "перезвонить по ремонту", "Иванов Пётр", "101", 7, "1795480456.101")
    assert (made.status, made.closed_how, made.notified_at, made.escalated_at) == ("open", None, None, None)
    assert (made.due_at, made.created_at) == (T0 + 3600, T0)
    again, fresh = await store.add_reminder(new())
    assert not fresh and again == made
    by_hand, fresh = await store.add_reminder(new(run=None))  # not from a run: nothing to be the same as
    assert fresh and by_hand.id != made.id
    assert await store.get_reminder(made.id) == made
    with pytest.raises(ReminderNotFound):
        await store.get_reminder(made.id + 1000)


async def test_an_assignees_list_holds_theirs_by_extension_or_user_and_their_pbxs_only(store: Store) -> None:
    mine, _ = await store.add_reminder(new("201", due=T0 + 7200, run=1))
    earlier, _ = await store.add_reminder(new("201", due=T0 + 60, run=2))
    await store.add_reminder(new("202", run=3, employee="petrov"))
    named, _ = await store.add_reminder(new(None, run=4, user="Ivan", employee="ivan"))
    other_site, _ = await store.add_reminder(new("201", run=5, pbx="spb"))
    listed = await store.list_reminders(extension="201", user_name="ivan", pbxs=["main"])
    assert [r.id for r in listed] == [earlier.id, named.id, mine.id]  # by due time; the user's name in any case
    assert [r.id for r in await store.list_reminders(extension="201")] == [earlier.id, other_site.id, mine.id]
    assert len(await store.list_reminders()) == 5
    assert await store.list_reminders(pbxs=[]) == []


async def test_due_and_escalated_once_each_however_many_nodes_ask(open_store: OpenStore) -> None:
    store = await open_store()
    other_node = await open_store()  # a second store on the same database: another node's ticker
    early, _ = await store.add_reminder(new(due=T0 + 60, run=1))
    late, _ = await store.add_reminder(new(due=T0 + 3600, run=2))
    assert await store.due_reminders(T0 + 59) == []
    first, second = await asyncio.gather(store.due_reminders(T0 + 120), other_node.due_reminders(T0 + 120))
    assert sorted(r.id for r in first + second) == [early.id]  # one node pushed it
    assert (await store.get_reminder(early.id)).notified_at == T0 + 120
    assert await store.due_reminders(T0 + 130) == []
    assert [r.id for r in await store.due_reminders(T0 + 3600)] == [late.id]

    after = 30 * 60.0
    assert await store.escalate_reminders(T0 + 60 + after - 1, after) == []
    first, second = await asyncio.gather(store.escalate_reminders(T0 + 60 + after, after),
                                         other_node.escalate_reminders(T0 + 60 + after, after))
    assert sorted(r.id for r in first + second) == [early.id]
    assert [r.id for r in await store.list_reminders(escalated=True)] == [early.id]
    assert [r.id for r in await store.list_reminders(escalated=False)] == [late.id]
    assert await store.escalate_reminders(T0 + 60 + after + 5, after) == []


async def test_an_answered_call_between_the_extension_and_the_number_closes_it(store: Store) -> None:
    reminder, _ = await store.add_reminder(new(run=1))
    another_master, _ = await store.add_reminder(new("202", run=2, employee="petrov"))
    assert await store.close_reminders_by_call(call(frozenset({"203"}))) == []  # someone else talked to them
    assert await store.close_reminders_by_call(call(number="79035556677")) == []  # another client
    assert await store.close_reminders_by_call(call(pbx="spb")) == []  # another site's extension 201
    assert await store.close_reminders_by_call(call(at=T0 - 10)) == []  # before the reminder was made
    assert await store.close_reminders_by_call(call(linkedid="1795480456.101")) == []  # its own call
    [closed] = await store.close_reminders_by_call(call(frozenset({"201", "101"})))
    assert closed.id == reminder.id
    assert (closed.status, closed.closed_how, closed.closed_at, closed.closed_by, closed.closed_linkedid) == (
        "done", "call", T0 + 4000, "call", "1795490000.7")
    assert await store.close_reminders_by_call(call()) == []  # closed once
    assert (await store.get_reminder(another_master.id)).status == "open"
    assert [r.id for r in await store.list_reminders()] == [another_master.id]
    assert {r.id for r in await store.list_reminders(open_only=False)} == {reminder.id, another_master.id}


async def test_closed_by_hand_with_a_comment_once(store: Store) -> None:
    reminder, _ = await store.add_reminder(new(run=1))
    cancelled, _ = await store.add_reminder(new(run=2))
    closed = await store.close_reminder(reminder.id, by="ivan", comment="дозвонился, записал на среду", at=T0 + 99)
    assert (closed.status, closed.closed_how, closed.closed_by, closed.comment, closed.closed_at) == (
        "done", "hand", "ivan", "дозвонился, записал на среду", T0 + 99)
    with pytest.raises(ReminderClosed) as again:
        await store.close_reminder(reminder.id, by="admin", comment=None, at=T0 + 100)
    assert again.value.reminder == closed
    gone = await store.close_reminder(cancelled.id, by="admin", comment="клиент отказался", cancelled=True,
                                      at=T0 + 100)
    assert gone.status == "cancelled"
    with pytest.raises(ReminderNotFound):
        await store.close_reminder(reminder.id + 1000, by="admin", comment=None, at=T0)
    assert await store.close_reminders_by_call(call()) == []  # nothing open is left to close


async def test_the_employee_role_is_kept_with_its_extension(store: Store) -> None:
    master = User(name="ivan", role="employee", extension="201", display_name="Иван Мастеров",
                  password_hash="scrypt$1")
    await store.add_user(master)
    kept = await store.get_user("ivan")
    assert kept is not None and (kept.role, kept.extension) == ("employee", "201")
    await store.update_user("ivan", role="agent")
    assert (await store.get_user("ivan")) == replace(kept, role="agent")
