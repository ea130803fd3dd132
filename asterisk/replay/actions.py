"""Actions as Asterisk reads them, and who may send which: the replay PBX's side of a client's requests.

:class:`ActionReader` frames a client's bytes the way Asterisk's ``manager.c`` does; :func:`permitted` applies a
user's ``write`` classes as ``manager.conf`` does; :func:`event_mask` reads a login's ``Events``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from asterisk.manager_conf import ACTION_CLASSES
from asterisk.messages import AmiMessage, Headers

log = logging.getLogger(__name__)


class ActionReader:
    """Splits a client's byte stream into actions the way Asterisk's ``manager.c`` does (sans-I/O).

    ``get_input`` ends a line at LF, dropping one CR right before it (a lone CR is text); the line's text
    ends at its first NUL (C strings), the rest of that line is never seen. ``do_message`` ends the action at
    an empty line and keeps at most :attr:`max_headers` lines (``AST_MAX_MANHEADERS``). ``Key: Value`` is
    split at the first ``:``, the value's leading blanks skipped (``astman_get_header``); a line without a
    ``:`` is kept as ``("", line)``, a header no action reads. Deliberately not our client's
    :class:`~asterisk.protocol.AmiFramer`, which is strict about what it accepts; this one is as lenient as the
    PBX, which is what a test of what the PBX would do needs.
    """

    def __init__(self, *, max_line: int = 64 * 1024, max_headers: int = 128) -> None:
        self.max_line = max_line
        self.max_headers = max_headers
        self._buf = bytearray()
        self._headers: Headers = []
        self._out: list[AmiMessage] = []

    def receive_data(self, data: bytes, received_at: float = 0.0) -> None:
        buf = self._buf
        buf += data
        start = 0
        while (end := buf.find(b"\n", start)) != -1:
            line = bytes(buf[start:end])
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            line = line.split(b"\x00", 1)[0]
            if not line:
                if self._headers:  # Asterisk answers an empty one "Missing action in request"; never ours
                    self._out.append(AmiMessage(headers=self._headers, received_at=received_at))
                    self._headers = []
                continue
            if len(self._headers) < self.max_headers:
                key, sep, value = line.decode("utf-8", errors="replace").partition(":")
                self._headers.append((key, value.lstrip(" \t")) if sep else ("", key))
            else:
                log.warning("replay PBX: more than %d lines in one action; the rest is ignored", self.max_headers)
        del buf[:start]
        if len(buf) > self.max_line:
            log.warning("replay PBX: a line of over %d bytes with no LF dropped", self.max_line)
            buf.clear()

    def receive_eof(self) -> None:
        """The client closed: an unfinished action is never carried out."""
        self._buf.clear()
        self._headers = []

    def events_received(self) -> list[AmiMessage]:
        """Actions completed since the last call, in order. Call after every receive_data()."""
        out, self._out = self._out, []
        return out


@dataclass(frozen=True, slots=True)
class ReceivedAction:
    """An action a client sent, kept so a test can check what the daemon asked the PBX to do."""

    session: int
    message: AmiMessage




def class_names(privilege: str) -> frozenset[str]:
    return frozenset(c.strip().lower() for c in privilege.split(",") if c.strip())


def classes_of(privilege: str) -> frozenset[str]:
    return class_names(privilege) - {"all"}


def event_mask(value: str) -> frozenset[str] | None:
    """``Events:`` of Login / ``EventMask:`` of Events: ``None`` = every class, empty = none."""
    text = value.strip().lower()
    if text in ("off", "no", "false", "none", "n", "f", "0"):
        return frozenset()
    names = {c.strip() for c in text.split(",")}
    if text in ("", "on", "yes", "true", "y", "t", "1") or "all" in names:
        return None
    return frozenset(names - {""})


def arg(msg: AmiMessage, key: str) -> str:
    """An action's header, looked up without regard to case, as Asterisk's ``astman_get_header``."""
    wanted = key.lower()
    return next((v for k, v in msg.headers if k.lower() == wanted), "")


def permitted(write: frozenset[str] | None, name: str) -> bool:
    """Whether a user with ``write`` classes (``None``: all) may run action ``name`` (one of its classes will do)."""
    if write is None:
        return True
    classes = next((c for a, c in ACTION_CLASSES.items() if a.lower() == name.lower()), None)
    if classes is None:
        return False  # an action this PBX does not know the classes of: refused under a restricted user
    return not classes or bool(write.intersection(classes))
