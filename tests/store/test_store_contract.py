"""The CallStore contract: what any store must do, whatever database is behind it."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from cti.records import CallRecord, MissedEntry
from store.repository import (
    CallStore,
    MissedAlreadyClosed,
    MissedAlreadyOpen,
    MissedNotFound,
    StoreClosed,
)
from tests.conftest import UNIT
from tests.store.builders import T0, agent_miss, leg, make_call, missed_for
from tests.store.conftest import OpenStore


async def save(store: CallStore, record: CallRecord, *, missed: bool = False) -> None:
    store.stage_call(record, missed_for(record) if missed else None, ())
    await store.flush()


async def only_entry(store: CallStore) -> MissedEntry:
    entries = await store.list_missed()
    assert len(entries) == 1
    return entries[0]


async def wait_for_count(store: CallStore, expected: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while await store.count_calls() != expected:
            await asyncio.sleep(0.01 * UNIT)


# -- round trips ---------------------------------------------------------------------------------------

def full_record() -> CallRecord:
    """A call with every field set to something other than its default, Cyrillic names included."""
    return CallRecord(
        linkedid="1700000000.101",
        direction="inbound",
        caller="+7 (916) 123-45-67",
        caller_name="Иван Петрович Сидоров",
        called="74951234567",
        answered=True,
        answered_by="102",
        missed_reason=None,
        talk_seconds=61.237,
        transferred_to="104",
        agents_rung_not_answered=("101", "105"),
        recording="/var/spool/asterisk/monitor/1700000000.101.wav",
        started_at=T0 + 0.123456,
        answered_at=T0 + 7.5,
        ended_at=T0 + 68.737,
        outcome="answered",
        ring_seconds=7.376544,
        queue="support",
        did="74951234567",
        hangup_cause=16,
        hangup_cause_txt="Normal Clearing",
        hung_up_by="agent",
        recordings=("/var/spool/asterisk/monitor/a.wav", "/var/spool/asterisk/monitor/Запись б.wav"),
        linkedids=("1700000000.101", "1700000000.109"),
        agents_answered=("102", "104"),
        complete=False,
        legs=(
            leg("1700000000.101", None),
            leg("1700000000.102", "101", number="101 «Анна Смирнова»", status="cancelled", hangup_cause=None,
                hangup_cause_txt=None, answered_at=None, ended_at=None),
            leg("1700000000.103", "102", answered_at=T0 + 7.5, status="answered", hangup_cause_txt="Ответ"),
        ),
    )


async def test_call_record_round_trips_with_every_field_equal(open_store: OpenStore) -> None:
    """A saved call reads back equal field by field, legs and Cyrillic included, also after reopening."""
    record = full_record()
    store = await open_store()
    await save(store, record)
    got = await store.get_call(record.linkedid)
    assert got is not None
    for f in dataclasses.fields(CallRecord):
        assert getattr(got, f.name) == getattr(record, f.name), f.name
    assert got.to_json() == record.to_json()
    await store.close()

    reopened = await open_store()
    again = await reopened.get_call(record.linkedid)
    assert again == record
    assert again is not None and again.legs == record.legs
    assert await reopened.get_call("no-such-call") is None


async def test_missed_entry_and_agent_misses_round_trip(store: CallStore) -> None:
    record = make_call("m1", caller_name="Мария Кузнецова", queue="support", agents_rung_not_answered=("101", "102"))
    entry = missed_for(record)
    misses = [agent_miss(record, "101"), agent_miss(record, "102", reason="busy", ring_seconds=0.5)]
    store.stage_call(record, entry, misses)
    await store.flush()

    got = await only_entry(store)
    assert got.id is not None
    assert got == dataclasses.replace(entry, id=got.id)
    assert await store.get_missed(got.id) == got
    assert await store.list_agent_misses() == misses
    assert await store.list_agent_misses(agent="102") == [misses[1]]


async def test_saving_a_call_again_replaces_it_and_keeps_its_missed_entry(store: CallStore) -> None:
    first = make_call("r1")
    await save(store, first, missed=True)
    entry = await only_entry(store)
    assert entry.id is not None
    await store.close_missed(entry.id, "called back from a mobile")

    second = dataclasses.replace(first, caller_name="Новое имя", ring_seconds=12.0)
    store.stage_call(second, missed_for(second), [agent_miss(second, "101")])
    store.stage_call(second, missed_for(second), [agent_miss(second, "101")])
    await store.flush()

    assert await store.list_calls() == [second]
    again = await only_entry(store)
    assert (again.id, again.status, again.closed_by, again.comment) == (entry.id, "closed", "manual",
                                                                         "called back from a mobile")
    assert again.caller_name == "Новое имя"
    assert len(await store.list_agent_misses()) == 1


# -- journal filters -----------------------------------------------------------------------------------

async def journal(store: CallStore) -> dict[str, CallRecord]:
    calls = {
        "in-missed": make_call("in-missed", caller="8 916 123-45-67", started_at=T0 + 10,
                               agents_rung_not_answered=("101", "102")),
        "in-answered": make_call("in-answered", caller="+79031112233", answered=True, answered_by="102",
                                 started_at=T0 + 20, agents_rung_not_answered=("101",)),
        "out-answered": make_call("out-answered", direction="outbound", caller="101", called="89161234567",
                                  answered=True, answered_by="101", started_at=T0 + 30,
                                  agents_answered=("101",)),
        "internal": make_call("internal", direction="internal", caller="103", called="104", answered=True,
                              answered_by="104", started_at=T0 + 40),
        "failed": make_call("failed", direction="outbound", caller="105", called="84950000000",
                            started_at=T0 + 50, outcome="failed", missed_reason="failed"),
    }
    for record in reversed(list(calls.values())):  # staged out of order: the journal sorts by started_at
        store.stage_call(record, None, ())
    await store.flush()
    return calls


def ids(records: list[CallRecord]) -> list[str]:
    return [r.linkedid for r in records]


async def test_list_calls_is_ordered_by_start_time(store: CallStore) -> None:
    calls = await journal(store)
    assert await store.list_calls() == list(calls.values())
    assert await store.count_calls() == 5


async def test_list_calls_filters(store: CallStore) -> None:
    await journal(store)
    assert ids(await store.list_calls(since=T0 + 20, until=T0 + 40)) == ["in-answered", "out-answered"]
    # A number matches however it is written, as caller or as called.
    assert ids(await store.list_calls(number="+7 916 123 45 67")) == ["in-missed", "out-answered"]
    assert ids(await store.list_calls(number="9031112233")) == ["in-answered"]
    assert ids(await store.list_calls(number="104")) == ["internal"]
    # An agent matches when they answered or were rung.
    assert ids(await store.list_calls(agent="101")) == ["in-missed", "in-answered", "out-answered"]
    assert ids(await store.list_calls(agent="102")) == ["in-missed", "in-answered"]
    assert ids(await store.list_calls(agent="106")) == []
    assert ids(await store.list_calls(direction="outbound")) == ["out-answered", "failed"]
    assert ids(await store.list_calls(outcome="answered")) == ["in-answered", "out-answered", "internal"]
    assert ids(await store.list_calls(direction="inbound", outcome="missed")) == ["in-missed"]
    assert ids(await store.list_calls(limit=2, offset=1)) == ["in-answered", "out-answered"]
    assert ids(await store.list_calls(offset=4)) == ["failed"]


async def test_list_missed_filters(store: CallStore) -> None:
    a = make_call("a", caller="89161234567", started_at=T0 + 1)
    b = make_call("b", caller="+7 903 111-22-33", started_at=T0 + 2)
    c = make_call("c", caller="79161234567", started_at=T0 + 3)
    for record in (a, b, c):
        store.stage_call(record, missed_for(record), ())
    await store.flush()
    entries = await store.list_missed()
    assert [e.linkedid for e in entries] == ["a", "b", "c"]
    assert entries[1].id is not None
    await store.close_missed(entries[1].id, None)

    assert [e.linkedid for e in await store.list_missed(status="open")] == ["a", "c"]
    assert [e.linkedid for e in await store.list_missed(status="closed")] == ["b"]
    assert [e.linkedid for e in await store.list_missed(number="8 (916) 123-45-67")] == ["a", "c"]
    assert [e.linkedid for e in await store.list_missed(since=T0 + 2, until=T0 + 3)] == ["b"]
    assert [e.linkedid for e in await store.list_missed(limit=1)] == ["a"]


async def test_list_agent_misses_filters(store: CallStore) -> None:
    one = make_call("one", started_at=T0)
    two = make_call("two", started_at=T0 + 100)
    store.stage_call(one, None, [agent_miss(one, "101"), agent_miss(one, "102")])
    store.stage_call(two, None, [agent_miss(two, "101")])
    await store.flush()
    assert [(m.linkedid, m.agent) for m in await store.list_agent_misses(agent="101")] == [("one", "101"),
                                                                                        ("two", "101")]
    assert [(m.linkedid, m.agent) for m in await store.list_agent_misses(since=T0 + 50)] == [("two", "101")]
    assert [m.agent for m in await store.list_agent_misses(until=T0 + 50)] == ["101", "102"]


# -- staging and the writer ----------------------------------------------------------------------------

async def test_a_thousand_staged_calls_are_saved_by_one_flush(store: CallStore) -> None:
    records = [make_call(f"bulk-{i:04d}", started_at=T0 + i, caller_name=f"Абонент {i}") for i in range(1000)]
    for record in records:
        store.stage_call(record, missed_for(record), [agent_miss(record, "101")])
    assert await store.count_calls() == 0  # staged is not saved: nothing reaches the database by itself

    await store.flush()
    assert await store.count_calls() == 1000
    assert await store.list_calls() == records
    assert len(await store.list_missed(status="open")) == 1000
    assert len(await store.list_agent_misses(agent="101")) == 1000


async def test_writer_commits_within_the_flush_interval(open_store: OpenStore) -> None:
    store = await open_store(flush_interval=0.05 * UNIT, batch_size=1000)
    async with asyncio.TaskGroup() as tg:
        writer = tg.create_task(store.run_writer())
        store.stage_call(make_call("w1"), None, ())
        await wait_for_count(store, 1, timeout=5 * UNIT)
        writer.cancel()


async def test_writer_commits_a_full_batch_without_waiting_for_the_interval(open_store: OpenStore) -> None:
    store = await open_store(flush_interval=3600.0, batch_size=10)
    async with asyncio.TaskGroup() as tg:
        writer = tg.create_task(store.run_writer())
        for i in range(10):
            store.stage_call(make_call(f"full-{i}", started_at=T0 + i), None, ())
        await wait_for_count(store, 10, timeout=5 * UNIT)
        for i in range(10, 13):
            store.stage_call(make_call(f"full-{i}", started_at=T0 + i), None, ())
        await asyncio.sleep(0.2 * UNIT)
        assert await store.count_calls() == 10  # three staged, batch not full, interval an hour away
        writer.cancel()
    # A cancelled writer commits what is left before it ends.
    assert await store.count_calls() == 13


async def test_flush_while_the_writer_runs_returns_only_when_all_is_committed(open_store: OpenStore) -> None:
    store = await open_store(flush_interval=0.01 * UNIT, batch_size=7)
    async with asyncio.TaskGroup() as tg:
        writer = tg.create_task(store.run_writer())
        for round_ in range(20):
            for i in range(25):
                store.stage_call(make_call(f"mix-{round_}-{i}", started_at=T0 + round_ * 100 + i), None, ())
                if i % 5 == 0:
                    await asyncio.sleep(0)
            await store.flush()
            assert await store.count_calls() == (round_ + 1) * 25
        writer.cancel()


async def test_a_cancelled_flush_loses_nothing(store: CallStore) -> None:
    """Cancelling whoever awaits a flush (the daemon shutting down) neither aborts nor splits the batch."""
    records = [make_call(f"c-{i:04d}", started_at=T0 + i) for i in range(2000)]
    for record in records:
        store.stage_call(record, missed_for(record), ())
    flushing = asyncio.create_task(store.flush())
    await asyncio.sleep(0.001 * UNIT)  # the transaction is under way
    flushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flushing
    await store.flush()
    assert await store.list_calls() == records


async def test_close_commits_staged_items_and_refuses_new_ones(open_store: OpenStore) -> None:
    store = await open_store()
    store.stage_event("open-call", [("Event", "Newchannel")], T0)
    store.stage_call(make_call("closing"), None, ())
    await store.close()
    with pytest.raises(StoreClosed):
        store.stage_call(make_call("late"), None, ())
    reopened = await open_store()
    assert ids(await reopened.list_calls()) == ["closing"]
    assert [e[0] for e in await reopened.live_events()] == ["open-call"]


# -- live events ---------------------------------------------------------------------------------------

async def test_live_events_keep_headers_order_and_duplicates(store: CallStore) -> None:
    headers = [("Event", "Newchannel"), ("CallerIDName", "Анна Смирнова"), ("ChanVariable", "A=1"),
               ("ChanVariable", "B=2"), ("Linkedid", "L1")]
    store.stage_event("L1", headers, T0 + 0.25)
    store.stage_event("L2", [("Event", "Newchannel")], T0 + 0.5)
    store.stage_event("L1", [("Event", "DialBegin")], T0 + 0.75)
    await store.flush()
    assert await store.live_events() == [
        ("L1", headers, T0 + 0.25),
        ("L2", [("Event", "Newchannel")], T0 + 0.5),
        ("L1", [("Event", "DialBegin")], T0 + 0.75),
    ]


async def test_saving_a_call_deletes_the_live_events_of_all_its_linkedids(store: CallStore) -> None:
    store.stage_event("L1", [("Event", "Newchannel")], T0)
    store.stage_event("L2", [("Event", "Newchannel")], T0 + 1)  # merged into L1's call by a pickup
    store.stage_event("L3", [("Event", "Newchannel")], T0 + 2)  # another call, still going on
    await store.flush()
    store.stage_call(make_call("L1", linkedids=("L1", "L2")), None, ())
    await store.flush()
    assert [e[0] for e in await store.live_events()] == ["L3"]


async def test_events_and_calls_are_written_in_staging_order(store: CallStore) -> None:
    """An event staged after its call was saved is kept: the delete happened where the call was staged."""
    store.stage_event("L1", [("Event", "Newchannel")], T0)
    store.stage_call(make_call("L1"), None, ())
    store.stage_event("L1", [("Event", "Hangup"), ("Cause", "16")], T0 + 1)
    await store.flush()
    assert await store.live_events() == [("L1", [("Event", "Hangup"), ("Cause", "16")], T0 + 1)]


# -- the call-back workflow ----------------------------------------------------------------------------

async def test_answered_outbound_call_to_a_differently_written_number_closes_the_entry(store: CallStore) -> None:
    missed = make_call("miss", caller="79161234567", started_at=T0)
    await save(store, missed, missed=True)
    callback = make_call("cb", direction="outbound", caller="101", called="8 916 123-45-67", answered=True,
                         answered_by="101", started_at=T0 + 600)
    await save(store, callback)

    entry = await only_entry(store)
    assert (entry.status, entry.closed_by, entry.closed_linkedid) == ("closed", "callback", "cb")
    assert entry.closed_at == callback.answered_at
    assert entry.id is not None
    history = await store.missed_history(entry.id)
    assert [(h.action, h.by, h.linkedid, h.at) for h in history] == [
        ("opened", None, "miss", T0), ("closed", "callback", "cb", callback.answered_at)]


async def test_same_number_calling_again_and_answered_closes_the_entry(store: CallStore) -> None:
    await save(store, make_call("miss", caller="89161234567"), missed=True)
    again = make_call("again", caller="+7 916 123-45-67", answered=True, answered_by="102", started_at=T0 + 60)
    await save(store, again)
    entry = await only_entry(store)
    assert (entry.status, entry.closed_by, entry.closed_linkedid, entry.closed_at) == (
        "closed", "called_again", "again", again.answered_at)


async def test_one_call_back_closes_every_open_entry_of_that_number_only(store: CallStore) -> None:
    await save(store, make_call("m1", caller="79161234567", started_at=T0), missed=True)
    await save(store, make_call("m2", caller="9161234567", started_at=T0 + 1), missed=True)
    await save(store, make_call("other", caller="79031112233", started_at=T0 + 2), missed=True)
    await save(store, make_call("cb", direction="outbound", called="+79161234567", answered=True,
                                answered_by="101", started_at=T0 + 100))
    state = {e.linkedid: (e.status, e.closed_linkedid) for e in await store.list_missed()}
    assert state == {"m1": ("closed", "cb"), "m2": ("closed", "cb"), "other": ("open", None)}


async def test_unanswered_outbound_call_closes_nothing(store: CallStore) -> None:
    await save(store, make_call("miss"), missed=True)
    await save(store, make_call("try", direction="outbound", caller="101", called="89161234567",
                                started_at=T0 + 60))
    await save(store, make_call("int", direction="internal", caller="101", called="79161234567",
                                answered=True, answered_by="101", started_at=T0 + 70))
    await save(store, make_call("again-missed", started_at=T0 + 80), missed=True)
    assert [(e.linkedid, e.status) for e in await store.list_missed()] == [("miss", "open"),
                                                                          ("again-missed", "open")]


async def test_a_call_never_closes_the_entry_it_opens(store: CallStore) -> None:
    # Answered in the end (say, after a transfer) yet counted as missed by the model: its own entry stays.
    record = make_call("self", answered=True, answered_by="104", linkedids=("self", "self-2"))
    for _ in range(2):  # saved again once its entry is in the register: still not its own call-back
        store.stage_call(record, dataclasses.replace(missed_for(record), linkedid="self-2"), ())
        await store.flush()
        assert (await only_entry(store)).status == "open"


async def test_call_back_in_the_same_batch_as_the_miss_closes_it(store: CallStore) -> None:
    miss = make_call("miss", started_at=T0)
    store.stage_call(miss, missed_for(miss), ())
    store.stage_call(make_call("cb", direction="outbound", called="89161234567", answered=True,
                               answered_by="101", started_at=T0 + 60), None, ())
    await store.flush()
    entry = await only_entry(store)
    assert (entry.status, entry.closed_linkedid) == ("closed", "cb")


async def test_call_saved_before_the_miss_does_not_close_it_even_in_the_same_batch(store: CallStore) -> None:
    store.stage_call(make_call("cb", direction="outbound", called="89161234567", answered=True,
                               answered_by="101", started_at=T0), None, ())
    miss = make_call("miss", started_at=T0 + 60)
    store.stage_call(miss, missed_for(miss), ())
    await store.flush()
    assert (await only_entry(store)).status == "open"


async def test_manual_close_with_comment_and_history(store: CallStore) -> None:
    await save(store, make_call("miss"), missed=True)
    entry = await only_entry(store)
    assert entry.id is not None

    closed = await store.close_missed(entry.id, "Перезвонили с мобильного", by="Олег", at=T0 + 100)
    assert (closed.status, closed.closed_by, closed.closed_at, closed.closed_linkedid, closed.comment) == (
        "closed", "manual", T0 + 100, None, "Перезвонили с мобильного")
    assert await store.get_missed(entry.id) == closed
    with pytest.raises(MissedAlreadyClosed, match="already closed"):
        await store.close_missed(entry.id, "again")

    reopened = await store.reopen_missed(entry.id, "не дозвонились", by="Анна", at=T0 + 200)
    assert (reopened.status, reopened.closed_by, reopened.closed_at, reopened.comment) == (
        "open", None, None, "не дозвонились")
    with pytest.raises(MissedAlreadyOpen):
        await store.reopen_missed(entry.id, None)
    commented = await store.comment_missed(entry.id, "клиент просил после 18:00", by="Анна", at=T0 + 300)
    assert (commented.status, commented.comment) == ("open", "клиент просил после 18:00")

    history = await store.missed_history(entry.id)
    assert [(h.action, h.by, h.at, h.comment) for h in history] == [
        ("opened", None, T0, None),
        ("closed", "Олег", T0 + 100, "Перезвонили с мобильного"),
        ("reopened", "Анна", T0 + 200, "не дозвонились"),
        ("commented", "Анна", T0 + 300, "клиент просил после 18:00"),
    ]


async def test_a_reopened_entry_is_closed_again_by_the_next_call_back(store: CallStore) -> None:
    await save(store, make_call("miss"), missed=True)
    entry = await only_entry(store)
    assert entry.id is not None
    await store.close_missed(entry.id, None)
    await store.reopen_missed(entry.id, None)
    await save(store, make_call("cb", direction="outbound", called="89161234567", answered=True,
                                answered_by="101", started_at=T0 + 500))
    assert [h.action for h in await store.missed_history(entry.id)] == ["opened", "closed", "reopened", "closed"]
    assert (await store.get_missed(entry.id)).closed_by == "callback"


async def test_unknown_missed_entry_is_a_clear_error(store: CallStore) -> None:
    for action in (store.close_missed(4242, "x"), store.reopen_missed(4242, None),
                   store.comment_missed(4242, "x"), store.missed_history(4242), store.get_missed(4242)):
        with pytest.raises(MissedNotFound) as caught:
            await action
        assert isinstance(caught.value, KeyError)
        assert str(caught.value) == "no missed-call entry #4242"


async def test_withheld_callers_are_never_matched_by_a_call_back(store: CallStore) -> None:
    await save(store, make_call("anon", caller="anonymous"), missed=True)
    await save(store, make_call("anon-again", caller="anonymous", answered=True, answered_by="101",
                                started_at=T0 + 10))
    entry = await only_entry(store)
    assert (entry.caller_key, entry.status) == (None, "open")
