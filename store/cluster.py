"""What several daemons and panel nodes on one store coordinate through: leases and a message bus (issue 11).

Two primitives, on both stores, behind ``Cluster`` (a part of ``store.repository.Store``):

* **Leases** (``try_lease``): a named right to act alone ("pbx:msk": follow that PBX; "job:retention": run that
  job), held by at most one store instance at a time across every process on the same database (PostgreSQL) or
  file (SQLite). Taking one never waits: None says someone holds it, and the caller tries again later. A lease
  whose holder dies (the process killed, its database session gone) is free again as soon as that session ends,
  and a holder that loses its lease without releasing it sees ``Lease.lost`` set and must stop acting for it at
  once (another process may already hold it).
* **Bus** (``publish`` / ``subscribe``): text messages on short named channels, delivered to every subscriber
  of the channel in every process on the database (this one included), in publish order per publisher, however
  long the message (a pop with its caller card is several KB). At most once: a node whose connection to the
  bus drops reconnects by itself, and what was published during the gap never reaches it; its callers resync
  from the store.

This module is the interface and the rules both backends share (names, channels, payloads); no backend code.
``store/postgres/cluster.py`` has advisory locks and LISTEN/NOTIFY, ``store/sqlite/cluster.py`` a file lock and
an in-process bus.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

#: Longest lease name, in characters.
MAX_LEASE_NAME = 200
#: A channel: lower-case letters, digits and ``._:-``, starting with a letter or digit, at most 48 characters
#: (PostgreSQL's channel is an identifier of at most 63 bytes, and the store prefixes its own).
_CHANNEL = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,47}")
#: Largest payload, in bytes of UTF-8: far above a pop with its card, far below what would strain a node.
MAX_PAYLOAD_BYTES = 1 << 20


def check_lease_name(name: str) -> str:
    """``name`` if it is a valid lease name (1 to 200 characters, no control characters), else ``ValueError``."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_LEASE_NAME:
        raise ValueError(f"a lease name is 1 to {MAX_LEASE_NAME} characters: {name!r}")
    if not name.isprintable():
        raise ValueError(f"a lease name has no control characters: {name!r}")
    return name


def check_channel(channel: str) -> str:
    """``channel`` if it is a valid channel name (see ``_CHANNEL``), else ``ValueError``."""
    if not isinstance(channel, str) or _CHANNEL.fullmatch(channel) is None:
        raise ValueError(f"a channel is 1 to 48 of a-z, 0-9 and ._:- (starting with a letter or digit): {channel!r}")
    return channel


def check_payload(payload: str) -> str:
    """``payload`` if it can travel on the bus: text with no NUL character (PostgreSQL's text cannot hold one;
    JSON never has a raw one) of at most ``MAX_PAYLOAD_BYTES`` in UTF-8; else ``ValueError``."""
    if not isinstance(payload, str):
        raise ValueError(f"a payload is text, not {type(payload).__name__}")
    if "\x00" in payload:
        raise ValueError("a payload cannot hold a NUL character")
    if len(payload) > MAX_PAYLOAD_BYTES // 4 and len(payload.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"a payload is at most {MAX_PAYLOAD_BYTES} bytes of UTF-8")
    return payload


def lease_digest(name: str) -> bytes:
    """The SHA-256 of a lease's name: where both backends derive its lock from (an advisory-lock key from its
    first 8 bytes, a lock file's name from its hex). Stable across processes, versions and machines."""
    return hashlib.sha256(check_lease_name(name).encode("utf-8")).digest()


@dataclass(eq=False)
class Lease:
    """A lease this store instance holds. ``release()`` gives it up (idempotent).

    ``lost`` is set when the lease ends without ``release()``: the connection that held it dropped (PostgreSQL) or
    the store was closed. Once it is set another process may hold the lease: stop acting for it at once (finish
    nothing, write nothing in its name) and try to take it again if you still want it.
    """

    name: str
    _release: Callable[[], Awaitable[None]] = field(repr=False)
    lost: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _released: bool = field(default=False, repr=False)

    @property
    def held(self) -> bool:
        """Still held: neither released nor lost."""
        return not self._released and not self.lost.is_set()

    async def release(self) -> None:
        """Give the lease up; when this returns another store's ``try_lease`` can take it."""
        if self._released:
            return
        self._released = True
        await self._release()


@dataclass(eq=False)
class Subscription:
    """A callback subscribed to a channel. ``close()`` unsubscribes it (idempotent): once it returns, the callback
    is never called again."""

    channel: str
    _close: Callable[[], Awaitable[None]] = field(repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._close()


class Leases(Protocol):
    """Named leases, exclusive across every process on the store's database (or SQLite file)."""

    async def try_lease(self, name: str) -> Lease | None:
        """Take the lease ``name`` now if nobody holds it (this store instance included), else None; never waits
        for a holder. ``name``: any text of 1 to 200 characters ("pbx:msk", "job:retention").

        Raises ``ValueError`` for an invalid name, ``StoreError`` when the database cannot be reached (that is
        not "someone holds it": try again later), ``StoreClosed`` after ``close()``. Closing the store releases
        its leases (setting ``lost``: their holders must stop).
        """
        ...


class Bus(Protocol):
    """Text messages on named channels, to every subscriber in every process on the store's database."""

    async def publish(self, channel: str, payload: str) -> None:
        """Send ``payload`` to every subscriber of ``channel`` (in every process, this one included); returns once
        it is sent (committed on PostgreSQL). Messages one store instance publishes arrive in the order of the
        calls. ``payload``: text without NUL, up to ``MAX_PAYLOAD_BYTES``, delivered whole.

        Raises ``ValueError`` for an invalid channel or payload, ``StoreError`` when the database cannot be
        reached (the message was not sent), ``StoreClosed`` after ``close()``.
        """
        ...

    async def subscribe(self, channel: str, callback: Callable[[str], None]) -> Subscription:
        """Call ``callback(payload)`` on the event loop for every message published on ``channel`` after this
        returns, until the subscription is closed. A callback that raises is logged and the others still run.

        At most once: if the store's bus connection drops, it reconnects by itself, and messages published
        during the gap are lost (logged as a gap): subscribers resync from the store. Closing the store closes
        its subscriptions. Raises ``StoreError`` when the database cannot be reached at all.
        """
        ...


class Cluster(Leases, Bus, Protocol):
    """The coordination primitives of a cluster of daemons and panel nodes on one store."""
