"""Every panel message about a PBX, to every panel node: through the store's bus when it reaches other processes.

Why: with several ``cti run`` processes on one PostgreSQL, the node that follows a PBX (and so builds its pops) is
often not the node an agent's browser is connected to (a load balancer chose it). So a node that runs over such a
store (``across_nodes``, the composition root decides: a PostgreSQL store) publishes each message not to its own
hub but to the bus channel ``panel``, encoded once, in an envelope that says who gets it (``ui_bridge/envelope.py``);
every node, this one included, takes the envelopes off the bus and offers each frame to its own hub's clients
(``Hub.publish_frame``: never re-encoded). One path and one order for every client wherever it is connected: the
bus keeps one publisher's messages in order, so a pop still comes before its call's answer.

The publish sites are synchronous (the panel's subscriber task, a request handler) and the bus is not: a message
goes into a bounded queue and one sender task per node publishes what is queued, several envelopes per bus message
when many wait (``BATCH_CHARS``). A full queue drops its oldest envelope (counted, logged at most once a minute):
the event path never waits for the database. A batch the bus refuses (the database unreachable) is offered to this
node's own clients directly, so a node cut off from the database still pops to the browsers connected to it.

With SQLite (one process: daemon and panel together) nothing of this runs: ``publish`` is ``Hub.publish``.
Until :meth:`Fanout.run` has subscribed (and after it stops) it is ``Hub.publish`` too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection, Mapping
from typing import Any

from store.repository import Store, StoreClosed, StoreError

from .envelope import CHANNEL, BadEnvelope, Header, Kind, envelope, envelopes
from .hub import Hub, Message, encode

log = logging.getLogger(__name__)

#: Envelopes waiting for the sender at most: far above a busy moment (a bus message takes about a millisecond,
#: and a batch carries every envelope queued meanwhile), small enough to cost a few MB when full.
QUEUE_SIZE = 10_000
#: A bus message carries queued envelopes up to this many characters (at most 4 bytes each in UTF-8: within the
#: bus's 1 MiB). A bigger envelope goes alone.
BATCH_CHARS = 200_000
#: The warnings about dropped envelopes and refused batches: at most once in this many seconds each.
WARNING_INTERVAL = 60.0
#: Back-off (seconds) while the bus cannot be subscribed to at start: first, then doubled up to the last.
SUBSCRIBE_RETRY_FIRST = 0.5
SUBSCRIBE_RETRY_MAX = 10.0


class Fanout:
    """The panel's one way out to clients: the hub directly, or the bus to every node's hub (module docstring).

    ``node`` names this node in the envelopes (random per process: a node restarted is a new node).
    ``listeners`` get every envelope's header this node receives, its own included, after its frame was offered
    to the clients (``ui_bridge/mirror_sync.py`` keeps the mirrors from them); ``on_active`` run once the bus is
    subscribed to (a node that starts asks for the state of the PBXs it does not follow).
    """

    def __init__(self, hub: Hub, store: Callable[[], Store | None] = lambda: None, *, across_nodes: bool = False,
                 queue_size: int = QUEUE_SIZE, channel: str = CHANNEL, node: str | None = None) -> None:
        self.hub = hub
        self._store = store
        self.across_nodes = across_nodes
        self.queue_size = queue_size
        self.channel = channel
        self.node = node or uuid.uuid4().hex[:12]
        self.listeners: list[Callable[[Header], None]] = []
        self.on_active: list[Callable[[], None]] = []
        #: True while messages go through the bus (``run`` subscribed and sending).
        self.active = False
        self._queue: deque[str] = deque()
        #: The number of the last envelope this node queued; callbacks waiting for their envelope to come back.
        self._seq = 0
        self._after: deque[tuple[int, Callable[[], None]]] = deque()
        #: The highest of this node's own envelope numbers back from the bus so far.
        self._back = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        #: Envelopes published on the bus, bus messages they took, envelopes received (this node's included).
        self.sent = 0
        self.batches = 0
        self.received = 0
        #: Envelopes dropped from the full queue; batches the bus refused (offered to this node's clients only);
        #: envelopes received that could not be read.
        self.dropped = 0
        self.failed = 0
        self.unreadable = 0
        self._last_drop_warning = -math.inf
        self._last_failure_warning = -math.inf

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def wanted(self) -> bool:
        """Whether a message may reach anyone: some client here, or maybe elsewhere (the bus is in use)."""
        return self.active or bool(self.hub.clients)

    # -- publishing (synchronous, never waits) ---------------------------------------------------------------

    def publish(self, message: Message, extensions: Collection[str] = frozenset(), pbx: str | None = None,
                mirror: Mapping[str, Any] | None = None, *, everyone: bool = False) -> None:
        """Offer ``message`` to the clients of ``pbx`` and of its ``extensions`` (``Hub.publish``; ``everyone``: to
        every client of ``pbx``), on every node while the bus is in use; ``mirror``: the header fields mirrors read
        (``mirror_sync.update_for``)."""
        if not self.active:
            self.hub.publish(message, frozenset(extensions), pbx, everyone)
            return
        frame = encode(message)
        if frame is None:
            return
        self._enqueue(envelope(self.node, "msg", frame, seq=self._next(), pbx=pbx, ext=sorted(extensions) or None,
                               everyone=everyone or None, **(mirror or {})))

    def publish_to_users(self, message: Message, users: Collection[str]) -> None:
        """Offer ``message`` to the sockets of the named users only (``Hub.publish_to_users``), on every node while
        the bus is in use: a message about a person's own work, not about a PBX (a complaint's task)."""
        names = sorted({u.lower() for u in users})
        if not names:
            return
        frame = encode(message)
        if frame is None:
            return
        if not self.active:
            self.hub.publish_to_users(frame, names)
            return
        self._enqueue(envelope(self.node, "users", frame, seq=self._next(), users=names))

    def publish_bare(self, kind: Kind, **fields: Any) -> bool:
        """An envelope with no message for clients (a PBX's state, a state request); only while the bus is in use
        (returns whether it was queued)."""
        if not self.active:
            return False
        self._enqueue(envelope(self.node, kind, seq=self._next(), **fields))
        return True

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def after_delivered(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once everything queued so far has come back from the bus to this node (and was offered
        to its clients): the pop latency is measured there (``metrics.PopTimer``). At once when the bus is not in
        use. Forgotten if the queue drops the envelopes it waits for and nothing is queued after them."""
        if not self.active or self._seq <= self._back:
            # No bus; or everything queued so far is already back (a pop whose caller-card lookup was cancelled
            # by its call's end is observed only once the lookup task has wound down, which may take longer than
            # the bus's round trip): waiting for a later envelope would wait for one that may never come.
            callback()
            return
        if len(self._after) >= self.queue_size:
            self._after.popleft()
        self._after.append((self._seq, callback))

    def _enqueue(self, text: str) -> None:
        queue = self._queue
        if len(queue) >= self.queue_size:
            queue.popleft()
            self.dropped += 1
            now = time.monotonic()
            if now - self._last_drop_warning >= WARNING_INTERVAL:
                self._last_drop_warning = now
                log.warning("panel fan-out: %d envelopes wait for the bus (the database is slow or unreachable): "
                            "the oldest dropped (%d so far)", len(queue), self.dropped)
        queue.append(text)
        self._idle.clear()
        self._wake.set()

    # -- the sender and the receiver ------------------------------------------------------------------------

    async def run(self) -> None:
        """Subscribe to the bus, then publish what is queued, until cancelled (across nodes only; else return)."""
        if not self.across_nodes:
            return
        store = self._store()
        if store is None:
            raise RuntimeError("the panel's fan-out needs the store open")
        subscription = await self._subscribe(store)
        self.active = True
        log.info("panel fan-out: node %s, through the store's bus (channel %r)", self.node, self.channel)
        try:
            for started in self.on_active:
                started()
            await self._send_forever(store)
        finally:
            self.active = False
            self._idle.set()
            try:
                await subscription.close()
            except (StoreError, OSError) as exc:
                log.debug("panel fan-out: unsubscribing: %s", exc)

    async def _subscribe(self, store: Store) -> Any:
        """The bus subscription; a database unreachable at start is waited for (meanwhile: this node's hub)."""
        delay = SUBSCRIBE_RETRY_FIRST
        while True:
            try:
                return await store.subscribe(self.channel, self._on_bus)
            except StoreClosed:
                raise
            except StoreError as exc:
                log.warning("panel fan-out: cannot subscribe to the store's bus (%s); pops reach this node's "
                            "clients only; trying again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, SUBSCRIBE_RETRY_MAX)

    async def _send_forever(self, store: Store) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            parts = [queue.popleft()]
            size = len(parts[0])
            while queue and size + len(queue[0]) < BATCH_CHARS:
                text = queue.popleft()
                parts.append(text)
                size += len(text) + 1
            payload = "\n".join(parts)
            try:
                await store.publish(self.channel, payload)
            except (StoreError, ValueError) as exc:
                self._refused(payload, len(parts), exc)
            else:
                self.sent += len(parts)
                self.batches += 1

    def _refused(self, payload: str, count: int, exc: Exception) -> None:
        """The bus refused a batch: this node's own clients still get it, the others' nodes do not."""
        self.failed += 1
        now = time.monotonic()
        if now - self._last_failure_warning >= WARNING_INTERVAL:
            self._last_failure_warning = now
            log.warning("panel fan-out: the bus refused %d envelope(s) (%s): offered to this node's clients only "
                        "(%d batch(es) so far)", count, exc, self.failed)
        self._on_bus(payload)

    async def flush(self, within: float) -> bool:
        """Wait (at most ``within`` seconds) until everything queued was published; whether it was."""
        try:
            async with asyncio.timeout(within):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def _delivered(self, seq: int) -> None:
        self._back = max(self._back, seq)
        after = self._after
        while after and after[0][0] <= seq:
            _, callback = after.popleft()
            try:
                callback()
            except Exception:
                log.exception("panel fan-out: a delivery callback failed")

    def _on_bus(self, payload: str) -> None:
        """One bus message: each envelope's frame to this node's clients, then its header to the listeners."""
        hub = self.hub
        for item in envelopes(payload):
            if isinstance(item, BadEnvelope):
                self.unreadable += 1
                log.warning("panel fan-out: %s; skipped", item)
                continue
            header, frame = item
            self.received += 1
            if header.kind == "users" or header.users is not None:  # never a PBX's audience: the named people or none
                if frame:
                    hub.publish_to_users(frame, header.users or ())
            elif frame:
                hub.publish_frame(frame, header.ext, header.pbx, header.everyone)
            if header.node == self.node and header.seq is not None:
                self._delivered(header.seq)
            for listener in self.listeners:
                try:
                    listener(header)
                except Exception:  # a mirror's bug must not cost the next envelopes their delivery
                    log.exception("panel fan-out: a listener failed on a %s envelope from node %s", header.kind,
                                  header.node)
