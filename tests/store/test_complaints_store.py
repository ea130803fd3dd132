"""Complaints kept by the store, against the interface (every store runs it: tests/store/conftest).

What a complaint's responsible, a colleague and a manager rely on: a complaint reads back as filed (Cyrillic, its
calls, the client and car) with a number people can quote, counted per year in the site's zone; a retried API
request never files two, even racing the first one on another node; a change made from an old revision is refused
and writes nothing; each change closes the complaint's open task and opens the next stage's; an overdue task is
escalated once however many nodes' tickers ask; the list's filters find what the manager asks for (a plate typed in
Latin letters, a phone written another way); the history keeps every change in order; attachments are kept with
their history item.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cti.complaints import (
    ActionRow,
    CallRef,
    Complaint,
    ComplaintChange,
    ComplaintFilter,
    NewComplaint,
    NewMail,
    OpenTask,
)
from store.repository import ComplaintChanged, ComplaintNotFound, Store
from tests.store.conftest import OpenStore

MOSCOW = ZoneInfo("Europe/Moscow")
#: Monday 2 March 2026, 09:00 in Moscow.
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=MOSCOW).timestamp()
HOUR = 3600.0
CALL = CallRef(pbx="main", linkedid="1795480456.101")


def new(*, key: str | None = None, type: str = "quality", responsible: str = "anna", comment: str = "стук после "
        "ремонта подвески", plate: str | None = "А123ВС 777", phone: str | None = "8 (916) 123-45-67",
        source: Any = "call") -> NewComplaint:
    return NewComplaint(type=type, kind="client", source=source, responsible=responsible, created_by="oleg",
                        client_name="Иванов Пётр Сергеевич", client_phone=phone, client_email="ivanov@example.ru",
                        contact_id=12, car="Škoda Octavia", plate=plate, subject_kind="repair_order",
                        subject="ЗН-0042", comment=comment, fields={"description": "«стучит» справа"}, calls=(CALL,),
                        register_contact_id=7, idempotency_key=key)


def mail(text: str = "Жалоба Ж-2026-0001") -> NewMail:
    return NewMail(to=("anna@example.ru",), subject=text, body="Вам назначена жалоба.", about="complaint:1")


def moved(c: Complaint, stage: Any, assignee: str, *, at: float, due: float | None, by: str = "anna",
          history: tuple[tuple[str, dict[str, Any]], ...] | None = None, mails: tuple[NewMail, ...] = (),
          **changes: Any) -> ComplaintChange:
    """A change as cti.complaint_rules builds one: the next stage, its assignee and deadline, its task."""
    status = "registered" if stage == "registration" else changes.pop("status", "in_progress")
    complaint = replace(c, stage=stage, status=status, assignee=assignee, stage_entered_at=at, stage_due_at=due,
                        **changes)
    return ComplaintChange(
        complaint=complaint, by=by, at=at,
        history=history if history is not None else (("moved", {"from": c.stage, "to": stage}),),
        open_task=OpenTask(stage=stage, assignee=assignee, due_at=due) if stage != "closed" else None, mails=mails)


async def test_a_complaint_reads_back_as_filed_numbered_with_its_task_history_and_mail(store: Store) -> None:
    made, fresh = await store.register_complaint(new(), at=NOW, stage_due_at=NOW + 4 * HOUR, mails=[mail()])
    assert fresh and made.id > 0 and made.number == "Ж-2026-0001"
    assert (made.type, made.kind, made.source, made.stage, made.status) == (
        "quality", "client", "call", "registration", "registered")
    assert (made.responsible, made.assignee, made.created_by, made.revision) == ("anna", "anna", "oleg", 1)
    assert (made.created_at, made.updated_at, made.stage_entered_at, made.stage_due_at) == (
        NOW, NOW, NOW, NOW + 4 * HOUR)
    assert (made.client_name, made.client_phone, made.client_email, made.contact_id) == (
        "Иванов Пётр Сергеевич", "8 (916) 123-45-67", "ivanov@example.ru", 12)
    assert (made.car, made.plate, made.subject_kind, made.subject) == (
        "Škoda Octavia", "А123ВС 777", "repair_order", "ЗН-0042")
    assert (made.comment, made.fields, made.calls, made.register_contact_id) == (
        "стук после ремонта подвески", {"description": "«стучит» справа"}, (CALL,), 7)
    assert (made.justified, made.result, made.closed_at, made.action_plan, made.attachments) == (
        None, None, None, (), ())
    assert await store.get_complaint(made.id) == made
    [task] = await store.complaint_tasks(complaint_id=made.id)
    assert (task.stage, task.assignee, task.due_at, task.state, task.created_at) == (
        "registration", "anna", NOW + 4 * HOUR, "open", NOW)
    [registered] = await store.complaint_history(made.id)
    assert (registered.action, registered.by, registered.at) == ("registered", "oleg", NOW)
    assert registered.details["number"] == "Ж-2026-0001" and registered.details["responsible"] == "anna"
    [queued] = await store.list_mails()
    assert (queued.to, queued.subject, queued.about, queued.next_try_at) == (
        ("anna@example.ru",), "Жалоба Ж-2026-0001", "complaint:1", NOW)
    second, _ = await store.register_complaint(new(), at=NOW + 60, stage_due_at=None)
    assert second.number == "Ж-2026-0002" and second.stage_due_at is None
    with pytest.raises(ComplaintNotFound):
        await store.get_complaint(made.id + 1000)


async def test_numbers_count_per_year_in_the_sites_zone(store: Store) -> None:
    """New Year's night: 00:30 on 1 January in Moscow is still 31 December in UTC; the number is the new year's."""
    new_year = datetime(2027, 1, 1, 0, 30, tzinfo=MOSCOW).timestamp()
    before, _ = await store.register_complaint(new(), at=new_year - 3 * HOUR, stage_due_at=None)
    utc, _ = await store.register_complaint(new(), at=new_year, stage_due_at=None)
    assert (before.number, utc.number) == ("Ж-2026-0001", "Ж-2026-0002")  # a store told no zone: UTC's year
    await store.keep_report_days(MOSCOW)
    first, _ = await store.register_complaint(new(), at=new_year + 60, stage_due_at=None)
    second, _ = await store.register_complaint(new(), at=new_year + 120, stage_due_at=None)
    assert (first.number, second.number) == ("Ж-2027-0001", "Ж-2027-0002")


async def test_a_retried_request_files_one_complaint(store: Store) -> None:
    made, fresh = await store.register_complaint(new(key="portal-7f3a"), at=NOW, stage_due_at=NOW + HOUR,
                                                 mails=[mail()])
    again, fresh_again = await store.register_complaint(new(key="portal-7f3a", comment="другой текст"),
                                                        at=NOW + 5, stage_due_at=NOW + HOUR, mails=[mail()])
    assert fresh and not fresh_again and again == made and again.idempotency_key == "portal-7f3a"
    assert await store.count_complaints(ComplaintFilter()) == 1
    assert len(await store.complaint_history(made.id)) == 1 and len(await store.list_mails()) == 1
    assert len(await store.complaint_tasks(complaint_id=made.id, open_only=False)) == 1
    other, fresh = await store.register_complaint(new(key="portal-8b01"), at=NOW + 10, stage_due_at=None)
    assert fresh and other.number == "Ж-2026-0002"


async def test_two_nodes_racing_with_one_key_file_one_complaint_and_use_one_number(open_store: OpenStore) -> None:
    store = await open_store()
    other_node = await open_store()  # a second store on the same database: another node of the panel
    for round_ in range(5):
        key = f"1c-request-{round_}"
        (a, fresh_a), (b, fresh_b) = await asyncio.gather(
            store.register_complaint(new(key=key), at=NOW + round_, stage_due_at=None, mails=[mail()]),
            other_node.register_complaint(new(key=key), at=NOW + round_, stage_due_at=None, mails=[mail()]))
        assert a == b and sorted([fresh_a, fresh_b]) == [False, True], round_
        assert a.number == f"Ж-2026-{round_ + 1:04d}"  # the loser's number was given back
    assert await store.count_complaints(ComplaintFilter()) == 5
    assert len(await store.list_mails()) == 5


async def test_a_change_moves_the_complaint_closes_its_task_and_opens_the_next(store: Store) -> None:
    made, _ = await store.register_complaint(new(), at=NOW, stage_due_at=NOW + 4 * HOUR)
    change = moved(made, "review", "Boris", at=NOW + HOUR, due=NOW + 25 * HOUR, mails=(mail("Передана вам"),),
                   history=(("moved", {"from": "registration", "to": "review"}),
                            ("edited", {"field": "comment", "old": made.comment, "new": "стук и вибрация"})),
                   comment="стук и вибрация", justified=True,
                   calls=(CALL, CallRef("main", "1795490000.7")),
                   action_plan=(ActionRow(when="2026-03-03", what="Диагностика подвески", who="Сидоров",
                                          effort_hours=1.5),
                                ActionRow(when="2026-03-04", what="Замена стойки", who="Сидоров", result="")),
                   fields={"description": "«стучит» справа", "cause": "брак детали"})
    after = await store.commit_complaint(change)
    assert (after.stage, after.status, after.assignee, after.revision) == ("review", "in_progress", "Boris", 2)
    assert (after.updated_at, after.stage_entered_at, after.stage_due_at) == (NOW + HOUR, NOW + HOUR, NOW + 25 * HOUR)
    assert (after.comment, after.justified, after.fields["cause"]) == ("стук и вибрация", True, "брак детали")
    assert after.calls == (CALL, CallRef("main", "1795490000.7"))
    assert [(r.what, r.effort_hours) for r in after.action_plan] == [("Диагностика подвески", 1.5),
                                                                     ("Замена стойки", None)]
    assert (after.number, after.created_at, after.created_by) == (made.number, made.created_at, made.created_by)
    assert await store.get_complaint(made.id) == after
    tasks = await store.complaint_tasks(complaint_id=made.id, open_only=False)
    assert [(t.stage, t.assignee, t.state, t.done_at) for t in tasks] == [
        ("registration", "anna", "done", NOW + HOUR), ("review", "Boris", "open", None)]
    assert [t.stage for t in await store.complaint_tasks(assignee="boris")] == ["review"]  # any case
    assert await store.complaint_tasks(assignee="anna") == []
    assert [(h.action, h.by) for h in await store.complaint_history(made.id)] == [
        ("registered", "oleg"), ("moved", "anna"), ("edited", "anna")]
    assert [m.subject for m in await store.list_mails()] == ["Передана вам"]
    # The plan edited again: what is given replaces what was there.
    again = await store.commit_complaint(ComplaintChange(
        complaint=replace(after, action_plan=(ActionRow(when="2026-03-05", what="Звонок клиенту", who="Борис",
                                                        result="доволен", effort_hours=0.25),)),
        by="Boris", at=NOW + 2 * HOUR, history=(("edited", {"field": "action_plan"}),)))
    assert [(r.when, r.what, r.result) for r in again.action_plan] == [("2026-03-05", "Звонок клиенту", "доволен")]
    assert again.revision == 3 and len(await store.complaint_tasks(complaint_id=made.id)) == 1  # no task opened


async def test_a_change_from_an_old_revision_is_refused_and_writes_nothing(store: Store) -> None:
    made, _ = await store.register_complaint(new(), at=NOW, stage_due_at=NOW + HOUR)
    await store.commit_complaint(moved(made, "review", "anna", at=NOW + 60, due=NOW + 2 * HOUR))
    stale = moved(made, "review", "Boris", at=NOW + 120, due=NOW + 3 * HOUR, mails=(mail(),), comment="затёрто")
    with pytest.raises(ComplaintChanged) as refused:
        await store.commit_complaint(stale)
    assert refused.value.complaint.revision == 2 and refused.value.complaint.assignee == "anna"
    now = await store.get_complaint(made.id)
    assert (now.revision, now.assignee, now.comment) == (2, "anna", made.comment)
    assert len(await store.complaint_history(made.id)) == 2 and await store.list_mails() == []
    assert [t.assignee for t in await store.complaint_tasks(complaint_id=made.id)] == ["anna"]
    with pytest.raises(ComplaintNotFound):
        await store.commit_complaint(replace(stale, complaint=replace(made, id=made.id + 1000)))


async def test_two_nodes_changing_one_complaint_at_once_one_wins(open_store: OpenStore) -> None:
    store = await open_store()
    other_node = await open_store()
    made, _ = await store.register_complaint(new(), at=NOW, stage_due_at=None)
    results = await asyncio.gather(
        store.commit_complaint(moved(made, "review", "anna", at=NOW + 60, due=None)),
        other_node.commit_complaint(moved(made, "review", "Boris", at=NOW + 61, due=None)),
        return_exceptions=True)
    won = [r for r in results if isinstance(r, Complaint)]
    lost = [r for r in results if isinstance(r, ComplaintChanged)]
    assert len(won) == 1 and len(lost) == 1, results
    assert lost[0].complaint == won[0] == await store.get_complaint(made.id)
    assert len(await store.complaint_tasks(complaint_id=made.id)) == 1


async def test_a_stage_handed_to_a_colleague_cancels_the_old_task_and_closing_leaves_none_open(store: Store) -> None:
    made, _ = await store.register_complaint(new(), at=NOW, stage_due_at=NOW + HOUR)
    review = await store.commit_complaint(moved(made, "review", "anna", at=NOW + 60, due=NOW + 5 * HOUR))
    handed = await store.commit_complaint(moved(review, "review", "Boris", at=NOW + 120, due=NOW + 9 * HOUR,
                                                history=(("reassigned", {"from": "anna", "to": "Boris",
                                                                         "reason": "отпуск"}),), by="manager"))
    tasks = await store.complaint_tasks(complaint_id=made.id, open_only=False)
    assert [(t.stage, t.assignee, t.state) for t in tasks] == [
        ("registration", "anna", "done"), ("review", "anna", "cancelled"), ("review", "Boris", "open")]
    history = await store.complaint_history(made.id)
    assert (history[-1].action, history[-1].by, history[-1].details["reason"]) == ("reassigned", "manager", "отпуск")
    closed = await store.commit_complaint(moved(handed, "closed", "Boris", at=NOW + 600, due=None,
                                                status="satisfied", result="satisfied", closed_at=NOW + 600))
    assert (closed.stage, closed.status, closed.result, closed.closed_at) == ("closed", "satisfied", "satisfied",
                                                                              NOW + 600)
    assert await store.complaint_tasks(complaint_id=made.id) == []


async def test_an_overdue_task_is_escalated_once_however_many_nodes_ask(open_store: OpenStore) -> None:
    store = await open_store()
    other_node = await open_store()  # another node's ticker
    late, _ = await store.register_complaint(new(), at=NOW, stage_due_at=NOW + HOUR)
    later, _ = await store.register_complaint(new(responsible="Boris"), at=NOW, stage_due_at=NOW + 3 * HOUR)
    await store.register_complaint(new(), at=NOW, stage_due_at=None)  # no deadline: never overdue
    assert await store.overdue_tasks(NOW + HOUR) == []  # due at, not before
    [task] = await store.overdue_tasks(NOW + 2 * HOUR)
    assert (task.complaint_id, task.stage, task.assignee) == (late.id, "registration", "anna")
    manager_mail = NewMail(to=("boss@example.ru",), subject="Просрочена жалоба Ж-2026-0001", body="…")
    first, second = await asyncio.gather(
        store.escalate_task(task.id, at=NOW + 2 * HOUR, mails=[manager_mail]),
        other_node.escalate_task(task.id, at=NOW + 2 * HOUR + 1, mails=[manager_mail]))
    escalated = [t for t in (first, second) if t is not None]
    assert len(escalated) == 1 and escalated[0].escalated_at in (NOW + 2 * HOUR, NOW + 2 * HOUR + 1)
    assert [m.subject for m in await store.list_mails()] == ["Просрочена жалоба Ж-2026-0001"]
    [item] = [h for h in await store.complaint_history(late.id) if h.action == "escalated"]
    assert item.by == "system" and item.details == {"task_id": task.id, "stage": "registration", "assignee": "anna",
                                                    "due_at": NOW + HOUR}
    assert [t.complaint_id for t in await store.overdue_tasks(NOW + 4 * HOUR)] == [later.id]
    assert (await store.complaint_tasks(complaint_id=late.id))[0].escalated_at == escalated[0].escalated_at
    # A task no longer open is not escalated; one that never was is an error.
    review = await store.commit_complaint(moved(later, "review", "Boris", at=NOW + 3.5 * HOUR, due=None))
    [done] = [t for t in await store.complaint_tasks(complaint_id=review.id, open_only=False) if t.state == "done"]
    assert await store.escalate_task(done.id, at=NOW + 4 * HOUR) is None
    with pytest.raises(ComplaintNotFound):
        await store.escalate_task(done.id + 1000, at=NOW + 4 * HOUR)


async def test_the_lists_filters(store: Store) -> None:
    quality, _ = await store.register_complaint(new(), at=NOW, stage_due_at=NOW + HOUR)
    delivery, _ = await store.register_complaint(
        new(type="delivery", responsible="Boris", comment="Запчасть не пришла в срок", plate="в777ор 50",
            phone="+7 495 111-22-33"), at=NOW + HOUR, stage_due_at=NOW + 30 * HOUR)
    thanks, _ = await store.register_complaint(new(type="thanks", comment="Спасибо мастеру 100% довольны",
                                                   plate=None, phone=None, source="api"),
                                               at=NOW + 2 * HOUR, stage_due_at=None)
    in_review = await store.commit_complaint(moved(delivery, "review", "Clara", at=NOW + 3 * HOUR,
                                                   due=NOW + 4 * HOUR))
    await store.commit_complaint(moved(thanks, "closed", "anna", at=NOW + 3 * HOUR, due=None, status="satisfied",
                                       result="satisfied", closed_at=NOW + 3 * HOUR))

    async def ids(**flt: Any) -> list[int]:
        chosen = ComplaintFilter(**flt)
        found = [c.id for c in await store.list_complaints(chosen)]
        assert await store.count_complaints(replace(chosen, limit=200, offset=0)) >= len(found)
        return found

    assert await ids() == [thanks.id, delivery.id, quality.id]  # newest first
    assert await ids(statuses=("in_progress",)) == [delivery.id]
    assert await ids(statuses=("registered", "satisfied")) == [thanks.id, quality.id]
    assert await ids(stages=("review", "registration")) == [delivery.id, quality.id]
    assert await ids(types=("quality", "thanks")) == [thanks.id, quality.id]
    assert await ids(responsible="boris") == [delivery.id]
    assert await ids(assignee="CLARA") == [in_review.id]
    assert await ids(overdue_at=NOW + 2 * HOUR) == [quality.id]  # the closed one has no deadline to miss
    assert await ids(overdue_at=NOW + 5 * HOUR) == [delivery.id, quality.id]
    assert await ids(since=NOW + HOUR, until=NOW + 2 * HOUR) == [delivery.id]
    assert await ids(text="СТУК") == [quality.id]  # Cyrillic in any case
    assert await ids(text="a123bc") == [quality.id]  # the plate in Latin look-alikes, no spaces
    assert await ids(text="В 777 ОР") == [delivery.id]
    assert await ids(text="8 (495) 111 22 33") == [delivery.id]  # the phone written another way
    assert await ids(text="Ж-2026-0002") == [delivery.id]
    assert await ids(text="%") == [thanks.id] and await ids(text="00% д") == [thanks.id]  # % is a character here
    assert await ids(text="_") == [] and await ids(text="брак") == []
    assert await ids(text="ЗН-0042", types=("delivery",)) == [delivery.id]
    assert await ids(limit=2) == [thanks.id, delivery.id] and await ids(limit=2, offset=2) == [quality.id]
    assert await store.count_complaints(ComplaintFilter(types=("quality", "delivery"))) == 2
    assert await store.count_complaints(ComplaintFilter(text="нет такого")) == 0
    [whole] = await store.list_complaints(ComplaintFilter(types=("delivery",)))
    assert whole == await store.get_complaint(delivery.id) and whole.calls == (CALL,)


async def test_notes_and_the_history_in_the_order_they_happened(store: Store) -> None:
    made, _ = await store.register_complaint(new(), at=NOW, stage_due_at=None)
    question = await store.add_complaint_note(
        made.id, action="question", details={"to": "Boris", "text": "Брак детали или ошибка сборки?"}, by="anna",
        at=NOW + 60, mails=[NewMail(to=("boris@example.ru",), subject="Вопрос по жалобе", body="…")])
    answer = await store.add_complaint_note(made.id, action="answer", details={"text": "Брак, стойка из партии 7"},
                                            by="Boris", at=NOW + 120)
    assert (question.action, question.by, question.at, question.details["to"]) == ("question", "anna", NOW + 60,
                                                                                   "Boris")
    history = await store.complaint_history(made.id)
    assert [h.action for h in history] == ["registered", "question", "answer"]
    assert history[1:] == [question, answer] and answer.details == {"text": "Брак, стойка из партии 7"}
    assert (await store.get_complaint(made.id)).revision == 1  # a note changes nothing else
    assert [m.to for m in await store.list_mails()] == [("boris@example.ru",)]
    with pytest.raises(ComplaintNotFound):
        await store.add_complaint_note(made.id + 1000, action="question", details={}, by="anna", at=NOW)


async def test_attachments_are_kept_with_their_history_item(store: Store) -> None:
    made, _ = await store.register_complaint(new(), at=NOW, stage_due_at=None)
    photo = await store.add_attachment(made.id, file_name="фото стойки.jpg", content_type="image/jpeg",
                                       size=734_003, stored_as="c1-5f0e3a.jpg", by="anna", at=NOW + 30)
    act = await store.add_attachment(made.id, file_name="акт.pdf", content_type="application/pdf", size=12_000,
                                     stored_as="c1-77ab01.pdf", by="Boris", at=NOW + 40)
    assert (photo.complaint_id, photo.file_name, photo.content_type, photo.size, photo.stored_as, photo.by) == (
        made.id, "фото стойки.jpg", "image/jpeg", 734_003, "c1-5f0e3a.jpg", "anna")
    assert await store.get_attachment(act.id) == act
    assert (await store.get_complaint(made.id)).attachments == (photo, act)
    attached = [h for h in await store.complaint_history(made.id) if h.action == "attached"]
    assert [(h.by, h.details["file_name"]) for h in attached] == [("anna", "фото стойки.jpg"), ("Boris", "акт.pdf")]
    with pytest.raises(ComplaintNotFound):
        await store.get_attachment(act.id + 1000)
    with pytest.raises(ComplaintNotFound):
        await store.add_attachment(made.id + 1000, file_name="x.jpg", content_type="image/jpeg", size=1,
                                   stored_as="c9-1.jpg", by="anna", at=NOW)
    with pytest.raises(ValueError, match="plain name"):
        await store.add_attachment(made.id, file_name="x.jpg", content_type="image/jpeg", size=1,
                                   stored_as="../../etc/passwd", by="anna", at=NOW)


async def test_a_complaint_outlives_a_restart(open_store: OpenStore) -> None:
    store = await open_store()
    made, _ = await store.register_complaint(new(key="k-1"), at=NOW, stage_due_at=NOW + HOUR, mails=[mail()])
    await store.close()
    reopened = await open_store()
    assert await reopened.get_complaint(made.id) == made
    again, fresh = await reopened.register_complaint(new(key="k-1"), at=NOW + 1, stage_due_at=None)
    assert again == made and not fresh
    assert len(await reopened.list_mails(pending_only=True)) == 1


async def test_registration_mails_quote_the_number_the_store_gave_and_are_written_with_the_complaint(
        store: Store) -> None:
    """The responsible's e-mail names the complaint by its number, which exists only inside the registration's
    transaction: the mails are rendered there from the numbered complaint; a retried request renders none."""
    await store.register_complaint(new(), at=NOW, stage_due_at=None)

    def render(filed: Complaint) -> list[NewMail]:
        return [mail(f"Жалоба {filed.number}: {filed.responsible}")]

    made, fresh = await store.register_complaint(new(key="portal-7"), at=NOW + 1, stage_due_at=None, mails=render)
    again, fresh_again = await store.register_complaint(new(key="portal-7"), at=NOW + 2, stage_due_at=None,
                                                        mails=render)
    assert fresh and not fresh_again and again.id == made.id
    assert [m.subject for m in await store.list_mails()] == ["Жалоба Ж-2026-0002: anna"]
