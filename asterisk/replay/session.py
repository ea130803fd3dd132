"""One client connection of the replay PBX: its login state, event mask and filters, and an ordered write queue.

Every event is encoded once (:class:`Outgoing`) and handed to each session that accepts it under Asterisk's rule
(the event's class in the session's mask, then the ``Filter`` regexes). A session writes its queue in order, in
chunks when asked, so framing is tested over real TCP reads.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from asterisk.messages import AmiMessage

from .actions import classes_of


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A served event, encoded once for every session."""

    frame: bytes
    classes: frozenset[str]

    @property
    def text(self) -> str:
        return self.frame.decode("utf-8", errors="replace")



class Session:
    """One client connection: its login, event mask, filters, and an ordered outgoing queue."""

    def __init__(self, sid: int, writer: asyncio.StreamWriter, chunk_size: int | None,
                 chunk_seed: int | None) -> None:
        self.id = sid
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.logged_in = False
        self.mask: frozenset[str] | None = None
        self.includes: list[re.Pattern[str]] = []
        self.excludes: list[re.Pattern[str]] = []
        self.closed = False
        self.idle = asyncio.Event()
        self.idle.set()
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._chunk_size = chunk_size
        # Random chunk sizes only when a seed is given; each session draws its own reproducible series.
        self._rng = random.Random(f"{chunk_seed}:{sid}") if chunk_seed is not None else None
        # drain() then waits until the bytes are in the kernel, not merely in asyncio's buffer.
        writer.transport.set_write_buffer_limits(high=0)

    def send(self, data: bytes) -> None:
        if not self.closed and data:
            self.idle.clear()
            self._out.put_nowait(data)

    def finish(self) -> None:
        """Close once everything queued so far is written (Logoff, refused login, client EOF)."""
        self._out.put_nowait(None)

    def abort(self) -> None:
        """Cut the connection now, unsent bytes lost, as a crashed PBX or a broken network would."""
        self.closed = True
        self.writer.transport.abort()
        self.idle.set()
        self._out.put_nowait(None)

    def accepts(self, event: Outgoing) -> bool:
        """Asterisk's rule: the event's class is in the session's mask, then the regex filters."""
        if self.mask is not None and not (event.classes & self.mask):
            return False
        if not self.includes and not self.excludes:
            return True
        text = event.text
        if any(f.search(text) for f in self.excludes):
            return False
        return not self.includes or any(f.search(text) for f in self.includes)

    def _chunks(self, data: bytes) -> Iterator[bytes]:
        size = self._chunk_size
        if not size:
            yield data
            return
        pos = 0
        while pos < len(data):
            step = self._rng.randint(1, size) if self._rng is not None else size
            yield data[pos : pos + step]
            pos += step

    async def write_loop(self) -> None:
        """Write the queued bytes in order; the only place this session's socket is written."""
        try:
            while True:
                data = await self._out.get()
                if data is None:
                    break
                for chunk in self._chunks(data):
                    self.writer.write(chunk)
                    await self.writer.drain()
                    if self._chunk_size:
                        # drain() does not yield while the buffer is low: give the reader a turn so
                        # that each chunk really arrives as a read of its own (split UTF-8 letters).
                        await asyncio.sleep(0)
                if self._out.empty():
                    self.idle.set()
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed = True
            self.idle.set()
            self.writer.close()



def session_events(session: Session, username: str, now: float) -> list[Outgoing]:
    """What Asterisk sends a session right after its login: ``FullyBooted``, ``SuccessfulAuth``."""
    tv = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}+0000"
    booted = AmiMessage(headers=[("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", "0"),
                                 ("LastReload", "0"), ("Status", "Fully Booted")])
    auth = AmiMessage(headers=[
        ("Event", "SuccessfulAuth"), ("Privilege", "security,all"), ("Timestamp", f"{now:.6f}"),
        ("EventTV", tv), ("Severity", "Informational"), ("Service", "AMI"), ("EventVersion", "1"),
        ("AccountID", username), ("SessionID", f"0x{0x5583d4cb0000 + session.id:x}"),
        ("LocalAddress", "IPV4/TCP/127.0.0.1/5038"), ("RemoteAddress", f"IPV4/TCP/{session.peer.replace(':', '/')}"),
        ("UsingPassword", "0"), ("SessionTV", tv)])
    return [Outgoing(m.serialize(), classes_of(m.get("Privilege"))) for m in (booted, auth)]

