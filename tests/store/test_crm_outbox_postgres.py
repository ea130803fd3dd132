"""The CRM outbox with several nodes on one PostgreSQL database, their transactions really overlapping.

The contract suite (``test_crm_outbox.py``) runs two or four nodes at once, but their transactions are short and
may well run one after another. Here another node's transaction is held open on a connection of the test's own (its
rows or its table locked, as that node's statement left them), while the store under test works: no timing in the
proof, the test waits until the store's statement is seen waiting on the lock (``pg_locks``) before letting go.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from cti.crm import CrmRequest
from store.crm_outbox import encode_object
from store.postgres import PostgresStore
from tests.conftest import UNIT
from tests.postgres import cluster

NOW = 1_772_430_000.0
LEASE = 30.0


@pytest.fixture
async def url() -> str:
    return await cluster().fresh_database()


@pytest.fixture
async def other_node(url: str) -> AsyncIterator[asyncpg.Connection]:
    """Another node's connection, its transaction held open by the test."""
    conn = await asyncpg.connect(url)
    yield conn
    await conn.close()


async def waiting_on_locks(conn: asyncpg.Connection, count: int) -> None:
    """Until ``count`` statements of the database wait for a lock (another node's, held by the test)."""
    async with asyncio.timeout(10 * UNIT):
        while await conn.fetchval("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                                  "WHERE NOT l.granted AND a.datname = current_database()") < count:
            await asyncio.sleep(0.01 * UNIT)


async def test_a_take_skips_what_another_nodes_take_holds_and_never_waits_for_it(
        url: str, other_node: asyncpg.Connection) -> None:
    async with PostgresStore.open(url) as store:
        for n in range(6):
            requests = [CrmRequest("event", {"n": n}), CrmRequest("event", {"n": n, "second": True})]
            await store.queue_crm("webhook", f"main:{n}", {}, requests, at=NOW + n)
        async with other_node.transaction():  # the other node is inside its take: it holds the three oldest heads
            held = [r["id"] for r in await other_node.fetch(
                "SELECT id FROM crm_outbox WHERE crm = 'webhook' AND head = 1 ORDER BY id LIMIT 3 FOR UPDATE")]
            async with asyncio.timeout(5 * UNIT):  # never waits for them
                taken = await store.take_crm("webhook", now=NOW + 10, lease_seconds=LEASE, limit=10)
        assert len(taken) == 3 and not {i.id for i in taken} & set(held)
        assert {i.call for i in taken} == {"main:3", "main:4", "main:5"}  # one each, the held calls' next ones wait
        assert all(i.seq == 1 for i in taken)


async def test_a_compare_and_set_loses_to_another_nodes_write_in_flight(url: str,
                                                                      other_node: asyncpg.Connection) -> None:
    async with PostgresStore.open(url) as store:
        old = {"refresh": "r1", "владелец": "узел 1"}
        await store.put_crm_value("amocrm", "tokens", old)
        theirs = {"refresh": "r2-theirs"}
        async with other_node.transaction():  # the other node rotated the token and has not committed yet
            await other_node.execute("UPDATE crm_values SET value = $1 WHERE crm = 'amocrm' AND name = 'tokens' "
                                     "AND value = $2", encode_object(theirs, "v"), encode_object(old, "v"))
            ours = asyncio.create_task(store.put_crm_value("amocrm", "tokens", {"refresh": "r2-ours"}, expect=old))
            await waiting_on_locks(other_node, 1)
            assert not ours.done()
        async with asyncio.timeout(5 * UNIT):
            assert await ours is False  # the value it expected is gone: the rotation is the other node's
        assert await store.crm_value("amocrm", "tokens") == theirs


async def test_a_request_queued_while_the_one_before_it_is_reported_sent_is_handed_out_next(
        url: str, other_node: asyncpg.Connection) -> None:
    """The push queues the call's next request on one node while the sender reports the call's only pending one sent
    on another: whatever order they commit in, the new request is its call's head and is taken."""
    async with PostgresStore.open(url) as pushing, PostgresStore.open(url) as sending:
        [first] = await pushing.queue_crm("bitrix24", "main:1.1", {"n": 1}, [CrmRequest("register", {})], at=NOW)
        [taken] = await sending.take_crm("bitrix24", now=NOW, lease_seconds=LEASE)
        assert taken.id == first.id
        async with other_node.transaction():  # writes to the outbox wait (a migration, a vacuum full, a slow node)
            await other_node.execute("LOCK TABLE crm_outbox IN SHARE MODE")
            # The push has taken its call's row and waits to insert; the sender's report comes meanwhile.
            queued = asyncio.create_task(pushing.queue_crm("bitrix24", "main:1.1", {"n": 2},
                                                           [CrmRequest("finish", {})], at=NOW + 1))
            await waiting_on_locks(other_node, 1)
            sent = asyncio.create_task(sending.crm_sent(first.id, {"call_id": "externalCall.1"}, at=NOW + 2))
            await waiting_on_locks(other_node, 2)
        async with asyncio.timeout(5 * UNIT):
            [finish] = await queued
            await sent
        [then] = await sending.take_crm("bitrix24", now=NOW + 3, lease_seconds=LEASE)
        assert (then.id, then.seq) == (finish.id, 2)
        assert await sending.crm_call_answers("bitrix24", "main:1.1") == {"call_id": "externalCall.1"}
        assert await sending.crm_call_state("bitrix24", "main:1.1") == {"n": 2}


async def test_the_1c_feed_never_sees_a_higher_id_before_a_lower_one_another_node_still_holds(
        url: str, other_node: asyncpg.Connection) -> None:
    """Another node is inside its queueing transaction, its 1C request inserted and not committed; this node queues
    one too. Were this node's row (a higher id) visible first, a 1C reader would move its cursor past the other's and
    never see it: so this node's insert waits until the other's commits, and the reader sees both, in id order."""
    async with PostgresStore.open(url) as store, PostgresStore.open(url) as reader:
        await store.queue_crm("onec", "main:0", {}, [CrmRequest("call.start", {"n": 0})], at=NOW)
        (first,) = await reader.crm_items_after("onec", 0)
        cursor = first.id
        tr = other_node.transaction()
        await tr.start()
        try:
            held = await other_node.fetchval(
                "INSERT INTO crm_outbox (crm, call, seq, kind, payload, created_at, next_try_at) "
                "VALUES ('onec', 'main:1', 1, 'call.start', $1, $2, $2) RETURNING id",
                encode_object({"n": 1}, "a payload"), NOW + 1)
            queueing = asyncio.create_task(store.queue_crm("onec", "main:2", {}, [CrmRequest("call.start", {"n": 2})],
                                                           at=NOW + 2))
            await waiting_on_locks(other_node, 1)
            assert await reader.crm_items_after("onec", cursor) == []  # nothing past the cursor shows yet
        finally:
            await tr.commit()
        async with asyncio.timeout(5 * UNIT):
            (mine,) = await queueing
        seen = await reader.crm_items_after("onec", cursor)
        assert [(i.call, i.id) for i in seen] == [("main:1", held), ("main:2", mine.id)] and held < mine.id
        # Another CRM's queue never waited for the 1C one.
        async with other_node.transaction():
            await other_node.execute(
                "INSERT INTO crm_outbox (crm, call, seq, kind, payload, created_at, next_try_at) "
                "VALUES ('onec', 'main:3', 1, 'call.start', '{}', $1, $1)", NOW + 3)
            async with asyncio.timeout(5 * UNIT):
                await store.queue_crm("webhook", "main:3", {}, [CrmRequest("event", {"n": 3})], at=NOW + 3)
