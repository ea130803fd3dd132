"""The bus on PostgreSQL: LISTEN/NOTIFY, the broker every node already has (no other engine to run and watch).

Each store instance has two connections of its own for it, opened on first use:

* the **listener** LISTENs on the channels it has subscribers for (PostgreSQL's channel ``cti.<channel>``) and
  delivers each notification to them, on the event loop, in the order the server sends them: every publisher's
  messages in its commit order, its own included. A message longer than a NOTIFY payload arrives in parts that are
  joined first (``bus_wire.py``).
* the **publisher** sends a message as ``pg_notify`` calls in one transaction, one message at a time (a lock):
  so one store instance's messages arrive in the order ``publish`` was called. It never waits behind the store's
  writer (a batch of calls being committed) or its readers (a long listing).

**What is lost when.** Delivery is at most once. If the listener connection drops (the server restarted, the
session terminated, the link silent for longer than ``CHECK_INTERVAL + CHECK_TIMEOUT``) it reconnects with
back-off and LISTENs again; messages published during the gap, and a message cut in parts whose parts straddle the
drop, never reach this node, and it logs the gap. Subscribers resync from the store (a pop's call is in the live
journal, a missed entry in the register). A publish that fails raises ``StoreError``: the message was not sent.
A node whose listener stops reading (a frozen process) holds back PostgreSQL's notification queue until its session
ends; the server's TCP keepalives end it once the machine is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial

import asyncpg

from store.cluster import Subscription, check_channel, check_payload
from store.postgres.bus_wire import Assembler, BadMessage, encode
from store.postgres.own_connection import CHECK_INTERVAL, CHECK_TIMEOUT, DB_ERRORS, close_own, connect_own
from store.repository import StoreClosed, StoreError
from store.settings import without_password
from store.subscribers import Subscriber, Subscribers

log = logging.getLogger(__name__)

#: PostgreSQL's channel of the bus's channel ``x`` is ``cti.x``: apart from anything else on the database.
PREFIX = "cti."
#: Back-off between reconnection attempts of the listener (seconds): first, then doubled up to the last.
RECONNECT_FIRST = 0.1
RECONNECT_MAX = 5.0


class PgBus:
    """The bus of one store instance (see the module's docstring)."""

    def __init__(self, url: str, *, check_interval: float = CHECK_INTERVAL,
                 check_timeout: float = CHECK_TIMEOUT) -> None:
        self._url = url
        self._check_interval = check_interval
        self._check_timeout = check_timeout
        self._subscribers = Subscribers()
        self._assembler = Assembler()
        self._listener: asyncpg.Connection | None = None
        #: One query at a time on the listener (LISTEN, UNLISTEN, the check).
        self._listener_lock = asyncio.Lock()
        #: Set when the listener connection terminates: the supervisor reconnects.
        self._dropped = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._publisher: asyncpg.Connection | None = None
        self._publishing = asyncio.Lock()
        self._closed = False

    # -- publishing ------------------------------------------------------------------------------------------

    async def publish(self, channel: str, payload: str) -> None:
        notes = encode(check_payload(payload))
        target = PREFIX + check_channel(channel)
        async with self._publishing:
            if self._closed:
                raise StoreClosed("the store is closed")
            if self._publisher is None or self._publisher.is_closed():
                self._publisher = await connect_own(self._url, "bus publisher")
            conn = self._publisher
            try:
                if len(notes) == 1:
                    await conn.execute("SELECT pg_notify($1, $2)", target, notes[0])
                else:  # the parts in one transaction: delivered together, in order, or not at all
                    async with conn.transaction():
                        await conn.executemany("SELECT pg_notify($1, $2)", [(target, note) for note in notes])
            except DB_ERRORS as exc:
                self._publisher = None
                conn.terminate()
                raise StoreError(f"{without_password(self._url)}: cannot publish on {channel!r}: {exc}") from exc

    # -- subscribing -----------------------------------------------------------------------------------------

    async def subscribe(self, channel: str, callback: Callable[[str], None]) -> Subscription:
        check_channel(channel)
        async with self._starting:
            if self._closed:
                raise StoreClosed("the store is closed")
            if self._supervisor is None:
                await self._connect_listener()
                self._supervisor = asyncio.create_task(self._supervise(), name="cti store bus listener")
        async with self._listener_lock:
            subscriber, first = self._subscribers.add(channel, callback)
            conn = self._listener
            if first and conn is not None:
                try:
                    await conn.add_listener(PREFIX + channel, self._on_notification)
                except DB_ERRORS:
                    self._dropped.set()  # the supervisor reconnects, and LISTENs on every channel again
        return Subscription(channel, partial(self._unsubscribe, subscriber))

    async def _unsubscribe(self, subscriber: Subscriber) -> None:
        if not self._subscribers.remove(subscriber):
            return
        async with self._listener_lock:
            conn = self._listener
            if conn is None or self._subscribers.has(subscriber.channel):
                return  # down (the reconnection listens only where there are subscribers), or subscribed again
            with contextlib.suppress(*DB_ERRORS):
                await conn.remove_listener(PREFIX + subscriber.channel, self._on_notification)

    def _on_notification(self, conn: object, pid: int, target: str, payload: object) -> None:
        """asyncpg calls this on the loop for each notification, in the order they arrive."""
        if conn is not self._listener or not target.startswith(PREFIX) or not isinstance(payload, str):
            return
        channel = target[len(PREFIX):]
        try:
            message = self._assembler.feed(pid, payload)
        except BadMessage as exc:
            log.warning("bus: channel %r: %s", channel, exc)
            return
        if message is not None:
            self._subscribers.deliver(channel, message)

    # -- the listener connection -----------------------------------------------------------------------------

    async def _connect_listener(self) -> None:
        """Connect the listener and LISTEN on every channel with subscribers. Raises ``StoreError``."""
        conn = await connect_own(self._url, "bus listener")
        async with self._listener_lock:
            self._assembler.reset()
            self._dropped.clear()
            self._listener = conn
            conn.add_termination_listener(self._on_terminated)
            try:
                for channel in self._subscribers.channels():
                    await conn.add_listener(PREFIX + channel, self._on_notification)
            except DB_ERRORS as exc:
                self._listener = None
                conn.terminate()
                raise StoreError(f"{without_password(self._url)}: cannot listen: {exc}") from exc

    def _on_terminated(self, conn: object) -> None:
        if conn is self._listener:
            self._dropped.set()

    async def _responds(self) -> bool:
        conn = self._listener
        if conn is None or conn.is_closed():
            return False
        async with self._listener_lock:
            try:
                await asyncio.wait_for(conn.fetchval("SELECT 1"), self._check_timeout)
            except DB_ERRORS:
                return False
        return True

    async def _supervise(self) -> None:
        """Check the listener every ``CHECK_INTERVAL``; when it dropped or does not answer, reconnect."""
        while True:
            try:
                try:
                    await asyncio.wait_for(self._dropped.wait(), self._check_interval)
                except TimeoutError:
                    if await self._responds():
                        continue
                await self._reconnect()
            except Exception:  # never leave the node deaf: log, wait, check again
                log.exception("bus: the listener's supervisor failed; going on")
                await asyncio.sleep(RECONNECT_MAX)

    async def _reconnect(self) -> None:
        old, self._listener = self._listener, None
        if old is not None:
            old.terminate()
        log.warning("bus: the listener connection to %s dropped; reconnecting (messages published until it is back "
                    "are lost)", without_password(self._url))
        delay = RECONNECT_FIRST
        while True:
            try:
                await self._connect_listener()
            except StoreError as exc:
                log.warning("bus: %s; trying again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
            else:
                log.warning("bus: listening again on %s", without_password(self._url))
                return

    async def close(self) -> None:
        """Stop listening and close both connections; subscribers get nothing more."""
        self._closed = True
        self._subscribers.clear()
        async with self._starting:
            if self._supervisor is not None:
                self._supervisor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._supervisor
            conn, self._listener = self._listener, None
            if conn is not None:
                await close_own(conn)
        async with self._publishing:
            if self._publisher is not None:
                await close_own(self._publisher)
                self._publisher = None
