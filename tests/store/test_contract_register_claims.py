"""The register a team shares, against the interface (every store runs this suite: tests/store/conftest.py).

Open entries of one caller are one group (per PBX; withheld callers never grouped), paged newest first; a number
is claimed by one user at a time (a second claim is refused naming the holder), released by its holder, by a
call-back that reached the customer, or when the claim's time is up; a call-back's result is kept on the entries of
the number, and "reached" / "wrong number" close them.
"""

from __future__ import annotations

import dataclasses

import pytest

from cti.directory import Contact
from cti.records import CallRecord
from store.repository import (
    GroupKey,
    NothingOpen,
    NumberTaken,
    RegisterChange,
    Store,
)
from tests.store.builders import T0, make_call, missed_for

ANNA_KEY = "79161234567"
OLEG_KEY = "79031112233"


def miss(store: Store, linkedid: str, caller: str | None, at: float, *, pbx: str = "main",
         reason: str = "no_answer", name: str | None = None) -> None:
    record = dataclasses.replace(make_call(linkedid, caller=caller, started_at=at, missed_reason=reason,
                                           caller_name=name), pbx=pbx)
    store.stage_call(record, dataclasses.replace(missed_for(record), pbx=pbx), [])


async def busy_register(store: Store) -> None:
    """Three calls from one mobile (written three ways), two from another, two withheld, one on another PBX."""
    miss(store, "a1", "8 916 123-45-67", T0, reason="abandoned", name="Анна")
    miss(store, "o1", "+7 903 111-22-33", T0 + 10)
    miss(store, "w1", None, T0 + 20)
    miss(store, "a2", "+7 (916) 1234567", T0 + 30, reason="no_answer")
    miss(store, "w2", None, T0 + 40)
    miss(store, "o2", "89031112233", T0 + 50, reason="busy")
    miss(store, "a3", "79161234567", T0 + 60, reason="abandoned")
    miss(store, "s1", "79161234567", T0 + 70, pbx="spb")
    await store.flush()


async def test_open_entries_of_one_caller_are_one_row_with_count_times_and_reasons(store: Store) -> None:
    await busy_register(store)
    await store.add_contact(Contact(name="Смирнова Анна", phones=("+7 916 123-45-67",)))
    groups = await store.list_missed_groups(pbxs=["main"])
    assert [(g.number_key, g.count) for g in groups] == [(ANNA_KEY, 3), (OLEG_KEY, 2), (None, 1), (None, 1)]
    anna = groups[0]
    assert (anna.first_at, anna.last_at, anna.caller) == (T0, T0 + 60, "79161234567")
    assert anna.reasons == ("abandoned", "no_answer")  # each once, newest first
    assert [e.linkedid for e in anna.entries] == ["a3", "a2", "a1"]
    assert (anna.caller_name, anna.contact_name) == ("Анна", "Смирнова Анна")
    # Two withheld callers are never one customer: each entry is its own row.
    assert [[e.linkedid for e in g.entries] for g in groups[2:]] == [["w2"], ["w1"]]
    # The other PBX's calls from the same number are that PBX's own row.
    everywhere = await store.list_missed_groups()
    assert [(g.pbx, g.number_key, g.count) for g in everywhere][:2] == [("spb", ANNA_KEY, 1), ("main", ANNA_KEY, 3)]


async def test_groups_page_by_their_newest_entry_and_a_closed_entry_leaves_its_group(store: Store) -> None:
    await busy_register(store)
    first = await store.list_missed_groups(pbxs=["main"], limit=2)
    assert [g.number_key for g in first] == [ANNA_KEY, OLEG_KEY]
    rest = await store.list_missed_groups(pbxs=["main"], limit=2, after=first[-1].key)
    assert [[e.linkedid for e in g.entries] for g in rest] == [["w2"], ["w1"]]
    assert await store.list_missed_groups(pbxs=["main"], after=rest[-1].key) == []
    assert first[-1].key == GroupKey(T0 + 50, max(e.id or 0 for e in first[-1].entries))
    # Anna called again and was answered: her entries close, her row leaves the register.
    store.stage_call(make_call("a4", caller="89161234567", started_at=T0 + 100, answered=True,
                               answered_by="101"), None, [])
    await store.flush()
    assert [g.number_key for g in await store.list_missed_groups(pbxs=["main"])] == [OLEG_KEY, None, None]


async def test_a_number_is_claimed_by_one_user_at_a_time(store: Store) -> None:
    await busy_register(store)
    claim = await store.claim_number("main", ANNA_KEY, by="anna", by_name="Анна Смирнова", until=T0 + 700,
                                     at=T0 + 100)
    assert (claim.by, claim.by_name, claim.caller, claim.claimed_at) == ("anna", "Анна Смирнова", "79161234567",
                                                                         T0 + 100)
    with pytest.raises(NumberTaken) as refused:
        await store.claim_number("main", ANNA_KEY, by="boss", until=T0 + 800, at=T0 + 200)
    assert refused.value.claim.by_name == "Анна Смирнова"
    # Her own claim again is extended, from when she first took it.
    again = await store.claim_number("main", ANNA_KEY, by="anna", by_name="Анна Смирнова", until=T0 + 900,
                                     at=T0 + 300)
    assert (again.claimed_at, again.until) == (T0 + 100, T0 + 900)
    # The same number on another PBX is another customer's row: free.
    assert (await store.claim_number("spb", ANNA_KEY, by="boss", until=T0 + 800, at=T0 + 200)).by == "boss"
    groups = await store.list_missed_groups(pbxs=["main"], now=T0 + 400)
    assert groups[0].claim == again and groups[1].claim is None
    assert [c.by for c in await store.list_claims(now=T0 + 400)] == ["anna", "boss"]
    # A number without an open entry cannot be claimed.
    with pytest.raises(NothingOpen):
        await store.claim_number("main", "79990000000", by="anna", until=T0 + 900, at=T0 + 300)


async def test_a_claim_is_released_by_its_holder_only_or_when_its_time_is_up(store: Store) -> None:
    await busy_register(store)
    await store.claim_number("main", ANNA_KEY, by="anna", until=T0 + 700, at=T0 + 100)
    await store.claim_number("main", OLEG_KEY, by="boss", until=T0 + 1000, at=T0 + 100)
    with pytest.raises(NumberTaken):
        await store.release_number("main", ANNA_KEY, by="boss", at=T0 + 200)
    released = await store.release_number("main", ANNA_KEY, by="anna", at=T0 + 200)
    assert released is not None and released.by == "anna"
    assert await store.release_number("main", ANNA_KEY, by="anna") is None
    # Time is up: the claim no longer holds the number, another user takes it, and the sweep finds it once.
    assert (await store.list_missed_groups(pbxs=["main"], now=T0 + 1000))[1].claim is None
    assert (await store.claim_number("main", OLEG_KEY, by="anna", until=T0 + 2000, at=T0 + 1001)).by == "anna"
    await store.claim_number("main", ANNA_KEY, by="boss", until=T0 + 1500, at=T0 + 1001)
    assert [c.number_key for c in await store.expire_claims(T0 + 1500)] == [ANNA_KEY]
    assert await store.expire_claims(T0 + 1500) == []
    assert [c.by for c in await store.list_claims(now=T0 + 1500)] == ["anna"]


async def test_a_call_back_that_reached_the_customer_releases_the_claim(store: Store) -> None:
    changes: list[RegisterChange] = []
    store.on_register_change(changes.append)
    await busy_register(store)
    await store.claim_number("main", ANNA_KEY, by="anna", until=T0 + 10_000, at=T0 + 100)
    await store.claim_number("main", OLEG_KEY, by="boss", until=T0 + 10_000, at=T0 + 100)
    changes.clear()
    # An unanswered call-back releases nothing; an answered one of the same number on another PBX neither.
    unanswered = make_call("cb1", direction="outbound", caller="101", called="89161234567", started_at=T0 + 200)
    store.stage_call(unanswered, None, [])
    other_pbx: CallRecord = dataclasses.replace(
        make_call("cb2", direction="outbound", caller="101", called="89161234567", started_at=T0 + 210,
                  answered=True, answered_by="101"), pbx="spb")
    store.stage_call(other_pbx, None, [])
    await store.flush()
    assert [c.number_key for c in await store.list_claims(pbxs=["main"], now=T0 + 300)] == [OLEG_KEY, ANNA_KEY]
    assert all(not c.released for c in changes)
    answered = make_call("cb3", direction="outbound", caller="101", called="+7 916 123-45-67", started_at=T0 + 300,
                         answered=True, answered_by="101")
    store.stage_call(answered, None, [])
    await store.flush()
    released = [c for change in changes for c in change.released]
    assert [(c.pbx, c.number_key, c.by) for c in released] == [("main", ANNA_KEY, "anna")]
    assert [c.number_key for c in await store.list_claims(pbxs=["main"], now=T0 + 400)] == [OLEG_KEY]


async def test_a_call_back_result_is_kept_on_the_entries_of_the_number(store: Store) -> None:
    changes: list[RegisterChange] = []
    store.on_register_change(changes.append)
    await busy_register(store)
    changes.clear()
    tried = await store.record_callback_result("main", ANNA_KEY, "no_answer", by="anna", comment="не берёт",
                                               at=T0 + 200)
    anna = (await store.list_missed_groups(pbxs=["main"]))[0]
    assert sorted(tried.entry_ids) == sorted(e.id for e in anna.entries if e.id is not None)
    assert [(r.result, r.by, r.comment, r.at) for r in anna.results] == [("no_answer", "anna", "не берёт", T0 + 200)]
    assert changes == []  # no answer: the entries stay open
    reached = await store.record_callback_result("main", ANNA_KEY, "reached", by="anna", comment="записан на ТО",
                                                 at=T0 + 300)
    assert [g.number_key for g in await store.list_missed_groups(pbxs=["main"])] == [OLEG_KEY, None, None]
    closed = [e for change in changes for e in change.updated]
    assert sorted(e.id for e in closed if e.id is not None) == sorted(reached.entry_ids)
    assert {(e.status, e.closed_by, e.comment) for e in closed} == {("closed", "manual", "записан на ТО")}
    # Kept: each entry's own results, oldest first, and its history says who closed it.
    entry_id = reached.entry_ids[0]
    assert [r.result for r in await store.entry_results(entry_id)] == ["no_answer", "reached"]
    assert (await store.missed_history(entry_id))[-1].by == "anna"
    with pytest.raises(NothingOpen):
        await store.record_callback_result("main", ANNA_KEY, "busy", by="anna", at=T0 + 400)
