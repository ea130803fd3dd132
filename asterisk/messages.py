"""AMI messages as values: ordered headers with duplicates kept, and their wire form.

An AMI frame is a block of ``Key: Value`` lines ended by a blank line. Keys may repeat
(``ChanVariable``, ``Variable``), so the headers are kept as an ordered list; ``get`` returns the
first value, ``get_all`` every value. Nothing here does I/O.

The wire form is only ever built from safe text: :meth:`AmiMessage.serialize` and :func:`action` raise
:class:`AmiHeaderError` (they never strip) when a key or a value could end a line. Asterisk ends a line at LF,
with or without a CR before it, and a header's text at NUL (``manager.c``, ``get_input``), so a value such as
``"x\\r\\n\\r\\nAction: Originate"`` would otherwise add headers or whole actions of its sender's choosing. Every
caller validates its own input first (``ui_bridge/messages.py`` for the panel's requests); this check is the
backstop that no future caller can forget.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

EOL = "\r\n"
#: A message longer than this (bytes, headers included) is refused by the parser. Real Asterisk
#: events are a few hundred bytes; the largest we have seen (``CoreShowChannel``) stay under 1 KiB.
MAX_FRAME_SIZE = 64 * 1024

Headers = list[tuple[str, str]]

#: What may not appear in a value: what ends a line for Asterisk (LF, and NUL ends the header's text), for
#: other AMI peers and proxies (CR) and for Unicode-aware line splitters (U+0085, U+2028, U+2029); and unpaired
#: surrogates, which have no UTF-8 form.
_VALUE_BREAKERS = "\r\n\x00\x85\u2028\u2029\ud800-\udfff"
#: A whole safe frame: ``Key: Value`` lines, keys without whitespace, ``:`` or control characters, then a blank
#: line. One match over the joined text checks every header at once (serialising is on every action's path).
_SAFE_FRAME = re.compile(rf"(?:[^\s:\x00-\x1f\x7f{_VALUE_BREAKERS}]+: [^{_VALUE_BREAKERS}]*\r\n)*\r\n")
_BREAKER = re.compile(f"[{_VALUE_BREAKERS}]")
_BAD_KEY_CHAR = re.compile(rf"[\s:\x00-\x1f\x7f{_VALUE_BREAKERS}]")
_NAMES = {"\r": "CR", "\n": "LF", "\x00": "NUL", "\x85": "U+0085 (next line)", "\u2028": "U+2028 (line separator)",
          "\u2029": "U+2029 (paragraph separator)", ":": "':'"}


class AmiHeaderError(ValueError):
    """A header that would break the AMI framing: refused, never repaired.

    :attr:`key` names the header (shortened, escaped); the message says what is wrong with it and never
    repeats the value, which may be long or hostile.
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        shown = repr(key if len(key) <= 40 else key[:40] + "…")
        super().__init__(f"AMI header {shown}: {problem}")


def _describe(char: str) -> str:
    if char in _NAMES:
        return _NAMES[char]
    if "\ud800" <= char <= "\udfff":
        return "an unpaired surrogate"
    return "whitespace" if char.isspace() else f"control character U+{ord(char):04X}"


def _refuse(headers: Headers) -> AmiHeaderError:
    """The error for the first header that made :data:`_SAFE_FRAME` fail (the slow path, off the hot one)."""
    for key, value in headers:
        if not key:
            return AmiHeaderError(key, "empty key")
        bad = _BAD_KEY_CHAR.search(key)
        if bad is not None:
            return AmiHeaderError(key, f"the key contains {_describe(bad.group())}")
        bad = _BREAKER.search(value)
        if bad is not None:
            return AmiHeaderError(key, f"the value contains {_describe(bad.group())}")
    return AmiHeaderError("?", "not a valid AMI frame")  # unreachable while wire_text's checks and these agree


def wire_text(headers: Headers) -> str:
    """The frame as text (``Key: Value`` lines, CRLF, a blank line); :class:`AmiHeaderError` if unsafe."""
    text = "".join([f"{k}: {v}{EOL}" for k, v in headers]) + EOL
    # The frame's text cannot show where a key with ': ' in it ends, nor whether a CRLF inside a value was followed
    # by something that looks like a header (``"x\r\nAction: Hangup"`` makes two well-formed lines of one), hence
    # the second look: at the keys alone, and at the number of lines, one per header and the blank one.
    if (_SAFE_FRAME.fullmatch(text) is None or ":" in "".join([k for k, _ in headers])
            or text.count("\n") != len(headers) + 1):
        raise _refuse(headers)
    return text


class AmiMessage:
    """One whole AMI frame (event, response or action), decoded.

    ``received_at`` is the local arrival time stamped by the I/O layer (epoch seconds); the call
    model prefers the PBX's own ``Timestamp`` header when there is one (see :attr:`time`).

    Lookups go through one dict, :attr:`fields`, built when the message is (first value wins for a repeated
    key). The framer builds that dict straight from the frame's lines (:func:`message_from_index`); the
    ordered header list is only made if someone asks for :attr:`headers` (the journal of calls in progress,
    ``get_all``): most events are read a few keys at a time and never listed whole. It also spares the garbage
    collector: a dict holding only strings is never tracked by it, while a list of ``(key, value)`` tuples adds
    a score of new tracked objects per event, and a collection every few dozen events.

    Code that runs for every event may read ``msg.fields.get(key, "")`` and ``msg.event`` (a plain
    attribute): the same answers as ``msg.get(key)`` and a property would give, without a Python call each.
    """

    __slots__ = ("_headers", "event", "fields", "received_at")

    _headers: Headers | None
    #: The first value of every key (exact case). Read it, never change it.
    fields: Mapping[str, str]
    #: ``Event`` header, or ``""`` for a response or an action.
    event: str
    received_at: float

    def __init__(self, headers: Headers, received_at: float = 0.0) -> None:
        self._headers = headers
        self.received_at = received_at
        index = dict(headers)
        if len(index) != len(headers):
            # A repeated key (``Variable``): build from the end so the first value wins.
            index = dict(reversed(headers))
        self.fields = index
        self.event = index.get("Event", "")

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]] | Mapping[str, str], received_at: float = 0.0) -> AmiMessage:
        items = list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)
        return cls(headers=[(str(k), str(v)) for k, v in items], received_at=received_at)

    @property
    def headers(self) -> Headers:
        """Every ``(key, value)`` pair in wire order, repeated keys included. Never change it in place."""
        headers = self._headers
        if headers is None:
            headers = self._headers = list(self.fields.items())
        return headers

    def get(self, key: str, default: str = "") -> str:
        """First value of ``key`` (exact case, as Asterisk sends it), or ``default``."""
        return self.fields.get(key, default)

    def __getitem__(self, key: str) -> str:
        return self.fields[key]

    def __contains__(self, key: object) -> bool:
        return key in self.fields

    def get_all(self, key: str) -> list[str]:
        return [v for k, v in self.headers if k == key]

    @property
    def response(self) -> str:
        return self.fields.get("Response", "")

    @property
    def action(self) -> str:
        return self.fields.get("Action", "")

    @property
    def action_id(self) -> str:
        return self.fields.get("ActionID", "")

    @property
    def time(self) -> float:
        """The PBX's clock when it sent the event (``timestampevents = yes``), else arrival time."""
        stamp = self.fields.get("Timestamp")
        if stamp:
            try:
                return float(stamp)
            except ValueError:
                pass
        return self.received_at

    def serialize(self) -> bytes:
        """Wire form: ``Key: Value`` lines, CRLF, a blank line at the end.

        Raises :class:`AmiHeaderError` when a key or value could end a line (see the module's docstring).
        """
        return wire_text(self.headers).encode("utf-8")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AmiMessage):
            return NotImplemented
        return self.headers == other.headers and self.received_at == other.received_at

    __hash__ = None  # type: ignore[assignment]  # compared by value, not hashable (as the dataclass it replaced)

    def __repr__(self) -> str:
        return f"AmiMessage(headers={self.headers!r}, received_at={self.received_at!r})"

    def __str__(self) -> str:
        """Short form for logs: the kind of message and a few identifying headers."""
        kind = self.event or self.response or self.action or "?"
        ids = " ".join(f"{k}={self.fields[k]}" for k in ("Channel", "Uniqueid", "ActionID") if k in self.fields)
        return f"<{kind} {ids}>".replace(" >", ">")


_new_message = object.__new__


def message_from_index(index: dict[str, str], received_at: float) -> AmiMessage:
    """A message from a dict of its headers, taken as is (no copy): the framer's fast path.

    Only for a frame whose keys are all different: the dict's order is then the wire order, and
    :attr:`AmiMessage.headers` is rebuilt from it when asked for. The dict must not change afterwards.
    """
    msg: AmiMessage = _new_message(AmiMessage)
    msg._headers = None
    msg.fields = index
    msg.event = index.get("Event", "")
    msg.received_at = received_at
    return msg


def action(name: str, /, *pairs: tuple[str, str], **fields: str) -> AmiMessage:
    """Build an action frame: ``action("Redirect", Channel="PJSIP/101-0001", Exten="104")``.

    Extra positional ``(key, value)`` pairs allow repeated keys (``Variable``). Raises
    :class:`AmiHeaderError` at once, where the unsafe value was put in, rather than when the action is sent.
    """
    headers: Headers = [("Action", name)]
    headers.extend(pairs)
    headers.extend((k, v) for k, v in fields.items())
    wire_text(headers)
    return AmiMessage(headers=headers)


@dataclass(frozen=True, slots=True)
class FrameError:
    """A frame the parser could not accept (too big, or no header in it). It was skipped."""

    reason: str
    size: int
    excerpt: str

    def __str__(self) -> str:
        return f"AMI frame skipped ({self.reason}, {self.size} bytes): {self.excerpt!r}"


#: Actions that change the PBX: they are never sent twice, not even after a reconnect.
NON_IDEMPOTENT_ACTIONS = frozenset(
    {"originate", "redirect", "atxfer", "blindtransfer", "hangup", "queuepause", "queueadd", "queueremove",
     "mixmonitor", "stopmixmonitor", "setvar", "playdtmf", "bridge", "command"}
)
