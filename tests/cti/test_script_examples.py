"""The shipped example scripts (examples/scripts/) load, and every route of the Russian one reaches its end with
the contact an agent would expect: reason, route, client, employee, flags, script version."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti.scripts import (
    ContactDraft,
    ContactReady,
    Done,
    Refused,
    ReminderWanted,
    RunContext,
    RunEnded,
    RunState,
    Script,
    TransferWanted,
    answer,
    load_script,
    start,
)
from cti.scripts.model import Employee, successors

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scripts"
#: 2026-03-10 10:00 Moscow time.
T0 = 1773126000.0
CALLER = "79161234567"


def load(name: str) -> Script:
    loaded = load_script((EXAMPLES / name).read_text(encoding="utf-8"), name)
    assert loaded.problems == (), [str(p) for p in loaded.problems]
    assert loaded.script is not None
    return loaded.script


@pytest.fixture(scope="module")
def ru() -> Script:
    return load("car-service.ru.toml")


def context(**kw: object) -> RunContext:
    base: dict[str, object] = {"linkedid": "1773126000.42", "pbx": "msk", "caller": CALLER, "agent": "101",
                               "tz": "Europe/Moscow"}
    base.update(kw)
    return RunContext(**base)  # type: ignore[arg-type]


class Agent:
    """Follows a run the way the panel would, keeping every effect, and counting the clicks it took."""

    def __init__(self, script: Script, ctx: RunContext | None = None) -> None:
        self.script = script
        self.now = T0
        self.state: RunState = start(script, self.now, ctx or context())
        self.effects: list[object] = []

    def do(self, step: str, value: dict[str, object], seconds: float = 5.0) -> None:
        self.now += seconds
        result = answer(self.script, self.state, step, value, self.now)
        assert isinstance(result, Done), result
        self.state = result.state
        self.effects.extend(result.effects)

    def refused(self, step: str, value: dict[str, object]) -> Refused:
        result = answer(self.script, self.state, step, value, self.now)
        assert isinstance(result, Refused), result
        return result

    @property
    def contact(self) -> ContactDraft:
        ready = [e for e in self.effects if isinstance(e, ContactReady)]
        assert len(ready) == 1, self.effects
        return ready[0].draft

    def of(self, kind: type) -> list[object]:
        return [e for e in self.effects if isinstance(e, kind)]


def test_both_examples_load_and_have_the_same_graph(ru: Script) -> None:
    en = load("car-service.en.toml")
    assert {s: ru.steps[s].kind for s in ru.steps} == {s: en.steps[s].kind for s in en.steps}
    assert {s: successors(ru.steps[s]) for s in ru.steps} == {s: successors(en.steps[s]) for s in en.steps}
    assert [o.reason for o in ru.steps["reason"].options] == [o.reason for o in en.steps["reason"].options]
    assert ru.label == "2026.1" and len(ru.version) == 12 and ru.version != en.version


def test_the_russian_example_has_no_english_in_its_texts(ru: Script) -> None:
    import re

    for step in ru.steps.values():
        for text in (step.title, step.text, *(o.label for o in step.options), *(f.label for f in step.fields)):
            assert not re.search(r"[A-Za-z]", text), (step.id, text)


def test_directions_say_the_way_and_register_with_the_card_found_by_number(ru: Script) -> None:
    agent = Agent(ru, context(contact_id=7))
    agent.do("reason", {"option": "directions"})
    assert agent.state.current == "directions"
    assert "Мастеровая" in ru.steps["directions"].text
    agent.do("directions", {}, seconds=20)
    agent.do("registered", {})
    draft = agent.contact
    assert draft.reason == "directions" and draft.route == ("reason", "directions", "registered")
    assert draft.contact_id == 7 and draft.stages == () and draft.status == "registered"
    assert (draft.script, draft.version, draft.label) == ("car-service", ru.version, "2026.1")
    assert draft.seconds_at("directions") == 20.0
    assert agent.state.current is None


@pytest.mark.parametrize("typed", ["Шкода", "Skoda", "Ылщвф", "шкода", "ŠKODA"])
def test_private_client_new_car_then_unanswered_master_leaves_a_reminder(ru: Script, typed: str) -> None:
    agent = Agent(ru)
    agent.do("reason", {"option": "repair_private"})
    agent.do("private_client", {"new": {"make": typed, "model": "Octavia", "plate": "а123вс777"}}, seconds=25)
    assert agent.state.current == "private_master"
    agent.do("private_master", {"employee": "elena"})
    [transfer] = agent.of(TransferWanted)
    assert isinstance(transfer, TransferWanted)
    assert transfer.employee == Employee("elena", "Елена, мастер-приёмщик", "105")
    assert (transfer.mode, transfer.linkedid, transfer.pbx) == ("attended", "1773126000.42", "msk")
    assert agent.state.current == "private_master" and agent.state.transfer_pending
    agent.do("private_master", {"result": "not_answered"}, seconds=30)
    assert agent.state.current == "callback"
    agent.do("callback", {"due": "+1h", "note": "после обеда"})
    [reminder] = agent.of(ReminderWanted)
    assert isinstance(reminder, ReminderWanted)
    assert reminder.employee.id == "elena" and reminder.number == CALLER
    assert reminder.due_at == agent.now + 3600 - (agent.now + 3600) % 60
    assert reminder.due.endswith("+03:00")
    agent.do("request_registered", {})
    draft = agent.contact
    assert draft.reason == "repair_private" and draft.stages == ("request",)
    assert draft.route == ("reason", "private_client", "private_master", "callback", "request_registered")
    assert draft.new_client is not None
    assert (draft.new_client.make, draft.new_client.model, draft.new_client.plate) == ("Skoda", "Octavia",
                                                                                       "А 123 ВС 777")
    assert draft.new_client.phone == CALLER and draft.new_client.kind == "private"
    assert draft.employee is not None and draft.employee.id == "elena" and draft.transfer_answered is False
    assert draft.seconds_at("private_master") == 35.0  # the request and the wait for its result


def test_private_client_known_answered_master_registers_a_request_without_reminder(ru: Script) -> None:
    agent = Agent(ru, context(contact_id=12))
    agent.do("reason", {"option": "repair_private"})
    agent.do("private_client", {"contact_id": 12, "vehicle_id": 30, "found_by": "number"})
    agent.do("private_master", {"employee": "dmitry"})
    agent.do("private_master", {"result": "answered"})
    assert agent.state.current == "request_registered"
    agent.do("request_registered", {"note": "записан на диагностику"})
    draft = agent.contact
    assert (draft.contact_id, draft.vehicle_id, draft.new_client) == (12, 30, None)
    assert draft.employee is not None and draft.employee.extension == "104" and draft.transfer_answered is True
    assert draft.note == "записан на диагностику" and not agent.of(ReminderWanted)


def test_private_client_new_needs_make_and_plate_and_says_which_are_wrong(ru: Script) -> None:
    agent = Agent(ru)
    agent.do("reason", {"option": "repair_private"})
    refused = agent.refused("private_client", {"new": {"make": "", "plate": "???"}})
    assert refused.code == "bad_value"
    assert set(refused.fields) == {"make", "plate"}
    assert refused.fields["make"] == "required" and "not a licence plate" in refused.fields["plate"]
    assert agent.state.current == "private_client"


def test_corporate_new_company_is_asked_for_its_contact_then_the_request(ru: Script) -> None:
    agent = Agent(ru)
    agent.do("reason", {"option": "repair_corporate"})
    assert agent.refused("corporate_client", {"new": {}}).fields == {"name": "required"}
    agent.do("corporate_client", {"new": {"name": "ООО «Ромашка»"}})
    assert agent.state.current == "corporate_contact"
    agent.do("corporate_contact", {"person": "Ирина", "phone": "8 (495) 111-22-33"})
    agent.do("corporate_request", {"cars": "12", "work": "ТО\nшиномонтаж", "date": "20.03.2026", "time": "9.30"})
    agent.do("corporate_master", {"employee": "dmitry"})
    agent.do("corporate_master", {"result": "answered"})
    agent.do("request_registered", {})
    draft = agent.contact
    assert draft.reason == "repair_corporate" and draft.stages == ("request",)
    assert draft.new_client is not None and draft.new_client.kind == "corporate"
    assert draft.new_client.name == "ООО «Ромашка»"
    assert draft.answers["corporate_contact"] == {"person": "Ирина", "phone": "74951112233"}
    assert draft.answers["corporate_request"] == {"cars": 12, "work": "ТО\nшиномонтаж", "date": "2026-03-20",
                                                 "time": "09:30"}


def test_corporate_known_company_goes_straight_to_the_request(ru: Script) -> None:
    agent = Agent(ru)
    agent.do("reason", {"option": "repair_corporate"})
    agent.do("corporate_client", {"contact_id": 3, "found_by": "search"})
    assert agent.state.current == "corporate_request"
    agent.do("corporate_request", {})
    agent.do("corporate_master", {"employee": "elena"})
    agent.do("corporate_master", {"result": "not_answered"})
    agent.do("callback", {"due": "15:30"})
    assert agent.state.current == "request_registered"
    agent.do("request_registered", {})
    assert agent.contact.route == ("reason", "corporate_client", "corporate_request", "corporate_master",
                                   "callback", "request_registered")


def test_current_repair_transfers_to_that_repairs_master_and_its_callback_is_no_request(ru: Script) -> None:
    agent = Agent(ru)
    agent.do("reason", {"option": "current_repair"})
    agent.do("earlier", {"contact": 881, "employee": "elena"})
    agent.do("repair_master", {})  # the master comes from the earlier contact: one click
    [transfer] = agent.of(TransferWanted)
    assert isinstance(transfer, TransferWanted) and transfer.employee.id == "elena" and transfer.mode == "blind"
    agent.do("repair_master", {"result": "not_answered"})
    agent.do("callback", {"due": "11.03.2026 10:00"})
    [reminder] = agent.of(ReminderWanted)
    assert isinstance(reminder, ReminderWanted) and reminder.due == "2026-03-11T10:00:00+03:00"
    assert agent.state.current == "registered"  # a question about a repair is not a new request
    agent.do("registered", {})
    draft = agent.contact
    assert draft.reason == "current_repair" and draft.earlier_contact == 881 and draft.stages == ()


def test_current_repair_without_the_earlier_contact_picks_the_master_by_hand(ru: Script) -> None:
    agent = Agent(ru)
    agent.do("reason", {"option": "current_repair"})
    agent.do("earlier", {"none": True})
    assert agent.refused("repair_master", {}).fields == {"employee": "required"}
    agent.do("repair_master", {"employee": "dmitry"})
    agent.do("repair_master", {"result": "answered"})
    agent.do("registered", {})
    draft = agent.contact
    assert draft.earlier_call is None and draft.earlier_contact is None and draft.employee is not None
    assert draft.employee.id == "dmitry"


def test_parts_go_to_the_parts_desk(ru: Script) -> None:
    agent = Agent(ru)
    agent.do("reason", {"option": "parts"})
    agent.do("parts_request", {"part": "колодки передние", "make": "ещнщеф", "model": "Camry"})
    agent.do("parts_desk", {"employee": "parts-desk"})
    agent.do("parts_desk", {"result": "answered"})
    agent.do("request_registered", {})
    draft = agent.contact
    assert draft.reason == "parts" and draft.answers["parts_request"]["make"] == "Toyota"
    assert draft.employee is not None and draft.employee.extension == "103"


def test_a_complaint_is_a_contact_with_that_reason(ru: Script) -> None:
    agent = Agent(ru)
    agent.do("reason", {"option": "complaint"})
    agent.do("complaint", {"what": "Машину вернули грязной", "about": "dmitry", "when": "2026-03-05"})
    agent.do("registered", {})
    draft = agent.contact
    assert draft.reason == "complaint"
    assert draft.answers["complaint"]["about"] == {"id": "dmitry", "name": "Дмитрий, мастер-приёмщик",
                                                   "extension": "104"}


def test_other_writes_down_what_it_was(ru: Script) -> None:
    agent = Agent(ru)
    agent.do("reason", {"option": "other"})
    agent.do("other", {"note": "спрашивали про вакансии"})
    agent.do("registered", {})
    assert agent.contact.reason == "other" and agent.contact.answers["other"] == {"note": "спрашивали про вакансии"}


def test_a_wrong_number_ends_the_run_without_a_contact(ru: Script) -> None:
    agent = Agent(ru)
    agent.do("reason", {"option": "wrong_number"})
    agent.do("not_a_contact", {})
    assert not agent.of(ContactReady)
    [ended] = agent.of(RunEnded)
    assert isinstance(ended, RunEnded) and ended.draft.status == "ended" and ended.draft.reason == "wrong_number"


def test_the_config_lists_replace_the_scripts_masters(ru: Script) -> None:
    site = {"masters": (Employee("ivan", "Иван", "201"),)}
    agent = Agent(ru, context(employees=site))
    agent.do("reason", {"option": "repair_private"})
    agent.do("private_client", {"contact_id": 1})
    assert agent.refused("private_master", {"employee": "elena"}).fields == {"employee": "not in the list 'masters'"}
    agent.do("private_master", {"employee": "ivan"})
    [transfer] = agent.of(TransferWanted)
    assert isinstance(transfer, TransferWanted) and transfer.employee.extension == "201"


#: The clicks the panel needs per answer of each kind (docs/contact-script.md): a choice is one click on its option;
#: a new client one click on «Новый клиент» and one on «Далее» (the make, model and plate are typed, Tab between
#: them); a transfer one click on the employee's name (its result comes from the PBX, not from the agent); a reminder
#: one click on a preset («Через час») and one on «Создать»; a final step one click on «Зарегистрировать».
CLICKS = {"choice": 1, "identify": 2, "transfer": 1, "reminder": 2, "register": 1}


def test_the_private_new_client_route_takes_seven_clicks(ru: Script) -> None:
    agent = Agent(ru)
    by_agent: list[str] = []
    for step, value in [
        ("reason", {"option": "repair_private"}),
        ("private_client", {"new": {"make": "Ылщвф", "model": "Octavia", "plate": "A123BC77"}}),
        ("private_master", {"employee": "dmitry"}),
        ("private_master", {"result": "not_answered"}),  # the edge reports the PBX's answer
        ("callback", {"due": "+1h"}),
        ("request_registered", {}),
    ]:
        agent.do(step, value)
        if "result" not in value:
            by_agent.append(ru.steps[step].kind)
    assert agent.contact.route == ("reason", "private_client", "private_master", "callback", "request_registered")
    assert sum(CLICKS[kind] for kind in by_agent) == 7  # issue 13's target: at most 12
