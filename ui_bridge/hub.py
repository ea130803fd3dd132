"""Fan-out to WebSocket clients: audience routing and one bounded queue per client.

``publish`` runs in the panel's subscriber task (``companion/pipeline.py``), synchronously: it encodes a
message once (messages are built in ``outgoing.py``: a pydantic model, or the wire dict of one, both written
by pydantic's own JSON encoder), then offers the frame to each client in the audience with ``put_nowait``.
A relay task per client takes frames off its queue and sends them. A client whose queue is full is
disconnected alone (close code 1013, "try again later"), so a slow or stuck browser never delays anyone
else's screen-pop, and memory per client stays bounded by the queue plus the transport's write buffer.
A client that does not even read its close frame within ``close_grace`` seconds has its TCP connection
aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_json

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
    #: The SHA-256 of the session cookie or API token it was opened with: what a logout, a revocation or the
    #: per-session socket limit (``ui_bridge/sessions.py``) finds it by.
    credential: str | None = None
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


#: What the hub sends: a server model of ``messages.py``, or its wire form (``outgoing.Wire``).
Message = BaseModel | dict[str, Any]


def encode(message: Message) -> str | None:
    """The frame of a message, or None (logged) when it cannot be written as UTF-8 JSON: a lone surrogate
    from a CRM answer, say. One bad message is skipped; it never takes down the sender or a socket.

    A wire dict goes through ``pydantic_core.to_json``, the encoder ``model_dump_json`` uses, so both give
    the same text (compact, UTF-8 as is) and refuse the same things."""
    try:
        if isinstance(message, dict):
            return to_json(message).decode()
        return message.model_dump_json()
    except PydanticSerializationError as exc:
        kind = message.get("type") if isinstance(message, dict) else getattr(message, "type", None)
        log.warning("websocket: a %s message cannot be encoded, not sent: %s",
                    kind or type(message).__name__, exc)
        return None


class Hub:
    def __init__(self, queue_size: int = 256, close_grace: float = 2.0) -> None:
        self.queue_size = queue_size
        self.close_grace = close_grace
        self._by_extension: dict[str, set[Client]] = {}
        self._everything: set[Client] = set()
        #: ``_everything`` as a tuple, rebuilt when it changes: what ``publish`` walks for every message
        #: (copying the set per message would cost more than a membership change, which is rare).
        self._everyone: tuple[Client, ...] = ()
        self.clients: set[Client] = set()
        #: Sockets by credential, from the handshake (before ``add``) until ``remove``.
        self._by_credential: dict[str, set[Client]] = {}
        self.dropped_slow = 0
        self._closing: set[asyncio.Task[None]] = set()

    def new_client(self, user: User, transport: Transport, address: str = "", credential: str | None = None) -> Client:
        """A client, counted under its ``credential`` at once (the handshake's place in the per-session limit)."""
        client = Client(user, transport, asyncio.Queue(self.queue_size), address=address, credential=credential)
        if credential is not None:
            self._by_credential.setdefault(credential, set()).add(client)
        return client

    # -- membership -----------------------------------------------------------------------------------

    def add(self, client: Client, scope: Scope) -> None:
        """Register (or re-subscribe) a client; call it in the same synchronous step that queued its state."""
        self._unlink(client)
        client.scope = scope
        self.clients.add(client)
        if scope == "all":
            self._everything.add(client)
            self._everyone = tuple(self._everything)
        elif client.extension is not None:
            self._by_extension.setdefault(client.extension, set()).add(client)

    def remove(self, client: Client) -> None:
        self._unlink(client)
        self.clients.discard(client)
        if client.credential is not None:
            _discard(self._by_credential, client.credential, client)

    def credentials(self) -> list[str]:
        """The credentials that have sockets open (or opening)."""
        return list(self._by_credential)

    def clients_of(self, credential: str) -> list[Client]:
        """The connected clients of a credential (not those still in their handshake: they are checked
        again at the next sweep, once they can be closed with a close frame)."""
        return [c for c in self._by_credential.get(credential, ()) if c in self.clients]

    def sockets_of(self, credential: str) -> int:
        """Sockets of a credential, those in their handshake included (the per-session limit)."""
        return len(self._by_credential.get(credential, ()))

    def _unlink(self, client: Client) -> None:
        if client in self._everything:
            self._everything.discard(client)
            self._everyone = tuple(self._everything)
        if client.extension is not None:
            _discard(self._by_extension, client.extension, client)

    # -- fan-out ----------------------------------------------------------------------------------------

    def publish(self, message: Message, extensions: frozenset[str] = frozenset()) -> int:
        """Offer ``message`` to ``all`` subscribers and to those of ``extensions``; returns how many got it."""
        frame = encode(message)
        if frame is None:
            return 0
        delivered = 0
        for client in self._everyone:  # a tuple: a client dropped meanwhile is skipped by _offer
            delivered += self._offer(client, frame)
        for ext in extensions:
            members = self._by_extension.get(ext)
            if members:
                for client in list(members):
                    delivered += self._offer(client, frame)
        return delivered

    def send_to(self, client: Client, message: Message) -> None:
        """One message for one client (replies, its state), in order with its events."""
        frame = encode(message)
        if frame is not None:
            self._offer(client, frame)

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

    def drop_credential(self, credential: str, reason: str = "logged out") -> int:
        """A logout or a revocation: close the WebSockets opened with that session or token (1008)."""
        gone = self.clients_of(credential)
        for client in gone:
            self.drop(client, CLOSE_POLICY, reason)
        return len(gone)

    async def close_all(self) -> None:
        """At shutdown: tell every client the server is going away (1001), briefly."""
        for client in list(self.clients):
            self.drop(client, 1001, "server stopping")
        if self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.close_grace + 0.5):
                    await asyncio.gather(*self._closing, return_exceptions=True)


def _discard(index: dict[str, set[Client]], key: str, client: Client) -> None:
    """Take ``client`` out of ``index[key]``, and the key out of the index once its set is empty."""
    members = index.get(key)
    if members is not None:
        members.discard(client)
        if not members:
            del index[key]

