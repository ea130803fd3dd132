"""The contact register kept by the store, against the interface (every store runs this suite: tests/store/conftest).

What a manager and a DMS rely on: a finished run saved once however often the save is retried, a new client created
in the directory with their car in the same save, primary or repeat as the caller card defines it, every filter and
keyset page of the listing, and the stage flags set once per event, after a restart too. The drafts are real: the
shipped example script followed by the pure runner (tests/store/contact_drafts.py).
"""

from __future__ import annotations

import pytest

from cti.contacts_register import ContactFilter, ContactKey
from cti.directory import Contact, Vehicle
from store.repository import RegisteredContactNotFound, StageConflict, Store
from tests.store.builders import make_call
from tests.store.conftest import OpenStore
from tests.store.contact_drafts import CALLER, EXPECTED, ROUTES, example, follow

#: 2026-03-10 10:00 Moscow time.
T0 = 1773126000.0
DAY = 86400.0


async def known_client(store: Store) -> int:
    [client] = await store.add_contacts([Contact(name="Иванов Пётр", phones=("+7 903 111-22-33",),
                                                 vehicles=(Vehicle(make="Kia", plate="В777ОР77"),))])
    return client


async def test_a_new_clients_run_is_saved_once_with_the_client_and_car_made_in_the_directory(store: Store) -> None:
    draft = follow("private_new", at=T0)
    contact = await store.save_contact(draft, repeat_days=180, run_id=41, at=T0 + 60)
    assert contact.id > 0 and (contact.at, contact.finished_at) == (T0, draft.finished_at)
    assert (contact.channel, contact.reason, contact.agent, contact.pbx) == ("phone", "repair_private", "101", "main")
    assert (contact.script, contact.version, contact.label) == ("car-service", example().version, "2026.1")
    assert contact.route == ("reason", "private_client", "private_master", "callback", "request_registered")
    assert contact.employee is not None and contact.employee.id == "elena" and contact.transfer_answered is False
    assert contact.note == "перезвонить после обеда" and contact.seconds_at("private_master") == 10.0
    assert [(m.stage, m.at, m.by) for m in contact.stages] == [("request", draft.finished_at, "script")]
    assert [(c.pbx, c.linkedid) for c in contact.calls] == [("main", "1773126000.42")]
    assert contact.answers["private_client"]["new"] is True
    # The client is a new card of the directory, with the car as typed (the make read from the wrong layout).
    assert contact.client_new and contact.client_kind == "private" and contact.client_id is not None
    card = await store.get_contact(contact.client_id)
    assert (card.name, card.kind, card.phones) == (CALLER, "private", (CALLER,))
    assert [(v.make, v.model, v.plate, v.id) for v in card.vehicles] == [("Skoda", "Octavia", "А 123 ВС 777",
                                                                          contact.vehicle_id)]
    assert (contact.client_name, contact.client_phone) == (CALLER, CALLER)
    assert contact.primary  # no earlier call or contact
    # A retried save (a lost answer, a second node) changes nothing: the same contact, no second client.
    clients = await store.count_contacts()
    assert await store.save_contact(draft, repeat_days=180, run_id=41, at=T0 + 90) == contact
    assert await store.count_contacts() == clients
    assert await store.list_registered_contacts() == [contact]
    assert await store.get_registered_contact(contact.id) == contact


async def test_without_a_run_id_the_same_draft_is_the_same_contact(store: Store) -> None:
    draft = follow("other", at=T0)
    first = await store.save_contact(draft, repeat_days=180)
    assert await store.save_contact(draft, repeat_days=180) == first
    later = await store.save_contact(follow("other", at=T0 + 600), repeat_days=180)
    assert later.id != first.id


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_every_route_of_the_example_script_registers_its_contact(store: Store, route: str) -> None:
    client = await known_client(store)
    draft = follow(route, at=T0, answers={"private_client": {"contact_id": client, "found_by": "number"}})
    contact = await store.save_contact(draft, repeat_days=180)
    reason, stages, employee = EXPECTED[route]
    assert contact.reason == reason and tuple(m.stage for m in contact.stages) == stages
    assert (contact.employee.id if contact.employee else None) == employee
    assert contact.route == draft.route and dict(contact.answers) == dict(draft.answers)
    assert [(t.step, t.entered_at, t.left_at) for t in contact.times] == [
        (t.step, t.entered_at, t.left_at) for t in draft.times]
    if route == "private_known":
        assert (contact.client_id, contact.client_name, contact.client_kind, contact.client_new) == (
            client, "Иванов Пётр", "private", False)
        assert contact.client_phone == "+7 903 111-22-33"
    if route == "corporate_new":
        assert contact.client_kind == "corporate" and contact.client_name == "ООО «Ромашка»"
        assert contact.client_id is not None and (await store.get_contact(contact.client_id)).kind == "corporate"
    if route == "directions":  # no identify step and no card by number: a contact without a client
        assert contact.client_id is None and contact.client_kind is None


async def test_a_run_that_registered_nothing_is_refused(store: Store) -> None:
    script = example()
    from cti.scripts import RunContext, answer, start

    state = start(script, T0, RunContext(agent="101"))
    done = answer(script, state, "reason", {"option": "wrong_number"}, T0 + 1)
    done = answer(script, done.state, "not_a_contact", {}, T0 + 2)  # type: ignore[union-attr]
    [ended] = done.effects  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="only a registered run"):
        await store.save_contact(ended.draft, repeat_days=180)  # type: ignore[attr-defined]
    assert await store.list_registered_contacts() == []


async def test_primary_or_repeat_follows_the_caller_cards_rule(store: Store) -> None:
    client = await known_client(store)
    as_known = {"private_client": {"contact_id": client, "found_by": "number"}}
    first = await store.save_contact(follow("private_known", at=T0, answers=as_known, caller=None, linkedid="c1"),
                                     repeat_days=30)
    assert first.primary
    # The same client 10 days later: an earlier contact within repeat_days.
    second = await store.save_contact(follow("private_known", at=T0 + 10 * DAY, answers=as_known, caller=None,
                                             linkedid="c2"), repeat_days=30)
    assert second.repeat
    # 100 days later: the last contact is 90 days back, beyond repeat_days.
    third = await store.save_contact(follow("private_known", at=T0 + 100 * DAY, answers=as_known, caller=None,
                                            linkedid="c3"), repeat_days=30)
    assert third.primary
    # A new client whose number called a week ago is a repeat contact (the card would say "repeat" too); the run's
    # own call never counts.
    store.stage_call(make_call("own", caller=CALLER, started_at=T0 + 200 * DAY - 30), None, [])
    await store.flush()
    own = await store.save_contact(follow("private_new", at=T0 + 200 * DAY, linkedid="own"), repeat_days=30)
    assert own.primary
    store.stage_call(make_call("week-ago", caller="8 916 123-45-67", started_at=T0 + 293 * DAY), None, [])
    await store.flush()
    again = await store.save_contact(follow("private_new", at=T0 + 300 * DAY, linkedid="now"), repeat_days=30)
    assert again.repeat
    # A known client's own phone called (the run came from another number).
    store.stage_call(make_call("from-card", caller="79031112233", direction="inbound", started_at=T0 + 399 * DAY),
                     None, [])
    await store.flush()
    by_card = await store.save_contact(follow("private_known", at=T0 + 400 * DAY, answers=as_known,
                                              caller="74950000000", linkedid="c4"), repeat_days=30)
    assert by_card.repeat


async def _fixture_of_contacts(store: Store) -> dict[str, int]:
    """Seven contacts a day apart, each differing in what one filter looks at."""
    client = await known_client(store)
    made = {}
    plan = [
        ("directions", {"channel": "visit", "linkedid": None, "pbx": "main"}),
        ("private_new", {"agent": "102"}),
        ("private_known", {"pbx": "spb"}),
        ("corporate_new", {}),
        ("parts", {"agent": "102", "pbx": "spb"}),
        ("complaint", {"channel": "internet", "linkedid": None}),
        ("current_repair", {}),
    ]
    for day, (route, options) in enumerate(plan):
        draft = follow(route, at=T0 + day * DAY, answers={"private_client": {"contact_id": client}},
                       **options)  # type: ignore[arg-type]
        made[route] = (await store.save_contact(draft, repeat_days=1)).id
    return made


async def ids(store: Store, **filters: object) -> list[int]:
    return [c.id for c in await store.list_registered_contacts(ContactFilter(**filters), limit=None)]  # type: ignore[arg-type]


async def test_every_filter_of_the_listing(store: Store) -> None:
    made = await _fixture_of_contacts(store)
    order = list(made.values())
    assert await ids(store) == order
    assert await ids(store, since=T0 + DAY, until=T0 + 3 * DAY) == [made["private_new"], made["private_known"]]
    assert await ids(store, stage="request") == [made[r] for r in ("private_new", "private_known", "corporate_new",
                                                                    "parts")]
    assert await ids(store, reason="repair_private") == [made["private_new"], made["private_known"]]
    assert await ids(store, channel="visit") == [made["directions"]]
    assert await ids(store, channel="internet") == [made["complaint"]]
    assert await ids(store, client_kind="corporate") == [made["corporate_new"]]
    assert await ids(store, client_kind="private") == [made["private_new"], made["private_known"]]
    assert await ids(store, agent="102") == [made["private_new"], made["parts"]]
    assert await ids(store, employee="dmitry") == [made[r] for r in ("private_known", "corporate_new",
                                                                     "current_repair")]
    assert await ids(store, pbxs=("spb",)) == [made["private_known"], made["parts"]]
    assert await ids(store, pbxs=()) == []
    assert await ids(store, agent="102", pbxs=("spb",)) == [made["parts"]]
    assert await ids(store, stage="request", reason="parts") == [made["parts"]]
    first, *_ = await store.list_registered_contacts(ContactFilter(), newest_first=True, limit=1)
    assert first.id == made["current_repair"]


async def test_keyset_pages_and_the_stream_give_every_contact_once(store: Store) -> None:
    made = list((await _fixture_of_contacts(store)).values())
    seen: list[int] = []
    after: ContactKey | None = None
    while page := await store.list_registered_contacts(after=after, limit=3):
        seen += [c.id for c in page]
        after = ContactKey.of(page[-1])
    assert seen == made
    newest: list[int] = []
    after = None
    while page := await store.list_registered_contacts(after=after, limit=2, newest_first=True):
        newest += [c.id for c in page]
        after = ContactKey.of(page[-1])
    assert newest == made[::-1]
    streamed = [c.id async for c in store.iter_registered_contacts(ContactFilter(stage="request"), page_size=2)]
    assert streamed == await ids(store, stage="request")
    assert [c.id async for c in store.iter_registered_contacts(limit=3, page_size=2)] == made[:3]


async def test_a_stage_is_set_once_per_event_and_read_back_after_a_restart(open_store: OpenStore) -> None:
    store = await open_store()
    contact = await store.save_contact(follow("private_new", at=T0), repeat_days=180)
    booked, changed = await store.set_contact_stage(contact.id, "booking", at=T0 + DAY, by="dms",
                                                    external_id="ЗН-0001")
    assert changed and booked.stage("booking") is not None
    assert (booked.stage("booking").at, booked.stage("booking").by,  # type: ignore[union-attr]
            booked.stage("booking").external_id) == (T0 + DAY, "dms", "ЗН-0001")  # type: ignore[union-attr]
    again, changed = await store.set_contact_stage(contact.id, "booking", at=T0 + 2 * DAY, by="dms",
                                                   external_id="ЗН-0001")
    assert not changed and again == booked  # a DMS retrying: nothing changes
    with pytest.raises(StageConflict) as conflict:
        await store.set_contact_stage(contact.id, "booking", at=T0 + 2 * DAY, by="dms", external_id="ЗН-0002")
    assert "ЗН-0001" in str(conflict.value) and conflict.value.contact == booked
    # A visit without a booking happens (a walk-in): allowed.
    walk_in = await store.save_contact(follow("other", at=T0 + 5), repeat_days=180)
    visited, changed = await store.set_contact_stage(walk_in.id, "visit", at=T0 + 3 * DAY, by="admin")
    assert changed and visited.stage("booking") is None and visited.stage("visit") is not None
    assert await store.list_registered_contacts(ContactFilter(stage="visit")) == [visited]
    assert await store.list_registered_contacts(ContactFilter(stage="booking")) == [booked]
    with pytest.raises(RegisteredContactNotFound):
        await store.set_contact_stage(walk_in.id + 100, "visit", at=T0, by="admin")
    with pytest.raises(RegisteredContactNotFound):
        await store.get_registered_contact(walk_in.id + 100)
    with pytest.raises(ValueError):
        await store.set_contact_stage(walk_in.id, "paid", at=T0, by="admin")  # type: ignore[arg-type]
    await store.close()
    reopened = await open_store()
    assert await reopened.get_registered_contact(contact.id) == booked
    assert await reopened.get_registered_contact(walk_in.id) == visited


async def test_the_contact_of_a_call_is_found_by_its_linkedid_on_its_pbx(store: Store) -> None:
    # What "register now" asks before registering a call: whether it has a contact already (on its own PBX only).
    first = await store.save_contact(follow("other", at=T0, linkedid="c-7", pbx="main"), repeat_days=180, run_id=1)
    await store.save_contact(follow("directions", at=T0 + 60, linkedid="c-7", pbx="main"), repeat_days=180, run_id=2)
    assert await store.registered_contact_of_call("c-7", pbx="main") == first.id
    assert await store.registered_contact_of_call("c-7", pbx="spb") is None
    assert await store.registered_contact_of_call("c-8", pbx="main") is None
