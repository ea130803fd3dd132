"""Sans-I/O AMI framing: bytes in, whole messages out; actions in, bytes out.

Why our own parser and not panoramisk's: panoramisk 1.4 decodes every TCP read on its own with
``errors='ignore'``, so a Cyrillic ``CallerIDName`` whose UTF-8 bytes straddle two reads loses
characters. Here bytes pile up in one ``bytearray`` and are decoded only once a whole frame (ended by
a blank line) is in hand. A frame over :data:`~asterisk.messages.MAX_FRAME_SIZE` or without a single
``Key: Value`` line becomes a :class:`FrameError` and the parser skips to the next blank line; nothing
is ever raised to the caller.

The same framer serves both sides: the client (``expect_banner=True``: the PBX greets with one line,
``Asterisk Call Manager/11.0.0``) and the replay PBX reading actions (``expect_banner=False``).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

from .messages import MAX_FRAME_SIZE, AmiMessage, FrameError

log = logging.getLogger(__name__)

_CRLF2 = b"\r\n\r\n"
_LF2 = b"\n\n"


def _find_end(buf: bytearray, start: int) -> tuple[int, int]:
    """Position of the next frame terminator and its length, or (-1, 0).

    Asterisk ends frames with CRLF CRLF. A peer that uses bare LF never sends that sequence, and a
    CRLF stream never contains LF LF, so the second search only runs for such a peer (or while a
    frame is incomplete).
    """
    crlf = buf.find(_CRLF2, start)
    if crlf != -1:
        return crlf, 4
    lf = buf.find(_LF2, start)
    return (lf, 2) if lf != -1 else (-1, 0)


def parse_frame(raw: bytes | bytearray, received_at: float = 0.0) -> AmiMessage | FrameError:
    """Decode one frame (without its terminator) into a message."""
    text = raw.decode("utf-8", errors="replace")
    headers: list[tuple[str, str]] = []
    append = headers.append
    odd = False
    for line in text.split("\r\n") if "\r" in text else text.split("\n"):
        key, sep, value = line.partition(": ")
        if sep and key and " " not in key:
            append((key, value))
        elif line:
            odd = True
            _parse_line(line, append)
    if (odd and not any(k != "Output" for k, _ in headers)) or not headers:
        return FrameError("no header line", len(raw), text[:80])
    return AmiMessage(headers=headers, received_at=received_at)


def _parse_line(line: str, append: Callable[[tuple[str, str]], None]) -> None:
    """One line of an unusual frame. Asterisk's legacy Command output has bare lines; they are kept
    under one key, ``Output``. Empty lines are skipped."""
    line = line.rstrip("\r")
    key, sep, value = line.partition(":")
    if sep and key and " " not in key:
        append((key, value[1:] if value.startswith(" ") else value))
    elif line:
        append(("Output", line))


class AmiFramer:
    """Splits a byte stream into AMI frames.

    Call :meth:`receive_data` with whatever the socket gave, then :meth:`events_received` to take
    the messages (and frame errors) it completed, in order.
    """

    def __init__(self, *, expect_banner: bool, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self.expect_banner = expect_banner
        self.banner: str | None = None
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        self._discarding = False
        self._out: list[AmiMessage | FrameError] = []
        self.eof = False

    def receive_data(self, data: bytes, received_at: float = 0.0) -> None:
        buf = self._buf
        buf += data
        if self.expect_banner and self.banner is None:
            nl = buf.find(b"\n")
            if nl == -1:
                if len(buf) > self.max_frame_size:
                    self._out.append(FrameError("banner too long", len(buf), ""))
                    self.banner = ""
                return
            self.banner = buf[:nl].decode("utf-8", errors="replace").rstrip("\r")
            del buf[: nl + 1]
        pos = 0
        out = self._out
        limit = self.max_frame_size
        while True:
            end, size = _find_end(buf, pos)
            if end == -1:
                break
            if self._discarding:
                self._discarding = False
            elif end - pos > limit:
                excerpt = bytes(buf[pos : pos + 80]).decode("utf-8", "replace")
                out.append(FrameError("oversized frame", end - pos, excerpt))
            else:
                # Skip stray blank lines between frames.
                if end > pos:
                    out.append(parse_frame(buf[pos:end], received_at))
            pos = end + size
        if pos:
            del buf[:pos]
        if len(buf) > limit:
            if not self._discarding:
                out.append(FrameError("oversized frame", len(buf), bytes(buf[:80]).decode("utf-8", "replace")))
            self._discarding = True
            buf.clear()

    def receive_eof(self) -> None:
        """The peer closed; an unfinished frame is dropped (logged), never half-used."""
        self.eof = True
        if self._buf.strip():
            log.warning("AMI stream ended inside a frame (%d bytes dropped)", len(self._buf))
        self._buf.clear()

    def events_received(self) -> list[AmiMessage | FrameError]:
        """Messages completed since the last call, in arrival order. Call after every receive_*()."""
        out, self._out = self._out, []
        return out

    @property
    def buffered(self) -> int:
        return len(self._buf)


class AmiClientProtocol:
    """Client side of an AMI session without I/O: frames in, actions out, ActionIDs assigned."""

    def __init__(self, *, max_frame_size: int = MAX_FRAME_SIZE, id_prefix: str = "cti") -> None:
        self.framer = AmiFramer(expect_banner=True, max_frame_size=max_frame_size)
        self._ids = itertools.count(1)
        self._prefix = id_prefix
        self._to_send: list[bytes] = []

    def receive_data(self, data: bytes, received_at: float = 0.0) -> None:
        self.framer.receive_data(data, received_at)

    def receive_eof(self) -> None:
        self.framer.receive_eof()

    def events_received(self) -> list[AmiMessage | FrameError]:
        return self.framer.events_received()

    @property
    def banner(self) -> str | None:
        return self.framer.banner

    def send_action(self, message: AmiMessage) -> str:
        """Queue an action for sending; gives it an ActionID unless it has one. Returns the id."""
        action_id = message.action_id
        if not action_id:
            action_id = f"{self._prefix}-{next(self._ids)}"
            message = AmiMessage(headers=[*message.headers, ("ActionID", action_id)])
        self._to_send.append(message.serialize())
        return action_id

    def data_to_send(self) -> list[bytes]:
        """Bytes to write. Call right after send_action()."""
        out, self._to_send = self._to_send, []
        return out
