"""The e-mails of the complaint review: templates in Russian and English, rendered into ``NewMail`` values.

Why a module of its own: the rules (``cti/complaint_rules.py``) decide *who* is told *what* on each change; this
module decides how it reads, and makes sure nothing a client or a colleague typed can do more than be read:

* **Templates** are plain text with ``$name`` placeholders (:class:`string.Template`, ``safe_substitute``): no
  expressions, no attribute access, no code; an unknown placeholder (a typo in a site's edited copy) stays visible as
  it was written (``$nmber``) instead of failing or vanishing, and a ``$`` inside a value is never expanded again.
* A template's text is ``Subject: …`` (or ``Тема: …``) on its first line, an empty line, then the body
  (:func:`parse_template`). The defaults are the constants :data:`DEFAULT_TEXTS`; a site edits copies of them in the
  templates folder (``[complaints] templates_folder``, read by ``ui_bridge/complaint_settings.py``: ``cti/`` reads
  no files).
* **Subjects are header-safe** (:func:`header_safe`): a subject is built from a client's name and a type's title,
  and a CR or LF in it would start headers of the attacker's own (``Bcc:``) in a mail library that does not fold
  them; every control character, line or paragraph separator becomes a space, the length is bounded. Bodies keep
  their line breaks and lose every other control character (:func:`body_safe`). Addresses are checked by
  :func:`is_email` (the outbox's own check, ``cti.email_address``) before a mail is queued.
* **Language**: each recipient gets their own language (a colleague's, or the client's: the complaint's
  ``client_language``, else ``[complaints] client_language``); a site's copy replaces the shipped template of its
  own name and language only.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from cti.complaints import NewMail
from cti.email_address import BadEmail, check_email

Language = Literal["ru", "en"]
LANGUAGES: tuple[Language, ...] = ("ru", "en")

#: The mails of the review (what each is for: :data:`TEMPLATE_PURPOSES`).
TemplateName = Literal["registered", "assigned", "question", "answered", "overdue", "decision"]
TEMPLATE_NAMES: tuple[TemplateName, ...] = ("registered", "assigned", "question", "answered", "overdue", "decision")
TEMPLATE_PURPOSES: dict[TemplateName, str] = {
    "registered": "to the responsible person when a complaint is registered",
    "assigned": "to the new assignee when a stage is handed over, or a manager reassigns the complaint or its task",
    "question": "to a colleague or the manager asked for an opinion",
    "answered": "to the responsible person when the colleague asked has answered",
    "overdue": "to the managers when a stage's task is overdue",
    "decision": "to the client with the decision when the complaint is closed",
}
#: Every placeholder a template may use; a value the change does not have is empty.
PLACEHOLDERS: dict[str, str] = {
    "number": "the complaint's number (Ж-2026-0001)",
    "type": "its type's title, in the recipient's language",
    "stage": "the current stage's title, in the recipient's language",
    "responsible": "the responsible person's name",
    "assignee": "who works on the stage now",
    "recipient": "whom the mail is to (a colleague's name, or the client's)",
    "by": "who made the change",
    "client": "the client's name (or phone)",
    "phone": "the client's phone",
    "car": "the car and its plate",
    "subject": "what it is about (a repair order, a part, a service) and the subject",
    "comment": "the comment given at registration",
    "deadline": "the stage's deadline (date and time in the site's zone), or «—»",
    "overdue_since": "the deadline that passed (overdue mails)",
    "question": "the question asked (question mails)",
    "answer": "the answer given (answered mails)",
    "reason": "why a manager reassigned it (assigned mails after a reassignment)",
    "decision": "the decision for the client (decision mails)",
}

#: The longest subject (characters) a mail gets; a longer one is cut with «…».
SUBJECT_LIMIT = 200
#: The longest body; a site's edited template with values this long is no notification any more.
BODY_LIMIT = 20_000

_SUBJECT_PREFIXES = ("subject:", "тема:")


class TemplateError(ValueError):
    """A template's text cannot be used; the message says why (for ``cti check-config``)."""


@dataclass(frozen=True, slots=True)
class MailTemplate:
    """One template: its subject line and its body, both with ``$name`` placeholders."""

    subject: str
    body: str


def parse_template(text: str) -> MailTemplate:
    """A template file's text: ``Subject: …`` (or ``Тема: …``) on the first line, an empty line, the body.

    Raises :class:`TemplateError` naming what is missing."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    first, _, rest = text.partition("\n")
    if not first.strip().lower().startswith(_SUBJECT_PREFIXES):
        raise TemplateError("the first line is to be «Subject: …» (or «Тема: …»): the mail's subject")
    subject = first.split(":", 1)[1].strip()
    if not subject:
        raise TemplateError("the subject line is empty")
    if rest and rest.split("\n", 1)[0].strip():
        raise TemplateError("an empty line goes between the subject line and the body")
    body = rest.split("\n", 1)[1] if "\n" in rest else ""
    if not body.strip():
        raise TemplateError("the body is empty")
    return MailTemplate(subject=subject, body=body.rstrip("\n") + "\n")


def template_text(template: MailTemplate, language: Language = "ru") -> str:
    """A template as a file holds it (:func:`parse_template` reads it back the same)."""
    return f"{'Тема' if language == 'ru' else 'Subject'}: {template.subject}\n\n{template.body}"


# -- the defaults ----------------------------------------------------------------------------------------------------

#: The shipped texts, per template and language (a site's copies in the templates folder replace them one by one).
DEFAULT_TEXTS: dict[tuple[TemplateName, Language], str] = {
    ("registered", "ru"): """\
Тема: Жалоба $number: $type — ответственный $responsible — этап «$stage»

$recipient, здравствуйте.

Зарегистрирована жалоба $number, вы назначены ответственным.

Тип: $type
Клиент: $client $phone
Автомобиль: $car
Предмет: $subject
Комментарий: $comment
Зарегистрировал(а): $by

Этап «$stage» нужно завершить до $deadline.
""",
    ("registered", "en"): """\
Subject: Complaint $number: $type — responsible $responsible — stage "$stage"

Hello $recipient,

Complaint $number has been registered, with you as the responsible person.

Type: $type
Client: $client $phone
Car: $car
Subject: $subject
Comment: $comment
Registered by: $by

The stage "$stage" is due by $deadline.
""",
    ("assigned", "ru"): """\
Тема: Жалоба $number: $type — ответственный $responsible — этап «$stage»

$recipient, здравствуйте.

Вам передан этап «$stage» жалобы $number ($by).
$reason
Тип: $type
Клиент: $client $phone
Предмет: $subject

Срок этапа: $deadline.
""",
    ("assigned", "en"): """\
Subject: Complaint $number: $type — responsible $responsible — stage "$stage"

Hello $recipient,

The stage "$stage" of complaint $number has been handed to you ($by).
$reason
Type: $type
Client: $client $phone
Subject: $subject

The stage is due by $deadline.
""",
    ("question", "ru"): """\
Тема: Жалоба $number: $type — ответственный $responsible — этап «$stage» — нужно ваше мнение

$recipient, здравствуйте.

$by просит вашего мнения по жалобе $number:

$question

Тип: $type
Клиент: $client
Предмет: $subject

Ответьте в панели до $deadline.
""",
    ("question", "en"): """\
Subject: Complaint $number: $type — responsible $responsible — stage "$stage" — your opinion

Hello $recipient,

$by asks for your opinion on complaint $number:

$question

Type: $type
Client: $client
Subject: $subject

Please answer in the panel by $deadline.
""",
    ("answered", "ru"): """\
Тема: Жалоба $number: $type — ответственный $responsible — этап «$stage» — получен ответ

$recipient, здравствуйте.

$by ответил(а) на ваш вопрос по жалобе $number:

$answer

Этап «$stage» снова у вас, срок: $deadline.
""",
    ("answered", "en"): """\
Subject: Complaint $number: $type — responsible $responsible — stage "$stage" — answered

Hello $recipient,

$by has answered your question on complaint $number:

$answer

The stage "$stage" is back with you, due by $deadline.
""",
    ("overdue", "ru"): """\
Тема: Просрочена жалоба $number: $type — ответственный $responsible — этап «$stage»

$recipient, здравствуйте.

Этап «$stage» жалобы $number не завершён в срок ($overdue_since).

Ответственный: $responsible
Исполнитель этапа: $assignee
Тип: $type
Клиент: $client $phone
Предмет: $subject

Жалобу или задачу можно переназначить в панели.
""",
    ("overdue", "en"): """\
Subject: Overdue complaint $number: $type — responsible $responsible — stage "$stage"

Hello $recipient,

The stage "$stage" of complaint $number was due by $overdue_since and is not done.

Responsible: $responsible
Working on the stage: $assignee
Type: $type
Client: $client $phone
Subject: $subject

The complaint or its task can be reassigned in the panel.
""",
    ("decision", "ru"): """\
Тема: Ваше обращение $number: решение

$recipient, здравствуйте.

Благодарим вас за обращение. По нему принято решение:

$decision

Если у вас остались вопросы, ответьте на это письмо или позвоните нам, назвав номер обращения $number.
""",
    ("decision", "en"): """\
Subject: Your request $number: our decision

Dear $recipient,

Thank you for contacting us. Our decision on your request:

$decision

Should you have any questions, reply to this e-mail or call us quoting the number $number.
""",
}


@dataclass(frozen=True, slots=True)
class MailTemplates:
    """The templates in use: the defaults, with a site's edited copies over them (``overrides``)."""

    overrides: Mapping[tuple[TemplateName, Language], MailTemplate] = field(default_factory=dict)

    def get(self, name: TemplateName, language: Language) -> MailTemplate:
        """The template for ``language``: the site's copy, else the shipped one (each name has both languages)."""
        return self.overrides.get((name, language)) or DEFAULT_TEMPLATES[(name, language)]


DEFAULT_TEMPLATES: dict[tuple[TemplateName, Language], MailTemplate] = {
    key: parse_template(text) for key, text in DEFAULT_TEXTS.items()}


def template_file_name(name: TemplateName, language: Language) -> str:
    """The file a site's copy of a template is kept in, in the templates folder: ``registered.ru.txt``."""
    return f"{name}.{language}.txt"


# -- making text safe ------------------------------------------------------------------------------------------------

#: What may not be in a header: C0 controls (CR and LF first), DEL, C1 controls (NEL), the line and paragraph
#: separators, and the bidi overrides (a subject must not read backwards).
_NOT_HEADER = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: What may not be in a body: the same, but a line break and a tab are text there.
_NOT_BODY = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")


def header_safe(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """``text`` as one header line: every control character (CR, LF first) a space, spaces collapsed, at most
    ``limit`` characters (cut with «…»)."""
    line = _SPACES.sub(" ", _NOT_HEADER.sub(" ", text)).strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def body_safe(text: str, limit: int = BODY_LIMIT) -> str:
    """``text`` as a body: line breaks kept (CR LF and CR as LF), every other control character dropped, at most
    ``limit`` characters."""
    body = _NOT_BODY.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return body if len(body) <= limit else body[: limit - 1] + "…"


def is_email(address: str) -> bool:
    """Whether ``address`` is one plain e-mail address the outbox takes (``cti.email_address.check_email``: no
    display name, no list, no control character, no space)."""
    try:
        check_email(address)
    except BadEmail:
        return False
    return True


def render(template: MailTemplate, values: Mapping[str, str]) -> tuple[str, str]:
    """(subject, body) of ``template`` with ``values`` put in: the subject header-safe, the body without control
    characters. Unknown placeholders stay as written; a value is never expanded again."""
    subject = string.Template(template.subject).safe_substitute(
        {key: header_safe(value) for key, value in values.items()})
    body = string.Template(template.body).safe_substitute(values)
    return header_safe(subject), body_safe(body)


def compose(to: Iterable[str], template: MailTemplate, values: Mapping[str, str], *,
            about: str | None = None) -> NewMail | None:
    """A mail to queue: ``template`` rendered for the addresses of ``to`` that are addresses (:func:`is_email`);
    None when none is."""
    addresses = tuple(dict.fromkeys(check_email(a) for a in to if is_email(a)))
    if not addresses:
        return None
    subject, body = render(template, values)
    return NewMail(to=addresses, subject=subject, body=body, about=about)
