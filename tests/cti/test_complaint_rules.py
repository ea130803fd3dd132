"""The complaint review's rules (``cti/complaint_rules.py``): a complaint walked through every stage, each move refused
until its stage's fields are filled (naming them), a not-justified complaint skipping the corrective action, hand-overs
and answers, a manager's reassignment with its reason, deadlines per stage and type, who may do what, and the
report's figures over a set computed by hand.

The store is played by :func:`stored` and :func:`commit` (what ``register_complaint`` and ``commit_complaint`` keep of
a registration and a change), so each test reads as the desk would use the rules."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cti.complaint_rules import (
    Actor,
    ComplaintRules,
    InvalidRequest,
    InvalidValue,
    MissingFields,
    NotAllowed,
    Person,
    Registration,
    add_plan_row,
    answer,
    close,
    deadline,
    edit,
    edit_plan_row,
    editable_fields,
    hand_over,
    missing_fields,
    move_back,
    move_next,
    overdue_mails,
    reassign,
    register,
    registered_mails,
    remove_plan_row,
    report,
    stage_times,
    status_of,
)
from cti.complaints import STAGES, ActionRow, Complaint, ComplaintChange, HistoryItem, NewComplaint, Stage, Task

HOUR = 3600.0
T0 = 1_767_261_600.0  # 2026-01-01 10:00 UTC (13:00 in Moscow)

RULES = ComplaintRules(
    managers=("boss",),
    causes=("Качество ремонта", "Сроки"),
    departments=("Сервис", "Запчасти"),
    subjects={"service": ("ТО", "Шиномонтаж")},
    type_hours={"thanks": {"review": 240.0, "corrective_action": 0.0}},
    tz=ZoneInfo("Europe/Moscow"),
)
PEOPLE = {
    "anna": Person("anna", "anna@dealer.example", "Анна Смирнова"),
    "oleg": Person("oleg", "oleg@dealer.example", "Олег Петров", language="en"),
    "boss": Person("boss", "boss@dealer.example", "Иван Начальников"),
    "maria": Person("maria", None, "Мария Кузнецова"),
    "portal": Person("portal"),
}
ANNA = Actor("anna", "employee")
OLEG = Actor("oleg", "employee")
MARIA = Actor("maria", "agent")
BOSS = Actor("boss", "employee")
ADMIN = Actor("root", "admin")


def stored(registration: Registration, *, at: float = T0, number: str = "Ж-2026-0001", id: int = 1) -> Complaint:
    """The complaint as the store keeps a registration."""
    new = registration.new
    return Complaint(
        id=id, number=number, type=new.type, kind=new.kind, stage="registration", status="registered",
        source=new.source, responsible=new.responsible, assignee=new.responsible, stage_entered_at=at,
        stage_due_at=registration.stage_due_at, created_at=at, created_by=new.created_by, updated_at=at, revision=1,
        client_name=new.client_name, client_phone=new.client_phone, client_email=new.client_email, car=new.car,
        plate=new.plate, subject_kind=new.subject_kind, subject=new.subject, comment=new.comment,
        fields=dict(new.fields), calls=new.calls)


def commit(change: ComplaintChange) -> Complaint:
    """The complaint as the store keeps a change (its revision grown)."""
    return replace(change.complaint, revision=change.complaint.revision + 1)


def filed(**overrides: Any) -> Complaint:
    """A complaint registered by Maria (an agent) from a call, Anna responsible."""
    fields = {"type": "quality", "kind": "client", "source": "call", "responsible": "anna", "created_by": "maria",
              "client_name": "Пётр Иванов", "client_phone": "+7 916 123-45-67", "client_email": "petr@mail.example",
              "comment": "После ТО стучит подвеска", **overrides}
    return stored(register(NewComplaint(**fields), by=MARIA, at=T0, rules=RULES, people=PEOPLE))


def forward(c: Complaint, by: Actor = ANNA, **kwargs: Any) -> tuple[Complaint, ComplaintChange]:
    change = move_next(c, by=by, at=c.updated_at + HOUR, rules=RULES, people=PEOPLE, **kwargs)
    return commit(change), change


def edited(c: Complaint, by: Actor = ANNA, **changes: object) -> Complaint:
    return commit(edit(c, changes, by=by, at=c.updated_at + 60, rules=RULES))


ROW = ActionRow(when="2026-01-05", what="Повторная диагностика подвески", who="Мастер Соколов")


# -- the walk --------------------------------------------------------------------------------------------------------


def test_a_complaint_walks_through_every_stage_to_closed_with_the_clients_decision_mailed() -> None:
    c = filed()
    assert (c.stage, c.status, c.responsible, c.assignee) == ("registration", "registered", "anna", "anna")
    assert c.stage_due_at == T0 + 24 * HOUR

    c, change = forward(c)
    assert (c.stage, c.status) == ("review", "in_progress")
    assert change.open_task is not None and change.open_task.stage == "review" and change.open_task.assignee == "anna"
    assert change.open_task.due_at == c.stage_entered_at + 48 * HOUR == c.stage_due_at
    assert change.history == (("moved", {"from": "registration", "to": "review", "back": False,
                                         "assignee": "anna"}),)
    assert change.mails == ()  # Anna moved it to herself: nobody to tell

    c = edited(c, description="Клиент слышит стук спереди справа после ТО")
    c = commit(add_plan_row(c, ROW, by=ANNA, at=c.updated_at + 60, rules=RULES))
    c, _ = forward(c)
    assert c.stage == "justification"

    c = edited(c, justified=True)
    c, change = forward(c, assignee="oleg")  # the department at fault does the corrective action
    assert (c.stage, c.assignee, c.responsible) == ("corrective_action", "oleg", "anna")
    assert change.open_task is not None and change.open_task.assignee == "oleg"
    assert change.open_task.due_at == c.stage_entered_at + 72 * HOUR
    [mail] = change.mails  # to Oleg, in his language (English): type, responsible, stage in the subject
    assert mail.to == ("oleg@dealer.example",)
    assert mail.subject == 'Complaint Ж-2026-0001: Quality of work — responsible Анна Смирнова — stage ' \
                           '"Corrective action"'

    c = edited(c, OLEG, department="Сервис", corrective_action="Заменена стойка стабилизатора")  # the assignee edits
    c, _ = forward(c, OLEG)
    assert (c.stage, c.assignee) == ("satisfaction_check", "anna")

    c = edited(c, contact_method="Звонок 05.01", client_feedback="Стук пропал, спасибо")
    c, _ = forward(c)
    assert c.stage == "result"

    c = edited(c, result="satisfied", decision="Неисправность устранена за наш счёт.")
    assert c.status == "in_progress"  # the result is recorded; the status follows once closed
    change = close(c, by=ANNA, at=c.updated_at + HOUR, rules=RULES, people=PEOPLE)
    c = commit(change)
    assert (c.stage, c.status, c.closed_at, c.stage_due_at) == ("closed", "satisfied", change.at, None)
    assert change.open_task is None  # the store closes the complaint's open task
    [decision] = change.mails
    assert decision.to == ("petr@mail.example",) and decision.about == "complaint:1"
    assert decision.subject == "Ваше обращение Ж-2026-0001: решение"
    assert "Пётр Иванов, здравствуйте." in decision.body
    assert "Неисправность устранена за наш счёт." in decision.body
    assert change.history[0][1]["decision_to"] == "petr@mail.example"


def test_a_closed_complaint_changes_no_more() -> None:
    c = _at_stage("closed")
    for attempt in (lambda: edit(c, {"comment": "x"}, by=BOSS, at=T0, rules=RULES),
                    lambda: move_back(c, reason="ещё раз", by=BOSS, at=T0, rules=RULES, people=PEOPLE),
                    lambda: move_next(c, by=BOSS, at=T0, rules=RULES, people=PEOPLE),
                    lambda: reassign(c, to="oleg", reason="отпуск", by=BOSS, at=T0, rules=RULES, people=PEOPLE)):
        with pytest.raises(InvalidRequest, match="is closed"):
            attempt()


def _at_stage(stage: Stage, *, justified: bool = True, filled: bool = False) -> Complaint:
    """A complaint walked to ``stage`` with every field filled on the way (``filled``: that stage's too)."""
    c = filed()
    fills: dict[Stage, dict[str, object]] = {
        "review": {"description": "Стук"},
        "justification": {"justified": justified, "justification_note": "Стук от колеса, не от ремонта"},
        "corrective_action": {"department": "Сервис", "corrective_action": "Заменена стойка"},
        "satisfaction_check": {"contact_method": "Звонок", "client_feedback": "Доволен"},
        "result": {"result": "satisfied", "decision": "Устранено"},
    }

    def fill(c: Complaint) -> Complaint:
        if c.stage in fills:
            wanted = dict(fills[c.stage])
            if c.stage == "justification" and justified:
                wanted.pop("justification_note")
            c = edited(c, **wanted)
        if c.stage == "review":
            c = commit(add_plan_row(c, ROW, by=ANNA, at=c.updated_at, rules=RULES))
        return c

    while c.stage != stage:
        c, _ = forward(fill(c))
    return fill(c) if filled else c


# -- required fields ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stage", "clear", "names", "label_ru"), [
    ("registration", {"client_name": None, "client_phone": None}, ("client",), "Клиент (имя или телефон)"),
    ("registration", {"comment": None}, ("subject_or_comment",), "Предмет или комментарий"),
    ("review", {}, ("description", "action_plan"), "План мероприятий (хотя бы одна строка)"),
    ("justification", {}, ("justified",), "Обоснована ли жалоба (да или нет)"),
    ("corrective_action", {"department": None}, ("department",), "Виновное подразделение"),
    ("satisfaction_check", {"client_feedback": None}, ("client_feedback",), "Что сказал клиент"),
    ("result", {"decision": None}, ("decision",), "Решение для клиента"),
])
def test_a_move_is_refused_until_the_stages_fields_are_filled_naming_each(
        stage: Stage, clear: dict[str, object], names: tuple[str, ...], label_ru: str) -> None:
    c = filed() if stage == "registration" else _at_stage(stage, filled=stage not in ("review", "justification"))
    if clear:
        c = edited(c, **clear)
    with pytest.raises(MissingFields) as refused:
        move_next(c, by=ANNA, at=c.updated_at + 1, rules=RULES, people=PEOPLE)
    assert refused.value.names == names
    assert refused.value.stage == stage
    assert label_ru in refused.value.message("ru")
    assert refused.value.as_dict()["fields"][-1]["title"] == label_ru
    assert refused.value.as_dict()["error"] == "missing_fields"


def test_a_not_justified_complaint_needs_the_reason_and_skips_the_corrective_action() -> None:
    c = _at_stage("justification")
    c = edited(c, justified=False)
    with pytest.raises(MissingFields) as refused:
        move_next(c, by=ANNA, at=c.updated_at + 1, rules=RULES, people=PEOPLE)
    assert refused.value.names == ("justification_note",)
    assert "to finish the stage \u201cJustified?\u201d, fill in: Why not justified" in str(refused.value)
    c = edited(c, justification_note="Стук от шипованной резины, к ремонту не относится")
    c, change = forward(c)
    assert c.stage == "satisfaction_check"
    assert change.history[0][1]["to"] == "satisfaction_check"
    back = commit(move_back(c, reason="Клиент прислал фото", by=ANNA, at=c.updated_at + 1, rules=RULES,
                            people=PEOPLE))
    assert back.stage == "justification"  # a step back skips the skipped stage too


def test_the_clients_address_is_required_when_the_decision_is_to_be_mailed() -> None:
    c = _at_stage("result", filled=True)
    c = edited(c, client_email=None)
    assert missing_fields(c) == ()  # no address, not asked to send: closed without a mail
    c = edited(c, send_decision=True)
    assert [r.name for r in missing_fields(c)] == ["client_email"]
    c = edited(c, send_decision="no")
    change = close(c, by=ANNA, at=c.updated_at + 1, rules=RULES, people=PEOPLE)
    assert change.mails == () and "decision_to" not in change.history[0][1]


def test_a_move_back_needs_a_reason_and_reenters_the_stage() -> None:
    c = _at_stage("justification")
    with pytest.raises(InvalidRequest, match="the reason for going back is required"):
        move_back(c, reason="  ", by=ANNA, at=c.updated_at + 1, rules=RULES, people=PEOPLE)
    change = move_back(c, reason="Нужно уточнить описание", by=ANNA, at=c.updated_at + 10, rules=RULES,
                       people=PEOPLE)
    back = commit(change)
    assert (back.stage, back.stage_entered_at, back.stage_due_at) == ("review", change.at, change.at + 48 * HOUR)
    assert change.history == (("moved", {"from": "justification", "to": "review", "back": True, "assignee": "anna",
                                         "reason": "Нужно уточнить описание"}),)
    with pytest.raises(InvalidRequest, match="no stage before it"):
        move_back(filed(), reason="x", by=ANNA, at=T0, rules=RULES, people=PEOPLE)


# -- status and deadlines ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stage", "result", "status"), [
    ("registration", None, "registered"),
    ("review", None, "in_progress"),
    ("justification", None, "in_progress"),
    ("corrective_action", None, "in_progress"),
    ("satisfaction_check", None, "in_progress"),
    ("result", "satisfied", "in_progress"),
    ("closed", "satisfied", "satisfied"),
    ("closed", "not_satisfied", "not_satisfied"),
])
def test_the_status_follows_the_stages(stage: Stage, result: Any, status: str) -> None:
    assert status_of(stage, result) == status


def test_deadlines_are_the_stages_hours_or_the_types_own() -> None:
    assert deadline("review", "quality", RULES, T0) == T0 + 48 * HOUR
    assert deadline("review", "thanks", RULES, T0) == T0 + 240 * HOUR  # the type's own
    assert deadline("justification", "thanks", RULES, T0) == T0 + 24 * HOUR  # not overridden: the stage's
    assert deadline("corrective_action", "thanks", RULES, T0) is None  # 0: no deadline
    assert deadline("closed", "quality", RULES, T0) is None
    assert deadline("result", "quality", ComplaintRules(stage_hours={"result": 0.0}), T0) is None


def test_a_new_type_redates_the_stage_and_its_task() -> None:
    c = _at_stage("review")
    change = edit(c, {"type": "thanks"}, by=ANNA, at=c.updated_at + 5, rules=RULES)
    assert change.complaint.stage_due_at == c.stage_entered_at + 240 * HOUR
    assert change.open_task is not None and change.open_task.due_at == change.complaint.stage_due_at
    assert change.history == (("edited", {"field": "type", "old": "quality", "new": "thanks"}),)


# -- who may do what -------------------------------------------------------------------------------------------------


def test_only_the_responsible_the_assignee_and_a_manager_change_a_complaint() -> None:
    c = filed()
    with pytest.raises(NotAllowed) as refused:
        edit(c, {"comment": "другое"}, by=OLEG, at=T0 + 1, rules=RULES)
    assert "изменять жалобу могут только ответственный (anna)" in refused.value.message("ru")
    with pytest.raises(NotAllowed):
        move_next(c, by=MARIA, at=T0 + 1, rules=RULES, people=PEOPLE)  # she registered it; she does not own it
    assert edit(c, {"comment": "от руководителя"}, by=BOSS, at=T0 + 1, rules=RULES).history  # a named manager
    assert edit(c, {"comment": "от администратора"}, by=ADMIN, at=T0 + 1, rules=RULES).history  # any admin
    assert edit(c, {"comment": "Anna"}, by=Actor("ANNA", "employee"), at=T0 + 1, rules=RULES).history  # any case


def test_a_manager_reassigns_with_a_reason_the_complaint_and_its_task() -> None:
    c = _at_stage("review")
    with pytest.raises(NotAllowed, match="only a manager"):
        reassign(c, to="oleg", reason="отпуск", by=ANNA, at=c.updated_at + 1, rules=RULES, people=PEOPLE)
    with pytest.raises(InvalidRequest, match="the reason for the reassignment is required"):
        reassign(c, to="oleg", reason="", by=BOSS, at=c.updated_at + 1, rules=RULES, people=PEOPLE)
    with pytest.raises(InvalidValue, match="no user 'nobody'"):
        reassign(c, to="nobody", reason="отпуск", by=BOSS, at=c.updated_at + 1, rules=RULES, people=PEOPLE)
    change = reassign(c, to="oleg", reason="Анна в отпуске", by=BOSS, at=c.updated_at + 1, rules=RULES,
                      people=PEOPLE)
    after = commit(change)
    assert (after.responsible, after.assignee, after.stage, after.stage_due_at) == ("oleg", "oleg", "review",
                                                                                   c.stage_due_at)
    assert change.open_task is not None and (change.open_task.assignee, change.open_task.due_at) == (
        "oleg", c.stage_due_at)
    assert change.history == (("reassigned", {"reason": "Анна в отпуске",
                                              "responsible": {"old": "anna", "new": "oleg"},
                                              "assignee": {"old": "anna", "new": "oleg"}}),)
    [mail] = change.mails
    assert mail.to == ("oleg@dealer.example",) and "Reason: Анна в отпуске" in mail.body

    task_only = reassign(after, to="anna", reason="Вернулась", by=ADMIN, at=after.updated_at + 1, rules=RULES,
                         people=PEOPLE, task_only=True)
    assert (task_only.complaint.responsible, task_only.complaint.assignee) == ("oleg", "anna")
    assert task_only.history[0][1] == {"reason": "Вернулась", "assignee": {"old": "oleg", "new": "anna"}}


def test_a_colleague_is_asked_for_an_opinion_and_the_answer_hands_it_back() -> None:
    c = _at_stage("justification")
    change = hand_over(c, to="oleg", question="Это дефект сборки?", by=ANNA, at=c.updated_at + 1, rules=RULES,
                       people=PEOPLE)
    asked = commit(change)
    assert (asked.responsible, asked.assignee) == ("anna", "oleg")
    assert change.history == (("handed_over", {"from": "anna", "to": "oleg", "question": "Это дефект сборки?"}),)
    assert change.open_task is not None and change.open_task.due_at == c.stage_due_at  # the deadline stays
    [mail] = change.mails
    assert mail.to == ("oleg@dealer.example",) and "Это дефект сборки?" in mail.body
    assert mail.subject.endswith("your opinion")

    with pytest.raises(NotAllowed, match="the question was put to oleg"):
        answer(asked, text="Да", by=MARIA, at=asked.updated_at + 1, rules=RULES, people=PEOPLE)
    reply = answer(asked, text="Да, дефект сборки", by=OLEG, at=asked.updated_at + 1, rules=RULES, people=PEOPLE)
    back = commit(reply)
    assert (back.responsible, back.assignee) == ("anna", "anna")
    assert reply.history == (("answered", {"from": "oleg", "to": "anna", "answer": "Да, дефект сборки"}),)
    assert reply.open_task is not None and reply.open_task.assignee == "anna"
    [to_anna] = reply.mails
    assert to_anna.to == ("anna@dealer.example",) and "Да, дефект сборки" in to_anna.body
    with pytest.raises(InvalidRequest, match="nobody was asked"):
        answer(back, text="ещё", by=OLEG, at=back.updated_at + 1, rules=RULES, people=PEOPLE)


# -- edits and values --------------------------------------------------------------------------------------------------


def test_each_stage_edits_its_own_fields_and_every_edit_keeps_old_and_new() -> None:
    c = _at_stage("review")
    with pytest.raises(InvalidValue, match="Justified: not edited at the stage \u201cReview\u201d"):
        edit(c, {"justified": True}, by=ANNA, at=T0, rules=RULES)
    with pytest.raises(InvalidValue, match="no such field"):
        edit(c, {"responsible": "oleg"}, by=ANNA, at=T0, rules=RULES)  # reassigning is a manager's
    change = edit(c, {"cause": "Сроки", "client_name": "Пётр Иванов", "plate": "А123ВС77"}, by=ANNA, at=T0 + 9,
                  rules=RULES)
    assert change.history == (("edited", {"field": "cause", "old": None, "new": "Сроки"}),
                              ("edited", {"field": "plate", "old": None, "new": "А123ВС77"}))  # the name unchanged
    assert edit(c, {"client_name": "Пётр Иванов"}, by=ANNA, at=T0, rules=RULES).history == ()
    assert {f.name for f in editable_fields("justification")} >= {"justified", "justification_note", "description"}
    assert editable_fields("closed") == ()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("client_email", "petr@mail.example\r\nBcc: all@dealer.example", "Client's e-mail: one line expected"),
    ("client_email", "petr@mail.example Bcc: all@dealer.example", "not an e-mail address"),
    ("client_email", "Пётр <petr@mail.example>", "not an e-mail address"),
    ("client_phone", "+7 916 <script>", "digits, spaces"),
    ("client_name", "Пётр\nИванов", "one line expected"),
    ("comment", "стук\x1b[2J", "control character"),
    ("comment", "x" * 4001, "at most 4000 characters"),
    ("cause", "Погода", "one of: Качество ремонта, Сроки"),
    ("subject_kind", "car", "one of: repair_order, part, service"),
    ("type", "refund", "one of: quality, delivery, question, thanks"),
    ("type", None, "a complaint has a type"),
    ("kind", "partner", "one of: client, supplier"),
    ("client_language", "de", "one of: ru, en"),
    ("comment", 5, "text expected"),
])
def test_a_hostile_or_wrong_value_is_refused_naming_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(InvalidValue, match=message.replace("(", r"\(").replace("[", r"\[")) as refused:
        edit(filed(), {field: value}, by=ANNA, at=T0, rules=RULES)
    assert refused.value.field == field


def test_a_subject_is_picked_from_its_kinds_list_when_the_kind_has_one() -> None:
    c = filed()
    with pytest.raises(InvalidValue, match="one of: ТО, Шиномонтаж"):
        edit(c, {"subject_kind": "service", "subject": "Мойка"}, by=ANNA, at=T0, rules=RULES)
    assert edited(c, subject_kind="service", subject="ТО").subject == "ТО"
    assert edited(c, subject_kind="repair_order", subject="ЗН-00123").subject == "ЗН-00123"  # free text


def test_the_action_plan_rows_are_added_edited_and_removed_with_their_history() -> None:
    c = filed()
    with pytest.raises(InvalidRequest, match="from the stage \u201cReview\u201d on"):
        add_plan_row(c, ROW, by=ANNA, at=T0, rules=RULES)
    c = _at_stage("review")
    with pytest.raises(InvalidValue, match="YYYY-MM-DD"):
        add_plan_row(c, replace(ROW, when="05.01.2026"), by=ANNA, at=T0, rules=RULES)
    with pytest.raises(InvalidValue, match="hours from 0 to 10000"):
        add_plan_row(c, replace(ROW, effort_hours=float("nan")), by=ANNA, at=T0, rules=RULES)
    c = commit(add_plan_row(c, ROW, by=ANNA, at=T0, rules=RULES))
    done = replace(ROW, result="Стойка заменена", effort_hours=1.5)
    change = edit_plan_row(c, 0, done, by=ANNA, at=T0 + 1, rules=RULES)
    assert change.history == (("plan_edited", {"row": 0, "old": {"when": "2026-01-05", "what": ROW.what,
                                                                 "who": ROW.who, "result": "", "effort_hours": None},
                                               "new": {"when": "2026-01-05", "what": ROW.what, "who": ROW.who,
                                                       "result": "Стойка заменена", "effort_hours": 1.5}}),)
    c = commit(change)
    assert c.action_plan == (done,)
    with pytest.raises(InvalidValue, match="no such row"):
        remove_plan_row(c, 1, by=ANNA, at=T0, rules=RULES)
    removed = remove_plan_row(c, 0, by=ANNA, at=T0 + 2, rules=RULES)
    assert removed.complaint.action_plan == () and removed.history[0][0] == "plan_removed"


# -- registration ------------------------------------------------------------------------------------------------------


def test_registration_picks_the_responsible_checks_every_value_and_mails_the_responsible() -> None:
    one_click = NewComplaint(type="quality", kind="client", source="call", responsible="", created_by="maria",
                             client_phone="+74951234567", comment="Машину не отдали в срок")
    reg = register(one_click, by=MARIA, at=T0, rules=RULES, people=PEOPLE)
    assert reg.new.responsible == "boss"  # the first manager
    by_type = replace(RULES, responsible_by_type={"quality": "anna"})
    assert register(one_click, by=MARIA, at=T0, rules=by_type, people=PEOPLE).new.responsible == "anna"
    nobody = ComplaintRules()
    assert register(one_click, by=MARIA, at=T0, rules=nobody, people={}).new.responsible == "maria"
    with pytest.raises(InvalidValue, match="nobody to make responsible"):
        register(one_click, by=Actor("portal", "integration"), at=T0, rules=nobody, people={})
    with pytest.raises(InvalidValue, match="no user 'ghost'"):
        register(replace(one_click, responsible="ghost"), by=MARIA, at=T0, rules=RULES, people=PEOPLE)
    with pytest.raises(InvalidValue, match="not filled in at registration"):
        register(replace(one_click, fields={"decision": "вернуть деньги"}), by=MARIA, at=T0, rules=RULES,
                 people=PEOPLE)
    with pytest.raises(InvalidValue, match="not an e-mail address"):
        register(replace(one_click, client_email="x@y"), by=MARIA, at=T0, rules=RULES, people=PEOPLE)

    c = stored(reg)
    [mail] = registered_mails(c, by="maria", rules=RULES, people=PEOPLE)
    assert mail.to == ("boss@dealer.example",)
    assert mail.subject == "Жалоба Ж-2026-0001: Качество работ — ответственный Иван Начальников — этап «Регистрация»"
    assert "Этап «Регистрация» нужно завершить до 02.01.2026 13:00." in mail.body  # 24 h, Moscow time
    assert registered_mails(c, by="boss", rules=RULES, people=PEOPLE) == ()  # registered it himself


def test_an_overdue_task_mails_every_manager_with_an_address() -> None:
    c = _at_stage("review")
    task = Task(id=7, complaint_id=c.id, stage="review", assignee="anna", created_at=c.stage_entered_at,
                due_at=c.stage_due_at)
    rules = replace(RULES, managers=("boss", "oleg", "maria"))  # Maria has no address
    mails = overdue_mails(c, task, rules=rules, people=PEOPLE)
    assert [m.to for m in mails] == [("boss@dealer.example",), ("oleg@dealer.example",)]
    assert mails[0].subject == "Просрочена жалоба Ж-2026-0001: Качество работ — ответственный Анна Смирнова — " \
                               "этап «Рассмотрение»"
    assert mails[1].subject.startswith("Overdue complaint Ж-2026-0001")


# -- the report --------------------------------------------------------------------------------------------------------


def _history(complaint_id: int, moves: list[tuple[float, Stage, Stage]]) -> list[HistoryItem]:
    return [HistoryItem(id=i, complaint_id=complaint_id, at=T0 + h * HOUR, by="anna", action="moved",
                        details={"from": a, "to": b, "back": STAGES.index(b) < STAGES.index(a)})
            for i, (h, a, b) in enumerate(moves, start=1)]


def test_the_report_counts_shares_and_median_stage_times_computed_by_hand() -> None:
    base = filed()

    def one(id: int, type: str, cause: str | None, department: str | None, **kw: Any) -> Complaint:
        fields = {k: v for k, v in (("cause", cause), ("department", department)) if v}
        return replace(base, id=id, type=type, fields=fields, **kw)

    complaints = [
        # 1: closed satisfied, justified: registration 2 h, review 10 h, justification 4 h, corrective 20 h,
        #    satisfaction check 6 h, result 2 h.
        one(1, "quality", "Качество ремонта", "Сервис", stage="closed", status="satisfied", justified=True,
            result="satisfied"),
        # 2: closed not satisfied, not justified: registration 4 h, review 2 h + 6 h (sent back once from the
        #    justification after 1 h: justification 1 h + 3 h), no corrective action, satisfaction check 1 h,
        #    result 1 h.
        one(2, "quality", "Сроки", None, stage="closed", status="not_satisfied", justified=False,
            result="not_satisfied"),
        # 3: at review now: registration 8 h; review not left, not counted.
        one(3, "delivery", "Сроки", "Запчасти", stage="review", status="in_progress"),
        # 4: registered now: nothing left, nothing decided.
        one(4, "thanks", None, None, stage="registration", status="registered"),
    ]
    history = {
        1: _history(1, [(2, "registration", "review"), (12, "review", "justification"),
                        (16, "justification", "corrective_action"), (36, "corrective_action", "satisfaction_check"),
                        (42, "satisfaction_check", "result"), (44, "result", "closed")]),
        2: _history(2, [(4, "registration", "review"), (6, "review", "justification"), (7, "justification", "review"),
                        (13, "review", "justification"), (16, "justification", "satisfaction_check"),
                        (17, "satisfaction_check", "result"), (18, "result", "closed")]),
        3: _history(3, [(8, "registration", "review")]),
    }
    figures = report(complaints, history)
    assert figures.total == 4
    assert figures.by_type == (("quality", 2), ("delivery", 1), ("thanks", 1))
    assert figures.by_cause == (("Сроки", 2), ("", 1), ("Качество ремонта", 1))
    assert figures.by_department == (("", 2), ("Запчасти", 1), ("Сервис", 1))
    # justified: #1 yes, #2 no, #3 and #4 undecided -> 1 of 2
    assert (figures.justified, figures.decided, figures.justified_share) == (1, 2, 0.5)
    # satisfied: #1 of the closed #1 and #2 -> 1 of 2
    assert (figures.satisfied, figures.closed, figures.satisfied_share) == (1, 2, 0.5)
    # registration: 2, 4, 8 h -> median 4 h; review: 10 and 2 + 6 = 8 h -> 9 h; justification: 4 and 1 + 3 = 4 h
    # -> 4 h; corrective action: 20 h alone; satisfaction check: 6 and 1 -> 3.5 h; result: 2 and 1 -> 1.5 h.
    assert figures.median_seconds == {"registration": 4 * HOUR, "review": 9 * HOUR, "justification": 4 * HOUR,
                                      "corrective_action": 20 * HOUR, "satisfaction_check": 3.5 * HOUR,
                                      "result": 1.5 * HOUR}
    assert figures.stage_samples == {"registration": 3, "review": 2, "justification": 2, "corrective_action": 1,
                                     "satisfaction_check": 2, "result": 2}
    assert report([], {}).justified_share is None and report([], {}).median_seconds["review"] is None


def test_time_in_a_stage_the_complaint_is_back_in_now_is_not_counted() -> None:
    c = filed()
    items = _history(1, [(2, "registration", "review"), (5, "review", "justification"),
                         (6, "justification", "review")])
    assert stage_times(c, items) == {"registration": 2 * HOUR, "justification": 1 * HOUR}
