"""Reading a script's TOML text into a checked :class:`~cti.scripts.model.Script`, or saying everything wrong with it.

A script is written by hand by whoever runs the call centre, and a mistake in it must show when it is loaded, not
when an agent is on the phone in the middle of the route that has it. So the whole file is read and every problem
found is reported at once (a TOML syntax error stops the reading: nothing after it can be trusted), each naming
the file, the step and, where the text shows it, the line. Only a script without errors is returned.

Pure: the edge reads the folder and hands over each file's text and name; the graph checks live in
``cti/scripts/graph.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, replace
from typing import Any

from ..directory import CONTACT_KINDS
from .graph import check_graph
from .model import (
    CAR_NEEDS,
    FIELD_TYPES,
    STAGES,
    STEP_KINDS,
    TRANSFER_MODES,
    Branch,
    Employee,
    FieldSpec,
    Next,
    Option,
    Script,
    Step,
)
from .problems import Problem

#: A script bigger than this is refused unread; it is a hand-written file of a few kilobytes.
MAX_SCRIPT_BYTES = 256 * 1024
#: At most this many steps, options per choice, fields per step, and branches nested in one ``next``.
MAX_STEPS, MAX_OPTIONS, MAX_FIELDS, MAX_BRANCH_DEPTH = 200, 40, 30, 8
#: The longest title, label or employee name, and the longest text to say.
MAX_LABEL, MAX_SAY = 200, 4000

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._\-]{0,63}$")
_TOML_LINE = re.compile(r"at line (\d+)")
_STEP_HEADER = re.compile(r"^\s*\[\[\s*steps\s*\]\]")
_TABLE_HEADER = re.compile(r"^\s*\[")
_ID_LINE = re.compile(r"""^\s*id\s*=\s*["']([^"']*)["']""")

_TOP_KEYS = {"name", "title", "version", "language", "description", "start", "employees", "steps"}
_COMMON_KEYS = {"id", "kind", "title", "text"}
_KIND_KEYS: dict[str, set[str]] = {
    "prompt": {"next"},
    "choice": {"options", "next"},
    "fields": {"fields", "next"},
    "identify": {"next", "client_kind", "car", "name_required"},
    "pick_earlier": {"next", "required"},
    "transfer": {"employee", "list", "mode", "answered", "not_answered"},
    "reminder": {"employee", "list", "next"},
    "register": {"stages"},
    "end": set(),
}
_OPTION_KEYS = {"label", "value", "reason", "next", "stages"}
_FIELD_KEYS = {"name", "type", "label", "required", "multiline", "max_length", "list", "min", "max", "integer",
               "future"}
_FIELD_TYPE_KEYS: dict[str, set[str]] = {
    "text": {"multiline", "max_length"}, "employee": {"list"}, "number": {"min", "max", "integer"},
    "date": {"future"}, "datetime": {"future"},
}


@dataclass(frozen=True, slots=True)
class Loaded:
    """What loading a file gave: the script when it has no error, and every problem found (warnings too)."""

    script: Script | None
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if not p.warning)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.warning)


def script_version(data: dict[str, Any]) -> str:
    """The content's version: 12 hex digits of the SHA-256 of the parsed TOML as canonical JSON.

    Parsed, not raw: comments, spacing and key order do not make a new version; any value does.
    """
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def step_lines(text: str) -> dict[str, list[int]]:
    """Where each step's ``id = "…"`` is written (1-based lines), for error messages; TOML keeps no positions."""
    lines: dict[str, list[int]] = {}
    in_step = False
    for number, line in enumerate(text.splitlines(), start=1):
        if _TABLE_HEADER.match(line):
            in_step = bool(_STEP_HEADER.match(line))
            continue
        match = _ID_LINE.match(line) if in_step else None
        if match:
            lines.setdefault(match.group(1), []).append(number)
            in_step = False
    return lines


def load_script(text: str, file: str) -> Loaded:
    """Read and check one script file's text; ``file`` names it in every problem."""
    if len(text.encode("utf-8", "replace")) > MAX_SCRIPT_BYTES:
        return Loaded(None, (Problem(file, f"the file is larger than {MAX_SCRIPT_BYTES // 1024} KiB"),))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        line = int(found.group(1)) if found else None
        return Loaded(None, (Problem(file, f"TOML syntax error: {exc}", line=line),))
    reader = _Reader(file, step_lines(text))
    script = reader.script(data)
    reader.problems.extend(check_graph(script, reader.line_of, reader.broken))
    problems = tuple(reader.problems)
    if any(not p.warning for p in problems):
        return Loaded(None, problems)
    return Loaded(script, problems)


class _Reader:
    """One file's reading: collects problems instead of stopping at the first."""

    def __init__(self, file: str, lines: dict[str, list[int]]) -> None:
        self.file = file
        self.lines = lines
        self.problems: list[Problem] = []
        self.broken: set[str] = set()  # steps that exist but could not be read: no "is no step" for them

    def line_of(self, step: str | None, nth: int = 0) -> int | None:
        found = self.lines.get(step or "", [])
        return found[nth] if len(found) > nth else None

    def problem(self, message: str, step: str | None = None, *, nth: int = 0) -> None:
        self.problems.append(Problem(self.file, message, step=step, line=self.line_of(step, nth)))

    # -- the top level ---------------------------------------------------------------------------------------

    def script(self, data: dict[str, Any]) -> Script:
        """The script as far as it could be read (checked further by the graph checks, returned only if clean)."""
        for key in sorted(set(data) - _TOP_KEYS):
            self.problem(f"unknown key {key!r} (known: {', '.join(sorted(_TOP_KEYS))})")
        name = data.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            self.problem("name: required, lower-case letters, digits, '.', '_' or '-' (e.g. \"car-service\")")
            name = "?"
        title = self.label(data.get("title"), "title", None, required=True)
        label = data.get("version")
        if label is not None and not (isinstance(label, str | int) and not isinstance(label, bool)):
            self.problem("version: a label such as \"2026.1\" (the content's hash is the version recorded)")
            label = None
        language = data.get("language")
        if language is not None and not isinstance(language, str):
            self.problem("language: expected a language code such as \"ru\"")
            language = None
        if "description" in data and not isinstance(data["description"], str):
            self.problem("description: expected text")
        employees, config_lists = self.employees(data.get("employees", {}))
        steps = self.steps(data.get("steps"))
        start = data.get("start")
        if not isinstance(start, str) or not start:
            self.problem("start: required, the id of the first step")
            start = ""
        return Script(name=name, title=title or "?", start=start, steps=steps, version=script_version(data),
                      label=str(label) if label is not None else None, language=language,
                      employees=employees, config_lists=frozenset(config_lists), file=self.file)

    def label(self, value: object, what: str, step: str | None, *, required: bool = False,
              limit: int = MAX_LABEL) -> str | None:
        if value is None:
            if required:
                self.problem(f"{what}: required", step)
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(f"{what}: expected text", step)
            return None
        if len(value) > limit:
            self.problem(f"{what}: longer than {limit} characters", step)
            return None
        return value.strip()

    def employees(self, raw: object) -> tuple[dict[str, tuple[Employee, ...]], list[str]]:
        lists: dict[str, tuple[Employee, ...]] = {}
        from_config: list[str] = []
        if not isinstance(raw, dict):
            self.problem("employees: expected a table of lists (masters = [ { id, name, extension }, … ])")
            return lists, from_config
        for list_name, entries in raw.items():
            if entries == "config":
                from_config.append(list_name)
                continue
            if not isinstance(entries, list) or not entries:
                self.problem(f"employees.{list_name}: expected a list of {{ id, name, extension }} or \"config\"")
                continue
            people: list[Employee] = []
            for n, entry in enumerate(entries, start=1):
                employee = self.employee(entry, f"employees.{list_name}[{n}]")
                if employee is not None and any(e.id == employee.id for e in people):
                    self.problem(f"employees.{list_name}: the id {employee.id!r} is there twice")
                elif employee is not None:
                    people.append(employee)
            lists[list_name] = tuple(people)
        return lists, from_config

    def employee(self, entry: object, where: str) -> Employee | None:
        if not isinstance(entry, dict) or set(entry) - {"id", "name", "extension"}:
            self.problem(f"{where}: expected {{ id, name, extension }}")
            return None
        employee_id, name, extension = entry.get("id"), entry.get("name"), entry.get("extension")
        if not isinstance(employee_id, str) or not _ID.match(employee_id):
            self.problem(f"{where}: id: required, letters, digits, '_' or '-'")
            return None
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_LABEL:
            self.problem(f"{where}: name: required text")
            return None
        if extension is not None and not (isinstance(extension, str) and extension.isdigit() and len(extension) < 16):
            self.problem(f"{where}: extension: expected digits as text, e.g. \"104\"")
            return None
        return Employee(employee_id, name.strip(), extension)

    # -- steps -----------------------------------------------------------------------------------------------

    def steps(self, raw: object) -> dict[str, Step]:
        steps: dict[str, Step] = {}
        if not isinstance(raw, list) or not raw:
            self.problem("steps: required, one [[steps]] table per step")
            return steps
        if len(raw) > MAX_STEPS:
            self.problem(f"steps: more than {MAX_STEPS}")
            return steps
        seen: dict[str, int] = {}
        for n, entry in enumerate(raw, start=1):
            if not isinstance(entry, dict):
                self.problem(f"steps[{n}]: expected a table")
                continue
            step_id = entry.get("id")
            if not isinstance(step_id, str) or not _ID.match(step_id):
                self.problem(f"steps[{n}]: id: required, letters, digits, '_' or '-' (at most 64)")
                continue
            seen[step_id] = seen.get(step_id, 0) + 1
            if seen[step_id] > 1:
                self.problem(f"duplicate step id {step_id!r} (each step needs its own)", step_id, nth=seen[step_id] - 1)
                continue
            step = self.step(step_id, entry)
            if step is not None:
                steps[step_id] = step
            else:
                self.broken.add(step_id)
        return steps

    def step(self, step_id: str, entry: dict[str, Any]) -> Step | None:
        kind = entry.get("kind")
        if kind not in STEP_KINDS:
            self.problem(f"kind: {kind!r} is not a step kind (known: {', '.join(STEP_KINDS)})", step_id)
            return None
        for key in sorted(set(entry) - _COMMON_KEYS - _KIND_KEYS[kind]):
            self.problem(f"unknown key {key!r} for a {kind} step", step_id)
        title = self.label(entry.get("title"), "title", step_id) or step_id
        text = self.label(entry.get("text"), "text", step_id, required=kind == "prompt", limit=MAX_SAY) or ""
        step = Step(id=step_id, kind=kind, title=title, text=text)
        if kind in ("prompt", "fields", "identify", "pick_earlier", "reminder"):
            nxt = self.next(entry.get("next"), step_id, "next", required=True)
        elif kind == "choice":
            nxt = self.next(entry.get("next"), step_id, "next", required=False)
        else:
            nxt = None
        return self.kind_details(step, entry, nxt)

    def kind_details(self, step: Step, entry: dict[str, Any], nxt: Next | None) -> Step:
        step = replace(step, next=nxt)
        if step.kind == "choice":
            return replace(step, options=self.options(entry.get("options"), step.id, nxt))
        if step.kind == "fields":
            return replace(step, fields=self.fields(entry.get("fields"), step.id))
        if step.kind == "identify":
            client_kind = entry.get("client_kind", "private")
            if client_kind not in CONTACT_KINDS:
                self.problem(f"client_kind: {client_kind!r} (known: {', '.join(CONTACT_KINDS)})", step.id)
                client_kind = "private"
            car = entry.get("car", "optional")
            if car not in CAR_NEEDS:
                self.problem(f"car: {car!r} (known: {', '.join(CAR_NEEDS)})", step.id)
                car = "optional"
            return replace(step, client_kind=client_kind, car=car,
                           name_required=self.flag(entry, "name_required", step.id, False))
        if step.kind == "pick_earlier":
            return replace(step, required=self.flag(entry, "required", step.id, True))
        if step.kind in ("transfer", "reminder"):
            employee, list_name = entry.get("employee"), entry.get("list")
            if employee is not None and not isinstance(employee, str):
                self.problem("employee: expected the fact holding the employee, e.g. \"earlier.employee\"", step.id)
                employee = None
            if list_name is not None and not isinstance(list_name, str):
                self.problem("list: expected the name of an employee list", step.id)
                list_name = None
            if step.kind == "reminder":
                return replace(step, employee=employee, list=list_name)
            if employee is None and list_name is None:
                self.problem("a transfer needs an employee (a fact) or a list to pick from", step.id)
            mode = entry.get("mode", "blind")
            if mode not in TRANSFER_MODES:
                self.problem(f"mode: {mode!r} (known: {', '.join(TRANSFER_MODES)})", step.id)
                mode = "blind"
            return replace(step, employee=employee, list=list_name, mode=mode,
                           answered=self.next(entry.get("answered"), step.id, "answered", required=True),
                           not_answered=self.next(entry.get("not_answered"), step.id, "not_answered", required=True))
        if step.kind == "register":
            return replace(step, stages=self.stages(entry.get("stages", []), step.id, "stages"))
        return step

    def flag(self, entry: dict[str, Any], key: str, step_id: str | None, default: bool) -> bool:
        value = entry.get(key, default)
        if not isinstance(value, bool):
            self.problem(f"{key}: expected true or false", step_id)
            return default
        return value

    def stages(self, raw: object, step_id: str, what: str) -> tuple[Any, ...]:
        if not isinstance(raw, list) or any(s not in STAGES for s in raw):
            self.problem(f"{what}: expected a list of {', '.join(STAGES)}", step_id)
            return ()
        return tuple(dict.fromkeys(raw))

    def next(self, raw: object, step_id: str, what: str, *, required: bool, depth: int = 0) -> Next | None:
        """A ``next``: a step id, or ``{ if = "fact", equals = …, then = …, else = … }`` (nestable)."""
        if raw is None:
            if required:
                self.problem(f"{what}: required (the step it leads to)", step_id)
            return None
        if isinstance(raw, str):
            return raw
        if not isinstance(raw, dict) or depth >= MAX_BRANCH_DEPTH:
            self.problem(f"{what}: expected a step id or {{ if = \"fact\", then = …, else = … }}", step_id)
            return None
        unknown = set(raw) - {"if", "equals", "then", "else"}
        fact = raw.get("if")
        if unknown or not isinstance(fact, str) or "then" not in raw or "else" not in raw:
            self.problem(f"{what}: a branch is {{ if = \"fact\", equals = value (optional), then = …, else = … }}",
                         step_id)
            return None
        equals = raw.get("equals")
        if equals is not None and not isinstance(equals, str | int | float | bool):
            self.problem(f"{what}: equals: expected text, a number or true/false", step_id)
            return None
        then = self.next(raw["then"], step_id, f"{what}.then", required=True, depth=depth + 1)
        otherwise = self.next(raw["else"], step_id, f"{what}.else", required=True, depth=depth + 1)
        if then is None or otherwise is None:
            return None
        return Branch(fact=fact, then=then, otherwise=otherwise, equals=equals, has_equals="equals" in raw)

    def options(self, raw: object, step_id: str, default: Next | None) -> tuple[Option, ...]:
        if not isinstance(raw, list) or not raw:
            self.problem("options: required, a list of { label, reason or value, next }", step_id)
            return ()
        if len(raw) > MAX_OPTIONS:
            self.problem(f"options: more than {MAX_OPTIONS}", step_id)
            return ()
        options: list[Option] = []
        for n, entry in enumerate(raw, start=1):
            where = f"option {n}"
            if not isinstance(entry, dict):
                self.problem(f"{where}: expected {{ label, reason or value, next }}", step_id)
                continue
            for key in sorted(set(entry) - _OPTION_KEYS):
                self.problem(f"{where}: unknown key {key!r}", step_id)
            label = self.label(entry.get("label"), f"{where}: label", step_id, required=True)
            reason, value = entry.get("reason"), entry.get("value")
            if reason is not None and not (isinstance(reason, str) and _ID.match(reason)):
                self.problem(f"{where}: reason: expected a short code such as \"parts\"", step_id)
                reason = None
            value = value if value is not None else reason
            if not (isinstance(value, str) and _ID.match(value)):
                self.problem(f"{where}: needs a value (or a reason): a short code such as \"parts\"", step_id)
                continue
            if any(o.value == value for o in options):
                self.problem(f"{where}: the value {value!r} is given twice", step_id)
                continue
            nxt = self.next(entry.get("next"), step_id, f"option {value!r}: next", required=False) or default
            if nxt is None:
                self.problem(f"option {value!r} leads nowhere: give it a next (or the step one)", step_id)
                continue
            stages = self.stages(entry.get("stages", []), step_id, f"{where}: stages")
            if label is not None:
                options.append(Option(label=label, value=value, next=nxt, reason=reason, stages=stages))
        return tuple(options)

    def fields(self, raw: object, step_id: str) -> tuple[FieldSpec, ...]:
        if not isinstance(raw, list) or not raw:
            self.problem("fields: required, a list of { name, type, label }", step_id)
            return ()
        if len(raw) > MAX_FIELDS:
            self.problem(f"fields: more than {MAX_FIELDS}", step_id)
            return ()
        specs: list[FieldSpec] = []
        for n, entry in enumerate(raw, start=1):
            spec = self.field(entry, n, step_id)
            if spec is not None and any(s.name == spec.name for s in specs):
                self.problem(f"field {spec.name!r} is there twice", step_id)
            elif spec is not None:
                specs.append(spec)
        return tuple(specs)

    def field(self, entry: object, n: int, step_id: str) -> FieldSpec | None:
        if not isinstance(entry, dict):
            self.problem(f"field {n}: expected {{ name, type, label }}", step_id)
            return None
        name, kind = entry.get("name"), entry.get("type")
        if not isinstance(name, str) or not _ID.match(name):
            self.problem(f"field {n}: name: required, letters, digits, '_' or '-'", step_id)
            return None
        where = f"field {name!r}"
        if kind not in FIELD_TYPES:
            self.problem(f"{where}: unknown field type {kind!r} (known: {', '.join(FIELD_TYPES)})", step_id)
            return None
        for key in sorted(set(entry) - {"name", "type"} - (_FIELD_KEYS & ({"label", "required"}
                                                                         | _FIELD_TYPE_KEYS.get(kind, set())))):
            self.problem(f"{where}: unknown key {key!r} for a {kind} field", step_id)
        label = self.label(entry.get("label"), f"{where}: label", step_id) or name
        bounds: list[float | None] = []
        for key in ("min", "max"):
            value = entry.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                self.problem(f"{where}: {key}: expected a number", step_id)
                value = None
            bounds.append(value)
        max_length = entry.get("max_length")
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                       or not 1 <= max_length <= 2000):
            self.problem(f"{where}: max_length: expected a whole number from 1 to 2000", step_id)
            max_length = None
        list_name = entry.get("list")
        if kind == "employee" and not isinstance(list_name, str):
            self.problem(f"{where}: an employee field needs a list (list = \"masters\")", step_id)
            list_name = None
        return FieldSpec(
            name=name, type=kind, label=label, required=self.flag(entry, "required", step_id, True),
            multiline=self.flag(entry, "multiline", step_id, False), max_length=max_length, list=list_name,
            minimum=bounds[0], maximum=bounds[1], integer=self.flag(entry, "integer", step_id, False),
            future=self.flag(entry, "future", step_id, False),
        )
