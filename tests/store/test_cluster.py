"""The cluster's primitives on both stores: leases (one holder at a time, across processes) and the bus.

Two "nodes" are two store instances on one database (PostgreSQL) or one file (SQLite), as two ``cti run`` processes
would be; a dead holder is a child process killed with SIGKILL, or (PostgreSQL) its session terminated by
``pg_terminate_backend`` from another connection, the way a crashed or partitioned node's session ends. SQLite's bus
is in-process: its messages reach the subscribers of the same store instance only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import asyncpg
import pytest

from store.cluster import Lease
from store.postgres import PostgresStore
from store.postgres.leases import advisory_key, lock_ids
from store.repository import Store, StoreClosed
from store.sqlite import SqliteStore
from tests.conftest import UNIT
from tests.store.conftest import OpenStore

ROOT = Path(__file__).resolve().parents[2]


async def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until ``check()`` holds, at most ``timeout`` seconds (polling: a condition, not a fixed sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(0.01)


async def take_within(store: Store, name: str, timeout: float) -> Lease:
    """Try the lease until it is taken (a standby polling for a dead holder's lease), at most ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        lease = await store.try_lease(name)
        if lease is not None:
            return lease
        if loop.time() > deadline:
            raise AssertionError(f"the lease {name!r} was not free within {timeout:.1f} s")
        await asyncio.sleep(0.05 * UNIT)


def cluster_wide(store: Store) -> bool:
    """Whether the store's bus reaches other store instances (PostgreSQL), or only its own (SQLite)."""
    return isinstance(store, PostgresStore)


class Inbox:
    """A subscriber's callback that keeps what it received."""

    def __init__(self) -> None:
        self.got: list[str] = []

    def __call__(self, payload: str) -> None:
        self.got.append(payload)


# -- leases ------------------------------------------------------------------------------------------------------


async def test_a_lease_is_exclusive_until_released_then_another_node_takes_it(open_store: OpenStore) -> None:
    """One holder at a time across nodes; taking never waits; once released, another node takes it at once."""
    node_a, node_b = await open_store(), await open_store()
    lease = await node_a.try_lease("pbx:msk")
    assert lease is not None and lease.name == "pbx:msk" and lease.held
    assert await node_a.try_lease("pbx:msk") is None  # not twice, not even by its holder
    assert await node_b.try_lease("pbx:msk") is None
    other = await node_b.try_lease("pbx:spb")  # another name is another lease
    assert other is not None

    await lease.release()
    assert not lease.held and not lease.lost.is_set()
    taken = await node_b.try_lease("pbx:msk")
    assert taken is not None
    assert await node_a.try_lease("pbx:msk") is None
    await lease.release()  # twice is harmless, and does not free the new holder's lease
    assert await node_a.try_lease("pbx:msk") is None
    await taken.release()
    again = await node_a.try_lease("pbx:msk")
    assert again is not None
    await again.release()


async def test_closing_the_store_gives_up_its_leases_and_tells_their_holders(open_store: OpenStore) -> None:
    node_a, node_b = await open_store(), await open_store()
    lease = await node_a.try_lease("job:retention")
    assert lease is not None
    await node_a.close()
    assert lease.lost.is_set() and not lease.held  # the holder must stop acting for it
    taken = await take_within(node_b, "job:retention", 5 * UNIT)
    assert taken.held
    with pytest.raises(StoreClosed):
        await node_a.try_lease("job:other")
    with pytest.raises(StoreClosed):
        await node_a.publish("pops", "x")


async def test_a_holder_killed_with_sigkill_loses_its_lease_to_another_process(open_store: OpenStore) -> None:
    """The way a daemon dies: no clean-up at all. Its session (PostgreSQL) or its file lock (SQLite) goes with it."""
    ours = await open_store()
    if isinstance(ours, PostgresStore):
        opening = f"PostgresStore.open({ours.url!r})"
    else:
        assert isinstance(ours, SqliteStore)
        opening = f"SqliteStore.open({str(ours.path)!r})"
    script = (
        "import asyncio, sys\n"
        "from store.postgres import PostgresStore\n"
        "from store.sqlite import SqliteStore\n"
        "async def main():\n"
        f"    store = await {opening}\n"
        "    lease = await store.try_lease('pbx:msk')\n"
        "    print('held' if lease else 'refused', flush=True)\n"
        "    await asyncio.Event().wait()\n"
        "asyncio.run(main())\n"
    )
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", script, cwd=ROOT,
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stderr is not None
        line = await asyncio.wait_for(child.stdout.readline(), 20 * UNIT)
        assert line == b"held\n", (line, await child.stderr.read())
        assert await ours.try_lease("pbx:msk") is None
        os.kill(child.pid, signal.SIGKILL)
        await asyncio.wait_for(child.wait(), 10 * UNIT)
        lease = await take_within(ours, "pbx:msk", 5 * UNIT)
        assert lease.held
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def test_names_channels_and_payloads_are_checked(store: Store) -> None:
    for bad_name in ("", "x" * 201, "pbx:\nmsk"):
        with pytest.raises(ValueError):
            await store.try_lease(bad_name)
    longest = await store.try_lease("x" * 200)
    assert longest is not None
    await longest.release()
    for bad_channel in ("", "Pops", "with space", "-x", "x" * 49, "поп"):
        with pytest.raises(ValueError):
            await store.publish(bad_channel, "x")
        with pytest.raises(ValueError):
            await store.subscribe(bad_channel, Inbox())
    with pytest.raises(ValueError):
        await store.publish("pops", "a\x00b")
    with pytest.raises(ValueError):
        await store.publish("pops", "x" * ((1 << 20) + 1))


# -- the bus -----------------------------------------------------------------------------------------------------


async def test_a_message_reaches_every_subscriber_in_publish_order(open_store: OpenStore) -> None:
    node_a = await open_store()
    node_b = await open_store() if cluster_wide(node_a) else node_a
    on_a, on_b, elsewhere = Inbox(), Inbox(), Inbox()
    await node_a.subscribe("pops", on_a)
    await node_b.subscribe("pops", on_b)
    await node_b.subscribe("missed", elsewhere)
    sent_a = [f"a-{i}" for i in range(60)]
    sent_b = [f"b-{i}" for i in range(60)]
    for mine, theirs in zip(sent_a, sent_b, strict=True):  # two publishers, interleaved
        await node_a.publish("pops", mine)
        await node_b.publish("pops", theirs)
    await node_b.publish("missed", "entry 7")
    for inbox in (on_a, on_b):
        await eventually(partial(lambda box: len(box.got) >= 120, inbox), 5 * UNIT, "every message")
        assert [m for m in inbox.got if m.startswith("a-")] == sent_a  # each publisher's order
        assert [m for m in inbox.got if m.startswith("b-")] == sent_b
        assert len(inbox.got) == 120
    await eventually(lambda: elsewhere.got == ["entry 7"], 5 * UNIT, "the other channel's message")

    at_once = [f"c-{i}" for i in range(40)]  # published concurrently: arrive in the order of the calls
    await asyncio.gather(*(node_a.publish("pops", payload) for payload in at_once))
    await eventually(lambda: len(on_b.got) >= 160, 5 * UNIT, "the concurrent messages")
    assert on_b.got[120:] == at_once


async def test_a_20_kb_payload_arrives_whole_and_in_its_place(open_store: OpenStore) -> None:
    """A pop with a caller card can be several KB: more than a PostgreSQL NOTIFY carries."""
    node_a = await open_store()
    node_b = await open_store() if cluster_wide(node_a) else node_a
    inbox = Inbox()
    await node_b.subscribe("pops", inbox)
    card = '{"name": "Иванов Пётр", "cars": [' + ", ".join(f'"А{i:03d}ВС77 Лада Веста"' for i in range(700)) + "]}"
    assert len(card.encode()) > 20_000
    sent = ["before", card, "between", card[:9000], "ё" * 7000, "after"]
    for payload in sent:
        await node_a.publish("pops", payload)
    await eventually(lambda: len(inbox.got) >= len(sent), 5 * UNIT, "every message")
    assert inbox.got == sent


async def test_a_subscriber_that_raises_does_not_stop_the_others(
        open_store: OpenStore, caplog: pytest.LogCaptureFixture) -> None:
    node_a = await open_store()
    node_b = await open_store() if cluster_wide(node_a) else node_a
    before, after = Inbox(), Inbox()

    def broken(payload: str) -> None:
        raise RuntimeError(f"a bug in a subscriber, on {payload}")

    await node_b.subscribe("pops", before)
    await node_b.subscribe("pops", broken)
    await node_b.subscribe("pops", after)
    with caplog.at_level(logging.ERROR):
        for payload in ("one", "two"):
            await node_a.publish("pops", payload)
        await eventually(lambda: after.got == ["one", "two"], 5 * UNIT, "both messages after the broken subscriber")
    assert before.got == ["one", "two"]
    failures = [r for r in caplog.records if "subscriber" in r.getMessage() and r.exc_info]
    assert len(failures) == 2
    assert failures[0].exc_info is not None and "a bug in a subscriber, on one" in str(failures[0].exc_info[1])


async def test_a_closed_subscription_gets_nothing_more(open_store: OpenStore) -> None:
    node_a = await open_store()
    node_b = await open_store() if cluster_wide(node_a) else node_a
    gone, staying = Inbox(), Inbox()
    subscription = await node_b.subscribe("pops", gone)
    await node_b.subscribe("pops", staying)
    await node_a.publish("pops", "one")
    await eventually(lambda: gone.got == ["one"] and staying.got == ["one"], 5 * UNIT, "the first message")
    await subscription.close()
    await subscription.close()
    assert subscription.closed
    await node_a.publish("pops", "two")
    await eventually(lambda: staying.got == ["one", "two"], 5 * UNIT, "the second message")
    assert gone.got == ["one"]  # delivered to both in the same turn of the loop, so it would be here by now


async def test_the_last_subscription_closed_then_a_new_one_gets_messages_again(open_store: OpenStore) -> None:
    node_a = await open_store()
    node_b = await open_store() if cluster_wide(node_a) else node_a
    first = Inbox()
    subscription = await node_b.subscribe("pops", first)
    await subscription.close()
    second = Inbox()
    await node_b.subscribe("pops", second)
    await node_a.publish("pops", "again")
    await eventually(lambda: second.got == ["again"], 5 * UNIT, "the message")
    assert first.got == []


# -- PostgreSQL: sessions that end under the holder --------------------------------------------------------------


@pytest.fixture
async def postgres_nodes(open_store: OpenStore) -> tuple[PostgresStore, PostgresStore]:
    """Two nodes on one PostgreSQL database (the tests taking this select the ``postgresql`` case only)."""
    node_a, node_b = await open_store(), await open_store()
    assert isinstance(node_a, PostgresStore) and isinstance(node_b, PostgresStore)
    return node_a, node_b


postgres_only = pytest.mark.parametrize("open_store", ["postgresql"], indirect=True)


@postgres_only
async def test_a_lease_whose_session_is_terminated_is_lost_and_another_node_takes_it(
        postgres_nodes: tuple[PostgresStore, PostgresStore]) -> None:
    node_a, node_b = postgres_nodes
    lease = await node_a.try_lease("pbx:msk")
    assert lease is not None
    classid, objid = lock_ids(advisory_key("pbx:msk"))
    admin = await asyncpg.connect(node_a.url)
    try:
        holders = await admin.fetch("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 "
                                    "AND objid = $2 AND objsubid = 1 AND granted", classid, objid)
        assert len(holders) == 1
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", holders[0]["pid"])
    finally:
        await admin.close()
    await asyncio.wait_for(lease.lost.wait(), 5 * UNIT)
    assert not lease.held
    taken = await take_within(node_b, "pbx:msk", 5 * UNIT)
    assert taken.held
    await lease.release()  # the former holder releasing late frees nothing
    assert await node_a.try_lease("pbx:msk") is None


@postgres_only
async def test_the_listener_reconnects_after_its_session_is_terminated(
        postgres_nodes: tuple[PostgresStore, PostgresStore]) -> None:
    """Messages published while it is away are lost (subscribers resync from the store); later ones arrive."""
    node_a, node_b = postgres_nodes
    inbox = Inbox()
    await node_b.subscribe("pops", inbox)
    await node_a.publish("pops", "before")
    await eventually(lambda: inbox.got == ["before"], 5 * UNIT, "the first message")
    admin = await asyncpg.connect(node_a.url)
    try:
        listeners = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND application_name = 'cti-companion bus listener'")
        assert len(listeners) == 1
        old_pid = listeners[0]["pid"]
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", old_pid)
        probes = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10 * UNIT
        while not any(m.startswith("probe-") for m in inbox.got):  # back once a probe gets through
            assert loop.time() < deadline, "the listener did not come back"
            await node_a.publish("pops", f"probe-{probes}")
            probes += 1
            await asyncio.sleep(0.05 * UNIT)
        listeners = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND application_name = 'cti-companion bus listener'")
        assert [row["pid"] for row in listeners] != [old_pid] and len(listeners) == 1
    finally:
        await admin.close()
    after = [f"after-{i}" for i in range(5)] + ["x" * 30_000]
    for payload in after:
        await node_a.publish("pops", payload)
    await eventually(lambda: inbox.got[-len(after):] == after, 5 * UNIT, "the messages after the reconnection")
    probes_got = [m for m in inbox.got if m.startswith("probe-")]
    assert probes_got == sorted(probes_got, key=lambda m: int(m.split("-")[1]))  # in order, a prefix lost
