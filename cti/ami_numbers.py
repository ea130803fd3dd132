"""Numbers read from AMI values, total: any string in, a bounded number or ``None`` out, never an exception.

An AMI value can hold anything a caller, a trunk or a misconfigured PBX put there, and Python's parsers accept
more than the PBX ever writes: ``str.isdigit`` says yes to ``²`` (which ``int`` then refuses) and to thousands of
digits (which ``int`` refuses as too long, or which overflow SQLite's 64-bit integers later); ``float`` reads
``nan``, ``inf``, ``1e400``, ``1_000``, surrounding spaces and Arabic-Indic digits. One of those in a ``Cause``,
a ``Timestamp`` or a ``Duration`` used to cost the event, or its whole call (a ``Hangup`` skipped leaves the call
in progress forever; a ``NaN`` time makes its journal row unsavable). So every number the core reads from the PBX
goes through here: ASCII digits only, a bounded length, the shape Asterisk writes, else ``None``.
"""

from __future__ import annotations

import re

#: ``Timestamp`` / ``PbxTime`` are epoch seconds (``1795479242.123456``); below this (the year 2286) a
#: ``datetime`` can show them and SQLite keep them.
EPOCH_END = 1e10
#: ``Duration`` of a ``CoreShowChannel``: ``HH:MM:SS`` (hours may pass 99 on a channel up for days).
_DURATION = re.compile(r"([0-9]{1,6}):([0-5]?[0-9]):([0-5]?[0-9](?:\.[0-9]{1,6})?)", re.ASCII)


def small_int(text: str, max_digits: int = 3) -> int | None:
    """``text`` as a non-negative integer of at most ``max_digits`` ASCII digits, else ``None``.

    A hang-up cause (Q.850: 0-127), a device state (0-9) or a queue member status fits in three digits.
    """
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


def epoch_seconds(text: str) -> float | None:
    """A ``Timestamp`` (or ``PbxTime``) as a finite float in [0, 1e10), or ``None``.

    It runs for every event, so ``float`` reads first (C speed) and the result is checked after: ``nan``, ``inf``,
    ``1e400`` and negative times fail the range (``nan`` fails every comparison), non-ASCII digits ``isascii``.
    """
    try:
        t = float(text)
    except ValueError:
        return None
    return t if 0.0 <= t < EPOCH_END and text.isascii() else None


def duration_seconds(text: str) -> float:
    """``HH:MM:SS`` (``CoreShowChannel`` ``Duration``) in seconds; 0 when unreadable."""
    match = _DURATION.fullmatch(text) if len(text) <= 20 else None
    if match is None:
        return 0.0
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
