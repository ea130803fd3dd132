"""A warning logged at most once an interval, the lines it held back counted in the next one.

Why: a subscriber failing on every effect, or a CRM down failing every request, would otherwise write a line per
effect or request and bury the log; an operator needs the first line (with its traceback) and then to know it goes on.
The pipeline's subscribers (``companion/pipeline.py``) and the CRM senders (``companion/crm/sender.py``) share it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

#: Seconds between two lines of one warning.
WARNING_INTERVAL = 60.0


class ThrottledWarning:
    """Logs through ``log`` at most once every ``interval`` seconds; the next line says how many it held back.

    ``what`` names the held-back lines in that count ("problem(s)", "failure(s)").
    """

    def __init__(self, log: logging.Logger, what: str, *, interval: float = WARNING_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.what = what
        self.interval = interval
        self.clock = clock
        self._last = -math.inf
        #: Lines held back since the last one written.
        self.unlogged = 0

    def __call__(self, message: str, *args: object, exc_info: bool = False) -> None:
        now = self.clock()
        if now - self._last < self.interval:
            self.unlogged += 1
            return
        self._last = now
        suffix = f" ({self.unlogged} more {self.what} not logged since the last line)" if self.unlogged else ""
        self.unlogged = 0
        self.log.warning(message + suffix, *args, exc_info=exc_info, stacklevel=2)
