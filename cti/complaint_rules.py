"""The complaint review's rules: stages, required fields, who may do what, deadlines, and every change as a value.

Pure (no I/O, no clock: ``at`` and ``now`` are passed in). The desk (``ui_bridge/complaints.py``) reads a complaint,
calls one function here with the request, the user and the time, and hands the :class:`~cti.complaints.ComplaintChange`
it returns to the store, which writes it in one transaction (the new state, its history items, the stage's task, the
e-mails); an error here is the refusal the API and the panel show, in Russian and English.

**Stages** (:data:`~cti.complaints.STAGES`): registration → review → justification → corrective_action (skipped when
the complaint is found not justified) → satisfaction_check → result → closed. A complaint moves one step forward
(:func:`move_next`, refused with :class:`MissingFields` until the stage's :data:`REQUIREMENTS` hold) or one step back
with a reason (:func:`move_back`); closing is the move out of ``result`` (:func:`close`), which queues the client's
decision e-mail when it is to be sent. ``closed`` is final. The status follows (:func:`status_of`).

**Who may do what** (:func:`may_work`): the responsible person and the stage's current assignee edit and move; a
manager (``[complaints] managers``, or any admin) may do anything, and alone reassigns (:func:`reassign`, with a
reason); everyone else reads. The assignee of a stage is the responsible unless the stage was handed over
(:func:`move_next` with another ``assignee``) or handed to a colleague for an opinion (:func:`hand_over`, the
question recorded; :func:`answer` hands it back to the responsible with the answer).

**Tasks**: each change that gives a stage to someone opens their task (``ComplaintChange.open_task``; the store closes
the complaint's other open task), due at the stage's :func:`deadline`. A change that closes the complaint opens none
(the store closes its open task).

**History** (``ComplaintChange.history``: ``(action, details)`` pairs, the store adds who and when):

========================  =========================================================================================
action                    details
========================  =========================================================================================
``edited``                ``field``, ``old``, ``new`` (one item per field changed)
``moved``                 ``from``, ``to`` (stages), ``back`` (bool), ``reason`` (a move back), ``assignee``;
                          ``decision_to`` (the address the client's decision went to, when closing mailed it)
``handed_over``           ``from``, ``to`` (the assignee before and after), ``question``
``answered``              ``from`` (who answered), ``to`` (the responsible it went back to), ``answer``
``reassigned``            ``reason``, ``responsible`` and/or ``assignee``: ``{"old", "new"}``
``plan_added``            ``row`` (its position, from 0), ``new`` (the row as a dict)
``plan_edited``           ``row``, ``old``, ``new``
``plan_removed``          ``row``, ``old``
========================  =========================================================================================

The registration's own item (``registered``) is written by the store (``register_complaint``). The report
(:func:`report`) reads the ``moved`` items for the time spent in each stage.

**Deadlines** are calendar hours from the moment a stage is entered: ``[complaints.deadline_hours]`` per stage,
``[complaints.deadline_hours_by_type.<type>]`` over it; 0 is no deadline. Working hours, weekends and holidays are not
counted out (out of scope: a site that needs it sets longer hours).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Literal

from cti.complaint_mail import Language, MailTemplates, TemplateName, compose
from cti.complaints import (
    STAGES,
    ActionRow,
    Complaint,
    ComplaintChange,
    HistoryItem,
    Kind,
    NewComplaint,
    NewMail,
    OpenTask,
    Stage,
    Status,
    Task,
)
from cti.email_address import BadEmail, check_email

# -- vocabulary ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choice:
    """A configured choice with its titles: a complaint type (``quality`` «Качество работ»), a subject kind."""

    key: str
    title: str
    title_en: str

    def title_in(self, language: Language) -> str:
        return self.title if language == "ru" else self.title_en


#: The complaint types a site gets without ``[[complaints.types]]``.
DEFAULT_TYPES: tuple[Choice, ...] = (
    Choice("quality", "Качество работ", "Quality of work"),
    Choice("delivery", "Сроки", "Delivery / deadline"),
    Choice("question", "Вопрос", "Question"),
    Choice("thanks", "Благодарность", "Thanks"),
)
#: What a complaint may be about, without ``[[complaints.subject_kinds]]``.
DEFAULT_SUBJECT_KINDS: tuple[Choice, ...] = (
    Choice("repair_order", "Заказ-наряд", "Repair order"),
    Choice("part", "Запчасть", "Part"),
    Choice("service", "Услуга", "Service"),
)
#: Hours per stage without ``[complaints.deadline_hours]`` (0: no deadline).
DEFAULT_STAGE_HOURS: dict[Stage, float] = {
    "registration": 24, "review": 48, "justification": 24, "corrective_action": 72, "satisfaction_check": 48,
    "result": 24, "closed": 0}

STAGE_TITLES: dict[Stage, tuple[str, str]] = {
    "registration": ("Регистрация", "Registration"),
    "review": ("Рассмотрение", "Review"),
    "justification": ("Обоснованность", "Justified?"),
    "corrective_action": ("Корректирующие действия", "Corrective action"),
    "satisfaction_check": ("Проверка удовлетворённости", "Satisfaction check"),
    "result": ("Результат", "Result"),
    "closed": ("Закрыта", "Closed"),
}
STATUS_TITLES: dict[Status, tuple[str, str]] = {
    "registered": ("Зарегистрирована", "Registered"),
    "in_progress": ("В работе", "In progress"),
    "satisfied": ("Клиент удовлетворён", "Client satisfied"),
    "not_satisfied": ("Клиент не удовлетворён", "Client not satisfied"),
}


def stage_title(stage: Stage, language: Language) -> str:
    ru, en = STAGE_TITLES[stage]
    return ru if language == "ru" else en


@dataclass(frozen=True, slots=True)
class Person:
    """A colleague as the rules need them: whom a mail goes to, in which language, under which name."""

    name: str
    email: str | None = None
    display_name: str | None = None
    language: Language | None = None

    @property
    def shown(self) -> str:
        return self.display_name or self.name


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks for a change: the panel user's name and role (the store's ``Role``)."""

    name: str
    role: str


@dataclass(frozen=True, slots=True)
class ComplaintRules:
    """The configuration the rules read (``ui_bridge/complaint_settings.py`` builds it from ``[complaints]``).

    ``managers`` is the resolved list (the setting, or every admin); ``subjects``: a subject kind's list of subjects
    (a kind without one takes free text); ``causes``, ``departments``, ``workshops``: empty is free text."""

    types: tuple[Choice, ...] = DEFAULT_TYPES
    subject_kinds: tuple[Choice, ...] = DEFAULT_SUBJECT_KINDS
    subjects: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    causes: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    workshops: tuple[str, ...] = ()
    managers: tuple[str, ...] = ()
    default_responsible: str | None = None
    responsible_by_type: Mapping[str, str] = field(default_factory=dict)
    stage_hours: Mapping[Stage, float] = field(default_factory=lambda: dict(DEFAULT_STAGE_HOURS))
    type_hours: Mapping[str, Mapping[Stage, float]] = field(default_factory=dict)
    client_language: Language = "ru"
    staff_language: Language = "ru"
    #: Dates in e-mails are written in this zone (the site's, ``[pbx] timezone``); None: UTC.
    tz: tzinfo | None = None
    templates: MailTemplates = field(default_factory=MailTemplates)

    def type_of(self, key: str) -> Choice | None:
        return next((t for t in self.types if t.key == key), None)

    def type_title(self, key: str, language: Language) -> str:
        found = self.type_of(key)
        return found.title_in(language) if found is not None else key


# -- errors ----------------------------------------------------------------------------------------------------------


class ComplaintRuleError(ValueError):
    """A request the rules refuse; ``code`` for programs, the message in both languages for people."""

    code = "refused"

    def __init__(self, message_en: str, message_ru: str) -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message_ru = message_ru

    def message(self, language: Language) -> str:
        return self.message_ru if language == "ru" else self.message_en

    def as_dict(self) -> dict[str, Any]:
        """What the API answers (with a 4xx) and the panel shows."""
        return {"error": self.code, "message": self.message_en, "message_ru": self.message_ru}


class NotAllowed(ComplaintRuleError):
    """The user may not do this to this complaint (read-only for them, or a manager's action)."""

    code = "not_allowed"


class InvalidRequest(ComplaintRuleError):
    """The request makes no sense in the complaint's state (closed, no question to answer, nothing to go back to)."""

    code = "invalid_request"


class InvalidValue(InvalidRequest):
    """A value that cannot be kept (unknown type, not an address, a control character, too long); ``field`` names it."""

    code = "invalid_value"

    def __init__(self, field_name: str, message_en: str, message_ru: str) -> None:
        spec = FIELDS.get(field_name)
        label_en, label_ru = (spec.title_en, spec.title) if spec else (field_name, field_name)
        super().__init__(f"{label_en}: {message_en}", f"{label_ru}: {message_ru}")
        self.field = field_name

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "field": self.field}


@dataclass(frozen=True, slots=True)
class Requirement:
    """Something a stage needs before it can be left: a field, or one of several (``fields``)."""

    name: str
    title: str
    title_en: str
    fields: tuple[str, ...]


class MissingFields(ComplaintRuleError):
    """The stage cannot be left yet: ``missing`` says what is to be filled in, by name and in both languages."""

    code = "missing_fields"

    def __init__(self, stage: Stage, missing: Sequence[Requirement]) -> None:
        ru, en = STAGE_TITLES[stage]
        super().__init__(f"to finish the stage \u201c{en}\u201d, fill in: {', '.join(r.title_en for r in missing)}",
                         f"чтобы завершить этап «{ru}», заполните: {', '.join(r.title for r in missing)}")
        self.stage = stage
        self.missing = tuple(missing)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.missing)

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "stage": self.stage,
                "fields": [{"name": r.name, "title": r.title, "title_en": r.title_en, "fields": list(r.fields)}
                           for r in self.missing]}


# -- fields ----------------------------------------------------------------------------------------------------------

FieldKind = Literal["line", "text", "choice", "email", "phone", "bool", "result", "language", "yes_no", "kind",
                    "type"]
#: Where a choice field's options come from (``ComplaintRules``' list of that name; empty: free text).
Options = Literal["causes", "departments", "workshops", "subject_kinds", "subjects"]

#: The open stages (every change is refused on a closed complaint).
OPEN_STAGES: tuple[Stage, ...] = STAGES[:-1]


def _from(stage: Stage) -> tuple[Stage, ...]:
    return OPEN_STAGES[OPEN_STAGES.index(stage):]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field of a complaint a person fills in: its name, titles, how it is checked, the stages it may be edited
    in, and whether it is an attribute of :class:`~cti.complaints.Complaint` or a key of its ``fields``."""

    name: str
    title: str
    title_en: str
    kind: FieldKind
    stages: tuple[Stage, ...]
    attribute: bool = False
    options: Options | None = None


#: The longest one-line value and the longest text a field keeps.
LINE_LIMIT = 200
TEXT_LIMIT = 4000
PHONE_LIMIT = 40
#: The most action-plan rows a complaint keeps.
PLAN_LIMIT = 100

_FIELD_LIST: tuple[FieldSpec, ...] = (
    FieldSpec("type", "Тип", "Type", "type", OPEN_STAGES, attribute=True),
    FieldSpec("kind", "Вид (от клиента или наша поставщику)", "Kind (from a client or ours to a supplier)", "kind",
              OPEN_STAGES, attribute=True),
    FieldSpec("client_name", "Имя клиента", "Client's name", "line", OPEN_STAGES, attribute=True),
    FieldSpec("client_phone", "Телефон клиента", "Client's phone", "phone", OPEN_STAGES, attribute=True),
    FieldSpec("client_email", "Электронная почта клиента", "Client's e-mail", "email", OPEN_STAGES, attribute=True),
    FieldSpec("client_language", "Язык писем клиенту", "Language of the client's e-mails", "language", OPEN_STAGES),
    FieldSpec("car", "Автомобиль", "Car", "line", OPEN_STAGES, attribute=True),
    FieldSpec("plate", "Госномер", "Plate", "line", OPEN_STAGES, attribute=True),
    FieldSpec("subject_kind", "Вид предмета", "Subject kind", "choice", OPEN_STAGES, attribute=True,
              options="subject_kinds"),
    FieldSpec("subject", "Предмет", "Subject", "choice", OPEN_STAGES, attribute=True, options="subjects"),
    FieldSpec("comment", "Комментарий", "Comment", "text", OPEN_STAGES, attribute=True),
    FieldSpec("cause", "Причина", "Cause", "choice", OPEN_STAGES, options="causes"),
    FieldSpec("department", "Виновное подразделение", "Department at fault", "choice", OPEN_STAGES,
              options="departments"),
    FieldSpec("employee_at_fault", "Виновный сотрудник", "Employee at fault", "line", OPEN_STAGES),
    FieldSpec("workshop", "Цех", "Workshop", "choice", OPEN_STAGES, options="workshops"),
    FieldSpec("description", "Описание", "Description", "text", _from("review")),
    FieldSpec("justified", "Жалоба обоснована", "Justified", "bool", ("justification",), attribute=True),
    FieldSpec("justification_note", "Почему не обоснована", "Why not justified", "text", ("justification",)),
    FieldSpec("corrective_action", "Что сделано", "What was done", "text", _from("corrective_action")),
    FieldSpec("contact_method", "Как связались с клиентом", "How the client was reached", "line",
              _from("satisfaction_check")),
    FieldSpec("client_feedback", "Что сказал клиент", "What the client said", "text", _from("satisfaction_check")),
    FieldSpec("result", "Результат", "Result", "result", ("result",), attribute=True),
    FieldSpec("decision", "Решение для клиента", "Decision for the client", "text", ("result",)),
    FieldSpec("send_decision", "Отправить решение клиенту письмом", "E-mail the decision to the client", "yes_no",
              ("result",)),
)
#: Every field by name (the API's and the panel's vocabulary).
FIELDS: dict[str, FieldSpec] = {f.name: f for f in _FIELD_LIST}


def editable_fields(stage: Stage) -> tuple[FieldSpec, ...]:
    """The fields that may be edited while a complaint is at ``stage`` (none once closed)."""
    return tuple(f for f in _FIELD_LIST if stage in f.stages)


def _req(name: str, title: str, title_en: str, *fields: str) -> Requirement:
    return Requirement(name, title, title_en, fields or (name,))


_R_TYPE = _req("type", "Тип", "Type")
_R_CLIENT = _req("client", "Клиент (имя или телефон)", "Client (name or phone)", "client_name", "client_phone")
_R_SUBJECT = _req("subject_or_comment", "Предмет или комментарий", "Subject or comment", "subject", "comment")
_R_RESPONSIBLE = _req("responsible", "Ответственный", "Responsible person")
_R_DESCRIPTION = _req("description", "Описание", "Description")
_R_PLAN = _req("action_plan", "План мероприятий (хотя бы одна строка)", "Action plan (at least one row)")
_R_JUSTIFIED = _req("justified", "Обоснована ли жалоба (да или нет)", "Justified (yes or no)")
_R_NOTE = _req("justification_note", "Почему не обоснована", "Why not justified")
_R_DEPARTMENT = _req("department", "Виновное подразделение", "Department at fault")
_R_DONE = _req("corrective_action", "Что сделано", "What was done")
_R_REACHED = _req("contact_method", "Как связались с клиентом", "How the client was reached")
_R_FEEDBACK = _req("client_feedback", "Что сказал клиент", "What the client said")
_R_RESULT = _req("result", "Результат (удовлетворён или нет)", "Result (satisfied or not)")
_R_DECISION = _req("decision", "Решение для клиента", "Decision for the client")
_R_EMAIL = _req("client_email", "Электронная почта клиента (решение отправляется письмом)",
                "Client's e-mail (the decision is to be e-mailed)")

#: What each stage needs before it can be left (some only in a case: see :func:`missing_fields`).
REQUIREMENTS: dict[Stage, tuple[Requirement, ...]] = {
    "registration": (_R_TYPE, _R_CLIENT, _R_SUBJECT, _R_RESPONSIBLE),
    "review": (_R_DESCRIPTION, _R_PLAN),
    "justification": (_R_JUSTIFIED, _R_NOTE),  # the note only when not justified
    "corrective_action": (_R_DEPARTMENT, _R_DONE),
    "satisfaction_check": (_R_REACHED, _R_FEEDBACK),
    "result": (_R_RESULT, _R_DECISION, _R_EMAIL),  # the address only when the decision is to be e-mailed
    "closed": (),
}


def _value(c: Complaint, name: str) -> Any:
    spec = FIELDS.get(name)
    if spec is None or spec.attribute:
        return getattr(c, name, None)
    return c.fields.get(name)


def _filled(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def sends_decision(c: Complaint) -> bool:
    """Whether closing e-mails the decision to the client: as ``send_decision`` says, else when there is an address."""
    chosen = c.fields.get("send_decision")
    return chosen == "yes" if chosen in ("yes", "no") else _filled(c.client_email)


def missing_fields(c: Complaint) -> tuple[Requirement, ...]:
    """What the complaint's current stage still needs before it can be left (empty: it may move on)."""
    missing: list[Requirement] = []
    for r in REQUIREMENTS[c.stage]:
        if r is _R_NOTE and c.justified is not False:
            continue
        if r is _R_EMAIL and not sends_decision(c):
            continue
        if r is _R_PLAN:
            if not c.action_plan:
                missing.append(r)
            continue
        if not any(_filled(_value(c, name)) for name in r.fields):
            missing.append(r)
    return tuple(missing)


# -- stages, status, deadlines -----------------------------------------------------------------------------------------


def status_of(stage: Stage, result: Literal["satisfied", "not_satisfied"] | None) -> Status:
    """The status a stage gives: registered at registration, in progress through the result, then what the client
    said once closed."""
    if stage == "registration":
        return "registered"
    if stage == "closed" and result is not None:
        return result
    return "in_progress"


def next_stage(c: Complaint) -> Stage | None:
    """The stage after the current one (``corrective_action`` skipped for a complaint found not justified)."""
    if c.stage == "closed":
        return None
    following = STAGES[STAGES.index(c.stage) + 1]
    if following == "corrective_action" and c.justified is False:
        return "satisfaction_check"
    return following


def previous_stage(c: Complaint) -> Stage | None:
    """The stage a move back goes to (None: at registration, or closed, which is final)."""
    if c.stage in ("registration", "closed"):
        return None
    before = STAGES[STAGES.index(c.stage) - 1]
    if before == "corrective_action" and c.justified is False:
        return "justification"
    return before


def deadline(stage: Stage, type: str, rules: ComplaintRules, entered_at: float) -> float | None:
    """When a stage entered at ``entered_at`` is due: its type's hours, else the stage's; None for 0 (no deadline)
    and for ``closed``. Calendar hours (working hours are not counted out)."""
    if stage == "closed":
        return None
    hours = rules.type_hours.get(type, {}).get(stage, rules.stage_hours.get(stage, 0.0))
    return entered_at + hours * 3600.0 if hours > 0 else None


# -- who may do what ---------------------------------------------------------------------------------------------------


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def is_manager(actor: Actor, rules: ComplaintRules) -> bool:
    """An admin, or a user named in ``[complaints] managers``: sees every complaint, does anything, reassigns."""
    return actor.role == "admin" or any(_same(actor.name, m) for m in rules.managers)


def may_work(c: Complaint, actor: Actor, rules: ComplaintRules) -> bool:
    """Whether ``actor`` may edit and move ``c``: its responsible, its current assignee, a manager."""
    return is_manager(actor, rules) or _same(actor.name, c.responsible) or _same(actor.name, c.assignee)


def _check_open(c: Complaint) -> None:
    if c.stage == "closed":
        raise InvalidRequest(f"complaint {c.number} is closed: it changes no more",
                             f"жалоба {c.number} закрыта: её больше нельзя изменить")


def _check_may_work(c: Complaint, actor: Actor, rules: ComplaintRules) -> None:
    _check_open(c)
    if not may_work(c, actor, rules):
        raise NotAllowed(f"only the responsible person ({c.responsible}), the stage's assignee ({c.assignee}) or a "
                         "manager may change this complaint",
                         f"изменять жалобу могут только ответственный ({c.responsible}), исполнитель этапа "
                         f"({c.assignee}) или руководитель")


def _check_manager(actor: Actor, rules: ComplaintRules) -> None:
    if not is_manager(actor, rules):
        raise NotAllowed("only a manager may reassign a complaint or its task",
                         "переназначить жалобу или её задачу может только руководитель")


# -- checking values ---------------------------------------------------------------------------------------------------

#: Control characters no field keeps (a tab and a line break are text in a multi-line field).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_PHONE = re.compile(r"[0-9+()\-. ]+")


def _text(name: str, value: object, *, limit: int, multiline: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValue(name, "text expected", "ожидается текст")
    text = value.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ").strip()
    if not multiline and "\n" in text:
        raise InvalidValue(name, "one line expected", "ожидается одна строка")
    if _CONTROL.search(text):
        raise InvalidValue(name, "holds a control character", "содержит управляющий символ")
    if len(text) > limit:
        raise InvalidValue(name, f"at most {limit} characters", f"не более {limit} символов")
    return text or None


def _one_of(name: str, value: str | None, allowed: Sequence[str]) -> str | None:
    if value is not None and allowed and value not in allowed:
        raise InvalidValue(name, f"one of: {', '.join(allowed)}", f"одно из значений: {', '.join(allowed)}")
    return value


def clean_value(name: str, value: object, rules: ComplaintRules, *, subject_kind: str | None = None) -> object:
    """``value`` as the field ``name`` keeps it (None: cleared), or :class:`InvalidValue` saying why not.

    ``subject_kind``: the kind a ``subject`` is checked against (its list of subjects, when it has one)."""
    spec = FIELDS.get(name)
    if spec is None:
        raise InvalidValue(name, "no such field", "нет такого поля")
    kind = spec.kind
    if kind == "bool":
        if value is not None and not isinstance(value, bool):
            raise InvalidValue(name, "yes or no expected", "ожидается «да» или «нет»")
        return value
    if kind == "yes_no" and isinstance(value, bool):
        return "yes" if value else "no"
    text = _text(name, value, limit=TEXT_LIMIT if kind == "text" else PHONE_LIMIT if kind == "phone" else LINE_LIMIT,
                 multiline=kind == "text")
    if kind == "type":
        if text is None:
            raise InvalidValue(name, "a complaint has a type", "у жалобы должен быть тип")
        return _one_of(name, text, [t.key for t in rules.types])
    if kind == "kind":
        if text is None:
            raise InvalidValue(name, "client or supplier", "client или supplier")
        return _one_of(name, text, ["client", "supplier"])
    if kind == "result":
        return _one_of(name, text, ["satisfied", "not_satisfied"])
    if kind == "language":
        return _one_of(name, text, ["ru", "en"])
    if kind == "yes_no":
        return _one_of(name, text, ["yes", "no"])
    if kind == "email" and text is not None:
        try:
            return check_email(text)  # the outbox's own check: what is kept can be sent to
        except BadEmail:
            raise InvalidValue(name, "not an e-mail address (name@example.ru)",
                               "это не адрес электронной почты (name@example.ru)") from None
    if kind == "phone" and text is not None and (_PHONE.fullmatch(text) is None
                                                 or not any(ch.isdigit() for ch in text)):
        raise InvalidValue(name, "digits, spaces and + ( ) - . only", "только цифры, пробелы и знаки + ( ) - .")
    if spec.options == "subject_kinds":
        return _one_of(name, text, [k.key for k in rules.subject_kinds])
    if spec.options == "subjects":
        return _one_of(name, text, rules.subjects.get(subject_kind or "", ()))
    if spec.options is not None:
        return _one_of(name, text, getattr(rules, spec.options))
    return text


def clean_plan_row(row: ActionRow) -> ActionRow:
    """An action-plan row as kept, or :class:`InvalidValue` (``action_plan``): a real date, what and who given."""
    try:
        when = date.fromisoformat(row.when.strip()).isoformat() if isinstance(row.when, str) else ""
    except ValueError:
        when = ""
    if not when:
        raise InvalidValue("action_plan", "the date is to be YYYY-MM-DD", "дата в виде ГГГГ-ММ-ДД")
    what = _text("action_plan", row.what, limit=TEXT_LIMIT, multiline=True)
    who = _text("action_plan", row.who, limit=LINE_LIMIT, multiline=False)
    result = _text("action_plan", row.result, limit=TEXT_LIMIT, multiline=True)
    if what is None or who is None:
        raise InvalidValue("action_plan", "a row says what is done and who does it", "в строке нужно указать, что "
                           "делается и кто делает")
    effort = row.effort_hours
    if effort is not None and (isinstance(effort, bool) or not isinstance(effort, int | float)
                               or not math.isfinite(effort) or not 0 <= effort <= 10_000):
        raise InvalidValue("action_plan", "the effort is hours from 0 to 10000", "трудозатраты: часы от 0 до 10000")
    return ActionRow(when=when, what=what, who=who, result=result or "",
                     effort_hours=float(effort) if effort is not None else None)


def _reason(name: str, value: object, what_en: str, what_ru: str) -> str:
    text = _text(name, value, limit=TEXT_LIMIT, multiline=True)
    if text is None:
        raise InvalidRequest(f"{what_en} is required", f"нужно указать {what_ru}")
    return text


def _known(name: str, people: Mapping[str, Person], field_name: str) -> str:
    """The user ``name`` as ``people`` spells it (an unknown user refused; ``people`` empty: not checked)."""
    if not people:
        return name
    person = _person(people, name)
    if person is None:
        raise InvalidValue(field_name, f"no user {name!r}", f"нет пользователя «{name}»")
    return person.name


def _person(people: Mapping[str, Person], name: str | None) -> Person | None:
    if name is None:
        return None
    found = people.get(name)
    if found is None:
        found = next((p for key, p in people.items() if _same(key, name)), None)
    return found


# -- registration ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Registration:
    """What the store's ``register_complaint`` takes: the complaint's facts as kept, its first deadline."""

    new: NewComplaint
    stage_due_at: float | None


def register(new: NewComplaint, *, by: Actor, at: float, rules: ComplaintRules,
             people: Mapping[str, Person]) -> Registration:
    """A complaint to file: every value checked (:class:`InvalidValue`), the responsible chosen when none was given
    (the type's, ``default_responsible``, the first manager, else the one registering), the registration stage due.

    Nothing else is required at registration (one click from a call gives a type and a text): the stage's
    requirements hold when it is left."""
    def line(name: str, value: object, subject_kind: str | None = None) -> str | None:
        cleaned = clean_value(name, value, rules, subject_kind=subject_kind)
        return cleaned if isinstance(cleaned, str) else None

    type_key = line("type", new.type) or ""
    kind: Kind = "supplier" if line("kind", new.kind) == "supplier" else "client"
    fields: dict[str, str] = {}
    for name, value in new.fields.items():
        spec = FIELDS.get(name)
        if spec is None or spec.attribute or "registration" not in spec.stages:
            raise InvalidValue(name, "not filled in at registration", "не заполняется при регистрации")
        cleaned = line(name, value)
        if cleaned is not None:
            fields[name] = cleaned
    responsible = (new.responsible.strip() or rules.responsible_by_type.get(type_key) or rules.default_responsible
                   or (rules.managers[0] if rules.managers else None)
                   or (by.name if by.role != "integration" else None))
    if not responsible:
        raise InvalidValue("responsible", "nobody to make responsible: name one, or set [complaints] "
                           "default_responsible", "некого назначить ответственным: укажите его или задайте "
                           "[complaints] default_responsible")
    subject_kind = line("subject_kind", new.subject_kind)
    cleaned_new = replace(
        new, type=type_key, kind=kind, responsible=_known(responsible, people, "responsible"), created_by=by.name,
        client_name=line("client_name", new.client_name), client_phone=line("client_phone", new.client_phone),
        client_email=line("client_email", new.client_email), car=line("car", new.car), plate=line("plate", new.plate),
        subject_kind=subject_kind, subject=line("subject", new.subject, subject_kind),
        comment=line("comment", new.comment), fields=fields)
    return Registration(new=cleaned_new, stage_due_at=deadline("registration", type_key, rules, at))


def registered_mails(c: Complaint, *, by: str, rules: ComplaintRules,
                     people: Mapping[str, Person]) -> tuple[NewMail, ...]:
    """The mail to the responsible person of a complaint just registered (none when they registered it themselves
    or have no address)."""
    return _staff_mails(c, "registered", (c.responsible,), by=by, rules=rules, people=people)


# -- changes -----------------------------------------------------------------------------------------------------------


def _changed(c: Complaint, at: float, **updates: Any) -> Complaint:
    stage = updates.get("stage", c.stage)
    result = updates.get("result", c.result)
    return replace(c, **updates, status=status_of(stage, result), updated_at=at)


def edit(c: Complaint, changes: Mapping[str, object], *, by: Actor, at: float,
         rules: ComplaintRules) -> ComplaintChange:
    """Fields changed by hand: each one editable at the complaint's stage (:func:`editable_fields`), its value
    checked; one ``edited`` history item per field whose value changed (none changed: no history, nothing to write).
    A new type at a stage re-dates the stage's deadline (and its task)."""
    _check_may_work(c, by, rules)
    allowed = {f.name for f in editable_fields(c.stage)}
    for name in changes:
        if name not in FIELDS:
            raise InvalidValue(name, "no such field", "нет такого поля")
        if name not in allowed:
            ru, en = STAGE_TITLES[c.stage]
            raise InvalidValue(name, f"not edited at the stage \u201c{en}\u201d", f"не изменяется на этапе «{ru}»")
    subject_kind = changes.get("subject_kind", c.subject_kind)
    attributes: dict[str, Any] = {}
    fields = dict(c.fields)
    history: list[tuple[str, dict[str, Any]]] = []
    for name, raw in changes.items():
        spec = FIELDS[name]
        value = clean_value(name, raw, rules, subject_kind=subject_kind if isinstance(subject_kind, str) else None)
        old = _value(c, name)
        if value == old:
            continue
        if spec.attribute:
            attributes[name] = value
        elif value is None:
            fields.pop(name, None)
        else:
            fields[name] = str(value)
        history.append(("edited", {"field": name, "old": old, "new": value}))
    if "subject_kind" in attributes and "subject" not in changes and c.subject is not None:
        clean_value("subject", c.subject, rules, subject_kind=attributes["subject_kind"])  # the old subject must fit
    if not history:
        return ComplaintChange(complaint=c, by=by.name, at=at)
    updated = _changed(c, at, **attributes, fields=fields)
    open_task = None
    if "type" in attributes:
        due = deadline(c.stage, updated.type, rules, c.stage_entered_at)
        updated = replace(updated, stage_due_at=due)
        open_task = OpenTask(stage=c.stage, assignee=c.assignee, due_at=due)
    return ComplaintChange(complaint=updated, by=by.name, at=at, history=tuple(history), open_task=open_task)


def move_next(c: Complaint, *, by: Actor, at: float, rules: ComplaintRules, people: Mapping[str, Person],
              assignee: str | None = None) -> ComplaintChange:
    """The next stage (:func:`next_stage`), once the current one's requirements hold (:class:`MissingFields` names
    what is missing). The new stage goes to ``assignee`` (default: the responsible), with its task and deadline, and
    a mail when that is someone else than the mover. Out of ``result``, the complaint is closed: no task; the
    client's decision e-mailed when it is to be (:func:`sends_decision`)."""
    _check_may_work(c, by, rules)
    missing = missing_fields(c)
    if missing:
        raise MissingFields(c.stage, missing)
    target = next_stage(c)
    assert target is not None  # an open stage has one
    return _move(c, target, back=False, reason=None, by=by, at=at, rules=rules, people=people, assignee=assignee)


def close(c: Complaint, *, by: Actor, at: float, rules: ComplaintRules,
          people: Mapping[str, Person]) -> ComplaintChange:
    """Close a complaint at its ``result`` stage (:func:`move_next` from there)."""
    if c.stage != "result":
        _check_open(c)
        ru, en = STAGE_TITLES["result"]
        raise InvalidRequest(f"a complaint is closed from the stage \u201c{en}\u201d",
                             f"жалобу закрывают на этапе «{ru}»")
    return move_next(c, by=by, at=at, rules=rules, people=people)


def move_back(c: Complaint, *, reason: str, by: Actor, at: float, rules: ComplaintRules,
              people: Mapping[str, Person], assignee: str | None = None) -> ComplaintChange:
    """One step back (:func:`previous_stage`), with the reason kept; the stage is entered anew (its task, its
    deadline from now)."""
    _check_may_work(c, by, rules)
    why = _reason("reason", reason, "the reason for going back", "причину возврата")
    target = previous_stage(c)
    if target is None:
        raise InvalidRequest("the registration has no stage before it", "до регистрации этапов нет")
    return _move(c, target, back=True, reason=why, by=by, at=at, rules=rules, people=people, assignee=assignee)


def _move(c: Complaint, target: Stage, *, back: bool, reason: str | None, by: Actor, at: float,
          rules: ComplaintRules, people: Mapping[str, Person], assignee: str | None) -> ComplaintChange:
    who = _known(assignee.strip(), people, "assignee") if assignee and assignee.strip() else c.responsible
    if target == "closed":
        who = c.responsible
    due = deadline(target, c.type, rules, at)
    updated = _changed(c, at, stage=target, stage_entered_at=at, stage_due_at=due, assignee=who,
                       closed_at=at if target == "closed" else None)
    details: dict[str, Any] = {"from": c.stage, "to": target, "back": back, "assignee": who}
    if reason is not None:
        details["reason"] = reason
    mails: tuple[NewMail, ...] = ()
    open_task = None
    if target == "closed":
        decision = _decision_mail(updated, rules) if sends_decision(updated) else None
        if decision is not None:
            mails = (decision,)
            details["decision_to"] = decision.to[0]
    else:
        open_task = OpenTask(stage=target, assignee=who, due_at=due)
        mails = _staff_mails(updated, "assigned", (who,), by=by.name, rules=rules, people=people)
    return ComplaintChange(complaint=updated, by=by.name, at=at, history=(("moved", details),), open_task=open_task,
                           mails=mails)


def hand_over(c: Complaint, *, to: str, question: str, by: Actor, at: float, rules: ComplaintRules,
              people: Mapping[str, Person]) -> ComplaintChange:
    """Ask a colleague (or the manager) for an opinion: the stage's assignee becomes ``to`` (the responsible stays),
    the question recorded and mailed to them; their task keeps the stage's deadline."""
    _check_may_work(c, by, rules)
    text = _reason("question", question, "the question", "вопрос")
    target = _known(to.strip(), people, "assignee") if to.strip() else ""
    if not target:
        raise InvalidValue("assignee", "whom to ask", "кого спросить")
    if _same(target, c.assignee):
        raise InvalidRequest(f"{target} already has this stage", f"этап уже у пользователя {target}")
    updated = _changed(c, at, assignee=target)
    mails = _staff_mails(updated, "question", (target,), by=by.name, rules=rules, people=people,
                         extra={"question": text})
    return ComplaintChange(
        complaint=updated, by=by.name, at=at,
        history=(("handed_over", {"from": c.assignee, "to": target, "question": text}),),
        open_task=OpenTask(stage=c.stage, assignee=target, due_at=c.stage_due_at), mails=mails)


def answer(c: Complaint, *, text: str, by: Actor, at: float, rules: ComplaintRules,
           people: Mapping[str, Person]) -> ComplaintChange:
    """The colleague asked answers: the answer recorded, the stage back with the responsible (their task, the same
    deadline), who gets it by mail. Only the one asked (or a manager) answers, while the stage is with them."""
    _check_open(c)
    if _same(c.assignee, c.responsible):
        raise InvalidRequest("nobody was asked about this complaint", "по этой жалобе никого не спрашивали")
    if not (_same(by.name, c.assignee) or is_manager(by, rules)):
        raise NotAllowed(f"the question was put to {c.assignee}", f"вопрос задан пользователю {c.assignee}")
    reply = _reason("answer", text, "the answer", "ответ")
    updated = _changed(c, at, assignee=c.responsible)
    mails = _staff_mails(updated, "answered", (c.responsible,), by=by.name, rules=rules, people=people,
                         extra={"answer": reply})
    return ComplaintChange(
        complaint=updated, by=by.name, at=at,
        history=(("answered", {"from": by.name, "to": c.responsible, "answer": reply}),),
        open_task=OpenTask(stage=c.stage, assignee=c.responsible, due_at=c.stage_due_at), mails=mails)


def reassign(c: Complaint, *, to: str, reason: str, by: Actor, at: float, rules: ComplaintRules,
             people: Mapping[str, Person], task_only: bool = False) -> ComplaintChange:
    """A manager gives the complaint to another responsible (holiday, sick leave), or only its current task
    (``task_only``), with a reason kept in the history. A new responsible also takes the stage when it was with the
    old one (a colleague's pending opinion stays with the colleague); whoever gets the stage gets its task (same
    deadline) and a mail."""
    _check_open(c)
    _check_manager(by, rules)
    why = _reason("reason", reason, "the reason for the reassignment", "причину переназначения")
    target = _known(to.strip(), people, "responsible") if to.strip() else ""
    if not target:
        raise InvalidValue("responsible", "whom to give it to", "кому передать")
    current = c.assignee if task_only else c.responsible
    if _same(target, current):
        raise InvalidRequest(f"it is already {target}'s", f"она уже у пользователя {target}")
    changes: dict[str, dict[str, str]] = {}
    responsible, assignee = c.responsible, c.assignee
    if not task_only:
        responsible = target
        changes["responsible"] = {"old": c.responsible, "new": target}
    if task_only or _same(c.assignee, c.responsible):
        assignee = target
        changes["assignee"] = {"old": c.assignee, "new": target}
    updated = _changed(c, at, responsible=responsible, assignee=assignee)
    open_task = OpenTask(stage=c.stage, assignee=assignee, due_at=c.stage_due_at) if "assignee" in changes else None
    mails = _staff_mails(updated, "assigned", (target,), by=by.name, rules=rules, people=people,
                         extra={"reason": why}, reason=True)
    return ComplaintChange(complaint=updated, by=by.name, at=at, history=(("reassigned", {"reason": why, **changes}),),
                           open_task=open_task, mails=mails)


# -- the action plan ---------------------------------------------------------------------------------------------------

_PLAN_STAGES: tuple[Stage, ...] = _from("review")


def _check_plan(c: Complaint, by: Actor, rules: ComplaintRules) -> None:
    _check_may_work(c, by, rules)
    if c.stage not in _PLAN_STAGES:
        ru, en = STAGE_TITLES["review"]
        raise InvalidRequest(f"the action plan is made from the stage \u201c{en}\u201d on",
                             f"план мероприятий составляется начиная с этапа «{ru}»")


def _row_index(c: Complaint, index: int) -> int:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(c.action_plan):
        raise InvalidValue("action_plan", "no such row", "нет такой строки")
    return index


def add_plan_row(c: Complaint, row: ActionRow, *, by: Actor, at: float, rules: ComplaintRules) -> ComplaintChange:
    """A row at the end of the action plan (from the review on)."""
    _check_plan(c, by, rules)
    if len(c.action_plan) >= PLAN_LIMIT:
        raise InvalidValue("action_plan", f"at most {PLAN_LIMIT} rows", f"не более {PLAN_LIMIT} строк")
    kept = clean_plan_row(row)
    updated = _changed(c, at, action_plan=(*c.action_plan, kept))
    return ComplaintChange(complaint=updated, by=by.name, at=at,
                           history=(("plan_added", {"row": len(c.action_plan), "new": asdict(kept)}),))


def edit_plan_row(c: Complaint, index: int, row: ActionRow, *, by: Actor, at: float,
                  rules: ComplaintRules) -> ComplaintChange:
    """Row ``index`` (from 0) replaced (its result filled in, its date moved)."""
    _check_plan(c, by, rules)
    i = _row_index(c, index)
    kept = clean_plan_row(row)
    if kept == c.action_plan[i]:
        return ComplaintChange(complaint=c, by=by.name, at=at)
    plan = (*c.action_plan[:i], kept, *c.action_plan[i + 1:])
    return ComplaintChange(complaint=_changed(c, at, action_plan=plan), by=by.name, at=at,
                           history=(("plan_edited", {"row": i, "old": asdict(c.action_plan[i]),
                                                     "new": asdict(kept)}),))


def remove_plan_row(c: Complaint, index: int, *, by: Actor, at: float, rules: ComplaintRules) -> ComplaintChange:
    """Row ``index`` (from 0) removed; the rows after it move up."""
    _check_plan(c, by, rules)
    i = _row_index(c, index)
    plan = (*c.action_plan[:i], *c.action_plan[i + 1:])
    return ComplaintChange(complaint=_changed(c, at, action_plan=plan), by=by.name, at=at,
                           history=(("plan_removed", {"row": i, "old": asdict(c.action_plan[i])}),))


# -- e-mails -----------------------------------------------------------------------------------------------------------


def _when(moment: float | None, language: Language, tz: tzinfo | None) -> str:
    if moment is None:
        return "—"
    local = datetime.fromtimestamp(moment, tz or UTC)
    return local.strftime("%d.%m.%Y %H:%M" if language == "ru" else "%Y-%m-%d %H:%M")


def mail_values(c: Complaint, language: Language, *, rules: ComplaintRules, people: Mapping[str, Person],
                by: str = "", recipient: str = "") -> dict[str, str]:
    """The placeholders of a mail about ``c`` (``cti.complaint_mail.PLACEHOLDERS``), in ``language``."""

    def shown(name: str) -> str:
        person = _person(people, name)
        return person.shown if person is not None else name

    kind = next((k for k in rules.subject_kinds if k.key == c.subject_kind), None)
    subject = " ".join(p for p in ((kind.title_in(language) if kind else c.subject_kind or ""), c.subject or "") if p)
    return {
        "number": c.number, "type": rules.type_title(c.type, language), "stage": stage_title(c.stage, language),
        "responsible": shown(c.responsible), "assignee": shown(c.assignee), "by": shown(by) if by else "",
        "recipient": recipient, "client": c.client_name or c.client_phone or "—", "phone": c.client_phone or "",
        "car": " ".join(p for p in (c.car or "", c.plate or "") if p) or "—", "subject": subject or "—",
        "comment": c.comment or "—", "deadline": _when(c.stage_due_at, language, rules.tz),
        "overdue_since": "", "question": "", "answer": "", "reason": "", "decision": c.fields.get("decision", ""),
    }


def _staff_mails(c: Complaint, template: TemplateName, to: Iterable[str], *, by: str, rules: ComplaintRules,
                 people: Mapping[str, Person], extra: Mapping[str, str] | None = None,
                 reason: bool = False) -> tuple[NewMail, ...]:
    """One mail per colleague of ``to`` with an address, in their language; never to the one who made the change."""
    mails: list[NewMail] = []
    for name in dict.fromkeys(to):
        person = _person(people, name)
        if person is None or not person.email or _same(name, by):
            continue
        language = person.language or rules.staff_language
        values = mail_values(c, language, rules=rules, people=people, by=by, recipient=person.shown)
        values.update(extra or {})
        if reason and extra and extra.get("reason"):
            values["reason"] = (f"Причина: {extra['reason']}\n" if language == "ru"
                                else f"Reason: {extra['reason']}\n")
        built = compose((person.email,), rules.templates.get(template, language), values, about=f"complaint:{c.id}")
        if built is not None:
            mails.append(built)
    return tuple(mails)


def _decision_mail(c: Complaint, rules: ComplaintRules) -> NewMail | None:
    """The client's decision, in the client's language, to the complaint's address (None: no usable address)."""
    if not c.client_email:
        return None
    chosen = c.fields.get("client_language")
    language: Language = "ru" if chosen == "ru" else "en" if chosen == "en" else rules.client_language
    values = mail_values(c, language, rules=rules, people={}, recipient=c.client_name or "")
    if not c.client_name:
        values["recipient"] = "Уважаемый клиент" if language == "ru" else "Customer"
    return compose((c.client_email,), rules.templates.get("decision", language), values, about=f"complaint:{c.id}")


def overdue_mails(c: Complaint, task: Task, *, rules: ComplaintRules,
                  people: Mapping[str, Person]) -> tuple[NewMail, ...]:
    """The managers' mails about an overdue task (``escalate_task``'s), each in the manager's language."""
    mails: list[NewMail] = []
    for name in dict.fromkeys(rules.managers):
        person = _person(people, name)
        if person is None or not person.email:
            continue
        language = person.language or rules.staff_language
        values = mail_values(replace(c, stage=task.stage, assignee=task.assignee), language, rules=rules,
                             people=people, recipient=person.shown)
        values["overdue_since"] = _when(task.due_at, language, rules.tz)
        built = compose((person.email,), rules.templates.get("overdue", language), values, about=f"complaint:{c.id}")
        if built is not None:
            mails.append(built)
    return tuple(mails)


# -- the report --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ComplaintReport:
    """The managers' report over a set of complaints (the page, its CSV, the API read the same figures).

    Counts are ``(key, count)`` pairs, the largest first (then by key); the key ``""`` counts the complaints where
    it was not given. ``median_seconds``: per stage, the median time complaints spent in it (over all their visits,
    counted once they have left it); ``stage_samples`` how many complaints that median is over."""

    total: int
    by_type: tuple[tuple[str, int], ...]
    by_cause: tuple[tuple[str, int], ...]
    by_department: tuple[tuple[str, int], ...]
    #: Found justified, among those decided (``justified`` yes or no).
    justified: int
    decided: int
    #: Closed with the client satisfied, among those closed.
    satisfied: int
    closed: int
    median_seconds: dict[Stage, float | None]
    stage_samples: dict[Stage, int]

    @property
    def justified_share(self) -> float | None:
        return self.justified / self.decided if self.decided else None

    @property
    def satisfied_share(self) -> float | None:
        return self.satisfied / self.closed if self.closed else None


def _counts(keys: Iterable[str]) -> tuple[tuple[str, int], ...]:
    tally: dict[str, int] = {}
    for key in keys:
        tally[key] = tally.get(key, 0) + 1
    return tuple(sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])))


def stage_times(c: Complaint, history: Iterable[HistoryItem]) -> dict[Stage, float]:
    """Seconds ``c`` spent in each stage it has left (all visits summed; the stage it is in now left out), from its
    creation and its ``moved`` history items."""
    spent: dict[Stage, float] = {}
    current: Stage = "registration"
    entered = c.created_at
    for item in sorted(history, key=lambda h: (h.at, h.id)):
        if item.action != "moved":
            continue
        source, target = item.details.get("from"), item.details.get("to")
        if source not in STAGES or target not in STAGES:
            continue
        spent[source] = spent.get(source, 0.0) + max(0.0, item.at - entered)
        current, entered = target, item.at
    spent.pop(current, None)
    return spent


def report(complaints: Iterable[Complaint], history: Mapping[int, Sequence[HistoryItem]]) -> ComplaintReport:
    """The figures of the report over ``complaints`` (``history``: each one's items, by complaint id)."""
    items = list(complaints)
    samples: dict[Stage, list[float]] = {stage: [] for stage in OPEN_STAGES}
    for c in items:
        for stage, seconds in stage_times(c, history.get(c.id, ())).items():
            if stage in samples:
                samples[stage].append(seconds)
    return ComplaintReport(
        total=len(items),
        by_type=_counts(c.type for c in items),
        by_cause=_counts(c.fields.get("cause", "") for c in items),
        by_department=_counts(c.fields.get("department", "") for c in items),
        justified=sum(1 for c in items if c.justified is True),
        decided=sum(1 for c in items if c.justified is not None),
        satisfied=sum(1 for c in items if c.status == "satisfied"),
        closed=sum(1 for c in items if c.status in ("satisfied", "not_satisfied")),
        median_seconds={stage: statistics.median(s) if s else None for stage, s in samples.items()},
        stage_samples={stage: len(s) for stage, s in samples.items()},
    )
