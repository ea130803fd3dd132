"""``[complaints]``: the complaint review's configuration (issue 15, ``docs/complaints.md#settings``).

Why a module of its own: the section is large (types, lists, deadlines per stage and type, attachments, templates)
and it is the one place that turns the file's words into the pure rules' values (:meth:`ComplaintSettings.rules`:
``cti.complaint_rules.ComplaintRules``) and reads the templates folder (:func:`load_templates`: ``cti/`` reads no
files). The rest of ``ui_bridge`` and the root reach the section through ``companion.config.Settings.complaints``.

Deadlines are calendar hours; working hours, weekends and holidays are out of scope (a site that needs them sets
longer hours).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import tzinfo
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from asterisk.settings import Section
from cti.complaint_mail import (
    DEFAULT_TEMPLATES as DEFAULT_MAIL_TEMPLATES,
)
from cti.complaint_mail import (
    LANGUAGES,
    TEMPLATE_NAMES,
    Language,
    MailTemplate,
    MailTemplates,
    TemplateError,
    TemplateName,
    parse_template,
    template_file_name,
    template_text,
)
from cti.complaint_rules import (
    DEFAULT_STAGE_HOURS,
    DEFAULT_SUBJECT_KINDS,
    DEFAULT_TYPES,
    Choice,
    ComplaintRules,
)
from cti.complaints import STAGES, Stage

#: A key of a type or a subject kind (stored with each complaint, so kept short and plain).
Key = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
Title = Annotated[str, Field(min_length=1, max_length=100)]
#: An entry of a list (a cause, a department, a workshop, a subject): one line of text.
Entry = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
UserName = Annotated[str, Field(min_length=1, max_length=64)]
Hours = Annotated[float, Field(ge=0, le=24 * 365)]

#: The file types an attachment may be (by its name's extension) and the type it is served back as. Nothing a
#: browser would run or render as a page (no html, svg, xml, js): a file is only ever downloaded.
ATTACHMENT_TYPES: dict[str, str] = {
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
    "heic": "image/heic", "pdf": "application/pdf", "txt": "text/plain",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "odt": "application/vnd.oasis.opendocument.text", "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "mp3": "audio/mpeg", "wav": "audio/wav", "mp4": "video/mp4", "zip": "application/zip",
}
DEFAULT_ATTACHMENT_TYPES = ("jpg", "jpeg", "png", "heic", "pdf", "doc", "docx", "xls", "xlsx", "txt")


class ComplaintType(Section):
    """One ``[[complaints.types]]`` entry: ``key = "quality"``, ``title = "Качество работ"``,
    ``title_en = "Quality of work"``."""

    key: Key
    title: Title
    title_en: Title


class StageHours(Section):
    """Hours a stage has from the moment it is entered (0: no deadline)."""

    registration: Hours = DEFAULT_STAGE_HOURS["registration"]
    review: Hours = DEFAULT_STAGE_HOURS["review"]
    justification: Hours = DEFAULT_STAGE_HOURS["justification"]
    corrective_action: Hours = DEFAULT_STAGE_HOURS["corrective_action"]
    satisfaction_check: Hours = DEFAULT_STAGE_HOURS["satisfaction_check"]
    result: Hours = DEFAULT_STAGE_HOURS["result"]


class StageHoursOverride(Section):
    """A type's own hours for some stages (``[complaints.deadline_hours_by_type.quality]``); the others as the
    default."""

    registration: Hours | None = None
    review: Hours | None = None
    justification: Hours | None = None
    corrective_action: Hours | None = None
    satisfaction_check: Hours | None = None
    result: Hours | None = None


def _defaults(choices: Sequence[Choice]) -> tuple[ComplaintType, ...]:
    return tuple(ComplaintType(key=c.key, title=c.title, title_en=c.title_en) for c in choices)


class ComplaintSettings(Section):
    """``[complaints]``: types, lists, managers, deadlines, attachments, e-mail templates (``docs/complaints.md``)."""

    #: The complaint types (a thanks and a question are registered and reviewed the same way).
    types: Annotated[tuple[ComplaintType, ...], Field(min_length=1, max_length=50)] = _defaults(DEFAULT_TYPES)
    #: What a complaint may be about (a repair order, a part, a service) ...
    subject_kinds: Annotated[tuple[ComplaintType, ...], Field(min_length=1, max_length=50)] = _defaults(
        DEFAULT_SUBJECT_KINDS)
    #: ... and, per kind, the list a subject is picked from (``service = ["ТО", "Шиномонтаж"]``); a kind without a
    #: list takes free text (a repair order's number).
    subjects: dict[str, Annotated[tuple[Entry, ...], Field(max_length=1000)]] = Field(default_factory=dict)
    #: Lists the review picks from; empty: free text.
    causes: Annotated[tuple[Entry, ...], Field(max_length=1000)] = ()
    departments: Annotated[tuple[Entry, ...], Field(max_length=1000)] = ()
    workshops: Annotated[tuple[Entry, ...], Field(max_length=1000)] = ()
    #: Panel users who get the overdue escalations, may reassign and change any complaint; empty: every admin (an
    #: admin always may).
    managers: Annotated[tuple[UserName, ...], Field(max_length=200)] = ()
    #: Who is made responsible when registration names nobody: the type's (``responsible_by_type``), else this user,
    #: else the first manager, else whoever registers it.
    default_responsible: UserName | None = None
    responsible_by_type: dict[str, UserName] = Field(default_factory=dict)
    #: Hours per stage (calendar hours from entering it; 0: no deadline), and a type's own over them.
    deadline_hours: StageHours = StageHours()
    deadline_hours_by_type: dict[str, StageHoursOverride] = Field(default_factory=dict)
    #: Where uploaded files are kept (relative: to the config file), each under a name the server makes up.
    attachments_folder: Path = Path("complaint-files")
    #: The largest file (MB) and the most files one complaint may have.
    max_attachment_mb: Annotated[float, Field(gt=0, le=1024)] = 10.0
    max_attachments: Annotated[int, Field(ge=1, le=1000)] = 20
    #: The file types accepted, by extension (see ``ATTACHMENT_TYPES`` for those known).
    attachment_types: Annotated[tuple[str, ...], Field(min_length=1)] = DEFAULT_ATTACHMENT_TYPES
    #: The e-mail templates' folder (relative: to the config file): made at start with a copy of each shipped
    #: template not there yet (``registered.ru.txt``, …), for the site to edit. Unset: the shipped templates.
    templates_folder: Path | None = None
    #: The language of the client's decision e-mail when the complaint does not say (its ``client_language``), and
    #: of colleagues' e-mails.
    client_language: Literal["ru", "en"] = "ru"
    staff_language: Literal["ru", "en"] = "ru"

    @field_validator("attachment_types")
    @classmethod
    def _known_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = [t.strip().lower().lstrip(".") for t in value]
        unknown = [t for t in cleaned if t not in ATTACHMENT_TYPES]
        if unknown:
            raise ValueError(f"unknown file type {', '.join(map(repr, unknown))}: known are "
                             f"{', '.join(ATTACHMENT_TYPES)}")
        return tuple(dict.fromkeys(cleaned))

    @model_validator(mode="after")
    def _keys_known(self) -> ComplaintSettings:
        for what, entries in (("types", self.types), ("subject_kinds", self.subject_kinds)):
            keys = [e.key for e in entries]
            twice = sorted({k for k in keys if keys.count(k) > 1})
            if twice:
                raise ValueError(f"{what}: {', '.join(map(repr, twice))} listed twice")
        types = {t.key for t in self.types}
        kinds = {k.key for k in self.subject_kinds}
        named: tuple[tuple[str, Collection[str], set[str], str], ...] = (
            ("deadline_hours_by_type", self.deadline_hours_by_type.keys(), types, "types"),
            ("responsible_by_type", self.responsible_by_type.keys(), types, "types"),
            ("subjects", self.subjects.keys(), kinds, "subject_kinds"))
        for what, given, known, their in named:
            unknown = sorted(set(given) - known)
            if unknown:
                raise ValueError(f"{what}: no {', '.join(map(repr, unknown))} among the {their} "
                                 f"({', '.join(sorted(known))})")
        return self

    @property
    def max_attachment_bytes(self) -> int:
        return int(self.max_attachment_mb * 1024 * 1024)

    def content_type(self, file_name: str) -> str | None:
        """The type a file of this name is kept and served as, or None when its extension is not accepted."""
        extension = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
        return ATTACHMENT_TYPES.get(extension) if extension in self.attachment_types else None

    def rules(self, admins: Sequence[str] = (), *, tz: tzinfo | None = None,
              templates: MailTemplates | None = None) -> ComplaintRules:
        """The pure rules' configuration: ``managers`` as set, else ``admins`` (the admins' user names, read from the
        store by the caller); ``tz`` the site's zone for dates in e-mails; ``templates`` (:func:`load_templates`)."""
        default = self.deadline_hours
        return ComplaintRules(
            types=tuple(Choice(t.key, t.title, t.title_en) for t in self.types),
            subject_kinds=tuple(Choice(k.key, k.title, k.title_en) for k in self.subject_kinds),
            subjects={kind: tuple(entries) for kind, entries in self.subjects.items()},
            causes=tuple(self.causes), departments=tuple(self.departments), workshops=tuple(self.workshops),
            managers=tuple(self.managers) if self.managers else tuple(admins),
            default_responsible=self.default_responsible,
            responsible_by_type=dict(self.responsible_by_type),
            stage_hours={stage: float(getattr(default, stage)) for stage in STAGES if stage != "closed"},
            type_hours={key: _overrides(hours) for key, hours in self.deadline_hours_by_type.items()},
            client_language=self.client_language, staff_language=self.staff_language, tz=tz,
            templates=templates if templates is not None else MailTemplates(),
        )


def _overrides(hours: StageHoursOverride) -> dict[Stage, float]:
    return {stage: float(value) for stage in STAGES if stage != "closed"
            if (value := getattr(hours, stage)) is not None}


# -- the templates folder --------------------------------------------------------------------------------------------


def load_templates(folder: Path | None, *, write_defaults: bool = True) -> MailTemplates:
    """The templates in use: a site's copies in ``folder`` (``<name>.<language>.txt``) over the shipped ones.

    With ``write_defaults`` (the daemon at start), the folder is made and the shipped templates written into it
    first, those not there yet (:func:`write_default_templates`), so the site finds every template there to edit.
    Raises ``ValueError`` naming the file and what is wrong with it (``cti check-config`` lists them all:
    :func:`template_problems`)."""
    if folder is None:
        return MailTemplates()
    if write_defaults:
        write_default_templates(folder)
    problems = template_problems(folder)
    if problems:
        raise ValueError("; ".join(problems))
    overrides: dict[tuple[TemplateName, Language], MailTemplate] = {}
    for name in TEMPLATE_NAMES:
        for language in LANGUAGES:
            path = folder / template_file_name(name, language)
            if path.is_file():
                overrides[(name, language)] = parse_template(path.read_text(encoding="utf-8"))
    return MailTemplates(overrides)


def template_problems(folder: Path) -> list[str]:
    """What is wrong with the site's templates, one ``file: problem`` line each. A folder not made yet is fine when
    its parent exists (the daemon makes it at start, with the shipped templates in it)."""
    if not folder.is_dir():
        if folder.parent.is_dir() and not folder.exists():
            return []
        return [f"complaints.templates_folder: {folder}: not a folder, and cannot be made there (its parent "
                f"{folder.parent} is no folder)" if not folder.exists() else
                f"complaints.templates_folder: {folder}: not a folder"]
    problems: list[str] = []
    for name in TEMPLATE_NAMES:
        for language in LANGUAGES:
            path = folder / template_file_name(name, language)
            if not path.exists():
                continue
            try:
                parse_template(path.read_bytes().decode("utf-8"))
            except UnicodeDecodeError:
                problems.append(f"{path}: not UTF-8 text")
            except OSError as exc:
                problems.append(f"{path}: cannot read: {exc.strerror}")
            except TemplateError as exc:
                problems.append(f"{path}: {exc}")
    return problems


def write_default_templates(folder: Path) -> list[Path]:
    """Write the shipped templates into ``folder`` as editable copies (those not there yet; an edited copy is never
    overwritten); the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for (name, language), template in DEFAULT_MAIL_TEMPLATES.items():
        path = folder / template_file_name(name, language)
        if not path.exists():
            path.write_text(template_text(template, language), encoding="utf-8")
            written.append(path)
    return written
