"""Streams and the indexed filters, against the interface: ``iter_*`` give what ``list_*`` give, page by page,
and every filter (agents rung or answering included) selects what the calls say, whatever the page size."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from cti.directory import Contact
from cti.phones import normalize_number
from cti.records import CallRecord, Direction
from store.repository import Store
from tests.store.builders import T0, agent_miss, make_call, missed_for

NUMBERS = ["8 916 123-45-67", "+7 (916) 123-45-67", "+79031112233", "anonymous", "104", "84950000000"]
AGENTS = ["101", "102", "103", "104"]


def year_of_calls(n: int = 60, seed: int = 7) -> list[CallRecord]:
    """Calls of every kind, several starting at the same instant (the order's tie-break is the linkedid)."""
    rnd = random.Random(seed)
    calls = []
    for i in range(n):
        direction: Direction = rnd.choice(["inbound", "outbound", "internal"])
        answered = rnd.random() < 0.6
        rung = tuple(rnd.sample(AGENTS, rnd.randint(0, 2)))
        by = rnd.choice(AGENTS) if answered else None
        calls.append(make_call(
            f"call-{rnd.randrange(10**6):06d}-{i}", direction=direction, caller=rnd.choice(NUMBERS),
            called=rnd.choice(NUMBERS), answered=answered, answered_by=by,
            started_at=T0 + 10 * (i // 3),  # three calls per instant
            agents_rung_not_answered=tuple(a for a in rung if a != by),
            agents_answered=(by, rnd.choice(AGENTS)) if by and rnd.random() < 0.3 else ((by,) if by else ()),
            outcome="answered" if answered else rnd.choice(["missed", "failed"]),
        ))
    return calls


def expected(calls: list[CallRecord], *, since: float | None = None, until: float | None = None,
             number: str | None = None, agent: str | None = None, direction: str | None = None,
             outcome: str | None = None, newest_first: bool = False) -> list[str]:
    """The journal's answer worked out from the calls themselves."""
    def keep(c: CallRecord) -> bool:
        if (since is not None and c.started_at < since) or (until is not None and c.started_at >= until):
            return False
        if number is not None:
            key = normalize_number(number)
            if key is None:  # a withheld number is matched as written, on a side that has no number
                if not any(normalize_number(side) is None and side == number for side in (c.caller, c.called)):
                    return False
            elif key not in (normalize_number(c.caller), normalize_number(c.called)):
                return False
        if agent is not None and agent not in {c.answered_by, *c.agents_rung_not_answered, *c.agents_answered}:
            return False
        return (direction is None or c.direction == direction) and (outcome is None or c.outcome == outcome)

    chosen = sorted((c for c in calls if keep(c)), key=lambda c: (c.started_at, c.linkedid), reverse=newest_first)
    return [c.linkedid for c in chosen]


FILTERS: list[dict[str, object]] = [
    {}, {"since": T0 + 50, "until": T0 + 150}, {"number": "89161234567"}, {"number": "anonymous"},
    {"number": "104", "since": T0 + 30}, {"agent": "101"}, {"agent": "104", "until": T0 + 120},
    {"agent": "102", "number": "+7 903 111 22 33"}, {"direction": "inbound"}, {"outcome": "missed"},
    {"direction": "outbound", "outcome": "answered", "since": T0 + 20}, {"agent": "103", "direction": "internal"},
]


@pytest.fixture
async def journal(store: Store) -> list[CallRecord]:
    calls = year_of_calls()
    for record in calls:
        store.stage_call(record, None, ())
    await store.flush()
    return calls


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "all")
async def test_every_filter_lists_and_streams_what_the_calls_say(store: Store, journal: list[CallRecord],
                                                                 filters: dict[str, object]) -> None:
    for newest_first in (False, True):
        want = expected(journal, newest_first=newest_first, **filters)  # type: ignore[arg-type]
        assert want  # every case selects some calls and leaves others out
        assert len(want) < len(journal) or not filters
        listed = await store.list_calls(newest_first=newest_first, **filters)  # type: ignore[arg-type]
        assert [c.linkedid for c in listed] == want
        for page_size in (1, 2, 7, 500):
            streamed = [c async for c in store.iter_calls(newest_first=newest_first, page_size=page_size,
                                                          **filters)]  # type: ignore[arg-type]
            assert streamed == listed, page_size
        limited = [c.linkedid async for c in store.iter_calls(newest_first=newest_first, page_size=2, limit=5,
                                                                **filters)]  # type: ignore[arg-type]
        assert limited == want[:5]
        assert [c.linkedid for c in await store.list_calls(newest_first=newest_first, limit=4, offset=3,
                                                            **filters)] == want[3:7]  # type: ignore[arg-type]


async def test_the_agent_filter_follows_a_call_saved_again_with_other_agents(store: Store) -> None:
    first = make_call("c1", agents_rung_not_answered=("101", "102"))
    store.stage_call(first, None, ())
    await store.flush()
    assert [c.linkedid for c in await store.list_calls(agent="102")] == ["c1"]
    again = dataclasses.replace(first, answered=True, answered_by="103", outcome="answered",
                                agents_rung_not_answered=("101",), started_at=T0 + 5)
    store.stage_call(again, None, ())
    await store.flush()
    assert await store.list_calls(agent="102") == []
    assert [c.started_at for c in await store.list_calls(agent="101")] == [T0 + 5]
    assert [c.answered_by for c in await store.list_calls(agent="103")] == ["103"]


async def test_a_stream_is_paged_not_a_snapshot_calls_saved_meanwhile_after_the_cursor_come_too(store: Store) -> None:
    for i in range(6):
        store.stage_call(make_call(f"c{i}", started_at=T0 + i), None, ())
    await store.flush()
    stream = store.iter_calls(page_size=2)
    seen = [await anext(stream), await anext(stream)]
    store.stage_call(make_call("late", started_at=T0 + 100), None, ())
    await store.flush()
    seen += [c async for c in stream]
    assert [c.linkedid for c in seen] == ["c0", "c1", "c2", "c3", "c4", "c5", "late"]


async def test_the_register_and_agents_misses_stream_as_they_list(store: Store) -> None:
    calls = [make_call(f"m{i:02d}", caller=NUMBERS[i % 3], started_at=T0 + 5 * (i // 2)) for i in range(25)]
    for i, record in enumerate(calls):
        store.stage_call(record, missed_for(record), [agent_miss(record, a) for a in AGENTS[: 1 + i % 3]])
    await store.flush()
    for entry in (await store.list_missed())[::4]:
        assert entry.id is not None
        await store.close_missed(entry.id, "done")
    cases: list[dict[str, object]] = [{}, {"status": "open"}, {"status": "closed"}, {"number": "89161234567"},
                                      {"number": "89161234567", "status": "open"},
                                      {"since": T0 + 20, "until": T0 + 50}]
    for filters in cases:
        listed = await store.list_missed(**filters)  # type: ignore[arg-type]
        assert listed, filters
        for page_size, limit in itertools.product((1, 3, 500), (None, 4)):
            streamed = [e async for e in store.iter_missed(page_size=page_size, limit=limit,
                                                           **filters)]  # type: ignore[arg-type]
            assert streamed == listed[:limit], (filters, page_size)
    agent_cases: list[dict[str, object]] = [{}, {"agent": "101"}, {"agent": "102", "since": T0 + 10}]
    for filters in agent_cases:
        misses = await store.list_agent_misses(**filters)  # type: ignore[arg-type]
        assert misses, filters
        for page_size in (1, 4, 500):
            assert [m async for m in store.iter_agent_misses(page_size=page_size,
                                                              **filters)] == misses  # type: ignore[arg-type]


async def test_the_callers_card_facts_are_their_newest_calls_and_open_entries(store: Store) -> None:
    history = [make_call(f"h{i:03d}", caller="+7 916 123 45 67", started_at=T0 + i) for i in range(40)]
    others = [make_call(f"o{i}", caller="+79031112233", started_at=T0 + 100 + i) for i in range(3)]
    back = make_call("back", direction="outbound", caller="101", called="8 916 123-45-67", started_at=T0 + 200)
    for record in [*history, *others, back]:
        store.stage_call(record, missed_for(record) if record.direction == "inbound" else None, ())
    await store.flush()
    [contact_id] = await store.add_contacts([Contact(name="Иванов Пётр", phones=("89161234567",))])
    await store.attach_call("ringing-now", contact_id, by="anna")

    facts = await store.caller_facts("89161234567", linkedid="ringing-now", last_calls=6, open_missed=50)
    assert [c.linkedid for c in facts.last_calls] == ["back", "h039", "h038", "h037", "h036", "h035"]
    assert [e.linkedid for e in facts.open_missed] == [c.linkedid for c in history]
    assert [c.id for c in facts.contacts] == [contact_id]
    assert facts.attached is not None and facts.attached.id == contact_id

    nobody = await store.caller_facts("+7 999 000 00 00", contacts=0)
    assert (nobody.last_calls, nobody.open_missed, nobody.contacts, nobody.attached) == ((), (), (), None)
