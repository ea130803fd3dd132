"""Login sessions kept in the store, and the sweep that closes sockets whose access was taken away.

Why in the store: a session that lives in the daemon's memory cannot be ended by ``cti users remove`` or
``cti users passwd`` (another process), and a restart logs every agent out mid-shift. The store keeps the
SHA-256 of each session cookie (never the cookie) with its user and expiry; removing a user or changing
their password, role or extension deletes their sessions in the same transaction (``store/sqlite.py``).

Every HTTP request and every WebSocket command reads its session (or API token) from the store: one
indexed lookup, so a revocation made anywhere holds from the next request on. Open WebSockets are swept
once a second (``SocketSweep``): one query for the credentials of every connected socket, and the sockets
whose session ended, expired, or whose user was removed or changed are closed with 1008 and a reason.

Sliding expiry: a session lasts ``lifetime`` seconds after its last use. A use is an HTTP request or a
WebSocket command other than the panel's automatic keep-alive ``ping`` (an unattended open panel is not a
person using it). The new expiry is written at most once per ``touch_every`` (a minute, or a tenth of a
short lifetime), not on every request.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from store.repository import CallStore, Grant, StoreError, User

from .auth import token_hash
from .hub import CLOSE_POLICY, Hub

log = logging.getLogger(__name__)

#: The longest interval between two writes of a session's last use (seconds).
TOUCH_EVERY = 60.0
#: How often the open sockets' credentials are checked against the store (seconds).
SWEEP_EVERY = 1.0


@dataclass(frozen=True, slots=True)
class Credential:
    """Who a request or socket is: its session cookie or API token (by hash) and what it grants now."""

    key: str  # SHA-256 of the cookie value or the API token
    kind: Literal["session", "token"]
    user: User
    expires_at: float | None = None  # sessions only


def same_access(a: User, b: User) -> bool:
    """True when ``b`` may do exactly what ``a`` could (a change of role or extension makes a socket stale)."""
    return (a.name.lower(), a.role, a.extension) == (b.name.lower(), b.role, b.extension)


class Sessions:
    """Starts, checks and ends login sessions in the store; checks API tokens the same way."""

    def __init__(self, store: Callable[[], CallStore | None], lifetime: float) -> None:
        self._store = store
        self.lifetime = lifetime
        self.touch_every = min(TOUCH_EVERY, lifetime / 10)
        self._touching: set[str] = set()  # sessions whose last use is being written now

    def store(self) -> CallStore:
        store = self._store()
        if store is None:
            raise StoreError("the store is not open")
        return store

    async def start(self, user: User, address: str | None, now: float | None = None) -> str:
        """A new session of ``user``; returns the cookie value (the store keeps only its hash)."""
        now = time.time() if now is None else now
        token = secrets.token_urlsafe(32)
        await self.store().add_session(token_hash(token), user.name, created_at=now,
                                       expires_at=now + self.lifetime, address=address)
        return token

    async def end(self, cookie: str | None) -> str | None:
        """End the session of this cookie; returns its key (to close its sockets), None without a cookie."""
        if not cookie:
            return None
        key = token_hash(cookie)
        await self.store().end_session(key)
        return key

    async def credential(self, cookie: str | None, authorization: str | None, *, touch: bool = True,
                         now: float | None = None) -> Credential | None:
        """The valid session of ``cookie``, else the API token of an ``Authorization: Bearer`` header, else None.

        ``touch``: this request is a use of the session (it slides its expiry).
        """
        if cookie:
            found = await self.session(token_hash(cookie), touch=touch, now=now)
            if found is not None:
                return found
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            key = token_hash(token.strip())
            user = await self.store().user_of_token(key)
            if user is not None:
                return Credential(key, "token", user)
        return None

    async def still_grants(self, key: str, user: User, *, touch: bool = True, now: float | None = None) -> bool:
        """Whether the session or token ``key`` still grants ``user`` what it did (a WebSocket command)."""
        now = time.time() if now is None else now
        grant = (await self.store().grants([key])).get(key)
        if _stale(grant, now) is not None or grant is None or not same_access(user, grant.user):
            return False
        if touch and grant.expires_at is not None:
            await self._touch(key, grant, now)
        return True

    async def session(self, key: str, *, touch: bool = True, now: float | None = None) -> Credential | None:
        now = time.time() if now is None else now
        grant = await self.store().session_grant(key, now)
        if grant is None:
            return None
        expires = grant.expires_at
        if touch:
            expires = await self._touch(key, grant, now)
        return Credential(key, "session", grant.user, expires)

    async def _touch(self, key: str, grant: Grant, now: float) -> float | None:
        """Slide the session's expiry, writing it at most once per ``touch_every``; returns the expiry."""
        if now - (grant.last_used_at or 0.0) < self.touch_every or key in self._touching:
            return grant.expires_at
        self._touching.add(key)
        try:
            await self.store().touch_session(key, used_at=now, expires_at=now + self.lifetime)
        finally:
            self._touching.discard(key)
        return now + self.lifetime


class SocketSweep:
    """Closes open WebSockets whose session or token no longer grants what they were opened with.

    Runs in the daemon's TaskGroup (``run``). The revocation may come from this daemon (a logout) or from
    another process (``cti users remove`` / ``passwd``): the store is the truth, read once a second.
    """

    def __init__(self, hub: Hub, store: Callable[[], CallStore | None], every: float = SWEEP_EVERY) -> None:
        self.hub = hub
        self._store = store
        self.every = every
        self.closed = 0
        self._last_failure_log = -float("inf")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.sweep()
            except (StoreError, sqlite3.Error) as exc:  # the store is busy or closing: try again next time
                now = time.monotonic()
                if now - self._last_failure_log >= 60:
                    self._last_failure_log = now
                    log.warning("panel: cannot check the open sockets' sessions: %s", exc)

    async def sweep(self, now: float | None = None) -> int:
        """Check every open socket's credential once; close the stale ones. Returns how many were closed."""
        store = self._store()
        keys = self.hub.credentials()
        if store is None or not keys:
            return 0
        grants = await store.grants(keys)
        now = time.time() if now is None else now
        closed = 0
        for key in keys:
            reason = _stale(grants.get(key), now)
            for client in self.hub.clients_of(key):
                why = reason or ("your account changed: log in again"
                                 if not same_access(client.user, grants[key].user) else None)
                if why is not None:
                    log.info("websocket: closing %s (%s): %s", client.user.name, client.address, why)
                    self.hub.drop(client, CLOSE_POLICY, why)
                    closed += 1
        self.closed += closed
        return closed


def _stale(grant: Grant | None, now: float) -> str | None:
    if grant is None:
        return "logged out or access revoked"
    if grant.expires_at is not None and grant.expires_at <= now:
        return "session expired"
    return None
