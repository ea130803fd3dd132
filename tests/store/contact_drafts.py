"""Real contact drafts for the register's tests: the shipped Russian example script followed by the pure runner.

Each route is the answers an agent gives on the panel (``tests/cti/test_script_examples.py`` checks the runner on
them); :func:`follow` returns the ``ContactDraft`` of the ``ContactReady`` the run ends with, as the script desk
hands it to ``Store.save_contact``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from cti.scripts import ContactDraft, ContactReady, Done, RunContext, RunEnded, Script, answer, load_script, start

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scripts" / "car-service.ru.toml"
CALLER = "79161234567"

#: The routes of the example, by name: (step, answer) in order.
ROUTES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "directions": [("reason", {"option": "directions"}), ("directions", {}), ("registered", {})],
    "private_new": [
        ("reason", {"option": "repair_private"}),
        ("private_client", {"new": {"make": "Ылщвф", "model": "Octavia", "plate": "а123вс777"}}),
        ("private_master", {"employee": "elena"}), ("private_master", {"result": "not_answered"}),
        ("callback", {"due": "+1h"}), ("request_registered", {"note": "перезвонить после обеда"}),
    ],
    "private_known": [
        ("reason", {"option": "repair_private"}), ("private_client", {"contact_id": 1, "found_by": "number"}),
        ("private_master", {"employee": "dmitry"}), ("private_master", {"result": "answered"}),
        ("request_registered", {}),
    ],
    "corporate_new": [
        ("reason", {"option": "repair_corporate"}), ("corporate_client", {"new": {"name": "ООО «Ромашка»"}}),
        ("corporate_contact", {"person": "Ирина", "phone": "8 (495) 111-22-33"}),
        ("corporate_request", {"cars": "12", "work": "ТО"}), ("corporate_master", {"employee": "dmitry"}),
        ("corporate_master", {"result": "answered"}), ("request_registered", {}),
    ],
    "current_repair": [
        ("reason", {"option": "current_repair"}), ("earlier", {"none": True}),
        ("repair_master", {"employee": "dmitry"}), ("repair_master", {"result": "answered"}), ("registered", {}),
    ],
    "parts": [
        ("reason", {"option": "parts"}), ("parts_request", {"part": "колодки", "make": "ещнщеф", "model": "Camry"}),
        ("parts_desk", {"employee": "parts-desk"}), ("parts_desk", {"result": "answered"}),
        ("request_registered", {}),
    ],
    "complaint": [
        ("reason", {"option": "complaint"}),
        ("complaint", {"what": "=cmd|' /C calc'!A0", "about": "dmitry", "when": "2026-03-05"}), ("registered", {}),
    ],
    "other": [("reason", {"option": "other"}), ("other", {"note": "вакансии"}), ("registered", {})],
}
#: What each route registers: (reason, stages, the employee's id).
EXPECTED: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "directions": ("directions", (), None),
    "private_new": ("repair_private", ("request",), "elena"),
    "private_known": ("repair_private", ("request",), "dmitry"),
    "corporate_new": ("repair_corporate", ("request",), "dmitry"),
    "current_repair": ("current_repair", (), "dmitry"),
    "parts": ("parts", ("request",), "parts-desk"),
    "complaint": ("complaint", (), None),
    "other": ("other", (), None),
}


@cache
def example() -> Script:
    loaded = load_script(EXAMPLE.read_text(encoding="utf-8"), EXAMPLE.name)
    assert loaded.script is not None, [str(p) for p in loaded.problems]
    return loaded.script


def follow(route: str, *, at: float, linkedid: str | None = "1773126000.42", pbx: str | None = "main",
           agent: str | None = "101", caller: str | None = CALLER, channel: str = "phone",
           contact_id: int | None = None, step_seconds: float = 5.0,
           answers: dict[str, dict[str, Any]] | None = None) -> ContactDraft:
    """The draft the example's ``route`` registers, started at ``at`` (each step ``step_seconds`` long);
    ``answers`` replaces the route's answer at those steps (a known client's id, say)."""
    script = example()
    context = RunContext(channel=channel, linkedid=linkedid, pbx=pbx, caller=caller,  # type: ignore[arg-type]
                         contact_id=contact_id, agent=agent, tz="Europe/Moscow")
    state = start(script, at, context)
    now = at
    for step, value in ROUTES[route]:
        now += step_seconds
        if answers and step in answers and "result" not in value:
            value = answers[step]
        result = answer(script, state, step, value, now)
        assert isinstance(result, Done), (route, step, result)
        state = result.state
        for effect in result.effects:
            if isinstance(effect, ContactReady | RunEnded):
                return effect.draft
    raise AssertionError(f"route {route} did not end")
