"""What a contact script is once loaded: a graph of steps, each of one kind, with where it goes next.

A script is read from TOML (``cti/scripts/loader.py``) and checked before any run can use it, so the runner
(``cti/scripts/runner.py``) trusts every reference here: each ``next`` names a step that exists, each field has a
known type, each employee list is declared. The classes are frozen: a run holds the same script object from start
to finish, and a changed file is a new :class:`Script` with a new :attr:`Script.version`.

``docs/contact-script.md`` describes the format for authors; the names here follow it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

#: A JSON value as the edge sends it and the run state keeps it.
JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"

StepKind = Literal["prompt", "choice", "fields", "identify", "pick_earlier", "transfer", "reminder", "register", "end"]
STEP_KINDS: tuple[StepKind, ...] = (
    "prompt", "choice", "fields", "identify", "pick_earlier", "transfer", "reminder", "register", "end",
)
#: The kinds that end a run: ``register`` makes the contact, ``end`` closes the run without one.
FINAL_KINDS: frozenset[str] = frozenset({"register", "end"})

FieldType = Literal["text", "phone", "plate", "make", "date", "time", "datetime", "employee", "number"]
FIELD_TYPES: tuple[FieldType, ...] = (
    "text", "phone", "plate", "make", "date", "time", "datetime", "employee", "number",
)

Stage = Literal["request", "booking", "visit"]
STAGES: tuple[Stage, ...] = ("request", "booking", "visit")

TransferMode = Literal["blind", "attended"]
TRANSFER_MODES: tuple[TransferMode, ...] = ("blind", "attended")

CarNeed = Literal["required", "optional", "none"]
CAR_NEEDS: tuple[CarNeed, ...] = ("required", "optional", "none")

#: How the contact came in (the register's channel): a phone call, a walk-in visit, a web enquiry, a call from the
#: mobile app or a mobile number, an invitation (we called them).
Channel = Literal["phone", "visit", "internet", "mobile", "invitation"]
CHANNELS: tuple[Channel, ...] = ("phone", "visit", "internet", "mobile", "invitation")

#: What a condition may read from the run's context (``context.<name>``).
CONTEXT_FACTS: frozenset[str] = frozenset({"channel", "caller", "contact"})


@dataclass(frozen=True, slots=True)
class Employee:
    """Someone a call can be passed to or a reminder assigned to: a master, the parts desk, a manager."""

    id: str
    name: str
    extension: str | None = None


@dataclass(frozen=True, slots=True)
class Branch:
    """``next = { if = "fact", equals = value, then = …, else = … }``: ``then`` when the fact holds.

    Without ``equals`` the fact holds when it is set and not false, zero or empty; with it, when it equals the value
    (an employee compares by id). A fact an unvisited step would set is unset.
    """

    fact: str
    then: Next
    otherwise: Next
    equals: str | int | float | bool | None = None
    has_equals: bool = False


#: Where a step goes: a step id, or a branch on an earlier answer.
Next: TypeAlias = "str | Branch"


@dataclass(frozen=True, slots=True)
class Option:
    """One answer of a ``choice`` step: the button's label, the value recorded, the reason it sets, where it goes."""

    label: str
    value: str
    next: Next
    reason: str | None = None
    stages: tuple[Stage, ...] = ()


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One typed field of a ``fields`` step."""

    name: str
    type: FieldType
    label: str
    required: bool = True
    multiline: bool = False  # text only: keeps line breaks
    max_length: int | None = None  # text only; None = the type's default
    list: str | None = None  # employee only: the employee list to pick from
    minimum: float | None = None  # number only
    maximum: float | None = None  # number only
    integer: bool = False  # number only
    future: bool = False  # date and datetime only: must not be in the past


@dataclass(frozen=True, slots=True)
class Step:
    """One step. Which attributes matter depends on :attr:`kind` (``docs/contact-script.md`` lists them)."""

    id: str
    kind: StepKind
    title: str
    text: str = ""
    next: Next | None = None  # every kind but choice (per option), transfer (per result) and the final kinds
    options: tuple[Option, ...] = ()  # choice
    fields: tuple[FieldSpec, ...] = ()  # fields
    client_kind: str = "private"  # identify: the kind of a new client
    car: CarNeed = "optional"  # identify: whether a new client's car is asked
    name_required: bool = False  # identify: whether a new client's name must be typed
    required: bool = True  # pick_earlier: whether "none of these" is allowed
    employee: str | None = None  # transfer, reminder: the fact holding the employee
    list: str | None = None  # transfer, reminder: the list the agent may pick from
    mode: TransferMode = "blind"  # transfer
    answered: Next | None = None  # transfer: where an answered transfer goes
    not_answered: Next | None = None  # transfer: where an unanswered one goes
    stages: tuple[Stage, ...] = ()  # register: the contact's stage flags

    @property
    def final(self) -> bool:
        return self.kind in FINAL_KINDS


@dataclass(frozen=True, slots=True)
class Script:
    """A loaded, checked script.

    ``version`` is derived from the content (the first 12 hex digits of the SHA-256 of the parsed TOML, written as
    canonical JSON): any change to a step, an option or a list is a new version, and reformatting or editing
    comments is not. A contact records ``name`` and ``version``; ``label`` is the author's own ``version = "…"``,
    shown beside it, and never trusted to change when the content does.
    """

    name: str
    title: str
    start: str
    steps: dict[str, Step]
    version: str
    label: str | None = None
    language: str | None = None
    employees: dict[str, tuple[Employee, ...]] = field(default_factory=dict)
    config_lists: frozenset[str] = frozenset()  # lists the config gives (``masters = "config"``)
    file: str = ""

    def step(self, step_id: str) -> Step:
        return self.steps[step_id]


def branch_targets(target: Next | None) -> list[str]:
    """Every step id a ``next`` may lead to (both sides of every branch)."""
    if target is None:
        return []
    if isinstance(target, str):
        return [target]
    return branch_targets(target.then) + branch_targets(target.otherwise)


def branch_facts(target: Next | None) -> list[Branch]:
    """Every branch inside a ``next``."""
    if target is None or isinstance(target, str):
        return []
    return [target, *branch_facts(target.then), *branch_facts(target.otherwise)]


def step_nexts(step: Step) -> list[tuple[str, Next]]:
    """The step's ``next`` values with what each is called in an error message."""
    out: list[tuple[str, Next]] = []
    if step.next is not None:
        out.append(("next", step.next))
    for option in step.options:
        if option.next is not step.next:  # an option without its own next follows the step's: checked once
            out.append((f"option {option.value!r}", option.next))
    if step.answered is not None:
        out.append(("answered", step.answered))
    if step.not_answered is not None:
        out.append(("not_answered", step.not_answered))
    return out


def successors(step: Step) -> list[str]:
    """The steps this one may lead to, in order, each once."""
    out: list[str] = []
    for _, target in step_nexts(step):
        for step_id in branch_targets(target):
            if step_id not in out:
                out.append(step_id)
    return out
