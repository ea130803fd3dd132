"""The protocol's times (ISO 8601, milliseconds, the site's UTC offset), cheaply, for every message sent.

``datetime.fromtimestamp(...).astimezone(tz).isoformat()`` costs a couple of microseconds, paid for each
message the panel sends. Within one second of the PBX's clock everything but the milliseconds is the same
text (an offset changes only on a whole second), and a busy PBX dates many events in the same second: so the
text of each second is kept, and only the milliseconds are written per call. The result is exactly
:func:`cti.records.iso_time`'s (``tests/ui_bridge/test_wire_messages.py`` compares them, DST included).
"""

from __future__ import annotations

import math
from datetime import datetime, tzinfo

#: Seconds whose text is kept; the memo is emptied when full (events come in time order: a few are live).
MEMO_SECONDS = 1024


class WireTime:
    """``iso_time(epoch, tz)`` with the text of each whole second memoised."""

    __slots__ = ("_last", "_last_text", "_memo", "_minutes", "tz")

    def __init__(self, tz: tzinfo | None) -> None:
        self.tz = tz
        self._memo: dict[int, tuple[str, str]] = {}
        #: Each UTC minute's local text up to the seconds (``2026-11-24T03:14:``) and UTC offset, or None for a
        #: minute the rule below does not fit: a second of it is then written from its datetime.
        self._minutes: dict[int, tuple[str, str] | None] = {}
        #: The last time written and its text: the effects of one event share its time (a hang-up's leg end,
        #: call end and agent state), so the same epoch often comes several times in a row.
        self._last: float | None = None
        self._last_text = ""

    def __call__(self, epoch: float | None) -> str | None:
        if epoch is None:
            return None
        if epoch == self._last:
            return self._last_text
        # Rounded to the microsecond half-even, as datetime.fromtimestamp does, then cut to milliseconds
        # (isoformat's timespec="milliseconds" truncates).
        fraction, whole = math.modf(epoch)
        micros = round(fraction * 1e6)
        second = int(whole)
        if micros >= 1_000_000:
            second += 1
            micros -= 1_000_000
        elif micros < 0:
            second -= 1
            micros += 1_000_000
        parts = self._memo.get(second)
        if parts is None:
            parts = self._second(second)
            if len(self._memo) >= MEMO_SECONDS:
                self._memo.clear()
            self._memo[second] = parts
        text = f"{parts[0]}.{micros // 1000:03d}{parts[1]}"
        self._last, self._last_text = epoch, text
        return text

    def _second(self, second: int) -> tuple[str, str]:
        """A second's text up to the seconds, and its UTC offset.

        From its minute's when it has one (a new second of a known minute: a dict lookup and a format instead
        of a datetime), else from its own datetime."""
        minute, within = divmod(second, 60)
        if minute in self._minutes:
            known = self._minutes[minute]
        else:
            if len(self._minutes) >= MEMO_SECONDS:
                self._minutes.clear()
            known = self._minutes[minute] = self._minute(minute)
        if known is not None:
            return f"{known[0]}{within:02d}", known[1]
        text = datetime.fromtimestamp(second, self.tz).astimezone(self.tz).isoformat(timespec="seconds")
        cut = text.index("T") + 9  # the date, 'T', then HH:MM:SS; the UTC offset follows
        return text[:cut], text[cut:]

    def _minute(self, minute: int) -> tuple[str, str] | None:
        """The local text of a UTC minute's first second up to its seconds, and the offset: when the offset is
        the same at its first and last second (no change of offset inside it: changes are hours apart) and a
        whole number of minutes (a local second is then the UTC one: not so for old local mean times such as
        +02:30:17), every second of the minute is that text plus its own two digits. Else None."""
        start = minute * 60
        first = datetime.fromtimestamp(start, self.tz).astimezone(self.tz)
        last = datetime.fromtimestamp(start + 59, self.tz).astimezone(self.tz)
        if first.second != 0 or first.utcoffset() != last.utcoffset():
            return None
        text = first.isoformat(timespec="seconds")
        cut = text.index("T") + 9
        return text[: cut - 2], text[cut:]
