"""The checks a script's graph must pass before any agent follows it.

Every reference must land (a ``next``, an option, a transfer's result, the start, a branch's fact, an employee
list); every step a run can reach must have a way to a final step (``register`` or ``end``), or an agent could be
led round a loop with no way out. Each loop with no exit is named once, by its steps. A step no path reaches is a
warning, not an error: it cannot hurt a run (no agent ever sees it), authors park a step that way while they
rework a route, and a misspelled ``next`` that orphaned it is reported as an error of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from .model import CONTEXT_FACTS, Branch, Script, Step, branch_facts, branch_targets, step_nexts, successors
from .problems import Problem

LineOf = Callable[[str | None], int | None]


def step_facts(step: Step) -> tuple[str, ...]:
    """The facts a step's answer sets, as written after its id (``""`` is the bare id: a choice's value)."""
    if step.kind == "choice":
        return ("",)
    if step.kind == "fields":
        return tuple(f.name for f in step.fields)
    return {
        "identify": ("new", "found", "contact_id"),
        "pick_earlier": ("picked", "employee", "call", "contact"),
        "transfer": ("answered", "employee"),
        "reminder": ("due", "employee"),
    }.get(step.kind, ())


def holds_employee(script: Script, fact: str) -> bool:
    """Whether a fact is an employee (what a transfer or reminder may take its employee from)."""
    head, _, attr = fact.partition(".")
    step = script.steps.get(head)
    if step is None:
        return False
    if step.kind in ("pick_earlier", "transfer", "reminder"):
        return attr == "employee"
    return step.kind == "fields" and any(f.name == attr and f.type == "employee" for f in step.fields)


def _fact_problem(script: Script, branch: Branch, broken: Collection[str]) -> str | None:
    head, dot, attr = branch.fact.partition(".")
    if head == "reason" and not dot:
        reasons = {o.reason for s in script.steps.values() for o in s.options if o.reason}
        if branch.has_equals and branch.equals not in reasons:
            return f"if reason equals {branch.equals!r}: no option sets that reason"
        return None
    if head == "context":
        known = ", ".join(f"context.{name}" for name in sorted(CONTEXT_FACTS))
        return None if attr in CONTEXT_FACTS else f"if: {branch.fact!r}: the context has {known}"
    step = script.steps.get(head)
    if step is None:
        return None if head in broken else f"if: {branch.fact!r} names no step of this script"
    facts = step_facts(step)
    if attr not in facts:
        known = ", ".join(f"{head}.{f}" if f else head for f in facts) or "none"
        return f"if: {branch.fact!r}: a {step.kind} step sets {known}"
    if step.kind == "choice" and branch.has_equals and branch.equals not in {o.value for o in step.options}:
        return f"if: {head!r} is never {branch.equals!r} (its options: {', '.join(o.value for o in step.options)})"
    return None


def check_graph(script: Script, line_of: LineOf, broken: Collection[str] = ()) -> list[Problem]:
    """Every problem of the graph (references, lists, facts, reachability, loops without exit)."""
    problems: list[Problem] = []

    def report(message: str, step: str | None = None, *, warning: bool = False) -> None:
        problems.append(Problem(script.file, message, step=step, line=line_of(step), warning=warning))

    known = set(script.steps) | set(broken)
    lists = set(script.employees) | set(script.config_lists)
    if script.start and script.start not in known:
        report(f"start: {script.start!r} is no step of this script")
    for step in script.steps.values():
        for what, target in step_nexts(step):
            for step_id in branch_targets(target):
                if step_id not in known:
                    report(f"{what}: {step_id!r} is no step of this script", step.id)
            for branch in branch_facts(target):
                problem = _fact_problem(script, branch, broken)
                if problem is not None:
                    report(f"{what}: {problem}", step.id)
        for spec in step.fields:
            if spec.type == "employee" and spec.list is not None and spec.list not in lists:
                report(f"field {spec.name!r}: no employee list {spec.list!r} (declare it under [employees])", step.id)
        if step.list is not None and step.list not in lists:
            report(f"list: no employee list {step.list!r} (declare it under [employees])", step.id)
        if step.employee is not None and not holds_employee(script, step.employee):
            head = step.employee.partition(".")[0]
            if head not in broken:
                report(f"employee: {step.employee!r} holds no employee (e.g. \"earlier.employee\", a transfer's "
                       "\"<step>.employee\", or an employee field)", step.id)
    if script.start in script.steps:
        _reachability(script, known, report)
    return problems


def _reachability(script: Script, known: set[str], report: Callable[..., None]) -> None:
    reached: list[str] = []
    seen = {script.start}
    queue = [script.start]
    while queue:
        step_id = queue.pop(0)
        reached.append(step_id)
        for nxt in successors(script.steps[step_id]) if step_id in script.steps else []:
            if nxt in known and nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    for step_id in script.steps:
        if step_id not in seen:
            report("no path from the start reaches this step", step_id, warning=True)
    # A step that could not be read counts as an exit: its own error is reported, a loop through it may be fine.
    exits = {s for s in known if s not in script.steps or script.steps[s].final}
    can_exit = set(exits)
    changed = True
    while changed:
        changed = False
        for step in script.steps.values():
            if step.id not in can_exit and any(n in can_exit for n in successors(step)):
                can_exit.add(step.id)
                changed = True
    stuck = [s for s in reached if s not in can_exit]
    for loop in _loops(script, stuck):
        names = ", ".join(repr(s) for s in loop)
        report(f"the steps {names} form a loop with no way to an end or register step", loop[0])


def _loops(script: Script, nodes: list[str]) -> list[list[str]]:
    """The strongly connected parts of the sub-graph on ``nodes`` that are loops (Tarjan, iterative), each in the
    order the file lists its steps."""
    inside = set(nodes)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    order = {step_id: n for n, step_id in enumerate(script.steps)}
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            nexts = [n for n in successors(script.steps[node]) if n in inside]
            if child < len(nexts):
                work.append((node, child + 1))
                nxt = nexts[child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                part: list[str] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    part.append(top)
                    if top == node:
                        break
                if len(part) > 1 or node in successors(script.steps[node]):
                    found.append(sorted(part, key=order.__getitem__))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found
