"""The cluster's primitives (``store.cluster.Cluster``) on SQLite, which is one node: file locks and an in-process bus.

A part of ``SqliteStore`` (a mixin over ``SqliteBase``), as the other parts are.

**Leases** are OS file locks: ``flock`` (exclusive, non-blocking) on ``<store file>.lease-<hash>.lock`` beside the
store file, ``<hash>`` the first 16 hex digits of the name's SHA-256 (``store.cluster.lease_digest``; the file
holds the name and the holder's pid, for an operator). So two ``cti run`` processes on one SQLite file can never
both follow one PBX, and two store instances in one process exclude each other too (a lock belongs to an open
file, not to a process). The operating system drops the lock when its holder dies, however it dies; a lock cannot
be lost otherwise, so ``Lease.lost`` is set only when the store closes. The lock files stay after release (removing
one while another process opens it would give two processes a lock each, on two different files).

**The bus** is in-process: ``publish`` hands the message to this store instance's subscribers on the event loop
(``call_soon``, in publish order), never inside the ``publish`` call itself. Nothing crosses to another process:
a single site runs its daemon and its panel in one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from store.cluster import Lease, Subscription, check_channel, check_lease_name, check_payload, lease_digest
from store.repository import StoreClosed, StoreError
from store.sqlite.base import SqliteBase
from store.subscribers import Subscriber, Subscribers

log = logging.getLogger(__name__)


def lease_file(store_path: Path, name: str) -> Path:
    """The lock file of the lease ``name`` beside the store file ``store_path``."""
    return store_path.with_name(f"{store_path.name}.lease-{lease_digest(name).hex()[:16]}.lock")


@dataclass(eq=False)
class _FileLock:
    name: str
    fd: int
    lease: Lease | None = None


@dataclass(eq=False)
class _LocalCluster:
    """The file leases and the in-process bus of one store instance."""

    path: Path
    held: dict[str, _FileLock] = field(default_factory=dict)
    subscribers: Subscribers = field(default_factory=Subscribers)
    closed: bool = False

    def try_lease(self, name: str) -> Lease | None:
        if name in self.held:
            return None
        where = lease_file(self.path, check_lease_name(name))
        try:
            fd = os.open(where, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(f"{where}: cannot open the lease's lock file: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"{where}: cannot lock the lease's lock file: {exc}") from exc
        with contextlib.suppress(OSError):  # who holds it, for an operator; the lock is what counts
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{name}\n{os.getpid()}\n".encode(), 0)
        held = _FileLock(name, fd)
        held.lease = Lease(name, partial(self.release, held))
        self.held[name] = held
        log.info("lease %r taken (%s)", name, where)
        return held.lease

    async def release(self, held: _FileLock) -> None:
        if self.held.get(held.name) is not held:
            return
        del self.held[held.name]
        os.close(held.fd)  # closing the file's last descriptor drops the lock
        log.info("lease %r released", held.name)

    async def publish(self, channel: str, payload: str) -> None:
        asyncio.get_running_loop().call_soon(self.subscribers.deliver, check_channel(channel), check_payload(payload))

    async def subscribe(self, channel: str, callback: Callable[[str], None]) -> Subscription:
        subscriber, _first = self.subscribers.add(check_channel(channel), callback)
        return Subscription(channel, partial(self.unsubscribe, subscriber))

    async def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.remove(subscriber)

    def close(self) -> None:
        """Give up every lease (each one's ``lost`` set: its holder did not release it); drop the subscribers."""
        self.closed = True
        for held in list(self.held.values()):
            assert held.lease is not None
            held.lease.lost.set()
            os.close(held.fd)
            log.info("lease %r given up: the store is closing", held.name)
        self.held.clear()
        self.subscribers.clear()


class ClusterOps(SqliteBase):
    """``try_lease``, ``publish``, ``subscribe``; ``_close_cluster`` when the store closes."""

    _local_cluster: _LocalCluster | None = None

    def _cluster(self) -> _LocalCluster:
        self._check_open()
        if self._local_cluster is None:
            self._local_cluster = _LocalCluster(self.path)
        if self._local_cluster.closed:
            raise StoreClosed(f"the store {self.path} is closed")
        return self._local_cluster

    async def try_lease(self, name: str) -> Lease | None:
        return self._cluster().try_lease(name)

    async def publish(self, channel: str, payload: str) -> None:
        await self._cluster().publish(channel, payload)

    async def subscribe(self, channel: str, callback: Callable[[str], None]) -> Subscription:
        return await self._cluster().subscribe(channel, callback)

    async def _close_cluster(self) -> None:
        """Give up the leases and drop the subscribers: after the last write (see ``SqliteStore.close``)."""
        if self._local_cluster is not None:
            self._local_cluster.close()
