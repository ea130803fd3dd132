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

    __slots__ = ("_memo", "tz")

    def __init__(self, tz: tzinfo | None) -> None:
        self.tz = tz
        self._memo: dict[int, tuple[str, str]] = {}

    def __call__(self, epoch: float | None) -> str | None:
        if epoch is None:
            return None
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
            text = datetime.fromtimestamp(second, self.tz).astimezone(self.tz).isoformat(timespec="seconds")
            cut = text.index("T") + 9  # the date, 'T', then HH:MM:SS; the UTC offset follows
            parts = (text[:cut], text[cut:])
            if len(self._memo) >= MEMO_SECONDS:
                self._memo.clear()
            self._memo[second] = parts
        return f"{parts[0]}.{micros // 1000:03d}{parts[1]}"
