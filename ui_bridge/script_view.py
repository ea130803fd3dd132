"""A script run as the agent's panel shows it: the ``script.run`` message built from the script and the run's state.

Pure (no I/O): ``ui_bridge/script_desk.py`` calls :func:`run_info` each time a run changes, with what only the edge
knows (whether the run's call is still in progress, the number as people read it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from cti.scripts import Employee, RunState, Script, Step, draft, employee_lists
from cti.scripts.runner import fact
from store.repository import ScriptRun

from . import messages as m

#: What the last change of a run was, when the PBX made it (``ScriptRunInfo.notice``).
Notice = Literal["transfer_answered", "transfer_not_answered", "transfer_failed"] | None


def employee_info(employee: Employee) -> m.ScriptEmployeeInfo:
    return m.ScriptEmployeeInfo(id=employee.id, name=employee.name, extension=employee.extension)


def _employee_of(value: object) -> m.ScriptEmployeeInfo | None:
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        return None
    name, extension = value.get("name"), value.get("extension")
    return m.ScriptEmployeeInfo(id=value["id"], name=name if isinstance(name, str) else value["id"],
                                extension=extension if isinstance(extension, str) else None)


def step_info(script: Script, state: RunState, step: Step) -> m.ScriptStepInfo:
    """What the panel needs to show ``step`` of this run and read the agent's answer."""
    lists = employee_lists(script, state.context)
    base: dict[str, Any] = {"id": step.id, "kind": step.kind, "title": step.title, "text": step.text}
    if step.kind == "choice":
        return m.ScriptStepInfo(**base, options=[m.ScriptOptionInfo(label=o.label, value=o.value)
                                                 for o in step.options])
    if step.kind == "fields":
        return m.ScriptStepInfo(**base, fields=[
            m.ScriptFieldInfo(name=f.name, type=f.type, label=f.label, required=f.required, multiline=f.multiline,
                              choices=[employee_info(e) for e in lists.get(f.list or "", ())])
            for f in step.fields])
    if step.kind == "identify":
        return m.ScriptStepInfo(**base, client_kind=step.client_kind, car=step.car, name_required=step.name_required)
    if step.kind == "pick_earlier":
        return m.ScriptStepInfo(**base, required=step.required)
    if step.kind in ("transfer", "reminder"):
        preset = _employee_of(fact(state, step.employee)) if step.employee else None
        made = draft(script, state)
        number = None
        if step.kind == "reminder":
            if preset is None and made.employee is not None:
                preset = employee_info(made.employee)  # the master the call was passed to calls back
            number = (made.new_client.phone if made.new_client is not None else None) or state.context.caller
        return m.ScriptStepInfo(**base, employees=[employee_info(e) for e in lists.get(step.list or "", ())],
                                employee=preset, mode=step.mode if step.kind == "transfer" else None, number=number)
    if step.kind == "register":
        return m.ScriptStepInfo(**base, stages=list(step.stages))
    return m.ScriptStepInfo(**base)


def can_go_back(script: Script, state: RunState) -> bool:
    """What ``cti.scripts.back`` would allow now (the panel shows the button only then)."""
    if state.status != "open" or state.transfer_pending or len(state.stack) < 2:
        return False
    return script.steps[state.stack[-2].step].kind not in ("transfer", "reminder")


def run_info(run: ScriptRun, script: Script, state: RunState, *, started_at: str, call_active: bool,
             display: Callable[[str | None], str | None], notice: Notice = None,
             notice_detail: str | None = None) -> m.ScriptRunInfo:
    """The ``script.run`` payload of a run at its current state."""
    current = script.steps.get(state.current) if state.current is not None else None
    passed = state.stack[:-1] if state.status == "open" else state.stack
    transfer = None
    if state.transfer_pending:
        asked = state.stack[-1].answer or {}
        employee = _employee_of(asked.get("employee"))
        if employee is not None:
            transfer = m.ScriptTransferInfo(employee=employee, mode="attended" if asked.get("mode") == "attended"
                                            else "blind", state="pending")
    ctx = state.context
    return m.ScriptRunInfo(
        id=run.id, status=state.status, script=script.name, title=script.title, version=script.version,
        label=script.label, channel=ctx.channel, agent=run.agent, linkedid=ctx.linkedid, caller=ctx.caller,
        caller_display=display(ctx.caller), contact_id=ctx.contact_id, call_active=call_active,
        started_at=started_at, step=step_info(script, state, current) if current is not None else None,
        route=[script.steps[v.step].title for v in passed], can_go_back=can_go_back(script, state),
        transfer=transfer, reason=draft(script, state).reason, discard_reason=state.discard_reason, notice=notice,
        notice_detail=notice_detail,
        pbx=run.pbx)
