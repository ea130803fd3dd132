"""Fan-out to WebSocket clients: audience routing and one bounded queue per client.

Audiences are per PBX: an extension means something only within its PBX (101 on two PBXs is two agents), so
an agent's client is indexed by (PBX, extension) for each PBX its user belongs to (a user of every PBX: under
``None``, which every PBX's messages reach), and an ``all`` subscriber gets only the messages of its user's PBXs.

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
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_json

from store.repository import User

log = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 1013
CLOSE_POLICY = 1008
Scope = Literal["own", "all"]
K = TypeVar("K")


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

    @property
    def pbx_keys(self) -> tuple[str | None, ...]:
        """The PBXs the client is indexed under: its user's, or ``None`` for a user of every PBX."""
        return self.user.pbxs or (None,)

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
        #: Agents' own subscriptions by (PBX, extension); PBX ``None``: a user of every PBX.
        self._by_extension: dict[tuple[str | None, str], set[Client]] = {}
        #: ``all`` subscribers by PBX (``None``: users of every PBX).
        self._everything: dict[str | None, set[Client]] = {}
        #: ``_everything`` as tuples, rebuilt when it changes: what ``publish`` walks for every message
        #: (copying a set per message would cost more than a membership change, which is rare).
        self._everyone: dict[str | None, tuple[Client, ...]] = {}
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
        for pbx in client.pbx_keys:
            if scope == "all":
                members = self._everything.setdefault(pbx, set())
                members.add(client)
                self._everyone[pbx] = tuple(members)
            elif client.extension is not None:
                self._by_extension.setdefault((pbx, client.extension), set()).add(client)

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
        for pbx in client.pbx_keys:
            members = self._everything.get(pbx)
            if members is not None and client in members:
                members.discard(client)
                if members:
                    self._everyone[pbx] = tuple(members)
                else:
                    del self._everything[pbx], self._everyone[pbx]
            if client.extension is not None:
                _discard(self._by_extension, (pbx, client.extension), client)

    # -- fan-out ----------------------------------------------------------------------------------------

    def publish(self, message: Message, extensions: frozenset[str] = frozenset(), pbx: str | None = None,
                everyone: bool = False) -> int:
        """Offer ``message`` to the ``all`` subscribers of ``pbx`` and to the subscribers of ``extensions`` on
        ``pbx``; returns how many got it. ``pbx=None``: a message about no PBX in particular, for every ``all``
        subscriber (and the users of every PBX among those of ``extensions``). ``everyone``: to every client of
        ``pbx`` whatever its subscription (agents included: ``pbx.status``)."""
        frame = encode(message)
        if frame is None:
            return 0
        return self.publish_frame(frame, extensions, pbx, everyone)

    def publish_frame(self, frame: str, extensions: Collection[str] = frozenset(), pbx: str | None = None,
                      everyone: bool = False) -> int:
        """:meth:`publish` of a frame already encoded: what the fan-out across nodes (``ui_bridge/fanout.py``)
        offers each node's clients, the frame encoded once on the node that built the message."""
        if everyone:  # rare (a PBX lost or back): a walk over the clients, each once
            return sum(self._offer(client, frame) for client in list(self.clients)
                       if pbx is None or None in client.pbx_keys or pbx in client.pbx_keys)
        delivered = 0
        subscribers = self._everyone
        if subscribers:
            if pbx is not None:
                for key in (None, pbx):
                    for client in subscribers.get(key, ()):  # a tuple: a client dropped meanwhile is skipped
                        delivered += self._offer(client, frame)
            else:  # once each, though a user of two PBXs is indexed under both
                for client in {c for members in subscribers.values() for c in members}:
                    delivered += self._offer(client, frame)
        if extensions:
            index = self._by_extension
            for ext in extensions:
                # The users of every PBX with that extension, then that PBX's (two lookups, no key tuples built:
                # this runs for every message about a call).
                members = index.get((None, ext))
                if members:
                    for client in list(members):
                        delivered += self._offer(client, frame)
                if pbx is not None:
                    members = index.get((pbx, ext))
                    if members:
                        for client in list(members):
                            delivered += self._offer(client, frame)
        return delivered

    def publish_to_users(self, frame: str, users: Collection[str]) -> int:
        """Offer a frame to every socket of the named users (user names, case-insensitive), whatever their PBXs and
        subscription: messages about a person's own work (a complaint's task, ``ui_bridge/complaints.py``), not
        about a PBX. A walk over the clients: such messages are rare."""
        names = {u.lower() for u in users}
        if not names:
            return 0
        return sum(self._offer(client, frame) for client in list(self.clients) if client.user.name.lower() in names)

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


def _discard(index: dict[K, set[Client]], key: K, client: Client) -> None:
    """Take ``client`` out of ``index[key]``, and the key out of the index once its set is empty."""
    members = index.get(key)
    if members is not None:
        members.discard(client)
        if not members:
            del index[key]

