"""AMI messages as values: ordered headers with duplicates kept, and their wire form.

An AMI frame is a block of ``Key: Value`` lines ended by a blank line. Keys may repeat
(``ChanVariable``, ``Variable``), so the headers are kept as an ordered list; ``get`` returns the
first value, ``get_all`` every value. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

EOL = "\r\n"
#: A message longer than this (bytes, headers included) is refused by the parser. Real Asterisk
#: events are a few hundred bytes; the largest we have seen (``CoreShowChannel``) stay under 1 KiB.
MAX_FRAME_SIZE = 64 * 1024

Headers = list[tuple[str, str]]


@dataclass(slots=True)
class AmiMessage:
    """One whole AMI frame (event, response or action), decoded.

    ``received_at`` is the local arrival time stamped by the I/O layer (epoch seconds); the call
    model prefers the PBX's own ``Timestamp`` header when there is one (see :attr:`time`).
    """

    headers: Headers
    received_at: float = 0.0
    _index: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # First value wins for a repeated key: build from the end so earlier pairs overwrite later ones.
        self._index = dict(reversed(self.headers))

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]] | Mapping[str, str], received_at: float = 0.0) -> AmiMessage:
        items = list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)
        return cls(headers=[(str(k), str(v)) for k, v in items], received_at=received_at)

    def get(self, key: str, default: str = "") -> str:
        """First value of ``key`` (exact case, as Asterisk sends it), or ``default``."""
        return self._index.get(key, default)

    def __getitem__(self, key: str) -> str:
        return self._index[key]

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def get_all(self, key: str) -> list[str]:
        return [v for k, v in self.headers if k == key]

    @property
    def event(self) -> str:
        return self._index.get("Event", "")

    @property
    def response(self) -> str:
        return self._index.get("Response", "")

    @property
    def action(self) -> str:
        return self._index.get("Action", "")

    @property
    def action_id(self) -> str:
        return self._index.get("ActionID", "")

    @property
    def time(self) -> float:
        """The PBX's clock when it sent the event (``timestampevents = yes``), else arrival time."""
        stamp = self._index.get("Timestamp")
        if stamp:
            try:
                return float(stamp)
            except ValueError:
                pass
        return self.received_at

    def serialize(self) -> bytes:
        """Wire form: ``Key: Value`` lines, CRLF, a blank line at the end."""
        return ("".join(f"{k}: {v}{EOL}" for k, v in self.headers) + EOL).encode("utf-8")

    def __str__(self) -> str:
        """Short form for logs: the kind of message and a few identifying headers."""
        kind = self.event or self.response or self.action or "?"
        ids = " ".join(f"{k}={self._index[k]}" for k in ("Channel", "Uniqueid", "ActionID") if k in self._index)
        return f"<{kind} {ids}>".replace(" >", ">")


def action(name: str, /, *pairs: tuple[str, str], **fields: str) -> AmiMessage:
    """Build an action frame: ``action("Redirect", Channel="PJSIP/101-0001", Exten="104")``.

    Extra positional ``(key, value)`` pairs allow repeated keys (``Variable``).
    """
    headers: Headers = [("Action", name)]
    headers.extend(pairs)
    headers.extend((k, v) for k, v in fields.items())
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
