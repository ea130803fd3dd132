"""The durable CRM outbox, against the interface (every store runs it: SQLite and PostgreSQL).

What the push, the sender and the people watching them rely on: a call's requests are written with its planner state
and go out one at a time in the order queued, while other calls' go in parallel; a request is taken by one taker at a
time (two nodes taking at once never get one request, nor two of one call), retried when the sender says, given up
with its error kept, queued again by hand; what the CRM's answers gave is kept per call for the later requests; a
connector's values are replaced atomically (a rotated token written by one node only; an event handled once); the
status counts what waits, what was given up and what went; nothing is lost across a restart; hostile text is kept
as it came and what cannot be kept is refused before anything is written.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cti.crm import CrmRequest
from store.repository import CrmItemNotFound, Store
from tests.store.conftest import OpenStore

NOW = 1_772_430_000.0  # 2 March 2026
LEASE = 30.0
CALL_A = "main:1772430000.11"
CALL_B = "main:1772430005.42"
HOSTILE = {"title": "Звонок от «Иванов» \"ООО 'Ромашка'\" <b>жирно</b> \\ ; DROP TABLE crm_outbox; --",
           "nested": {"список": ["а", 1, 2.5, None, True], "пусто": {}}, "emoji": "📞"}


def req(kind: str = "event", **payload: Any) -> CrmRequest:
    return CrmRequest(kind, payload)


async def test_a_calls_requests_are_queued_in_order_with_its_state(store: Store) -> None:
    made = await store.queue_crm("bitrix24", CALL_A, {"stage": "ringing", "agents": ["101"]},
                                 [req("register", phone="79161234567"), req("show", user=7)], at=NOW)
    assert [(i.crm, i.call, i.seq, i.kind, i.payload) for i in made] == [
        ("bitrix24", CALL_A, 1, "register", {"phone": "79161234567"}), ("bitrix24", CALL_A, 2, "show", {"user": 7})]
    first = made[0]
    assert (first.state, first.attempts, first.created_at, first.next_try_at, first.answer) == (
        "pending", 0, NOW, NOW, {})
    assert await store.crm_call_state("bitrix24", CALL_A) == {"stage": "ringing", "agents": ["101"]}
    # The next event of the call: appended after them; no new state leaves the kept one as it was.
    [third] = await store.queue_crm("bitrix24", CALL_A, None, [req("hide", user=7)], at=NOW + 5)
    assert third.seq == 3 and await store.crm_call_state("bitrix24", CALL_A) == {"stage": "ringing",
                                                                                   "agents": ["101"]}
    # A state with nothing to send is kept too; another CRM's view of the same call is its own.
    assert await store.queue_crm("bitrix24", CALL_A, {"stage": "answered"}, [], at=NOW + 6) == []
    assert await store.crm_call_state("bitrix24", CALL_A) == {"stage": "answered"}
    assert await store.crm_call_state("amocrm", CALL_A) is None
    [other] = await store.queue_crm("amocrm", CALL_A, {}, [req("newCall")], at=NOW + 7)
    assert other.seq == 1 and await store.crm_call_state("amocrm", CALL_A) == {}
    assert [i.seq for i in await store.list_crm_items(call=CALL_A, crm="bitrix24")] == [1, 2, 3]


async def test_requests_go_one_at_a_time_per_call_and_calls_in_parallel(store: Store) -> None:
    a1, a2, a3 = await store.queue_crm("webhook", CALL_A, {}, [req(n=1), req(n=2), req(n=3)], at=NOW)
    [b1] = await store.queue_crm("webhook", CALL_B, {}, [req(n=1)], at=NOW + 1)
    assert await store.take_crm("webhook", now=NOW - 1, lease_seconds=LEASE, limit=10) == []  # not due yet
    taken = await store.take_crm("webhook", now=NOW + 2, lease_seconds=LEASE, limit=10)
    assert [t.id for t in taken] == [a1.id, b1.id]  # the first of each call, oldest first; A's others wait
    assert all(t.attempts == 1 and t.next_try_at == NOW + 2 + LEASE for t in taken)
    # Leased: neither is handed out again, nor what comes after A's first, while the lease lasts.
    assert await store.take_crm("webhook", now=NOW + 3, lease_seconds=LEASE, limit=10) == []
    await store.crm_sent(a1.id, {"call_id": "ext-1"}, at=NOW + 4)
    [next_a] = await store.take_crm("webhook", now=NOW + 5, lease_seconds=LEASE, limit=10)
    assert next_a.id == a2.id
    await store.crm_sent(a2.id, {}, at=NOW + 6)
    await store.crm_sent(b1.id, {}, at=NOW + 6)
    [last] = await store.take_crm("webhook", now=NOW + 7, lease_seconds=LEASE, limit=10)
    assert last.id == a3.id
    # Another CRM's queue is its own.
    assert await store.take_crm("zammad", now=NOW + 7, lease_seconds=LEASE, limit=10) == []


async def test_a_taker_that_dies_leaves_the_lease_to_run_out_and_the_request_is_taken_again(
        open_store: OpenStore) -> None:
    store = await open_store()
    first, second = await store.queue_crm("zammad", CALL_A, {"n": 1}, [req("newCall"), req("hangup")], at=NOW)
    [taken] = await store.take_crm("zammad", now=NOW, lease_seconds=LEASE)
    assert taken.id == first.id
    await store.close()  # the daemon is gone with the request in flight
    store = await open_store()
    assert await store.take_crm("zammad", now=NOW + LEASE - 1, lease_seconds=LEASE) == []  # its lease still holds
    [again] = await store.take_crm("zammad", now=NOW + LEASE, lease_seconds=LEASE)
    assert (again.id, again.attempts) == (first.id, 2)  # the same request, its second try; the hangup still waits
    assert await store.crm_call_state("zammad", CALL_A) == {"n": 1}
    await store.crm_sent(first.id, {}, at=NOW + LEASE + 1)
    [then] = await store.take_crm("zammad", now=NOW + LEASE + 1, lease_seconds=LEASE)
    assert then.id == second.id


async def test_what_the_answers_gave_is_kept_for_the_later_requests_and_the_first_report_wins(store: Store) -> None:
    register, finish = await store.queue_crm("bitrix24", CALL_A, {}, [req("register"), req("finish")], at=NOW)
    assert await store.crm_call_answers("bitrix24", CALL_A) == {}
    await store.take_crm("bitrix24", now=NOW, lease_seconds=LEASE)
    await store.crm_sent(register.id, {"call_id": "externalCall.abc", "crm_entity": "Контакт №1"}, at=NOW + 1)
    await store.crm_sent(register.id, {"call_id": "something else"}, at=NOW + 50)  # a repeat keeps the first
    kept, _ = await store.list_crm_items(call=CALL_A)
    assert (kept.state, kept.sent_at, kept.attempts, kept.answer) == (
        "sent", NOW + 1, 1, {"call_id": "externalCall.abc", "crm_entity": "Контакт №1"})
    await store.take_crm("bitrix24", now=NOW + 2, lease_seconds=LEASE)
    await store.crm_sent(finish.id, {"crm_entity": "Сделка №2", "activity": 5}, at=NOW + 3)
    assert await store.crm_call_answers("bitrix24", CALL_A) == {  # merged in order: a later value replaces
        "call_id": "externalCall.abc", "crm_entity": "Сделка №2", "activity": 5}
    assert await store.crm_call_answers("bitrix24", CALL_B) == {}
    with pytest.raises(CrmItemNotFound):
        await store.crm_sent(987654, {}, at=NOW)


async def test_a_failed_try_is_retried_when_asked_or_given_up_and_the_call_goes_on(store: Store) -> None:
    first, second = await store.queue_crm("amocrm", CALL_A, {}, [req("newCall"), req("hangup")], at=NOW)
    await store.take_crm("amocrm", now=NOW, lease_seconds=LEASE)
    failed = await store.crm_failed(first.id, "HTTP 503 Service Unavailable", at=NOW + 1, next_try_at=NOW + 20)
    assert (failed.state, failed.attempts, failed.next_try_at, failed.last_error) == (
        "pending", 1, NOW + 20, "HTTP 503 Service Unavailable")
    assert await store.take_crm("amocrm", now=NOW + 19, lease_seconds=LEASE) == []  # backing off; the hangup waits
    [retaken] = await store.take_crm("amocrm", now=NOW + 20, lease_seconds=LEASE)
    assert (retaken.id, retaken.attempts) == (first.id, 2)
    given_up = await store.crm_failed(first.id, "HTTP 400 " + "плохой запрос " * 500, at=NOW + 21, next_try_at=None)
    assert (given_up.state, given_up.failed_at, given_up.attempts) == ("failed", NOW + 21, 2)
    assert given_up.last_error is not None and len(given_up.last_error) == 2000
    # Given up: it is not sent, the call's next request goes.
    [then] = await store.take_crm("amocrm", now=NOW + 22, lease_seconds=LEASE)
    assert then.id == second.id
    # A report about a request that is no longer pending changes nothing.
    again = await store.crm_failed(first.id, "late", at=NOW + 23, next_try_at=NOW + 30)
    assert (again.state, again.failed_at, again.last_error) == ("failed", NOW + 21, given_up.last_error)
    await store.crm_sent(second.id, {}, at=NOW + 24)
    late = await store.crm_failed(second.id, "a lease ran out meanwhile", at=NOW + 25, next_try_at=None)
    assert (late.state, late.last_error) == ("sent", None)
    with pytest.raises(CrmItemNotFound):
        await store.crm_failed(987654, "x", at=NOW, next_try_at=None)


async def test_a_given_up_request_queued_again_goes_before_its_calls_later_ones(store: Store) -> None:
    first, second, third = await store.queue_crm("onec", CALL_A, {}, [req(n=1), req(n=2), req(n=3)], at=NOW)
    await store.take_crm("onec", now=NOW, lease_seconds=LEASE)
    await store.crm_failed(first.id, "1C is down", at=NOW + 1, next_try_at=None)
    [taken] = await store.take_crm("onec", now=NOW + 2, lease_seconds=LEASE)
    assert taken.id == second.id
    await store.crm_sent(second.id, {}, at=NOW + 3)
    retried = await store.crm_retry(first.id, at=NOW + 100)
    # Tried again as a new request (its back-off and its give-up period start again), the last error kept.
    assert (retried.state, retried.next_try_at, retried.attempts, retried.last_error, retried.retried_at) == (
        "pending", NOW + 100, 0, "1C is down", NOW + 100)
    assert await store.take_crm("onec", now=NOW + 99, lease_seconds=LEASE) == []  # due at 100; the third waits too
    [again] = await store.take_crm("onec", now=NOW + 100, lease_seconds=LEASE, limit=5)
    assert (again.id, again.attempts, again.created_at) == (first.id, 1, NOW)
    await store.crm_sent(first.id, {}, at=NOW + 101)
    [last] = await store.take_crm("onec", now=NOW + 102, lease_seconds=LEASE, limit=5)
    assert last.id == third.id
    assert (await store.crm_retry(third.id, at=NOW + 200)).next_try_at == NOW + 102 + LEASE  # pending: as it is
    with pytest.raises(CrmItemNotFound):
        await store.crm_retry(987654, at=NOW)


async def test_the_status_counts_each_crms_outbox(store: Store) -> None:
    assert await store.crm_status() == []
    b1, b2 = await store.queue_crm("bitrix24", CALL_A, {}, [req("register"), req("finish")], at=NOW)
    [b3] = await store.queue_crm("bitrix24", CALL_B, {}, [req("register")], at=NOW + 10)
    [w1] = await store.queue_crm("webhook", CALL_A, {}, [req()], at=NOW + 20)
    await store.take_crm("bitrix24", now=NOW + 30, lease_seconds=LEASE, limit=5)
    await store.crm_sent(b1.id, {"call_id": "x"}, at=NOW + 31)
    await store.crm_failed(b3.id, "expired_token", at=NOW + 32, next_try_at=None)
    await store.take_crm("webhook", now=NOW + 30, lease_seconds=LEASE)
    await store.crm_failed(w1.id, "connection refused", at=NOW + 33, next_try_at=NOW + 60)
    bitrix, webhook = await store.crm_status()
    assert (bitrix.crm, bitrix.pending, bitrix.failed, bitrix.sent, bitrix.oldest_pending_at, bitrix.last_error) == (
        "bitrix24", 1, 1, 1, NOW, "expired_token")
    assert (webhook.crm, webhook.pending, webhook.failed, webhook.sent, webhook.oldest_pending_at,
            webhook.last_error) == ("webhook", 1, 0, 0, NOW + 20, "connection refused")
    # The webhook's receiver is back: nothing waits, no error left to show.
    await store.take_crm("webhook", now=NOW + 60, lease_seconds=LEASE)
    await store.crm_sent(w1.id, {}, at=NOW + 61)
    await store.take_crm("bitrix24", now=NOW + 60, lease_seconds=LEASE)
    await store.crm_sent(b2.id, {}, at=NOW + 62)
    bitrix, webhook = await store.crm_status()
    assert (webhook.pending, webhook.sent, webhook.oldest_pending_at, webhook.last_error) == (0, 1, None, None)
    assert (bitrix.pending, bitrix.failed, bitrix.sent, bitrix.last_error) == (0, 1, 2, "expired_token")


async def test_the_listings_filter_and_the_pull_feed_reads_after_its_cursor(store: Store) -> None:
    a1, a2 = await store.queue_crm("onec", CALL_A, {}, [req("call", n=1), req("call", n=2)], at=NOW)
    [w] = await store.queue_crm("webhook", CALL_A, {}, [req()], at=NOW + 1)
    [b1] = await store.queue_crm("onec", CALL_B, {}, [req("call", n=3)], at=NOW + 2)
    await store.take_crm("onec", now=NOW + 3, lease_seconds=LEASE, limit=5)
    await store.crm_sent(a1.id, {}, at=NOW + 4)
    await store.crm_failed(b1.id, "no", at=NOW + 4, next_try_at=None)
    assert [i.id for i in await store.list_crm_items()] == [b1.id, w.id, a2.id, a1.id]  # newest first
    assert [i.id for i in await store.list_crm_items(limit=2)] == [b1.id, w.id]
    assert [i.id for i in await store.list_crm_items(crm="onec")] == [b1.id, a2.id, a1.id]
    assert [i.id for i in await store.list_crm_items(state="pending")] == [w.id, a2.id]
    assert [i.id for i in await store.list_crm_items(state="sent")] == [a1.id]
    assert [i.id for i in await store.list_crm_items(crm="onec", state="failed")] == [b1.id]
    assert [i.id for i in await store.list_crm_items(call=CALL_A, crm="onec")] == [a1.id, a2.id]  # in seq order
    assert [i.id for i in await store.list_crm_items(call=CALL_A)] == [a1.id, a2.id, w.id]
    # The 1C feed: every item of its CRM after the reader's cursor, whatever its state, oldest first.
    assert [i.id for i in await store.crm_items_after("onec", 0)] == [a1.id, a2.id, b1.id]
    assert [i.id for i in await store.crm_items_after("onec", a1.id, limit=1)] == [a2.id]
    assert await store.crm_items_after("onec", b1.id) == []
    with pytest.raises(ValueError):
        await store.list_crm_items(state="lost")  # type: ignore[arg-type]


async def test_a_connectors_values_are_replaced_atomically(store: Store) -> None:
    assert await store.crm_value("bitrix24", "tokens") is None
    tokens = {"access": "a1", "refresh": "r1", "expires": NOW + 3600.5}
    assert await store.put_crm_value("bitrix24", "tokens", tokens)
    assert await store.crm_value("bitrix24", "tokens") == tokens
    rotated = {"access": "a2", "refresh": "r2", "expires": NOW + 7200}
    assert await store.put_crm_value("bitrix24", "tokens", rotated, expect=tokens)
    assert not await store.put_crm_value("bitrix24", "tokens", {"access": "a3"}, expect=tokens)  # it moved on
    assert await store.crm_value("bitrix24", "tokens") == rotated
    # A delivery handled once: the second time finds it kept.
    assert await store.put_crm_value("bitrix24", "event:ONEXTERNALCALLSTART:42", {"at": NOW}, only_new=True)
    assert not await store.put_crm_value("bitrix24", "event:ONEXTERNALCALLSTART:42", {"at": NOW + 1}, only_new=True)
    assert await store.crm_value("bitrix24", "event:ONEXTERNALCALLSTART:42") == {"at": NOW}
    # An expectation of a value never kept is not met; the names of one CRM are not another's.
    assert not await store.put_crm_value("amocrm", "tokens", rotated, expect=tokens)
    assert await store.crm_value("amocrm", "tokens") is None
    assert await store.put_crm_value("bitrix24", "settings", HOSTILE)
    assert await store.put_crm_value("bitrix24", "settings", {"x": 1}, expect=dict(reversed(HOSTILE.items())))
    with pytest.raises(ValueError):
        await store.put_crm_value("bitrix24", "tokens", rotated, expect=rotated, only_new=True)


async def test_nodes_taking_at_once_never_take_one_request_nor_two_of_one_call(open_store: OpenStore) -> None:
    nodes = [await open_store() for _ in range(4)]  # four stores on the same database: four nodes' senders
    store = nodes[0]
    calls = [f"main:{n}" for n in range(40)]
    for n, call in enumerate(calls):
        await store.queue_crm("webhook", call, {}, [req(call=call, n=1), req(call=call, n=2)], at=NOW + n)
    sent: list[int] = []
    for round_ in range(20):
        now = NOW + 100 + round_
        taken = await asyncio.gather(*(node.take_crm("webhook", now=now, lease_seconds=LEASE, limit=3)
                                       for node in nodes))
        in_flight = [item for items in taken for item in items]
        assert len({i.id for i in in_flight}) == len(in_flight), "one request taken twice"
        assert len({i.call for i in in_flight}) == len(in_flight), "two requests of one call in flight"
        await asyncio.gather(*(node.crm_sent(item.id, {}, at=now) for node, items in zip(nodes, taken, strict=True)
                               for item in items))
        sent.extend(i.id for i in in_flight)
    everything = await store.list_crm_items(limit=100)
    assert sorted(sent) == sorted(i.id for i in everything)  # each once, none left
    for call in calls:  # and each call's in its order
        first, second = await store.list_crm_items(call=call)
        assert first.sent_at is not None and second.sent_at is not None and first.sent_at < second.sent_at


async def test_two_nodes_queueing_for_one_call_at_once_get_their_own_places(open_store: OpenStore) -> None:
    store = await open_store()
    other_node = await open_store()
    made = await asyncio.gather(*(node.queue_crm("zammad", CALL_A, {"by": n}, [req(n=n), req(n=n)], at=NOW + n)
                                  for n, node in enumerate([store, other_node] * 4)))
    seqs = sorted(i.seq for items in made for i in items)
    assert seqs == list(range(1, 17))
    for items in made:  # each caller's requests next to each other
        assert items[1].seq == items[0].seq + 1
    # Still one at a time: the head is the first, whoever queued it.
    [head] = await other_node.take_crm("zammad", now=NOW + 50, lease_seconds=LEASE, limit=20)
    assert head.seq == 1


async def test_two_nodes_replacing_one_value_with_the_same_expectation_one_wins(open_store: OpenStore) -> None:
    store = await open_store()
    other_node = await open_store()
    old = {"refresh": "r1"}
    await store.put_crm_value("amocrm", "tokens", old)
    for attempt in range(5):
        new_a, new_b = {"refresh": f"a{attempt}"}, {"refresh": f"b{attempt}"}
        won = await asyncio.gather(store.put_crm_value("amocrm", "tokens", new_a, expect=old),
                                   other_node.put_crm_value("amocrm", "tokens", new_b, expect=old))
        assert sorted(won) == [False, True]
        old = new_a if won[0] else new_b
        assert await other_node.crm_value("amocrm", "tokens") == old
        only = await asyncio.gather(store.put_crm_value("amocrm", f"event:{attempt}", {"n": 1}, only_new=True),
                                    other_node.put_crm_value("amocrm", f"event:{attempt}", {"n": 2}, only_new=True))
        assert sorted(only) == [False, True]


async def test_hostile_text_is_kept_as_it_came(store: Store) -> None:
    surrogate = {"name": "half a pair \ud83d here", "nul": "a\x00b"}
    item, _ = await store.queue_crm("webhook", CALL_A, HOSTILE,
                                    [req("event", **HOSTILE), req("event", **surrogate)], at=NOW)
    assert item.payload == HOSTILE
    assert await store.crm_call_state("webhook", CALL_A) == HOSTILE
    first, second = await store.list_crm_items(call=CALL_A)
    assert first.payload == HOSTILE and second.payload == surrogate
    await store.take_crm("webhook", now=NOW, lease_seconds=LEASE)
    failed = await store.crm_failed(first.id, "ошибка\x00 \ud800 «502»", at=NOW + 1, next_try_at=NOW + 2)
    assert failed.last_error == "ошибка\ufffd ? «502»"
    await store.crm_sent(first.id, {"ответ": "«ок»", "id": "'; --"}, at=NOW + 3)
    assert await store.crm_call_answers("webhook", CALL_A) == {"ответ": "«ок»", "id": "'; --"}


async def test_what_cannot_be_kept_is_refused_before_anything_is_written(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown CRM"):
        await store.queue_crm("salesforce", CALL_A, {}, [req()], at=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="call key"):
        await store.queue_crm("webhook", "x" * 201, {}, [req()], at=NOW)
    with pytest.raises(ValueError, match="call key"):
        await store.queue_crm("webhook", "", {}, [req()], at=NOW)
    with pytest.raises(ValueError, match="JSON object"):
        await store.queue_crm("webhook", CALL_A, ["not", "an", "object"], [req()], at=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not JSON"):
        await store.queue_crm("webhook", CALL_A, {}, [req(at=float("nan"))], at=NOW)
    with pytest.raises(ValueError, match="not JSON"):
        await store.queue_crm("webhook", CALL_A, {}, [req(), req(when=object())], at=NOW)
    with pytest.raises(ValueError, match="kind"):
        await store.queue_crm("webhook", CALL_A, {}, [CrmRequest("", {})], at=NOW)
    with pytest.raises(ValueError, match="unknown CRM"):
        await store.take_crm("Bitrix24", now=NOW, lease_seconds=LEASE)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await store.take_crm("webhook", now=NOW, lease_seconds=0)
    with pytest.raises(ValueError, match="name"):
        await store.put_crm_value("webhook", "n" * 201, {})
    with pytest.raises(ValueError, match="JSON object"):
        await store.crm_sent(1, "ok", at=NOW)  # type: ignore[arg-type]
    assert await store.list_crm_items() == [] and await store.crm_call_state("webhook", CALL_A) is None
    [kept] = await store.queue_crm("webhook", "x" * 200, {}, [req()], at=NOW)  # the longest key is fine
    assert kept.call == "x" * 200
