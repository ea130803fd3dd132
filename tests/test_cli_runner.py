"""The in-process ``cti`` of the tests (tests/cli_runner.py) leaves the test process as a child process would."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from pathlib import Path

import pytest

from tests.cli_runner import cti
from tests.traces import TRACES


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_the_demo_run_in_process_leaves_no_loop_handler_signal_or_thread_behind(tmp_path: Path, sigint: str) -> None:
    """The heaviest command: a replay PBX, the daemon and the panel in one event loop, the heap frozen. SIGINT keeps
    the handler it had, Python's default or ignored (a process a shell started in the background)."""
    was = signal.signal(signal.SIGINT, signal.default_int_handler if sigint == "default" else signal.SIG_IGN)
    try:
        _demo_leaves_nothing_behind(tmp_path)
    finally:
        signal.signal(signal.SIGINT, was)


def _demo_leaves_nothing_behind(tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    threads = set(threading.enumerate())
    signals = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    demo = cti("demo", str(TRACES / "01-direct-answered"), "--once", "--speed", "0", "--http-port", "0",
               "--store", str(tmp_path / "demo.sqlite"), "--log-level", "debug")
    assert "1 call(s) in the journal" in demo.stdout
    assert root.handlers == handlers and root.level == level, "a logging handler or level was left behind"
    assert gc.get_freeze_count() == 0, "the demo's frozen start-up heap was left frozen"
    assert {sig: signal.getsignal(sig) for sig in signals} == signals, "a signal handler was left behind"
    assert asyncio.events._get_running_loop() is None
    assert {t for t in threading.enumerate() if t.is_alive()} <= threads, "a thread was left running"

