"""The complaint e-mails (``cti/complaint_mail.py``, with the rules that address them): templates in Russian and
English, editable copies over the shipped ones, nothing a client or colleague types able to add a header or run
anything, unknown placeholders left visible, each recipient in their own language."""

from __future__ import annotations

from dataclasses import replace
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP
from pathlib import Path

import pytest

from cti.complaint_mail import (
    DEFAULT_TEMPLATES,
    DEFAULT_TEXTS,
    LANGUAGES,
    PLACEHOLDERS,
    TEMPLATE_NAMES,
    MailTemplate,
    MailTemplates,
    TemplateError,
    body_safe,
    compose,
    header_safe,
    is_email,
    parse_template,
    render,
    template_text,
)
from cti.complaint_rules import Actor, ComplaintRules, Person, close, mail_values, registered_mails
from cti.complaints import Complaint
from ui_bridge.complaint_settings import load_templates, template_problems, write_default_templates

T0 = 1_767_261_600.0
HOSTILE = "Пётр\r\nBcc: everyone@victim.example\r\n\r\n<script>alert(1)</script>\x1b]8;;http://evil\x07"


def complaint(**overrides: object) -> Complaint:
    base = Complaint(id=12, number="Ж-2026-0012", type="quality", kind="client", stage="result", status="in_progress",
                     source="call", responsible="anna", assignee="anna", stage_entered_at=T0, stage_due_at=T0 + 3600,
                     created_at=T0, created_by="maria", updated_at=T0, revision=5, client_name="Пётр Иванов",
                     client_phone="+79161234567", client_email="petr@mail.example", result="satisfied",
                     fields={"decision": "Ремонт повторён за наш счёт."})
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_every_shipped_template_parses_and_fills_every_placeholder_it_uses() -> None:
    assert {(n, lang) for n in TEMPLATE_NAMES for lang in LANGUAGES} == set(DEFAULT_TEXTS)
    values = {name: f"<{name}>" for name in PLACEHOLDERS}
    for key, template in DEFAULT_TEMPLATES.items():
        subject, body = render(template, values)
        assert "$" not in subject + body, key  # no placeholder unknown to PLACEHOLDERS
        assert parse_template(template_text(template, key[1])) == template  # a copy on disk reads back the same


def test_a_hostile_client_name_cannot_add_a_header_to_the_subject() -> None:
    edited = MailTemplate(subject="Обращение $number от $client", body="$client\n")
    subject, body = render(edited, {"number": "Ж-2026-0012", "client": HOSTILE})
    assert "\r" not in subject and "\n" not in subject and "\x1b" not in subject and "\x07" not in subject
    assert subject.startswith("Обращение Ж-2026-0012 от Пётр Bcc: everyone@victim.example <script>")
    assert "\r" not in body and "\x1b" not in body and "\x07" not in body
    # Built into a real message, the name stays in the Subject: no Bcc header appears.
    mail = compose(["petr@mail.example"], edited, {"number": "Ж-2026-0012", "client": HOSTILE})
    assert mail is not None
    message = EmailMessage(policy=SMTP)
    message["To"], message["Subject"] = ", ".join(mail.to), mail.subject
    message.set_content(mail.body)
    parsed = BytesParser(policy=SMTP).parsebytes(message.as_bytes())
    assert parsed["Bcc"] is None and parsed["To"] == "petr@mail.example"
    assert "everyone@victim.example" in str(parsed["Subject"])


def test_a_long_subject_is_cut() -> None:
    assert len(header_safe("Ж" * 500)) == 200 and header_safe("Ж" * 500).endswith("…")
    assert body_safe("a\r\nb\rc\x00d\te") == "a\nb\ncd\te"


def test_unknown_placeholders_stay_visible_and_values_are_never_expanded_again() -> None:
    template = MailTemplate(subject="$number ${number} $nmber", body="$decision $client.__class__ ${type} $$ $ 100\n")
    subject, body = render(template, {"number": "N1", "decision": "$number ${client}", "client": "К", "type": "T"})
    assert subject == "N1 N1 $nmber"
    assert body == "$number ${client} К.__class__ T $ $ 100\n"


@pytest.mark.parametrize(("address", "ok"), [
    ("petr@mail.example", True),
    ("petr@почта.рф", True),
    ("пётр@mail.example", False),  # the outbox sends to Latin local parts only (cti/email_address.py)
    ("petr.ivanov+claims@mail.example.ru", True),
    ("petr@mail", False),
    ("petr@@mail.example", False),
    ("Пётр <petr@mail.example>", False),
    ("petr@mail.example, boss@dealer.example", False),
    ("petr@mail.example\r\nBcc: x@y.example", False),
    ("petr @mail.example", False),
    ("petr@mail..example", False),
    ("a" * 250 + "@b.ru", False),
    ("", False),
])
def test_only_one_plain_address_is_an_address(address: str, ok: bool) -> None:
    assert is_email(address) is ok


def test_a_mail_with_no_usable_address_is_not_queued() -> None:
    template = DEFAULT_TEMPLATES[("decision", "ru")]
    assert compose(["not an address", "x@y"], template, {}) is None
    mail = compose(["a@b.example", "a@b.example", "bad"], template, {}, about="complaint:1")
    assert mail is not None and mail.to == ("a@b.example",) and mail.about == "complaint:1"


@pytest.mark.parametrize(("text", "problem"), [
    ("Здравствуйте\n\nтекст", "the first line is to be «Subject: …»"),
    ("Тема:   \n\nтекст", "the subject line is empty"),
    ("Тема: x\nтекст", "an empty line goes between"),
    ("Subject: x\n\n  \n", "the body is empty"),
])
def test_a_broken_template_is_refused_saying_why(text: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=problem):
        parse_template(text)


def test_the_decision_goes_to_the_client_in_the_clients_language() -> None:
    rules = ComplaintRules()
    ru = close(complaint(), by=Actor("anna", "employee"), at=T0 + 10, rules=rules, people={})
    assert ru.mails[0].subject == "Ваше обращение Ж-2026-0012: решение"
    en = close(complaint(fields={"decision": "Repaired again at our cost.", "client_language": "en"}),
               by=Actor("anna", "employee"), at=T0 + 10, rules=rules, people={})
    assert en.mails[0].subject == "Your request Ж-2026-0012: our decision"
    assert "Dear Пётр Иванов," in en.mails[0].body and "Repaired again at our cost." in en.mails[0].body
    site_en = close(complaint(client_name=None), by=Actor("anna", "employee"), at=T0 + 10,
                    rules=replace(rules, client_language="en"), people={})
    assert "Dear Customer," in site_en.mails[0].body


def test_colleagues_get_their_own_language_and_a_hostile_display_name_stays_in_its_header() -> None:
    c = complaint(stage="registration", status="registered", responsible="oleg", assignee="oleg")
    people = {"oleg": Person("oleg", "oleg@dealer.example", "Олег\r\nBcc: all@dealer.example", language="en")}
    [mail] = registered_mails(c, by="maria", rules=ComplaintRules(), people=people)
    assert mail.subject == ("Complaint Ж-2026-0012: Quality of work — responsible Олег Bcc: all@dealer.example — "
                            'stage "Registration"')
    assert mail.body.startswith("Hello Олег\nBcc: all@dealer.example,")  # in the body a line break is only text
    values = mail_values(c, "ru", rules=ComplaintRules(), people=people)
    assert values["stage"] == "Регистрация" and values["type"] == "Качество работ"


def test_a_sites_edited_copy_replaces_the_shipped_template(tmp_path: Path) -> None:
    written = write_default_templates(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{n}.{lang}.txt" for n in TEMPLATE_NAMES for lang in LANGUAGES)
    assert load_templates(tmp_path).get("decision", "ru") == DEFAULT_TEMPLATES[("decision", "ru")]
    (tmp_path / "decision.ru.txt").write_text("Тема: Решение по $number\n\nУважаемый $recipient!\n$decision\n",
                                              encoding="utf-8")
    assert write_default_templates(tmp_path) == []  # an edited copy is never overwritten
    templates = load_templates(tmp_path)
    rules = ComplaintRules(templates=templates)
    change = close(complaint(), by=Actor("anna", "employee"), at=T0 + 10, rules=rules, people={})
    assert change.mails[0].subject == "Решение по Ж-2026-0012"
    assert change.mails[0].body == "Уважаемый Пётр Иванов!\nРемонт повторён за наш счёт.\n"
    # A copy replaces its own language's template only.
    only_en = MailTemplates({("decision", "en"): MailTemplate("EN", "en body\n")})
    assert only_en.get("decision", "en").subject == "EN"
    assert only_en.get("decision", "ru") == DEFAULT_TEMPLATES[("decision", "ru")]


def test_a_broken_copy_is_reported_with_its_file(tmp_path: Path) -> None:
    (tmp_path / "registered.en.txt").write_text("Hello\n\nbody\n", encoding="utf-8")
    (tmp_path / "overdue.ru.txt").write_bytes(b"\xff\xfe\x00")
    problems = template_problems(tmp_path)
    assert problems == [f"{tmp_path / 'registered.en.txt'}: the first line is to be «Subject: …» (or «Тема: …»): "
                        "the mail's subject", f"{tmp_path / 'overdue.ru.txt'}: not UTF-8 text"]
    with pytest.raises(ValueError, match=r"registered\.en\.txt"):
        load_templates(tmp_path)
    assert (tmp_path / "registered.en.txt").read_text(encoding="utf-8") == "Hello\n\nbody\n"  # never overwritten
    assert template_problems(tmp_path / "none") == []  # made at start
    assert template_problems(tmp_path / "no" / "such") == [
        f"complaints.templates_folder: {tmp_path / 'no' / 'such'}: not a folder, and cannot be made there (its "
        f"parent {tmp_path / 'no'} is no folder)"]


def test_the_daemon_writes_the_shipped_templates_into_the_folder_for_the_site_to_edit(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    assert load_templates(folder).get("registered", "en") == DEFAULT_TEMPLATES[("registered", "en")]
    assert len(list(folder.glob("*.txt"))) == 2 * len(TEMPLATE_NAMES)
    assert load_templates(None).overrides == {}
