"""``--since`` and ``--until``: a point in time from the command line, in the configured time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

from companion.config import Settings

from .errors import fail

_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$", re.ASCII)
#: No journal is older: a time before this is a typo, and far enough back overflows the date arithmetic.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC).timestamp()


def parse_when(text: str | None, settings: Settings, option: str = "--since") -> float | None:
    """A point in time from the command line (``option``'s value), in the configured time zone.

    Unreadable, or before 1970 (``99999999d`` used to overflow into a traceback): a clear error, status 2.
    """
    if text is None:
        return None
    text = text.strip()
    try:
        stamp = _read_time(text, settings.pbx.tzinfo()).timestamp()
    except ValueError:
        fail(f"cannot read the time {option} {text!r}: use 2026-11-24, '2026-11-24 09:30', 2h, 7d, today")
    except OverflowError:
        stamp = -1.0
    if stamp < _EPOCH:
        fail(f"{option} {text!r} is before 1970: no journal is that old (leave {option} out for no limit)")
    return stamp


def _read_time(text: str, tz: tzinfo | None) -> datetime:
    """Raises ValueError when ``text`` is no time, OverflowError when it is too far from today."""
    now = datetime.now(tz).astimezone(tz)
    if text in ("today", "yesterday"):
        return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=text == "yesterday")
    if rel := _RELATIVE.match(text):
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[rel.group(2)]
        return now - timedelta(**{unit: int(rel.group(1))})
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz) if tz is not None else when.astimezone()
    return when


def time_range(since: str | None, until: str | None, settings: Settings) -> tuple[float | None, float | None]:
    """``--since`` and ``--until`` read, and refused when the range is empty (rather than print nothing)."""
    start, end = parse_when(since, settings, "--since"), parse_when(until, settings, "--until")
    if start is not None and end is not None and start > end:
        fail(f"--since {since} is after --until {until}: no call can match")
    return start, end
