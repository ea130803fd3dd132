"""How quickly the store's threads get the GIL while the event loop is busy: one setting, two uses.

aiosqlite runs each connection's statements on a thread of its own (the writer, the readers, the screen-pop's
lookups, a listing's next page), and each statement needs the GIL a few times (to take the job, to bind, to hand
the result back). While the event loop's thread is busy (a burst of AMI events, a page being formatted), each of
those waits until CPython asks that thread to let go, which it does only after its switch interval. With the
default 5 ms a batch of 500 calls took 100-500 ms to commit, the writes piled up past ``[store] max_pending`` and
the AMI reading paused; a caller card waited the same way, and a listing's reading barely overlapped its printing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

#: How long the event loop's thread may keep the GIL while another thread waits for it (CPython's default: 5 ms).
THREAD_SWITCH_INTERVAL = 0.0005


def tune_threads() -> None:
    """For the daemon's whole life (process-wide: set once by whatever runs the daemon)."""
    sys.setswitchinterval(THREAD_SWITCH_INTERVAL)


@contextmanager
def quick_thread_switches() -> Iterator[None]:
    """For a while (a CLI listing), then back to what it was, even on an error."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, THREAD_SWITCH_INTERVAL))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
