"""The ``cti`` command run in the test's own process, with typer's runner: what a user would see, without a
Python start-up per command (about a second each on this machine).

:func:`cti` answers like ``subprocess.run`` did (``returncode``, ``stdout``, ``stderr``), so a test reads the
same. An exception that escapes a command is written to ``stderr`` as the traceback a user would see, so the
tests that say "never a traceback" still catch it. Nothing is left behind for the next test: logging handlers
and levels, frozen garbage-collector generations (``cti demo`` freezes its start-up heap) and the environment
(``env=`` is set only for the command) are put back. Each command runs its own event loop (``asyncio.run``);
called from a test that has a loop running, the command runs in a worker thread, as a child process would.

One subprocess test per command group stays, in tests/test_cli_smoke.py: the entry point, the real stdin and
stdout, signals.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from typer.testing import CliRunner

from companion.cli import load

app = load()  # every command (``cti`` itself imports only the one it runs)


@dataclass(frozen=True)
class Ran:
    """What a command did: its arguments, exit status and output (as ``subprocess.CompletedProcess``)."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def cti(*args: str, check: bool = True, env: dict[str, str] | None = None, input: str | None = None) -> Ran:
    """Run ``cti ARGS`` in-process; with ``check``, a non-zero exit status fails the test with its stderr."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        ran = _invoke(args, env, input)
    else:  # an async test: its loop is running in this thread, and a command needs a loop of its own
        with ThreadPoolExecutor(1, thread_name_prefix="cti") as pool:
            ran = pool.submit(_invoke, args, env, input).result()
    if check:
        assert ran.returncode == 0, f"cti {' '.join(args)} failed ({ran.returncode}):\n{ran.stderr}"
    return ran


async def cti_async(*args: str, check: bool = True, env: dict[str, str] | None = None,
                    input: str | None = None) -> Ran:
    """:func:`cti` from an async test whose loop must go on meanwhile (a daemon of the test serving the panel)."""
    ran = await asyncio.to_thread(_invoke, args, env, input)
    if check:
        assert ran.returncode == 0, f"cti {' '.join(args)} failed ({ran.returncode}):\n{ran.stderr}"
    return ran


def _invoke(args: tuple[str, ...], env: dict[str, str] | None, input: str | None) -> Ran:
    with _restored_process_state():
        result = CliRunner().invoke(app, list(args), input=input, env=env, catch_exceptions=True)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return Ran(args, result.exit_code, result.stdout, stderr)


@contextmanager
def _restored_process_state() -> Iterator[None]:
    """Put back what a command changes in the process for good, as if it had been a child process."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    frozen = gc.get_freeze_count()
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(level)
        if gc.get_freeze_count() > frozen:
            gc.unfreeze()
