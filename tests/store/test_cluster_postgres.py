"""What only PostgreSQL's leases and bus have to watch for: a link that goes silent (a cable pulled, a machine
frozen) rather than closed. Nothing tells the client; its own periodic check must. A real TCP relay between the
store and the server stops forwarding, both sockets left open, as a dead switch would."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from store.cluster import Subscription
from store.postgres.bus import PgBus
from store.postgres.leases import PgLeases
from tests.conftest import UNIT
from tests.postgres import cluster


class SilentLink:
    """A TCP relay to the database whose connections open so far can stop forwarding, in both directions, without
    closing anything (as a firewall or NAT that dropped their state would); connections opened later work."""

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._frozen: list[asyncio.Event] = []
        self._closed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._relays: set[asyncio.Task[object]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        """Stop forwarding on every connection relayed so far."""
        for frozen in self._frozen:
            frozen.set()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        self._writers += [writer, up_writer]
        frozen = asyncio.Event()
        self._frozen.append(frozen)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                if frozen.is_set():
                    await self._closed.wait()  # swallow it, keep both ends open
                    return
                dst.write(data)
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    async def close(self) -> None:
        self._closed.set()
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.gather(*self._relays, return_exceptions=True)


async def through(url: str) -> tuple[str, SilentLink]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    relay = SilentLink(parts.hostname, parts.port)
    await relay.start()
    netloc = f"{parts.username}@127.0.0.1:{relay.port}"
    return urlunsplit(parts._replace(netloc=netloc)), relay


async def test_a_lease_over_a_link_gone_silent_is_lost_within_its_check() -> None:
    """The holder stops by itself; the server frees the lock later, by its TCP keepalives (not waited for here)."""
    url, relay = await through(await cluster().fresh_database())
    leases = PgLeases(url, check_interval=0.2 * UNIT, check_timeout=0.3 * UNIT)
    try:
        lease = await leases.try_lease("pbx:msk")
        assert lease is not None
        relay.freeze()
        await asyncio.wait_for(lease.lost.wait(), 3 * UNIT)
        assert not lease.held
        await lease.release()  # late, harmless
    finally:
        await leases.close()
        await relay.close()


async def test_a_listener_over_a_link_gone_silent_reconnects() -> None:
    database = await cluster().fresh_database()
    url, relay = await through(database)
    bus = PgBus(url, check_interval=0.2 * UNIT, check_timeout=0.3 * UNIT)
    direct = PgBus(database)
    got: list[str] = []
    subscription: Subscription | None = None
    try:
        subscription = await bus.subscribe("pops", got.append)
        await direct.publish("pops", "before")
        await _until(lambda: got == ["before"])
        relay.freeze()
        n = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10 * UNIT
        while "probe" not in "".join(got):
            assert loop.time() < deadline, "the listener did not come back"
            await direct.publish("pops", f"probe-{n}")
            n += 1
            await asyncio.sleep(0.05 * UNIT)
        await direct.publish("pops", "after")
        await _until(lambda: got[-1:] == ["after"])
    finally:
        if subscription is not None:
            await subscription.close()
        await bus.close()
        await direct.close()
        await relay.close()


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout * UNIT
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)
