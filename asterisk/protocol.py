"""Sans-I/O AMI framing: bytes in, whole messages out; actions in, bytes out.

Why our own parser and not panoramisk's: panoramisk 1.4 decodes every TCP read on its own with
``errors='ignore'``, so a Cyrillic ``CallerIDName`` whose UTF-8 bytes straddle two reads loses
characters. Here only whole frames (ended by a blank line) are ever decoded; the bytes of an unfinished one
wait in a ``bytearray``. A frame over :data:`~asterisk.messages.MAX_FRAME_SIZE` or without a single
``Key: Value`` line becomes a :class:`FrameError` and the parser skips to the next blank line; nothing
is ever raised to the caller.

Why it is shaped as it is: it runs for every event the PBX sends, ahead of everything else the daemon does,
so the work per frame is done by C-level calls, not per-line Python. Each read is cut once at its last
``CRLF CRLF``; everything before is decoded in one call and split into frames in another; a frame's lines
become its lookup dict in one ``dict(map(str.split, ...))``. A frame that is anything but plain ``Key: Value``
lines with distinct keys (a repeated ``Variable``, a bare line of legacy ``Command`` output, a blank line, a
bare-LF peer) takes :func:`parse_frame`, the line-by-line reference, so both paths give the same message.

Where the optional C module ``asterisk._speedups`` is built (``setup.py``), it does that fast path (frames
cut, lines split, each plain frame's dict built) in one call per read; frames it declines come back as None
and take the same Python path as above, which stays the reference: ``AmiFramer(speedups=False)`` is the
pure-Python framer, and the tests run both.

The same framer serves both sides: the client (``expect_banner=True``: the PBX greets with one line,
``Asterisk Call Manager/11.0.0``) and tests reading actions (``expect_banner=False``).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

from .messages import MAX_FRAME_SIZE, AmiMessage, FrameError, message_from_index

_frame_dicts: Callable[[bytes | bytearray], list[dict[str, str] | None]] | None
try:
    from ._speedups import frame_dicts as _frame_dicts
except ImportError:  # not built (no C compiler at install): the pure-Python path, the same and slower
    _frame_dicts = None

log = logging.getLogger(__name__)

#: Whether this installation has the C fast path (``bench.pipeline`` says which framer it measured).
SPEEDUPS = _frame_dicts is not None

_CRLF2 = b"\r\n\r\n"
_LF2 = b"\n\n"
_TEXT_END = "\r\n\r\n"
#: ``map(str.split, lines, _SEPARATOR, _ONCE)`` is ``[line.split(": ", 1) for line in lines]`` without a
#: Python loop. Infinite iterators: one pair serves every frame.
_SEPARATOR = itertools.repeat(": ")
_ONCE = itertools.repeat(1)
_split = str.split
#: Keys already seen to be plain (not empty, no space): then the frame's keys need no closer look. A cache of
#: a pure test, bounded so that a peer inventing keys cannot grow it; past the bound keys are just checked.
_PLAIN_KEYS: set[str] = set()
_MAX_PLAIN_KEYS = 4096


def parse_frame(raw: bytes | bytearray, received_at: float = 0.0) -> AmiMessage | FrameError:
    """Decode one frame (without its terminator) into a message, line by line.

    The reference the framer's fast path must agree with, and the path for every frame that is not plain
    ``Key: Value`` lines with distinct keys.
    """
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


def _plain_keys(index: dict[str, str]) -> bool:
    """No key empty or with a space in it (parse_frame reads such a line as ``Output``); learns the keys."""
    if "" in index or " " in "".join(index):
        return False
    if len(_PLAIN_KEYS) < _MAX_PLAIN_KEYS:
        _PLAIN_KEYS.update(index)
    return True


def _excerpt(raw: bytes | bytearray) -> str:
    return bytes(raw[:80]).decode("utf-8", "replace")


class AmiFramer:
    """Splits a byte stream into AMI frames.

    Call :meth:`receive_data` with whatever the socket gave, then :meth:`events_received` to take
    the messages (and frame errors) it completed, in order. Frames end with ``CRLF CRLF`` as Asterisk
    sends them; a peer that ends its lines with a bare LF (``LF LF`` after a frame) is understood too.
    """

    def __init__(self, *, expect_banner: bool, max_frame_size: int = MAX_FRAME_SIZE, speedups: bool = True) -> None:
        self.expect_banner = expect_banner
        #: The C fast path, if built and not turned off (tests run both; the results are the same).
        self._frame_dicts = _frame_dicts if speedups else None
        self.banner: str | None = None
        self.max_frame_size = max_frame_size
        #: The unfinished frame: never holds a ``CRLF CRLF`` (nor an ``LF LF``) between calls.
        self._buf = bytearray()
        #: Inside an oversized frame: everything up to its end is dropped.
        self._discarding = False
        self._out: list[AmiMessage | FrameError] = []
        self.eof = False

    def receive_data(self, data: bytes, received_at: float = 0.0) -> None:
        """Take one read's bytes; the frames they complete are queued for :meth:`events_received`."""
        buf = self._buf
        if buf or (self.expect_banner and self.banner is None):
            searched = len(buf) - 3 if len(buf) > 3 else 0  # a terminator may straddle the two reads
            buf += data
            if self.banner is None and self.expect_banner:
                if not self._take_banner():
                    return
                searched = 0
            end = buf.rfind(_CRLF2, searched)
            if end == -1:
                self._after(searched, received_at)
                return
            chunk: bytes | bytearray = buf[:end]
            del buf[: end + 4]
        else:  # the usual read: it starts on a frame's first byte
            end = data.rfind(_CRLF2)
            if end == -1:
                buf += data
                self._after(0, received_at)
                return
            chunk = data[:end]
            buf += memoryview(data)[end + 4 :]
        self._frames(chunk, received_at)
        if buf:
            self._after(0, received_at)

    def _frames(self, chunk: bytes | bytearray, received_at: float) -> None:
        """Every frame of ``chunk``: whole frames joined by their terminators (the last one's cut off)."""
        if self._frame_dicts is not None:
            self._frames_fast(chunk, received_at, self._frame_dicts(chunk))
            return
        pieces = chunk.decode("utf-8", "replace").split(_TEXT_END)
        out = self._out
        append = out.append
        limit = self.max_frame_size
        plain = _PLAIN_KEYS
        if self._discarding:  # the first piece is the end of a frame already refused as oversized
            self._discarding = False
            pieces[0] = ""
        # The pieces of the bytes, by the same cuts (the terminator is ASCII, which decoding never swallows):
        # for a frame's size in bytes (a character is at most 4 of them) and for the line-by-line parser.
        raw: list[bytes] | list[bytearray] | None = None
        if len(chunk) > limit and max(map(len, pieces)) * 4 > limit:
            raw = chunk.split(_CRLF2)
        for i, text in enumerate(pieces):
            if raw is not None and text and len(raw[i]) > limit:
                append(FrameError("oversized frame", len(raw[i]), _excerpt(raw[i])))
                continue
            lines = text.split("\r\n")
            try:
                index = dict(map(_split, lines, _SEPARATOR, _ONCE))
            except ValueError:  # a line without ": " (a blank one, Command output): line by line
                index = None
            # Fast path only when it must agree with parse_frame: one pair per line, no key empty or with a
            # space, and (a single line with a LF in it: parse_frame would split it there) LF only after CR.
            if (index is not None and len(index) == len(lines) and (len(lines) > 1 or "\n" not in text)
                    and (plain.issuperset(index) or _plain_keys(index))):
                append(message_from_index(index, received_at))
            elif text.strip("\r\n"):  # blank lines alone, between frames: nothing
                if raw is None:
                    raw = chunk.split(_CRLF2)
                append(parse_frame(raw[i], received_at))

    def _frames_fast(self, chunk: bytes | bytearray, received_at: float,
                     dicts: list[dict[str, str] | None]) -> None:
        """:meth:`_frames` with the dicts the C module built (None: a frame it left to :func:`parse_frame`)."""
        append = self._out.append
        limit = self.max_frame_size
        raw: list[bytes] | list[bytearray] | None = chunk.split(_CRLF2) if len(chunk) > limit else None
        # The first piece is the end of a frame already refused as oversized: skipped.
        first = 1 if self._discarding else 0
        self._discarding = False
        for i in range(first, len(dicts)):
            index = dicts[i]
            if raw is not None and len(raw[i]) > limit:
                append(FrameError("oversized frame", len(raw[i]), _excerpt(raw[i])))
            elif index is not None:
                append(message_from_index(index, received_at))
            else:
                if raw is None:
                    raw = chunk.split(_CRLF2)
                if raw[i].strip(b"\r\n"):  # blank lines alone, between frames: nothing
                    append(parse_frame(raw[i], received_at))

    def _after(self, searched: int, received_at: float) -> None:
        """What is left is an unfinished frame: end bare-LF frames in it, refuse it if it is too long."""
        buf = self._buf
        if buf.find(_LF2, searched) != -1:
            self._lf_frames(received_at)
        # Up to 3 bytes may be the start of the terminator: a frame of exactly the limit is not refused for them.
        if len(buf) - 3 > self.max_frame_size:
            if not self._discarding:
                self._out.append(FrameError("oversized frame", len(buf), _excerpt(buf)))
            self._discarding = True
            del buf[:-3]  # kept: the start of a terminator cut by the read

    def _lf_frames(self, received_at: float) -> None:
        """Frames ended by a bare ``LF LF`` (a peer not speaking CRLF), one at a time."""
        buf = self._buf
        out = self._out
        limit = self.max_frame_size
        pos = 0
        while (end := buf.find(_LF2, pos)) != -1:
            if self._discarding:
                self._discarding = False
            elif end - pos > limit:
                out.append(FrameError("oversized frame", end - pos, _excerpt(buf[pos : pos + 80])))
            elif end > pos:  # stray blank lines between frames: skipped
                out.append(parse_frame(buf[pos:end], received_at))
            pos = end + 2
        del buf[:pos]

    def _take_banner(self) -> bool:
        """The PBX's greeting line, once; False while it is not whole yet."""
        buf = self._buf
        nl = buf.find(b"\n")
        if nl == -1:
            if len(buf) > self.max_frame_size:
                self._out.append(FrameError("banner too long", len(buf), ""))
                self.banner = ""
            return False
        self.banner = buf[:nl].decode("utf-8", errors="replace").rstrip("\r")
        del buf[: nl + 1]
        return True

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
