"""``cti store copy`` of a store that holds several PBXs: the PBX columns come over, the same linkedid on two PBXs
stays two calls, and every table's count still matches (the copy refuses to commit otherwise)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from cti.directory import Contact
from store.postgres import PostgresStore
from store.repository import Store, User
from store.sqlite import SqliteStore
from tests.store.builders import T0, agent_miss, make_call, missed_for
from tests.store.test_store_copy import copy, empty_database, printed_counts, sqlite_tables

PBXS = ("main", "spb")


async def fill(store: Store) -> None:
    """The same traffic on two PBXs (the same linkedids), a call-back on one of them, per-PBX users and links."""
    await store.add_user(User(name="anna", role="agent", extension="101", pbxs=("spb",)))
    await store.add_user(User(name="boss", role="admin"))
    [contact] = await store.add_contacts([Contact(name="Иванов", phones=("89161234567",))])
    for pbx in PBXS:
        missed = make_call("1700000000.1", started_at=T0, agents_rung_not_answered=("101",), pbx=pbx)
        store.stage_call(missed, dataclasses.replace(missed_for(missed), pbx=pbx),
                         [dataclasses.replace(agent_miss(missed, "101"), pbx=pbx)])
        store.stage_event("1700000000.9", [("Event", "Newchannel"), ("Uniqueid", f"{pbx}.9")], T0 + 900, pbx=pbx)
    store.stage_call(make_call("1700000000.2", direction="outbound", caller="101", called="8 916 123-45-67",
                               answered=True, answered_by="101", started_at=T0 + 600, pbx="spb"), None, ())
    await store.flush()
    await store.attach_call("1700000000.1", contact, by="anna", pbx="spb")


async def read_back(store: Store) -> dict[str, Any]:
    return {
        "calls": await store.list_calls(),
        **{f"calls of {pbx}": await store.list_calls(pbxs=[pbx]) for pbx in PBXS},
        **{f"call .1 of {pbx}": await store.get_call("1700000000.1", pbx=pbx) for pbx in PBXS},
        "missed": await store.list_missed(),
        "agent misses of spb": await store.list_agent_misses(pbxs=["spb"], agent="101"),
        **{f"live events of {pbx}": await store.live_events(pbx) for pbx in PBXS},
        **{f"contact of .1 on {pbx}": await store.contact_of_call("1700000000.1", pbx=pbx) for pbx in PBXS},
        "users": await store.list_users(),
        "card on spb": await store.caller_facts("89161234567", linkedid="1700000000.1", pbx="spb", pbxs=["spb"]),
    }


async def test_a_two_pbx_store_is_copied_with_its_pbxs_and_every_count_checked(tmp_path: Path) -> None:
    site = tmp_path / "two-pbxs.sqlite"
    async with SqliteStore.open(site) as store:
        await fill(store)
        expected = await read_back(store)
    # Not an empty comparison: the PBXs are told apart in what is copied.
    assert [c.pbx for c in expected["calls"]] == ["main", "spb", "spb"]
    assert [(e.pbx, e.status) for e in expected["missed"]] == [("main", "open"), ("spb", "closed")]
    assert expected["contact of .1 on main"] is None and expected["contact of .1 on spb"] is not None
    assert {u.name: u.pbxs for u in expected["users"]} == {"anna": ("spb",), "boss": ()}

    target = await empty_database()
    ran = copy(site, target)
    tables = sqlite_tables(site)
    for name in ("calls", "call_agents", "missed", "agent_misses", "live_events", "call_contacts", "users"):
        assert [row for row in printed_counts(ran.stdout) if row[0] == name] == [
            [name, str(tables[name]), str(tables[name]), "ok"]], ran.stdout
    async with PostgresStore.open(target) as store:
        got = await read_back(store)
    for what in expected:
        assert got[what] == expected[what], what
