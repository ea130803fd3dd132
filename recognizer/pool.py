"""Worker processes that run recognition jobs off the event loop: ``await pool.run(job)``.

Why processes: recognition is seconds of CPU per call in C++ (Vosk, CTranslate2) that would stall the daemon's event
loop (the screen-pops) and that threads would not spread over the cores. Why not ``concurrent.futures``'
``ProcessPoolExecutor``: when one of its workers dies (a segfault in a native library, the OOM killer, ``os._exit``)
the whole executor is broken and every job in it fails; here a dead worker costs only its own job, which fails with
"the worker process died (signal SIGKILL)", and the pool starts a new process in its place.

Each worker runs one job at a time and lives for many: it keeps what its ``target`` loaded (a model, hundreds of MB and
seconds to load: ``recognizer/job.py`` caches them per process), so the second call costs only its recognition.
Processes are started with ``spawn``, never ``fork``: the daemon has threads (the store's, the event loop's executor)
and forking a process with threads copies locks held by threads that do not exist in the child.

A worker ignores SIGINT: Ctrl-C in ``cti transcribe``'s terminal reaches the whole process group, and it is the
parent that decides what to do with the jobs in flight. A job whose ``run`` is cancelled (the daemon stopping) has its
worker killed (nothing else stops native code mid-call) and replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar

from .engine import AudioError, ModelError, RecognizerError

log = logging.getLogger(__name__)

P = TypeVar("P")
R = TypeVar("R")

#: Seconds a worker gets to leave after it was asked to (at the pool's close), then it is killed.
STOP_GRACE_SECONDS = 5.0
#: The errors a worker reports by name, rebuilt in the parent as the same class.
_ERRORS: dict[str, type[RecognizerError]] = {cls.__name__: cls for cls in (RecognizerError, AudioError, ModelError)}


class WorkerDied(RecognizerError):
    """The worker process running the job died (a crash in native code, the OOM killer): the job may be retried."""


class PoolClosed(RecognizerError):
    """The pool was closed (the daemon is stopping): the job was not run."""


def died_reason(exitcode: int | None) -> str:
    """"the worker process died (signal SIGKILL)": the reason a job is failed with when its worker died."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        return f"the worker process died (signal {name})"
    return f"the worker process died (exit status {exitcode})"


def _worker_main(conn: Connection, target: Callable[[Any], Any]) -> None:
    """A worker process: run ``target`` on each payload received, send back its result or its error, until told to
    stop (``None``) or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            payload = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if payload is None:
            return
        try:
            reply: tuple[Any, ...] = ("ok", target(payload))
        except RecognizerError as exc:
            name = type(exc).__name__ if type(exc).__name__ in _ERRORS else "RecognizerError"
            reply = ("error", name, str(exc) or type(exc).__name__)
        except Exception as exc:  # a bug, or a library's own error: the job fails with it, the worker goes on
            traceback.print_exc()
            reply = ("error", "RecognizerError", f"the recogniser failed: {type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return
        except Exception as exc:  # the result could not be pickled
            conn.send(("error", "RecognizerError", f"the recogniser's result could not be sent back: {exc}"))


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    #: Jobs it ran (a worker that keeps its models runs many).
    jobs: int = 0
    busy: bool = field(default=False)


class WorkerPool(Generic[P, R]):
    """``size`` worker processes running ``target`` (a module-level function: it is imported in each worker).

    Use as ``async with WorkerPool(2, run_job) as pool: transcript = await pool.run(spec)``. ``run`` waits for a
    free worker; as many ``run``s as workers proceed at once.
    """

    def __init__(self, size: int, target: Callable[[P], R], *, name: str = "cti-recognizer") -> None:
        if size < 1:
            raise ValueError("a pool has at least one worker")
        self.size = size
        self.target = target
        self.name = name
        self._context = multiprocessing.get_context("spawn")
        self._workers: set[_Worker] = set()
        self._idle: asyncio.Queue[_Worker] | None = None
        #: One thread per worker waits on its pipe and its process (``multiprocessing.connection.wait``).
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"{name}-wait")
        self._started = 0
        #: Workers killed with a cancelled job and not replaced yet (the next ``run`` starts them).
        self._missing = 0
        self._closed = False
        #: Workers that died and were replaced (``cti transcribe --status``, the tests).
        self.deaths = 0

    async def __aenter__(self) -> WorkerPool[P, R]:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the worker processes (each imports its target's module; the models load at their first job)."""
        if self._idle is not None:
            return
        self._idle = asyncio.Queue()
        loop = asyncio.get_running_loop()
        for _ in range(self.size):
            self._idle.put_nowait(await loop.run_in_executor(self._threads, self._spawn))

    def _spawn(self) -> _Worker:
        parent, child = self._context.Pipe()
        self._started += 1
        process = self._context.Process(target=_worker_main, args=(child, self.target),
                                        name=f"{self.name}-{self._started}", daemon=True)
        process.start()
        child.close()  # the child's end lives in the child: EOF reaches us when it dies
        worker = _Worker(process, parent)
        self._workers.add(worker)
        return worker

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids (alive or not yet reaped)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    async def run(self, payload: P) -> R:
        """``target(payload)`` in a free worker. Raises the job's ``RecognizerError`` (its class kept), ``WorkerDied``
        when the worker died running it (a new one takes its place), ``PoolClosed`` once the pool is closed."""
        if self._closed:
            raise PoolClosed("the recogniser is stopping")
        await self.start()
        assert self._idle is not None
        loop = asyncio.get_running_loop()
        while self._missing > 0:  # workers killed with a cancelled job: replaced when work comes, not at shutdown
            self._missing -= 1
            self._idle.put_nowait(await loop.run_in_executor(self._threads, self._spawn))
        worker = await self._idle.get()
        if self._closed:
            raise PoolClosed("the recogniser is stopping")
        worker.busy = True
        try:
            reply = await asyncio.shield(loop.run_in_executor(self._threads, _exchange, worker, payload))
        except asyncio.CancelledError:
            self._kill(worker)  # native code cannot be interrupted: the worker goes, the waiting thread returns
            self._discard(worker)
            self._missing += 1
            raise
        worker.busy = False
        worker.jobs += 1
        if reply[0] == "ok":
            self._idle.put_nowait(worker)
            return reply[1]  # type: ignore[no-any-return]
        if reply[0] == "error":
            self._idle.put_nowait(worker)
            raise _ERRORS.get(reply[1], RecognizerError)(reply[2])
        exitcode = await loop.run_in_executor(self._threads, _reap, worker)
        self.deaths += 1
        reason = died_reason(exitcode)
        log.warning("recogniser: %s (pid %s) on its job; starting another", reason, worker.process.pid)
        await self._replace(worker)
        raise WorkerDied(reason)

    def _discard(self, worker: _Worker) -> None:
        self._workers.discard(worker)
        with contextlib.suppress(OSError):
            worker.conn.close()

    async def _replace(self, worker: _Worker) -> None:
        self._discard(worker)
        if self._closed or self._idle is None:
            return
        loop = asyncio.get_running_loop()
        self._idle.put_nowait(await loop.run_in_executor(None, self._spawn))

    def _kill(self, worker: _Worker) -> None:
        with contextlib.suppress(OSError, ValueError):
            worker.process.kill()

    async def close(self) -> None:
        """Ask idle workers to leave, kill those that do not within ``STOP_GRACE_SECONDS`` (and busy ones at once)."""
        if self._closed:
            return
        self._closed = True
        workers = list(self._workers)
        for worker in workers:
            if worker.busy:
                self._kill(worker)
            else:
                with contextlib.suppress(OSError, ValueError):
                    worker.conn.send(None)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _join_all, workers)
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.conn.close()
        self._workers.clear()
        self._threads.shutdown(wait=False, cancel_futures=True)


def _exchange(worker: _Worker, payload: Any) -> tuple[Any, ...]:
    """In a waiting thread: send the job, wait for its reply or the worker's death, whichever comes first."""
    conn, process = worker.conn, worker.process
    try:
        conn.send(payload)
    except (OSError, EOFError):
        return ("died",)
    while True:
        ready = wait([conn, process.sentinel])
        if conn in ready:
            try:
                reply: tuple[Any, ...] = conn.recv()
            except (EOFError, OSError):
                return ("died",)
            return reply
        if process.sentinel in ready:
            return ("died",)


def _reap(worker: _Worker) -> int | None:
    worker.process.join(STOP_GRACE_SECONDS)
    return worker.process.exitcode


def _join_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.process.join(STOP_GRACE_SECONDS)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(STOP_GRACE_SECONDS)
