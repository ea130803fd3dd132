"""Inbound-contact scripts: the format (``model``), loading and checking (``loader``, ``graph``), typed values
(``fields``) and following one (``runner``). Pure: the edge reads the files and keeps the runs.

``docs/contact-script.md`` is the authors' guide.
"""

from __future__ import annotations

from .fields import FieldContext, Read, read_field
from .loader import Loaded, load_script, script_version
from .model import Branch, Employee, FieldSpec, Option, Script, Step
from .problems import Problem
from .runner import (
    ClientDraft,
    ContactDraft,
    ContactReady,
    Done,
    Effect,
    Refused,
    ReminderWanted,
    RunContext,
    RunEnded,
    RunState,
    StepTime,
    TransferWanted,
    answer,
    back,
    current_step,
    discard,
    draft,
    employee_lists,
    start,
    state_from_json,
    state_to_json,
)

__all__ = [
    "Branch", "ClientDraft", "ContactDraft", "ContactReady", "Done", "Effect", "Employee", "FieldContext",
    "FieldSpec", "Loaded", "Option", "Problem", "Read", "Refused", "ReminderWanted", "RunContext", "RunEnded",
    "RunState", "Script", "Step", "StepTime", "TransferWanted", "answer", "back", "current_step", "discard", "draft",
    "employee_lists", "load_script", "read_field", "script_version", "start", "state_from_json", "state_to_json",
]
