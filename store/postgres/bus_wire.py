"""How a bus message travels in PostgreSQL NOTIFY payloads: whole when it fits, else cut into parts (pure code).

A NOTIFY payload must be shorter than 8000 bytes (PostgreSQL's default build); a pop with its caller card can be
more. A longer message is cut, on UTF-8 character boundaries, into parts of at most ``PART_BYTES`` that the
publisher sends in **one transaction**. PostgreSQL writes a committing transaction's notifications into its
queue together, holding a database-wide lock until the commit (``async.c``, ``PreCommit_Notify``: "queue entries
appear in commit order"), so a listener receives a message's parts one after the other, in order, with no other
message between them, or none of them if it was rolled back. The listener keeps one partial message per
publishing session (the notifying backend's pid) and hands the message over when its last part is in.

Why not a table of large payloads, notified by id: parts need no schema, no clean-up of read rows, no extra round
trip before a large message can be delivered (which would hold every message behind it), and a message cannot
be deleted before a slow listener has read it.

Formats (the first character says which):

* ``=PAYLOAD``: the whole message;
* ``>I/N:PART``: part ``I`` (from 0) of ``N``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

#: The longest NOTIFY payload we send, in bytes of UTF-8 (PostgreSQL refuses 8000 and more).
NOTIFY_BYTES = 7900
#: The longest part of a cut message, in bytes (its header ``>I/N:`` takes the rest of ``NOTIFY_BYTES``).
PART_BYTES = NOTIFY_BYTES - 32


class BadMessage(ValueError):
    """A notification that is not one of ours, or a part out of order (its message is dropped)."""


def encode(payload: str) -> list[str]:
    """The NOTIFY payloads that carry ``payload``, in the order they must be sent (in one transaction)."""
    data = payload.encode("utf-8")
    if len(data) < NOTIFY_BYTES:
        return ["=" + payload]
    parts = _cut(data, PART_BYTES)
    return [f">{i}/{len(parts)}:{part}" for i, part in enumerate(parts)]


def _cut(data: bytes, size: int) -> list[str]:
    """``data`` (UTF-8) as text parts of at most ``size`` bytes each, never splitting a character."""
    parts: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + size, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte: the character started before
            end -= 1
        parts.append(data[start:end].decode("utf-8"))
        start = end
    return parts


@dataclass
class Assembler:
    """Joins cut messages back together, one partial message per publishing session (``pid``)."""

    _partial: dict[int, list[str]] = field(default_factory=dict)

    def feed(self, pid: int, text: str) -> str | None:
        """The message ``text`` completes (None: a part, more to come). Raises ``BadMessage`` for a notification
        that is not ours or a part out of order (the partial message of ``pid`` is then dropped)."""
        if text.startswith("="):
            self._drop_partial(pid)
            return text[1:]
        if not text.startswith(">"):
            raise BadMessage(f"not a bus message: {text[:40]!r}")
        head, colon, part = text[1:].partition(":")
        index_text, slash, count_text = head.partition("/")
        if not (colon and slash and index_text.isdigit() and count_text.isdigit()):
            raise BadMessage(f"not a bus message: {text[:40]!r}")
        index, count = int(index_text), int(count_text)
        if index >= count:
            self._partial.pop(pid, None)
            raise BadMessage(f"not a bus message: {text[:40]!r}")
        if index == 0:
            self._drop_partial(pid)
            self._partial[pid] = [part]
        else:
            parts = self._partial.get(pid)
            if parts is None or len(parts) != index:
                self._partial.pop(pid, None)
                raise BadMessage(f"part {index}/{count} from session {pid} out of order; its message is dropped")
            parts.append(part)
        if index == count - 1:
            return "".join(self._partial.pop(pid))
        return None

    def _drop_partial(self, pid: int) -> None:
        """A new message from ``pid`` while one was incomplete: cannot happen within one connection's stream
        (a transaction's parts are contiguous), so say so and drop the incomplete one."""
        if self._partial.pop(pid, None) is not None:
            log.warning("bus: a message from session %d ended before its last part; it is dropped", pid)

    def reset(self) -> None:
        """Forget partial messages (the connection dropped: their remaining parts will never come)."""
        self._partial.clear()
