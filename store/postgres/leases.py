"""Leases on PostgreSQL: a session-level advisory lock, each on a connection of its own.

``pg_try_advisory_lock(key)`` takes the lock now or says no, never waits; the lock lives as long as the session
that took it. A lease therefore is its connection: when the connection ends for any reason (the holder killed, the
machine gone, ``pg_terminate_backend``, the server restarted) the server frees the lock and another process's
``try_lease`` succeeds, and the holder learns that it lost it (``Lease.lost``) from asyncpg's termination callback
at once, or from a ``SELECT 1`` every ``CHECK_INTERVAL`` that fails or takes longer than ``CHECK_TIMEOUT`` (a link
gone silent). Releasing unlocks explicitly before closing, so that the next ``try_lease`` anywhere succeeds as soon as
``release()`` returns (a closed connection's session may take a moment to end on the server).

**The key.** A lease's name maps to the 64-bit key of the advisory lock by the first 8 bytes of its SHA-256 as a
signed big-endian integer (``advisory_key``). Two names with one key would only exclude each other (never give one
name two holders); among the few dozen names a cluster uses that happens with a probability of about 10^-16, so
collisions are not handled. Advisory keys are shared by every application on the database: pick a database of our
own (as ``docs/store.md`` says), and the migrations' key (``store/postgres/migrate.py``) is a transaction-level lock
that no hash of a name equals in practice either.

**Tries cost a round trip, not a connection.** A failed try keeps its connection as the next try's ("the spare"): a
standby daemon polling for its PBXs' leases every few seconds opens no connection per try. A successful try makes
the spare the lease's own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from functools import partial

import asyncpg

from store.cluster import Lease, check_lease_name, lease_digest
from store.postgres.own_connection import CHECK_INTERVAL, CHECK_TIMEOUT, DB_ERRORS, close_own, connect_own
from store.repository import StoreClosed, StoreError

log = logging.getLogger(__name__)


def advisory_key(name: str) -> int:
    """The advisory lock key of the lease ``name``: the first 8 bytes of its SHA-256, a signed bigint."""
    return int.from_bytes(lease_digest(name)[:8], "big", signed=True)


def lock_ids(key: int) -> tuple[int, int]:
    """Where ``pg_locks`` shows the advisory lock ``key``: ``(classid, objid)`` (its high and low 32 bits, with
    ``objsubid = 1``). For finding the session that holds a lease: ``SELECT pid FROM pg_locks WHERE locktype =
    'advisory' AND classid = $1 AND objid = $2 AND objsubid = 1 AND granted``."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


@dataclass(eq=False)
class _Held:
    """A lease this store holds: its connection, and the task watching that connection."""

    name: str
    key: int
    conn: asyncpg.Connection
    lease: Lease | None = None
    watcher: asyncio.Task[None] | None = None
    #: Released, lost or closed: nothing more to do for it.
    done: bool = False
    #: Set when the connection terminates or the lease is released (wakes the watcher).
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: One query at a time on the connection (the watcher's check, the release's unlock).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def on_terminated(self, conn: object) -> None:
        self.wake.set()


class PgLeases:
    """The leases of one store instance (see the module's docstring)."""

    def __init__(self, url: str, *, check_interval: float = CHECK_INTERVAL,
                 check_timeout: float = CHECK_TIMEOUT) -> None:
        self._url = url
        self._check_interval = check_interval
        self._check_timeout = check_timeout
        self._held: dict[str, _Held] = {}
        self._spare: asyncpg.Connection | None = None
        #: One try at a time (they share the spare connection).
        self._trying = asyncio.Lock()
        self._closed = False

    async def try_lease(self, name: str) -> Lease | None:
        key = advisory_key(check_lease_name(name))
        if name in self._held:
            return None
        async with self._trying:
            if self._closed:
                raise StoreClosed("the store is closed")
            if name in self._held:
                return None
            conn = await self._try(name, key)
            if conn is None:
                return None
        held = _Held(name, key, conn)
        held.lease = Lease(name, partial(self._release, held))
        conn.add_termination_listener(held.on_terminated)
        self._held[name] = held
        held.watcher = asyncio.create_task(self._watch(held), name=f"cti lease {name}")
        log.info("lease %r taken", name)
        return held.lease

    async def _try(self, name: str, key: int) -> asyncpg.Connection | None:
        """The connection that now holds the lock ``key``, or None (someone holds it; the spare is kept)."""
        spare, self._spare = self._spare, None
        if spare is not None and spare.is_closed():
            spare = None
        for conn in ([spare] if spare is not None else []) + [None]:
            fresh = conn is None
            if conn is None:
                conn = await connect_own(self._url, "lease")
            try:
                got = await asyncio.wait_for(conn.fetchval("SELECT pg_try_advisory_lock($1)", key),
                                             self._check_timeout + self._check_interval)
            except asyncio.CancelledError:
                conn.terminate()  # it may have taken the lock: never leave it held by a connection nobody has
                raise
            except DB_ERRORS as exc:
                conn.terminate()
                if fresh:
                    raise StoreError(f"cannot try the lease {name!r}: {exc}") from exc
                continue  # the spare had died meanwhile: once more on a new connection
            if got:
                return conn
            self._spare = conn
            return None
        raise AssertionError("unreachable: the last attempt is on a fresh connection")

    async def _watch(self, held: _Held) -> None:
        """Until the lease is released: notice its connection ending (at once) or going silent (a failed check).
        Anything unexpected counts as a loss too: a lease nobody watches must not look held."""
        try:
            await self._watch_connection(held)
        except Exception:
            log.exception("lease %r: its watcher failed", held.name)
        self._lose(held, "its database connection dropped")

    async def _watch_connection(self, held: _Held) -> None:
        """Return when the lease is released or its connection is gone."""
        async with held.lock:  # tell the operators which session holds which lease (pg_stat_activity)
            with contextlib.suppress(*DB_ERRORS):
                await asyncio.wait_for(held.conn.execute(
                    "SELECT set_config('application_name', $1, false)", f"cti-companion lease {held.name}"[:63]),
                    self._check_timeout)
        while not held.done:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(held.wake.wait(), self._check_interval)
            if held.done:
                return
            if held.conn.is_closed():
                break
            async with held.lock:
                if held.done:
                    return
                try:
                    await asyncio.wait_for(held.conn.fetchval("SELECT 1"), self._check_timeout)
                except DB_ERRORS:
                    break

    def _lose(self, held: _Held, why: str) -> None:
        """The lease ended without ``release()``: tell its holder first, then make sure the session ends."""
        if held.done:
            return
        held.done = True
        self._held.pop(held.name, None)
        assert held.lease is not None
        held.lease.lost.set()
        held.conn.terminate()
        log.warning("lease %r lost: %s; its holder stops acting for it", held.name, why)

    async def _release(self, held: _Held) -> None:
        if held.done:
            return
        held.done = True
        self._held.pop(held.name, None)
        held.wake.set()
        async with held.lock:
            try:
                await asyncio.wait_for(held.conn.fetchval("SELECT pg_advisory_unlock($1)", held.key),
                                       self._check_timeout)
            except DB_ERRORS:
                held.conn.terminate()  # the session ends, and the lock with it
            else:
                await close_own(held.conn)
        if held.watcher is not None:
            await held.watcher
        log.info("lease %r released", held.name)

    async def close(self) -> None:
        """Give up every lease (each one's ``lost`` is set: its holder did not release it) and close the spare."""
        self._closed = True
        async with self._trying:
            held_now = list(self._held.values())
            for held in held_now:
                if held.done:
                    continue
                held.done = True
                held.wake.set()
                assert held.lease is not None
                held.lease.lost.set()
                log.info("lease %r given up: the store is closing", held.name)
            self._held.clear()
            for held in held_now:
                if held.watcher is not None:
                    held.watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await held.watcher
                await close_own(held.conn)
            if self._spare is not None:
                await close_own(self._spare)
                self._spare = None
