"""Following a script: a pure state machine from the first step to the contact.

The edge (the server) keeps a :class:`RunState` per run and feeds it what the agent did and what the PBX said;
each call returns a new state and the *effects* the edge must carry out: :class:`TransferWanted` (the AMI
transfer), :class:`ReminderWanted` (a call-back reminder), :class:`ContactReady` (the contact to register) and
:class:`RunEnded` (the run closed without a contact). No clock: every call takes ``now``. Nothing raises from deep
inside: an answer to a step that is not current, a bad value or a broken saved state comes back as a
:class:`Refused` with a code, a message and, for typed fields, one message per field.

A transfer takes two answers at its step: the agent's request (which employee; the effect goes out, the run waits)
and then the edge's result (``answered``/``not_answered``), which picks the branch.

Time spent is recorded per visit of a step (entered, left), including visits undone by going back: the sum per step
is what the agent really spent there.

A state serialises to JSON (:func:`state_to_json`) as the inputs accepted at each step with their times, and is
restored (:func:`state_from_json`) by replaying those inputs against the same script version: a restored run is
one the runner itself could have produced, whatever was stored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, TypeAlias

from ..directory import CONTACT_KINDS, ContactKind
from .fields import (
    FieldContext,
    Read,
    employee_value,
    find_employee,
    moment_epoch,
    read_datetime,
    read_field,
    read_make,
    read_phone,
    read_plate,
    read_text,
)
from .model import (
    CHANNELS,
    Branch,
    Channel,
    Employee,
    JsonObject,
    JsonValue,
    Next,
    Script,
    Stage,
    Step,
    TransferMode,
)

#: A run may visit at most this many steps (going back and forth included) and keeps at most this many step
#: times: a state stays small whatever an agent or a client does.
MAX_VISITS = 100
MAX_TIMES = 400
#: An answer is one JSON object of at most this many keys, nested at most this deep, with at most this many
#: characters of text in all: bigger is refused before any field is read.
MAX_ANSWER_KEYS = 40
MAX_ANSWER_DEPTH = 3
MAX_ANSWER_CHARS = 256 * 1024
#: A note on a reminder or a final step, a discard reason.
NOTE_LIMIT = 1000
#: The format of :func:`state_to_json`'s output.
STATE_FORMAT = 1

Status = Literal["open", "registered", "ended", "discarded"]
RefusalCode = Literal["script_mismatch", "finished", "not_current", "bad_answer", "bad_value", "transfer_pending",
                      "no_way_back", "too_long", "bad_state"]


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a run starts with: how the contact came in, the call, the card found by number, who follows it.

    ``employees`` are the lists the configuration gives; they replace the script's lists of the same name, so a
    site puts its own masters in without editing (and so re-versioning) the script.
    """

    channel: Channel = "phone"
    linkedid: str | None = None
    pbx: str | None = None
    caller: str | None = None  # the caller's normalised number, None when withheld or not a call
    contact_id: int | None = None  # the directory's card found by the number, if any
    agent: str | None = None
    tz: str = "UTC"
    region: str = "RU"
    employees: Mapping[str, tuple[Employee, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Visit:
    """One step on the route: when it was entered, the inputs accepted there (with their times), its answer."""

    step: str
    entered_at: float
    inputs: tuple[tuple[float, JsonObject], ...] = ()
    answer: JsonObject | None = None


@dataclass(frozen=True, slots=True)
class StepTime:
    step: str
    entered_at: float
    left_at: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.left_at - self.entered_at)


@dataclass(frozen=True, slots=True)
class RunState:
    script: str
    version: str
    context: RunContext
    started_at: float
    stack: tuple[Visit, ...]
    times: tuple[StepTime, ...] = ()
    status: Status = "open"
    finished_at: float | None = None
    discard_reason: str | None = None

    @property
    def current(self) -> str | None:
        """The step waiting for an answer; None once the run is finished."""
        return self.stack[-1].step if self.status == "open" else None

    @property
    def transfer_pending(self) -> bool:
        """A transfer was asked for at the current step and its result is awaited."""
        return self.status == "open" and bool(self.stack[-1].inputs)

    @property
    def route(self) -> tuple[str, ...]:
        return tuple(v.step for v in self.stack)


@dataclass(frozen=True, slots=True)
class ClientDraft:
    """A new client as the agent entered them, with their car: the register creates the directory's contact."""

    kind: ContactKind
    name: str | None = None
    phone: str | None = None
    make: str | None = None
    model: str | None = None
    plate: str | None = None


@dataclass(frozen=True, slots=True)
class ContactDraft:
    """A finished run: what the contact register stores (and, for an ``end`` or a discard, what it may account)."""

    script: str
    version: str
    label: str | None
    status: Status
    channel: Channel
    linkedid: str | None
    pbx: str | None
    agent: str | None
    started_at: float
    finished_at: float
    route: tuple[str, ...]
    answers: Mapping[str, JsonObject]
    reason: str | None
    contact_id: int | None
    vehicle_id: int | None
    new_client: ClientDraft | None
    employee: Employee | None  # the employee the call was passed to (the last transfer), answered or not
    transfer_answered: bool | None
    earlier_call: str | None
    earlier_contact: int | None
    stages: tuple[Stage, ...]
    times: tuple[StepTime, ...]
    note: str | None = None
    discard_reason: str | None = None

    def seconds_at(self, step: str) -> float:
        """The time spent at a step, all its visits together."""
        return sum(t.seconds for t in self.times if t.step == step)


@dataclass(frozen=True, slots=True)
class TransferWanted:
    """Transfer the run's call to an employee's extension (the edge sends the AMI action, then reports the result)."""

    step: str
    linkedid: str | None
    pbx: str | None
    employee: Employee
    mode: TransferMode


@dataclass(frozen=True, slots=True)
class ReminderWanted:
    """A call-back reminder for an employee: call ``number`` at ``due_at``."""

    step: str
    employee: Employee
    number: str
    due_at: float
    due: str  # ISO 8601 with the site's offset
    note: str | None
    contact_id: int | None
    client_name: str | None
    linkedid: str | None


@dataclass(frozen=True, slots=True)
class ContactReady:
    draft: ContactDraft


@dataclass(frozen=True, slots=True)
class RunEnded:
    """The run closed without a contact: an ``end`` step, or discarded with a reason."""

    draft: ContactDraft


Effect: TypeAlias = TransferWanted | ReminderWanted | ContactReady | RunEnded


@dataclass(frozen=True, slots=True)
class Done:
    """An accepted action: the new state and what the edge must do."""

    state: RunState
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True, slots=True)
class Refused:
    """A refused action; the state is unchanged. ``fields`` has one message per typed field that was wrong."""

    code: RefusalCode
    message: str
    fields: Mapping[str, str] = field(default_factory=dict)


Result: TypeAlias = Done | Refused


# -- starting, answering, going back, discarding ---------------------------------------------------------------


def start(script: Script, now: float, context: RunContext) -> RunState:
    """A new run of ``script`` at its first step."""
    return RunState(script=script.name, version=script.version, context=context, started_at=now,
                     stack=(Visit(script.start, now),))


def employee_lists(script: Script, context: RunContext) -> dict[str, tuple[Employee, ...]]:
    """The employee lists of a run: the script's, with the config's lists in place of those of the same name."""
    return {**script.employees, **context.employees}


def current_step(script: Script, state: RunState) -> Step | None:
    return script.steps.get(state.current) if state.current is not None else None


def answer(script: Script, state: RunState, step_id: str, value: object, now: float) -> Result:
    """Answer the current step (``step_id`` must be it) with ``value``, a JSON object as the edge received it."""
    refused = _check_turn(script, state, step_id)
    if refused is not None:
        return refused
    if not isinstance(value, dict):
        return Refused("bad_answer", "an answer is a JSON object")
    size = _size(value, 0)
    if size is None:
        return Refused("bad_answer", f"an answer has at most {MAX_ANSWER_KEYS} keys, nested at most "
                                     f"{MAX_ANSWER_DEPTH} deep, made of text, numbers, true/false and null")
    if size > MAX_ANSWER_CHARS:
        return Refused("too_long", f"the answer is larger than {MAX_ANSWER_CHARS // 1024} KiB")
    own: dict[str, JsonValue] = json.loads(json.dumps(value))  # the run's copy: the edge's object may change
    step = script.steps[step_id]
    turn = _Turn(script, state, step, own, max(now, state.stack[-1].entered_at))
    return turn.run()


def back(script: Script, state: RunState, now: float) -> Result:
    """Go back one step: the current step is left unanswered and the previous one is open again, its answer dropped.

    Not over a transfer that was asked for or a reminder that was set: the PBX has acted and the reminder exists.
    """
    refused = _check_turn(script, state, state.current or "")
    if refused is not None:
        return refused
    if state.transfer_pending:
        return Refused("transfer_pending", "a transfer is in progress: wait for its result")
    if len(state.stack) < 2:
        return Refused("no_way_back", "this is the first step")
    previous = script.steps[state.stack[-2].step]
    if previous.kind in ("transfer", "reminder"):
        done = "the transfer was made" if previous.kind == "transfer" else "the reminder was set"
        return Refused("no_way_back", f"{done}: it cannot be taken back")
    current = state.stack[-1]
    now = max(now, current.entered_at)
    times = _add_time(state.times, StepTime(current.step, current.entered_at, now))
    if times is None:
        return Refused("too_long", "this run is too long to go on")
    stack = (*state.stack[:-2], Visit(previous.id, now))
    return Done(replace(state, stack=stack, times=times))


def discard(script: Script, state: RunState, reason: object, now: float) -> Result:
    """Close an open run without a contact, with the agent's reason (a call that ended mid-script and is not one)."""
    refused = _check_turn(script, state, state.current or "")
    if refused is not None:
        return refused
    read = read_text(reason, limit=NOTE_LIMIT)
    if read.error is not None or read.value is None:
        return Refused("bad_value", f"a reason to discard: {read.error or 'required'}", {"reason": read.error or
                                                                                        "required"})
    current = state.stack[-1]
    now = max(now, current.entered_at)
    times = _add_time(state.times, StepTime(current.step, current.entered_at, now)) or state.times
    closed = replace(state, times=times, status="discarded", finished_at=now, discard_reason=str(read.value))
    return Done(closed, (RunEnded(draft(script, closed)),))


def _check_turn(script: Script, state: RunState, step_id: str) -> Refused | None:
    if state.script != script.name or state.version != script.version:
        return Refused("script_mismatch", f"this run follows {state.script!r} version {state.version}, "
                                          f"not {script.name!r} version {script.version}")
    if state.status != "open":
        return Refused("finished", "this run is finished")
    if step_id != state.current:
        return Refused("not_current", f"the current step is {state.current!r}, not {step_id!r}")
    return None


def _size(value: JsonValue | object, depth: int) -> int | None:
    """Characters of text in a JSON value, or None when it is not a plain, bounded JSON value."""
    if value is None or isinstance(value, bool | int):
        return 1
    if isinstance(value, float):
        return 1 if math.isfinite(value) else None
    if isinstance(value, str):
        return len(value)
    if depth >= MAX_ANSWER_DEPTH:
        return None
    if isinstance(value, dict):
        if len(value) > MAX_ANSWER_KEYS or not all(isinstance(k, str) and len(k) <= 64 for k in value):
            return None
        items: list[object] = list(value.values())
    elif isinstance(value, list):
        if len(value) > MAX_ANSWER_KEYS:
            return None
        items = list(value)
    else:
        return None
    total = 0
    for item in items:
        size = _size(item, depth + 1)
        if size is None:
            return None
        total += size
    return total


def _add_time(times: tuple[StepTime, ...], entry: StepTime) -> tuple[StepTime, ...] | None:
    return (*times, entry) if len(times) < MAX_TIMES else None


# -- facts and branches ----------------------------------------------------------------------------------------


def _answers(state: RunState) -> dict[str, JsonObject]:
    """Each answered step's answer on the route (a step on it twice: the later answer)."""
    return {v.step: v.answer for v in state.stack if v.answer is not None}


def fact(state: RunState, name: str) -> JsonValue:
    """The value of a fact (``client.new``, ``reason``, ``context.caller``); None when its step was not answered."""
    head, dot, attr = name.partition(".")
    if head == "reason" and not dot:
        return _reason(state)
    if head == "context":
        ctx = state.context
        return {"channel": ctx.channel, "caller": ctx.caller, "contact": ctx.contact_id}.get(attr)
    found = _answers(state).get(head)
    if found is None:
        return None
    return found.get("value") if not attr else found.get(attr)


def _same(a: JsonValue, b: JsonValue) -> bool:
    """Equal, with true/false never equal to 1/0 (TOML and JSON tell them apart, and so do authors)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def _holds(value: JsonValue, branch: Branch) -> bool:
    if isinstance(value, dict):  # an employee: compared by id
        value = value.get("id")
    if branch.has_equals:
        return _same(value, branch.equals)
    return value not in (None, False, 0, "", [], {})


def resolve(state: RunState, target: Next) -> str:
    """The step a ``next`` leads to, given the answers so far."""
    while isinstance(target, Branch):
        target = target.then if _holds(fact(state, target.fact), target) else target.otherwise
    return target


def _reason(state: RunState) -> str | None:
    reason: str | None = None
    for visit in state.stack:
        if visit.answer is not None and isinstance(visit.answer.get("reason"), str):
            reason = str(visit.answer["reason"])
    return reason


# -- one answer ------------------------------------------------------------------------------------------------


class _Turn:
    """One answer to one step: read by the step's kind, then leave the step (or stay, for a transfer request)."""

    def __init__(self, script: Script, state: RunState, step: Step, value: dict[str, JsonValue], now: float):
        self.script, self.state, self.step, self.value, self.now = script, state, step, value, now
        self.lists = employee_lists(script, state.context)
        ctx = state.context
        self.fields = FieldContext(now=now, tz=ctx.tz, region=ctx.region, employees=self.lists)

    def run(self) -> Result:
        handler = getattr(self, f"_{self.step.kind}")
        result: Result = handler()
        return result

    # -- helpers

    def _keys(self, allowed: set[str]) -> Refused | None:
        unknown = sorted(set(self.value) - allowed)
        if unknown:
            return Refused("bad_answer", f"a {self.step.kind} step takes {', '.join(sorted(allowed)) or 'no keys'}; "
                                         f"not {', '.join(unknown)}")
        return None

    def _leave(self, answer: JsonObject, target: Next | None, effects: tuple[Effect, ...] = ()) -> Result:
        state, visit = self.state, self.state.stack[-1]
        done = replace(visit, inputs=(*visit.inputs, (self.now, dict(self.value))), answer=answer)
        stack = (*state.stack[:-1], done)
        times = _add_time(state.times, StepTime(visit.step, visit.entered_at, self.now))
        if times is None:
            return Refused("too_long", "this run is too long to go on")
        moved = replace(state, stack=stack, times=times)
        if self.step.final:
            status: Status = "registered" if self.step.kind == "register" else "ended"
            closed = replace(moved, status=status, finished_at=self.now)
            contact = draft(self.script, closed)
            ending: Effect = ContactReady(contact) if status == "registered" else RunEnded(contact)
            return Done(closed, (*effects, ending))
        assert target is not None  # every non-final step has a next: checked at load
        if len(stack) >= MAX_VISITS:
            return Refused("too_long", f"a run visits at most {MAX_VISITS} steps")
        following = resolve(moved, target)
        return Done(replace(moved, stack=(*stack, Visit(following, self.now))), effects)

    def _field_errors(self, errors: dict[str, str]) -> Refused:
        listed = "; ".join(f"{name}: {error}" for name, error in errors.items())
        return Refused("bad_value", listed, errors)

    def _employee(self, raw: JsonValue, list_name: str | None) -> Employee | None:
        if not isinstance(raw, str):
            return None
        return find_employee(raw, self.lists, list_name)

    def _employee_from_fact(self, name: str | None) -> Employee | None:
        if name is None:
            return None
        value = fact(self.state, name)
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            found = find_employee(str(value["id"]), self.lists)
            if found is not None:
                return found
            extension = value.get("extension")
            return Employee(str(value["id"]), str(value.get("name") or value["id"]),
                            extension if isinstance(extension, str) else None)
        return None

    def _last_transfer_employee(self) -> Employee | None:
        for visit in reversed(self.state.stack[:-1]):
            if self.script.steps[visit.step].kind == "transfer" and visit.answer is not None:
                return _employee_of(visit.answer.get("employee"))
        return None

    # -- the kinds

    def _prompt(self) -> Result:
        return self._keys(set()) or self._leave({}, self.step.next)

    def _register(self) -> Result:
        return self._final()

    def _end(self) -> Result:
        return self._final()

    def _final(self) -> Result:
        refused = self._keys({"note"})
        if refused:
            return refused
        note = read_text(self.value.get("note"), limit=NOTE_LIMIT, multiline=True) if "note" in self.value else Read()
        if note.error:
            return self._field_errors({"note": note.error})
        return self._leave({"note": note.value}, None)

    def _choice(self) -> Result:
        refused = self._keys({"option"})
        if refused:
            return refused
        chosen = next((o for o in self.step.options if o.value == self.value.get("option")), None)
        if chosen is None:
            values = ", ".join(o.value for o in self.step.options)
            return Refused("bad_value", f"option: one of {values}", {"option": f"one of {values}"})
        answer: JsonObject = {"value": chosen.value, "label": chosen.label, "reason": chosen.reason,
                              "stages": list(chosen.stages)}
        return self._leave(answer, chosen.next)

    def _fields(self) -> Result:
        refused = self._keys({f.name for f in self.step.fields})
        if refused:
            return refused
        answer: JsonObject = {}
        errors: dict[str, str] = {}
        for spec in self.step.fields:
            read = read_field(spec, self.value.get(spec.name), self.fields)
            if read.error is not None:
                errors[spec.name] = read.error
            answer[spec.name] = read.value
        return self._field_errors(errors) if errors else self._leave(answer, self.step.next)

    def _identify(self) -> Result:
        refused = self._keys({"contact_id", "vehicle_id", "found_by", "new"})
        if refused:
            return refused
        if ("contact_id" in self.value) == ("new" in self.value):
            return Refused("bad_answer", "identify with contact_id (a client found) or new (a new client)")
        if "contact_id" in self.value:
            contact_id, vehicle_id = self.value.get("contact_id"), self.value.get("vehicle_id")
            found_by = self.value.get("found_by", "search")
            if not _is_id(contact_id) or (vehicle_id is not None and not _is_id(vehicle_id)):
                return Refused("bad_answer", "contact_id and vehicle_id are the directory's ids")
            if found_by not in ("number", "search"):
                return Refused("bad_answer", "found_by: number or search")
            answer: JsonObject = {"found": True, "new": False, "contact_id": contact_id, "vehicle_id": vehicle_id,
                                  "found_by": found_by, "client": None}
            return self._leave(answer, self.step.next)
        new = self.value.get("new")
        if not isinstance(new, dict) or set(new) - {"name", "phone", "make", "model", "plate"}:
            return Refused("bad_answer", "new: { name, phone, make, model, plate }")
        client, errors = self._new_client(new)
        if errors:
            return self._field_errors(errors)
        answer = {"found": False, "new": True, "contact_id": None, "vehicle_id": None, "found_by": None,
                  "client": client}
        return self._leave(answer, self.step.next)

    def _new_client(self, new: dict[str, JsonValue]) -> tuple[JsonObject, dict[str, str]]:
        step = self.step
        reads: dict[str, Read] = {
            "name": read_text(new.get("name"), limit=200) if new.get("name") is not None else Read(),
            "phone": (read_phone(new["phone"], self.state.context.region) if new.get("phone") is not None
                      else Read(self.state.context.caller)),
            "make": read_make(new.get("make")) if new.get("make") is not None else Read(),
            "model": read_text(new.get("model"), limit=64) if new.get("model") is not None else Read(),
            "plate": read_plate(new.get("plate")) if new.get("plate") is not None else Read(),
        }
        needed = {"name"} if step.name_required else set()
        if step.car == "required":
            needed |= {"make", "plate"}
        errors = {k: r.error for k, r in reads.items() if r.error is not None}
        for key in sorted(needed):
            if key not in errors and reads[key].value is None:
                errors[key] = "required"
        if step.car == "none":
            for key in ("make", "model", "plate"):
                if new.get(key) is not None:
                    errors[key] = "this step asks for no car"
        client: JsonObject = {"kind": step.client_kind, **{k: r.value for k, r in reads.items()}}
        return client, errors

    def _pick_earlier(self) -> Result:
        refused = self._keys({"call", "contact", "employee", "none"})
        if refused:
            return refused
        picked = [k for k in ("call", "contact", "none") if self.value.get(k) not in (None, False)]
        if len(picked) != 1:
            return Refused("bad_answer", "pick one: call (its linkedid), contact (its id), or none")
        if picked == ["none"]:
            if self.step.required:
                return Refused("bad_value", "pick the call or contact this one is about", {"call": "required"})
            return self._leave({"picked": False, "call": None, "contact": None, "employee": None}, self.step.next)
        call, contact = self.value.get("call"), self.value.get("contact")
        if call is not None and not (isinstance(call, str) and 0 < len(call) <= 64 and call.isprintable()):
            return Refused("bad_answer", "call: a call's linkedid")
        if contact is not None and not _is_id(contact):
            return Refused("bad_answer", "contact: a contact's id")
        employee: JsonValue = None
        if self.value.get("employee") is not None:
            found = self._employee(self.value.get("employee"), None)
            if found is None:
                return self._field_errors({"employee": "not in any employee list"})
            employee = employee_value(found)
        return self._leave({"picked": True, "call": call, "contact": contact, "employee": employee}, self.step.next)

    def _transfer(self) -> Result:
        if self.state.transfer_pending:
            refused = self._keys({"result"})
            if refused:
                return Refused("transfer_pending", "a transfer is in progress: its result is awaited")
            result = self.value.get("result")
            if result not in ("answered", "not_answered"):
                return Refused("bad_answer", "result: answered or not_answered")
            request = self.state.stack[-1].answer or {}
            answer: JsonObject = {**request, "answered": result == "answered"}
            target = self.step.answered if result == "answered" else self.step.not_answered
            return self._leave(answer, target)
        refused = self._keys({"employee", "mode"})
        if refused:
            return refused
        mode = self.value.get("mode", self.step.mode)
        if mode not in ("blind", "attended"):
            return Refused("bad_answer", "mode: blind or attended")
        employee = self._employee_from_fact(self.step.employee)
        if self.value.get("employee") is not None and (self.step.list is not None or employee is None):
            employee = self._employee(self.value.get("employee"), self.step.list)
            if employee is None:
                return self._field_errors({"employee": f"not in the list {self.step.list!r}"})
        if employee is None:
            return self._field_errors({"employee": "required"})
        if not employee.extension:
            return self._field_errors({"employee": f"{employee.name} has no extension to transfer to"})
        # Stay at the step: the request is recorded as the step's provisional answer until the result comes.
        visit = self.state.stack[-1]
        asked: JsonObject = {"employee": employee_value(employee), "mode": mode, "answered": None}
        pending = replace(visit, inputs=(*visit.inputs, (self.now, dict(self.value))), answer=asked)
        state = replace(self.state, stack=(*self.state.stack[:-1], pending))
        ctx = state.context
        wanted = TransferWanted(step=self.step.id, linkedid=ctx.linkedid, pbx=ctx.pbx, employee=employee,
                                mode="attended" if mode == "attended" else "blind")
        return Done(state, (wanted,))

    def _reminder(self) -> Result:
        refused = self._keys({"due", "note", "employee", "number"})
        if refused:
            return refused
        errors: dict[str, str] = {}
        due = read_datetime(self.value.get("due"), self.fields, future=True) if "due" in self.value else Read()
        if due.error or due.value is None:
            errors["due"] = due.error or "required"
        note = read_text(self.value["note"], limit=NOTE_LIMIT, multiline=True) if self.value.get("note") else Read()
        if note.error:
            errors["note"] = note.error
        employee = self._employee_from_fact(self.step.employee) or self._last_transfer_employee()
        if self.value.get("employee") is not None:
            employee = self._employee(self.value.get("employee"), self.step.list)
            if employee is None:
                errors["employee"] = "not in the list" + (f" {self.step.list!r}" if self.step.list else "s")
        elif employee is None:
            errors["employee"] = "required: who is to call back"
        number = self._client_number()
        if self.value.get("number") is not None:
            typed = read_phone(self.value.get("number"), self.state.context.region)
            number = typed.value if isinstance(typed.value, str) else None
            if typed.error:
                errors["number"] = typed.error
        if number is None and "number" not in errors:
            errors["number"] = "no number to call back: type it"
        if errors:
            return self._field_errors(errors)
        assert employee is not None and number is not None and isinstance(due.value, str)
        answer: JsonObject = {"employee": employee_value(employee), "due": due.value, "number": number,
                              "note": note.value}
        contact_id, name = self._client()
        wanted = ReminderWanted(step=self.step.id, employee=employee, number=number, due_at=moment_epoch(due.value),
                                due=due.value, note=note.value if isinstance(note.value, str) else None,
                                contact_id=contact_id, client_name=name, linkedid=self.state.context.linkedid)
        return self._leave(answer, self.step.next, (wanted,))

    def _client_number(self) -> str | None:
        for found in reversed(list(_answers(self.state).values())):
            client = found.get("client")
            if isinstance(client, dict) and isinstance(client.get("phone"), str):
                return str(client["phone"])
        return self.state.context.caller

    def _client(self) -> tuple[int | None, str | None]:
        contact_id, _, client = _identified(self.script, self.state)
        return contact_id, client.name if client is not None else None


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def _employee_of(value: JsonValue) -> Employee | None:
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        return None
    name, extension = value.get("name"), value.get("extension")
    return Employee(str(value["id"]), name if isinstance(name, str) else str(value["id"]),
                    extension if isinstance(extension, str) else None)


# -- the finished run --------------------------------------------------------------------------------------------


def _identified(script: Script, state: RunState) -> tuple[int | None, int | None, ClientDraft | None]:
    """The client: the last identify step's answer, else the card the call came with."""
    for visit in reversed(state.stack):
        found = visit.answer
        if found is None or script.steps[visit.step].kind != "identify":
            continue
        client = found.get("client")
        if isinstance(client, dict):
            return None, None, _client_draft(client)
        contact_id, vehicle_id = found.get("contact_id"), found.get("vehicle_id")
        return (contact_id if isinstance(contact_id, int) else None,
                vehicle_id if isinstance(vehicle_id, int) else None, None)
    return state.context.contact_id, None, None


def _client_draft(client: dict[str, JsonValue]) -> ClientDraft:
    def text(key: str) -> str | None:
        value = client.get(key)
        return value if isinstance(value, str) else None

    kind: ContactKind = next((k for k in CONTACT_KINDS if k == client.get("kind")), "private")
    return ClientDraft(kind=kind, name=text("name"), phone=text("phone"), make=text("make"), model=text("model"),
                       plate=text("plate"))


def draft(script: Script, state: RunState) -> ContactDraft:
    """The contact a run makes (or, unfinished, would make now): route, answers, reason, client, flags, times."""
    answers = _answers(state)
    contact_id, vehicle_id, new_client = _identified(script, state)
    employee: Employee | None = None
    transfer_answered: bool | None = None
    earlier_call: str | None = None
    earlier_contact: int | None = None
    stages: list[Stage] = []
    note: str | None = None
    for visit in state.stack:
        found, step = visit.answer, script.steps[visit.step]
        if found is None:
            continue
        if step.kind == "transfer" and isinstance(found.get("answered"), bool):
            employee, transfer_answered = _employee_of(found.get("employee")), bool(found["answered"])
        elif step.kind == "pick_earlier" and found.get("picked"):
            call, contact = found.get("call"), found.get("contact")
            earlier_call = call if isinstance(call, str) else None
            earlier_contact = contact if isinstance(contact, int) else None
        elif step.kind == "choice":
            for option in step.options:
                if option.value == found.get("value"):
                    stages.extend(option.stages)
        elif step.final:
            stages.extend(step.stages)
            written = found.get("note")
            note = written if isinstance(written, str) else None
    return ContactDraft(
        script=script.name, version=script.version, label=script.label, status=state.status,
        channel=state.context.channel, linkedid=state.context.linkedid, pbx=state.context.pbx,
        agent=state.context.agent, started_at=state.started_at,
        finished_at=state.finished_at if state.finished_at is not None else state.stack[-1].entered_at,
        route=state.route, answers=answers, reason=_reason(state), contact_id=contact_id, vehicle_id=vehicle_id,
        new_client=new_client, employee=employee, transfer_answered=transfer_answered, earlier_call=earlier_call,
        earlier_contact=earlier_contact, stages=tuple(s for s in ("request", "booking", "visit") if s in stages),
        times=state.times, note=note, discard_reason=state.discard_reason,
    )


# -- the state as JSON -------------------------------------------------------------------------------------------


class _BadState(ValueError):
    pass


def state_to_json(state: RunState) -> JsonObject:
    """The state as a JSON object: the inputs accepted per step and their times, enough to replay the run."""
    ctx = state.context
    context: JsonObject = {
        "channel": ctx.channel, "linkedid": ctx.linkedid, "pbx": ctx.pbx, "caller": ctx.caller,
        "contact_id": ctx.contact_id, "agent": ctx.agent, "tz": ctx.tz, "region": ctx.region,
        "employees": {name: [employee_value(e) for e in people] for name, people in ctx.employees.items()},
    }
    stack: list[JsonValue] = [
        {"step": v.step, "entered_at": v.entered_at, "inputs": [[t, dict(i)] for t, i in v.inputs]}
        for v in state.stack
    ]
    times: list[JsonValue] = [[t.step, t.entered_at, t.left_at] for t in state.times]
    return {"format": STATE_FORMAT, "script": state.script, "version": state.version,
            "started_at": state.started_at, "status": state.status, "finished_at": state.finished_at,
            "discard_reason": state.discard_reason, "context": context, "stack": stack, "times": times}


def state_from_json(script: Script, data: object) -> RunState | Refused:
    """A saved state restored against ``script``: refused unless it is that script and version and replays cleanly."""
    try:
        return _restore(script, data)
    except _BadState as exc:
        return Refused("bad_state", f"the saved run cannot be restored: {exc}")


def _obj(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _BadState(f"{what}: expected an object")
    return value


def _num(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _BadState(f"{what}: expected a time")
    return float(value)


def _opt_str(value: object, what: str, limit: int = 200) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _BadState(f"{what}: expected text")
    return value


def _context(raw: object) -> RunContext:
    data = _obj(raw, "context")
    channel = next((c for c in CHANNELS if c == data.get("channel")), None)
    if channel is None:
        raise _BadState("context.channel")
    raw_id = data.get("contact_id")
    contact_id = raw_id if isinstance(raw_id, int) and _is_id(raw_id) else None
    if raw_id is not None and contact_id is None:
        raise _BadState("context.contact_id")
    lists: dict[str, tuple[Employee, ...]] = {}
    for name, people in _obj(data.get("employees", {}), "context.employees").items():
        if not isinstance(people, list):
            raise _BadState("context.employees")
        found = tuple(_employee_of(p) for p in people)
        lists[name] = tuple(e for e in found if e is not None)
    return RunContext(
        channel=channel,
        linkedid=_opt_str(data.get("linkedid"), "context.linkedid"), pbx=_opt_str(data.get("pbx"), "context.pbx"),
        caller=_opt_str(data.get("caller"), "context.caller"), contact_id=contact_id,
        agent=_opt_str(data.get("agent"), "context.agent"), tz=_opt_str(data.get("tz"), "context.tz") or "UTC",
        region=_opt_str(data.get("region"), "context.region") or "RU", employees=lists,
    )


def _restore(script: Script, raw: object) -> RunState | Refused:
    data = _obj(raw, "state")
    if data.get("format") != STATE_FORMAT:
        raise _BadState(f"format: expected {STATE_FORMAT}")
    if data.get("script") != script.name or data.get("version") != script.version:
        return Refused("script_mismatch", f"the saved run follows {data.get('script')!r} version "
                                          f"{data.get('version')!r}, not version {script.version} of {script.name!r}")
    status = data.get("status")
    if status not in ("open", "registered", "ended", "discarded"):
        raise _BadState("status")
    stack = data.get("stack")
    times = data.get("times")
    if not isinstance(stack, list) or not 0 < len(stack) <= MAX_VISITS:
        raise _BadState("stack")
    if not isinstance(times, list) or len(times) > MAX_TIMES:
        raise _BadState("times")
    state = start(script, _num(data.get("started_at"), "started_at"), _context(data.get("context")))
    for n, raw_visit in enumerate(stack):
        visit = _obj(raw_visit, f"stack[{n}]")
        if visit.get("step") != state.current:
            raise _BadState(f"stack[{n}]: expected step {state.current!r}")
        entered = _num(visit.get("entered_at"), f"stack[{n}].entered_at")
        state = replace(state, stack=(*state.stack[:-1], replace(state.stack[-1], entered_at=entered)))
        inputs = visit.get("inputs")
        if not isinstance(inputs, list) or len(inputs) > 2:
            raise _BadState(f"stack[{n}].inputs")
        for entry in inputs:
            if not isinstance(entry, list) or len(entry) != 2:
                raise _BadState(f"stack[{n}].inputs")
            result = answer(script, state, str(state.current), entry[1], _num(entry[0], "input time"))
            if isinstance(result, Refused):
                raise _BadState(f"stack[{n}] ({state.current}): {result.message}")
            state = result.state
        if n < len(stack) - 1 and len(state.stack) != n + 2:
            raise _BadState(f"stack[{n}]: the step was not left")
    if len(state.stack) != len(stack):
        raise _BadState("the route does not replay")
    if status == "discarded":
        closed = discard(script, state, data.get("discard_reason"), _num(data.get("finished_at"), "finished_at"))
        if isinstance(closed, Refused):
            raise _BadState(closed.message)
        state = closed.state
    elif state.status != status:
        raise _BadState(f"status: the route replays as {state.status}, not {status}")
    restored: list[StepTime] = []
    for entry in times:
        if not isinstance(entry, list) or len(entry) != 3 or entry[0] not in script.steps:
            raise _BadState("times")
        restored.append(StepTime(str(entry[0]), _num(entry[1], "times"), _num(entry[2], "times")))
    return replace(state, times=tuple(restored))
