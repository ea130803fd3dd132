"""Log lines that strangers can cause, at a bounded rate.

Why: anyone who can reach the panel's port can make it refuse things (a WebSocket handshake without a
login, a foreign ``Host``, a connection over the limits, a malformed request). One log line per refusal
lets a flood of them fill the disk and bury the lines that matter; none at all hides an attack. So each
kind of refusal gets a few lines per minute, and the first line after a quiet spell says how many were
left out.

``UvicornNoise`` does the same for the per-connection lines uvicorn and the ``websockets`` library write
on their own: the ones our refusal line replaces are dropped, the malformed-request warnings are rate
limited.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("ui_bridge.edge")


@dataclass
class _Budget:
    window_start: float
    used: int = 0
    left_out: int = 0


class RateLimitedLog:
    """At most ``burst`` lines per ``key`` in each ``per`` seconds; the rest are counted, and the next line
    that gets through says how many were left out."""

    def __init__(self, logger: logging.Logger = log, burst: int = 3, per: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.burst = burst
        self.per = per
        self.clock = clock
        self._budgets: dict[str, _Budget] = {}

    def allow(self, key: str) -> int | None:
        """None when a line for ``key`` must be left out now; else how many were left out before it."""
        now = self.clock()
        budget = self._budgets.get(key)
        if budget is None or now - budget.window_start >= self.per:
            left_out = budget.left_out if budget is not None else 0
            if len(self._budgets) > 1000:  # keys are a handful of kinds; never let them grow without end
                self._budgets.clear()
            budget = self._budgets[key] = _Budget(window_start=now)
            budget.left_out = left_out
        if budget.used >= self.burst:
            budget.left_out += 1
            return None
        budget.used += 1
        left_out, budget.left_out = budget.left_out, 0
        return left_out

    def __call__(self, level: int, key: str, message: str, *args: object) -> None:
        left_out = self.allow(key)
        if left_out is None:
            return
        if left_out:
            message += f" ({left_out} more like this not logged)"
        self.logger.log(level, message, *args)


#: uvicorn's and websockets' own line for a refused handshake: ``CtiWebSocketProtocol`` logs its own instead.
_REFUSAL_LINES = frozenset({
    '%s - "WebSocket %s" %d', '%s - "WebSocket %s" 403', "connection rejected (%d %s)", "HTTP response sent (%d %s)",
})
#: Lines a malformed request makes uvicorn write, one per request: let a few through.
_MALFORMED_LINES = frozenset({"Invalid HTTP request received.", "Unsupported upgrade request."})


class UvicornNoise(logging.Filter):
    """A filter for the ``uvicorn.error`` logger (which the ``websockets`` protocol under uvicorn uses too)."""

    def __init__(self, limiter: RateLimitedLog) -> None:
        super().__init__()
        self.limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str):
            return True
        if record.msg in _REFUSAL_LINES:
            return False
        if record.msg in _MALFORMED_LINES:
            left_out = self.limiter.allow(record.msg)
            if left_out is None:
                return False
            if left_out:
                record.msg = f"{record.msg} ({left_out} more like this not logged)"
        return True


_NOISE = UvicornNoise(RateLimitedLog(logging.getLogger("uvicorn.error")))


def quiet_uvicorn() -> None:
    """Install the filter on uvicorn's logger (once; it is a process-wide logger)."""
    logger = logging.getLogger("uvicorn.error")
    if _NOISE not in logger.filters:
        logger.addFilter(_NOISE)
