"""Several PBXs in one store, against the interface (every store runs this suite: tests/store/conftest.py).

A linkedid is unique only within its PBX (issue 11): the same linkedid saved from two PBXs is two calls, each
listing takes ``pbxs`` (None: every PBX), a call-back closes only its own PBX's entries, a daemon rebuilds a PBX
from that PBX's live events only, and a user belongs to some PBXs (none named: every PBX).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

import pytest

from cti.directory import Contact
from cti.records import DEFAULT_PBX, CallRecord
from store.repository import CallKey, CallRow, MissedKey, Store, User
from tests.store.builders import T0, agent_miss, make_call, missed_for


def on(pbx: str, record: CallRecord) -> CallRecord:
    return dataclasses.replace(record, pbx=pbx)


def save(store: Store, record: CallRecord, *, missed: bool = False, agents: tuple[str, ...] = ()) -> None:
    """Stage a call as the model hands it over: its missed entry and agents' misses stamped with its PBX."""
    entry = dataclasses.replace(missed_for(record), pbx=record.pbx) if missed else None
    store.stage_call(record, entry, [dataclasses.replace(agent_miss(record, a), pbx=record.pbx) for a in agents])


def keys(records: list[CallRecord]) -> list[tuple[str, str]]:
    return [(r.pbx, r.linkedid) for r in records]


async def test_the_same_linkedid_on_two_pbxs_is_two_calls_each_read_back_by_its_pbx(store: Store) -> None:
    main = make_call("1700000000.7", caller="+7 916 123-45-67", answered=True, answered_by="101")
    spb = on("spb", make_call("1700000000.7", caller="+7 812 000-00-01", started_at=T0 + 30))
    save(store, main)
    save(store, spb)
    await store.flush()
    assert keys(await store.list_calls()) == [("main", "1700000000.7"), ("spb", "1700000000.7")]
    assert await store.get_call("1700000000.7") == main  # the default PBX: a single site reads as it always did
    assert await store.get_call("1700000000.7", pbx="spb") == spb
    assert await store.get_call("1700000000.7", pbx="msk") is None
    assert (await store.count_calls(), await store.count_calls(pbxs=["spb"]), await store.count_calls(pbxs=[])) == (
        2, 1, 0)
    # Saved again on its own PBX, a call replaces itself only.
    again = dataclasses.replace(spb, caller_name="Пётр")
    save(store, again)
    await store.flush()
    assert await store.list_calls() == [main, again]
    assert [c.to_json()["pbx"] for c in await store.list_calls()] == ["main", "spb"]


def two_sites() -> list[CallRecord]:
    """The same traffic on two PBXs: the same linkedids, numbers and extensions, started at the same instants."""
    calls = []
    for i in range(12):
        base = make_call(f"c{i:02d}", caller="89161234567" if i % 2 else "+79031112233", started_at=T0 + 10 * (i // 2),
                         answered=i % 3 == 0, answered_by="101" if i % 3 == 0 else None,
                         agents_rung_not_answered=("102",) if i % 3 else ("101",) if i % 4 == 1 else ())
        calls += [base, on("spb", base), on("kzn", base)] if i % 4 == 0 else [base, on("spb", base)]
    return calls


ALL = None


@pytest.mark.parametrize("pbxs", [ALL, ("spb",), ("main", "kzn"), ("kzn", "spb", "spb"), ()], ids=str)
async def test_every_listing_keeps_to_the_pbxs_it_is_given(store: Store, pbxs: Collection[str] | None) -> None:
    calls = two_sites()
    for record in calls:
        save(store, record, missed=not record.answered, agents=record.agents_rung_not_answered)
    await store.flush()
    chosen = [c for c in calls if pbxs is None or c.pbx in pbxs]
    in_order = sorted(chosen, key=lambda c: (c.started_at, c.linkedid, c.pbx))

    def wanted(keep: Any = lambda c: True, newest_first: bool = False) -> list[tuple[str, str]]:
        return keys([c for c in (reversed(in_order) if newest_first else in_order) if keep(c)])

    assert keys(await store.list_calls(pbxs=pbxs)) == wanted()
    assert keys(await store.list_calls(pbxs=pbxs, newest_first=True)) == wanted(newest_first=True)
    assert keys([c async for c in store.iter_calls(pbxs=pbxs, page_size=2)]) == wanted()
    assert [(r.pbx, r.linkedid) async for r in store.iter_call_rows(pbxs=pbxs, page_size=3)] == wanted()
    pages = [p async for p in store.iter_call_pages(pbxs=pbxs, page_size=4, fields=("pbx", "linkedid"))]
    assert [tuple(row) for page in pages for row in page] == wanted()
    assert keys(await store.list_calls(pbxs=pbxs, number="8 916 123 45 67")) == wanted(
        lambda c: c.caller == "89161234567")
    # Agent 101 of one PBX is not agent 101 of another: the extension on the PBXs asked for.
    on_101 = wanted(lambda c: "101" in (c.answered_by, *c.agents_rung_not_answered))
    assert keys(await store.list_calls(pbxs=pbxs, agent="101")) == on_101
    assert keys(await store.list_calls(pbxs=pbxs, agent="101", newest_first=True, limit=3)) == on_101[::-1][:3]
    assert keys(await store.list_calls(pbxs=pbxs, outcome="missed", since=T0 + 10)) == wanted(
        lambda c: c.outcome == "missed" and c.started_at >= T0 + 10)
    assert await store.count_calls(pbxs=pbxs) == len(chosen)

    entries = await store.list_missed(pbxs=pbxs)
    staged = {(c.pbx, c.linkedid): n for n, c in enumerate(calls)}  # entries are numbered in staging order
    assert [(e.pbx, e.linkedid) for e in entries] == sorted(
        ((c.pbx, c.linkedid) for c in chosen if not c.answered),
        key=lambda k: (T0 + 10 * (int(k[1][1:]) // 2), staged[k]))
    assert [e async for e in store.iter_missed(pbxs=pbxs, page_size=2)] == entries
    # Answered calls of a number closed its entries, each on its own PBX only.
    assert await store.list_missed(pbxs=pbxs, number="+7 916 123-45-67", status="open") == [
        e for e in entries if e.caller == "89161234567" and e.status == "open"]
    for e in entries:
        assert e.status == "open" or (await store.get_call(e.closed_linkedid or "", pbx=e.pbx)) is not None

    misses = await store.list_agent_misses(pbxs=pbxs)
    assert sorted((m.pbx, m.linkedid, m.agent) for m in misses) == sorted(
        (c.pbx, c.linkedid, a) for c in chosen for a in c.agents_rung_not_answered)
    assert [m async for m in store.iter_agent_misses(pbxs=pbxs, page_size=2)] == misses
    assert await store.list_agent_misses(pbxs=pbxs, agent="101") == [m for m in misses if m.agent == "101"]


async def test_every_pbx_is_every_pbx_and_none_is_none(store: Store) -> None:
    for record in two_sites():
        save(store, record, missed=True)
    await store.flush()
    everything = await store.list_calls()
    assert {c.pbx for c in everything} == {"main", "spb", "kzn"}
    assert await store.list_calls(pbxs=["main", "spb", "kzn"]) == everything
    assert await store.list_calls(pbxs=set()) == [] and await store.list_missed(pbxs=[]) == []
    with pytest.raises(TypeError, match="collection"):
        await store.list_calls(pbxs="spb")


@pytest.mark.parametrize("page", [1, 2, 3, 5])
async def test_a_keyset_walk_over_calls_equal_in_start_and_linkedid_gives_each_once(store: Store, page: int) -> None:
    """The order's last tie-break is the PBX: a page ending between two PBXs' copies of one call goes on with the
    next PBX's, never skipping or repeating one."""
    calls = [on(pbx, make_call(f"same-{i}", started_at=T0 + (i // 2))) for i in range(4) for pbx in ("b", "a", "c")]
    for record in calls:
        save(store, record)
    await store.flush()
    want = sorted(keys(calls), key=lambda k: (T0 + int(k[1][-1]) // 2, k[1], k[0]))
    for newest_first in (False, True):
        seen: list[tuple[str, str]] = []
        after: CallKey | None = None
        while True:
            rows = await store.list_calls(limit=page, after=after, newest_first=newest_first)
            seen += keys(rows)
            if len(rows) < page:
                break
            after = CallKey.of(rows[-1])
        assert seen == (want[::-1] if newest_first else want)
    # The place of a lean row is its record's place.
    rows = [r async for r in store.iter_call_rows(limit=2)]
    assert all(isinstance(r, CallRow) for r in rows)
    assert [CallKey.of(r) for r in rows] == [CallKey(T0, "same-0", "a"), CallKey(T0, "same-0", "b")]
    assert keys(await store.list_calls(after=CallKey.of(rows[1]), limit=2)) == [("c", "same-0"), ("a", "same-1")]
    # A place without a PBX is the default PBX's: "main" sorts after "a", "b" and "c".
    assert keys(await store.list_calls(after=CallKey(T0, "same-0"), limit=1)) == [("a", "same-1")]


async def test_a_call_back_on_one_pbx_leaves_the_other_pbxs_entry_of_that_number_open(store: Store) -> None:
    for pbx in ("main", "spb"):
        save(store, on(pbx, make_call("miss", caller="+7 916 123-45-67")), missed=True)
    await store.flush()
    back = on("spb", make_call("back", direction="outbound", caller="101", called="89161234567", answered=True,
                               answered_by="101", started_at=T0 + 600))
    save(store, back)
    await store.flush()
    state = {e.pbx: (e.status, e.closed_linkedid) for e in await store.list_missed()}
    assert state == {"main": ("open", None), "spb": ("closed", "back")}
    [main_entry] = await store.list_missed(pbxs=["main"])
    assert main_entry.id is not None
    assert [h.action for h in await store.missed_history(main_entry.id)] == ["opened"]
    # The main site's own call-back closes the main site's entry.
    save(store, on("main", dataclasses.replace(back, started_at=T0 + 900, answered_at=T0 + 905)))
    await store.flush()
    assert (await store.get_missed(main_entry.id)).closed_linkedid == "back"
    assert {e.pbx for e in await store.list_missed(status="closed")} == {"main", "spb"}


async def test_a_miss_and_its_call_back_on_another_pbx_in_one_batch_close_nothing(store: Store) -> None:
    save(store, make_call("miss"), missed=True)
    save(store, on("spb", make_call("back", direction="outbound", called="89161234567", answered=True,
                                    answered_by="101", started_at=T0 + 60)))
    await store.flush()
    assert [(e.pbx, e.status) for e in await store.list_missed()] == [("main", "open")]


async def test_live_events_are_rebuilt_per_pbx_and_a_call_ends_only_its_own_pbxs(store: Store) -> None:
    store.stage_event("L1", [("Event", "Newchannel"), ("Channel", "PJSIP/trunk-1")], T0)
    store.stage_event("L1", [("Event", "Newchannel"), ("Channel", "PJSIP/spb-1")], T0 + 1, pbx="spb")
    store.stage_event("L2", [("Event", "Newchannel")], T0 + 2, pbx="spb")
    store.stage_event("L1", [("Event", "DialBegin")], T0 + 3)
    await store.flush()
    assert await store.live_events(DEFAULT_PBX) == [("L1", [("Event", "Newchannel"), ("Channel", "PJSIP/trunk-1")], T0),
                                                   ("L1", [("Event", "DialBegin")], T0 + 3)]
    assert [(lid, at) for lid, _, at in await store.live_events("spb")] == [("L1", T0 + 1), ("L2", T0 + 2)]
    assert [at for _, _, at in await store.live_events()] == [T0, T0 + 1, T0 + 2, T0 + 3]
    assert await store.live_events("kzn") == []
    # The main site's call L1 ends: Saint Petersburg's L1 is still going on.
    store.stage_event("L1", [("Event", "Hangup")], T0 + 4, pbx="spb")
    save(store, make_call("L1"))
    await store.flush()
    assert await store.live_events(DEFAULT_PBX) == []
    assert [(lid, at) for lid, _, at in await store.live_events("spb")] == [("L1", T0 + 1), ("L2", T0 + 2),
                                                                          ("L1", T0 + 4)]


async def test_a_users_pbxs_round_trip_and_changing_them_ends_their_sessions(store: Store) -> None:
    single = await store.add_user(User(name="anna", role="agent", extension="101"))
    assert single.pbxs == ()  # every PBX: a single site's user, as every user before PBXs
    oleg = await store.add_user(User(name="oleg", role="agent", extension="101", pbxs=("spb", "kzn", "spb")))
    assert oleg.pbxs == ("spb", "kzn") and await store.get_user("OLEG") == oleg
    await store.add_user(User(name="boss", role="admin", pbxs=("main", "spb")))
    assert {u.name: u.pbxs for u in await store.list_users()} == {"anna": (), "oleg": ("spb", "kzn"),
                                                                  "boss": ("main", "spb")}
    await store.add_session("s1", "oleg", created_at=T0, expires_at=T0 + 3600, address=None)
    await store.add_token("oleg", "t1", None)
    grants = await store.grants(["s1", "t1"])
    assert grants["s1"].user.pbxs == ("spb", "kzn") and grants["t1"].user.pbxs == ("spb", "kzn")
    assert (await store.update_user("oleg", display_name="Олег")).pbxs == ("spb", "kzn")
    assert await store.session_grant("s1", T0) is not None  # nothing he may see changed
    moved = await store.update_user("oleg", pbxs=["main"])
    assert moved.pbxs == ("main",) and (await store.get_user("oleg")) == moved
    assert await store.session_grant("s1", T0) is None  # what he was granted changed: logged out
    user = await store.user_of_token("t1")
    assert user is not None and user.pbxs == ("main",)
    assert (await store.update_user("boss", pbxs=())).pbxs == ()


async def test_a_call_is_attached_to_a_contact_on_its_own_pbx_and_the_card_keeps_to_the_pbxs(store: Store) -> None:
    ivanov, petrov = await store.add_contacts([Contact(name="Иванов", phones=("89161234567",)),
                                               Contact(name="Петров", phones=("89031112233",))])
    await store.attach_call("ringing", ivanov, by="anna")
    await store.attach_call("ringing", petrov, by="oleg", pbx="spb")
    assert (await store.contact_of_call("ringing") or Contact(name="")).id == ivanov
    assert (await store.contact_of_call("ringing", pbx="spb") or Contact(name="")).id == petrov
    assert await store.contact_of_call("ringing", pbx="kzn") is None

    for i, pbx in enumerate(("main", "spb", "main", "spb", "kzn")):
        save(store, on(pbx, make_call(f"h{i}", caller="+7 916 123-45-67", started_at=T0 + i)), missed=True)
    await store.flush()
    card = await store.caller_facts("89161234567", linkedid="ringing", pbx="spb", pbxs=["spb"])
    assert [(c.pbx, c.linkedid) for c in card.last_calls] == [("spb", "h3"), ("spb", "h1")]
    assert [(e.pbx, e.linkedid) for e in card.open_missed] == [("spb", "h1"), ("spb", "h3")]
    assert card.attached is not None and card.attached.id == petrov
    assert [c.id for c in card.contacts] == [ivanov]  # the directory is every PBX's
    everywhere = await store.caller_facts("89161234567", linkedid="ringing")
    assert [c.linkedid for c in everywhere.last_calls] == ["h4", "h3", "h2", "h1", "h0"]
    assert len(everywhere.open_missed) == 5 and everywhere.attached is not None and everywhere.attached.id == ivanov


async def test_the_register_walks_by_its_own_key_across_pbxs(store: Store) -> None:
    for pbx in ("spb", "main"):
        for i in range(3):
            save(store, on(pbx, make_call(f"m{i}", started_at=T0 + i)), missed=True)
    await store.flush()
    entries = await store.list_missed(pbxs=["spb", "main"])
    first = await store.list_missed(limit=2, pbxs=["main"])
    rest = await store.list_missed(after=MissedKey.of(first[-1]), pbxs=["main"])
    assert first + rest == [e for e in entries if e.pbx == "main"] and len(first + rest) == 3
