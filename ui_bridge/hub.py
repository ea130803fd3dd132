"""Fan-out to WebSocket clients: audience routing and one bounded queue per client.

``publish`` runs on the event path, synchronously: it encodes a message once, then offers the frame to
each client in the audience with ``put_nowait``. A relay task per client takes frames off its queue and
sends them. A client whose queue is full is disconnected alone (close code 1013, "try again later"), so a
slow or stuck browser never delays anyone else's screen-pop, and memory per client stays bounded by the
queue plus the transport's write buffer. A client that does not even read its close frame within
``close_grace`` seconds has its TCP connection aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from store.repository import User

log = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 1013
CLOSE_POLICY = 1008
Scope = Literal["own", "all"]


class Transport:
    """What the hub needs of a WebSocket: send a text frame, close, abort. The HTTP layer adapts Starlette's."""

    async def send(self, frame: str) -> None:
        raise NotImplementedError

    async def close(self, code: int, reason: str) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


@dataclass(eq=False)
class Client:
    user: User
    transport: Transport
    queue: asyncio.Queue[str]
    scope: Scope = "own"
    address: str = ""
    session: str | None = None  # the login session it was opened with (ended by a logout)
    dropped: bool = False
    sent: int = 0
    relay: asyncio.Task[None] | None = None
    requests: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def extension(self) -> str | None:
        return self.user.extension

    def offer(self, frame: str) -> bool:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True


class Hub:
    def __init__(self, queue_size: int = 256, close_grace: float = 2.0) -> None:
        self.queue_size = queue_size
        self.close_grace = close_grace
        self._by_extension: dict[str, set[Client]] = {}
        self._everything: set[Client] = set()
        self.clients: set[Client] = set()
        self.dropped_slow = 0
        self._closing: set[asyncio.Task[None]] = set()

    def new_client(self, user: User, transport: Transport, address: str = "") -> Client:
        return Client(user, transport, asyncio.Queue(self.queue_size), address=address)

    # -- membership -----------------------------------------------------------------------------------

    def add(self, client: Client, scope: Scope) -> None:
        """Register (or re-subscribe) a client; call it in the same synchronous step that queued its state."""
        self._unlink(client)
        client.scope = scope
        self.clients.add(client)
        if scope == "all":
            self._everything.add(client)
        elif client.extension is not None:
            self._by_extension.setdefault(client.extension, set()).add(client)

    def remove(self, client: Client) -> None:
        self._unlink(client)
        self.clients.discard(client)

    def _unlink(self, client: Client) -> None:
        self._everything.discard(client)
        if client.extension is not None:
            members = self._by_extension.get(client.extension)
            if members is not None:
                members.discard(client)
                if not members:
                    del self._by_extension[client.extension]

    # -- fan-out ----------------------------------------------------------------------------------------

    def publish(self, message: BaseModel, extensions: frozenset[str] = frozenset()) -> int:
        """Offer ``message`` to ``all`` subscribers and to those of ``extensions``; returns how many got it."""
        frame = message.model_dump_json()
        delivered = 0
        for client in list(self._everything):
            delivered += self._offer(client, frame)
        for ext in extensions:
            members = self._by_extension.get(ext)
            if members:
                for client in list(members):
                    delivered += self._offer(client, frame)
        return delivered

    def send_to(self, client: Client, message: BaseModel) -> None:
        """One message for one client (replies, its state), in order with its events."""
        self._offer(client, message.model_dump_json())

    def _offer(self, client: Client, frame: str) -> int:
        if client.dropped:
            return 0
        if client.offer(frame):
            return 1
        self.dropped_slow += 1
        log.warning("websocket: %s (%s) is %d messages behind: disconnecting it (1013)",
                    client.user.name, client.address, self.queue_size)
        self.drop(client, CLOSE_TOO_SLOW, "too slow: reconnect")
        return 0

    def drop(self, client: Client, code: int, reason: str) -> None:
        """Disconnect one client without waiting for it."""
        if client.dropped:
            return
        client.dropped = True
        self.remove(client)
        if client.relay is not None:
            client.relay.cancel()
        task = asyncio.get_running_loop().create_task(self._close(client, code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, client: Client, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(self.close_grace):
                await client.transport.close(code, reason)
        except (TimeoutError, OSError, RuntimeError):
            client.transport.abort()

    async def relay(self, client: Client) -> None:
        """Send the client's frames until it is dropped or its connection fails."""
        queue, send = client.queue, client.transport.send
        while True:
            frame = await queue.get()
            await send(frame)
            client.sent += 1

    def drop_session(self, session: str) -> int:
        """A logout: close the WebSockets opened with that session (1008)."""
        gone = [c for c in self.clients if c.session == session]
        for client in gone:
            self.drop(client, CLOSE_POLICY, "logged out")
        return len(gone)

    async def close_all(self) -> None:
        """At shutdown: tell every client the server is going away (1001), briefly."""
        for client in list(self.clients):
            self.drop(client, 1001, "server stopping")
        if self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.close_grace + 0.5):
                    await asyncio.gather(*self._closing, return_exceptions=True)

