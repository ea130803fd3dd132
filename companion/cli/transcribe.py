"""``cti transcribe``: transcribe the calls of a period in bulk, or show the transcription queue.

``cti transcribe --since DATE [--until DATE]`` queues every answered, recorded call of the period that has no job yet
(the same job the daemon queues at a call's end: ``companion/transcriber.py``), then works through the queue in this
command's own worker processes (``[transcription] workers``, or ``--workers``), with a progress bar and an ETA, and
prints what became of each job. The queue is the store's, shared with a running daemon: two takers never run the same
job (each is taken with a lease), and a second run finds nothing left to do. ``--again`` queues the period's failed
and done jobs once more.

Ctrl-C stops taking jobs and lets the ones in progress finish (a second Ctrl-C stops them too: they go back to the
queue); whatever was not started stays queued for the daemon or the next run.

``cti transcribe --status`` prints how many jobs are in each state and why the failed ones failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from cti.safe_text import terminal_text

from .app import app
from .errors import fail
from .loading import pbx_filter, require_store, settings_from
from .options import ConfigOpt, PbxOpt, SinceOpt, UntilOpt
from .storage import with_store
from .when import time_range

if TYPE_CHECKING:
    from companion.config import Settings
    from companion.transcriber import JobResult
    from cti.transcripts import JobState, TranscriptionJob
    from store.repository import Store

#: Calls read per query while queueing a period (``calls_without_transcription`` pages through it).
QUEUE_PAGE = 1000
#: Jobs ``--again`` and ``--status`` read at most.
LIST_LIMIT = 100_000
_FAILED: tuple[JobState, ...] = ("failed",)
_FINISHED: tuple[JobState, ...] = ("failed", "done")


@app.command("transcribe")
def transcribe_command(
    config: ConfigOpt,
    since: SinceOpt = None,
    until: UntilOpt = None,
    again: Annotated[bool, typer.Option("--again", help="queue the period's failed and done jobs once more")] = False,
    status: Annotated[bool, typer.Option("--status", help="show the queue's counts and the failed jobs' reasons")
                      ] = False,
    pbx: PbxOpt = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help=(
        "worker processes (default [transcription] workers); each loads its model once"))] = None,
) -> None:
    """Transcribe the recorded calls of a period (progress, ETA, a summary), or show the queue (--status)."""
    settings = settings_from(config)
    pbxs = pbx_filter(settings, pbx)
    if status:
        require_store(settings)
        with_store(settings, lambda store: _status(store, pbxs))
        return
    if since is None:
        fail("give the period to transcribe: --since DATE (2026-11-01, 7d, today), or --status for the queue")
    if not settings.transcription.model:
        fail(f"{config}: [transcription] model is not set: name the model to transcribe with (see "
             "config.example.toml and `cti models list`)")
    start, end = time_range(since, until, settings)
    assert start is not None
    require_store(settings)
    summary = Summary()
    try:
        with_store(settings, lambda store: _transcribe(store, settings, start, end, pbxs, again, workers, summary))
    except KeyboardInterrupt:  # Ctrl-C before the handler was installed, or a third one
        summary.interrupted = True
    summary.print()
    if summary.interrupted:
        raise typer.Exit(130)


@dataclass
class Summary:
    """What a run did, for the summary at its end."""

    queued: int = 0
    requeued: int = 0
    done: int = 0
    flagged: int = 0
    retried: int = 0
    failed: list[tuple[TranscriptionJob, str]] = field(default_factory=list)
    left: int = 0
    interrupted: bool = False

    def print(self) -> None:
        failed = len(self.failed)
        out = (f"Transcribed {self.done} call(s) ({self.flagged} flagged), {failed} failed, {self.retried} tr"
               f"{'y' if self.retried == 1 else 'ies'} to repeat; {self.left} job(s) left in the queue")
        typer.echo(out + (" (interrupted)" if self.interrupted else ""))
        for job, reason in self.failed:
            typer.echo(terminal_text(f"  failed: call {job.linkedid} ({job.pbx}, job {job.id}, {job.attempts} "
                                     f"tr{'y' if job.attempts == 1 else 'ies'}): {reason}"))


async def _transcribe(store: Store, settings: Settings, since: float, until: float | None,
                      pbxs: Collection[str] | None, again: bool, workers: int | None, summary: Summary) -> None:
    from companion.transcriber import Transcriber
    from recognizer.job import run_job
    from recognizer.pool import WorkerPool

    summary.queued = await _queue_period(store, settings, since, until, pbxs)
    if again:
        summary.requeued = await _queue_again(store, since, until, pbxs)
    counts = await store.count_transcription_jobs()
    total = counts.get("queued", 0)
    typer.echo(f"Queued {summary.queued} call(s)" + (f", {summary.requeued} again" if again else "")
               + f"; {total} job(s) to run")
    progress = Progress(total, sys.stderr.isatty())
    size = workers or settings.transcription.workers

    def on_result(result: JobResult) -> None:
        if result.outcome == "done":
            summary.done += 1
            summary.flagged += bool(result.flags)
        elif result.outcome == "retry":
            summary.retried += 1
        elif result.outcome == "failed":
            summary.failed.append((result.job, result.reason or "unknown"))
        progress.step(result)

    async with WorkerPool(size, run_job) as pool:
        transcriber = Transcriber(settings, lambda: store, pool, on_result=on_result, runners=size)
        work = asyncio.ensure_future(transcriber.run(until_empty=True))
        _on_ctrl_c(transcriber.stopping, work, summary)
        try:
            await work
        except asyncio.CancelledError:
            summary.interrupted = True
        finally:
            progress.close()
    summary.left = (await store.count_transcription_jobs()).get("queued", 0)


def _on_ctrl_c(stopping: asyncio.Event, work: asyncio.Future[None], summary: Summary) -> None:
    """First Ctrl-C: take no more jobs, finish those in progress. Second: stop them too (they go back to the queue).
    Only where signals can be caught (the main thread: always for the real command)."""
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        summary.interrupted = True
        if not stopping.is_set():
            stopping.set()
            typer.echo("\nStopping: the jobs in progress finish first (Ctrl-C again to stop them now)", err=True)
        else:
            work.cancel()

    with contextlib.suppress(RuntimeError, ValueError):  # not the main thread (the tests' in-process runner)
        loop.add_signal_handler(signal.SIGINT, interrupt)


async def _queue_period(store: Store, settings: Settings, since: float, until: float | None,
                        pbxs: Collection[str] | None) -> int:
    """Queue every answered, recorded call of the period that has no job yet; how many were queued."""
    from companion.transcriber import new_job

    queued = 0
    seen: set[tuple[str, str]] = set()
    while True:
        calls = await store.calls_without_transcription(since=since, until=until, pbxs=pbxs, limit=QUEUE_PAGE)
        fresh = [call for call in calls if (call.pbx, call.linkedid) not in seen]
        if not fresh:
            return queued
        for call in fresh:
            seen.add((call.pbx, call.linkedid))
            job = new_job(call, settings)
            if job is not None and await store.enqueue_transcription(job, at=time.time()) is not None:
                queued += 1


async def _queue_again(store: Store, since: float, until: float | None, pbxs: Collection[str] | None) -> int:
    """``--again``: the period's failed and done jobs queued once more (their tries counted from zero)."""
    jobs = await store.list_transcription_jobs(states=_FINISHED, pbxs=pbxs, limit=LIST_LIMIT)
    again = [job for job in jobs if job.call_started_at >= since and (until is None or job.call_started_at < until)]
    for job in again:
        await store.requeue_transcription(job.id, at=time.time())
    return len(again)


async def _status(store: Store, pbxs: Collection[str] | None) -> None:
    from companion.output import Format, emit

    counts = await store.count_transcription_jobs()
    emit([{"state": state, "jobs": counts.get(state, 0)} for state in ("queued", "running", "done", "failed")],
         Format.table, (("state", "State"), ("jobs", "Jobs")), "Transcription queue")
    failed = await store.list_transcription_jobs(states=_FAILED, pbxs=pbxs, limit=LIST_LIMIT)
    if failed:
        emit([{"id": job.id, "pbx": job.pbx, "linkedid": job.linkedid, "attempts": job.attempts,
               "reason": job.reason or ""} for job in failed], Format.table,
             (("id", "Job"), ("pbx", "PBX"), ("linkedid", "Linkedid"), ("attempts", "Tries"), ("reason", "Reason")),
             "Failed jobs")


class Progress:
    """Jobs finished out of those queued, with an ETA: a live bar on a terminal (rich), a line per job otherwise
    (a log, a pipe, the tests)."""

    def __init__(self, total: int, live: bool) -> None:
        self.total = max(total, 0)
        self.finished = 0
        self.started = time.monotonic()
        self._bar = None
        if live and total:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("transcribing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True))
            self._task = self._bar.add_task("transcribing", total=total)
            self._bar.start()

    def step(self, result: JobResult) -> None:
        """One job's try is over: count it when it is over for good (done, failed), print it."""
        if result.outcome in ("done", "failed", "lost"):
            self.finished += 1
            self.total = max(self.total, self.finished)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.finished, total=self.total)
            if result.outcome != "done":
                self._bar.console.print(terminal_text(_line(result)), markup=False, highlight=False)
            return
        typer.echo(terminal_text(f"[{self.finished}/{self.total}] {_line(result)}, {self.eta()}"))

    def eta(self) -> str:
        """The time left, from the mean time per finished job so far."""
        if not self.finished:
            return "ETA unknown"
        left = (time.monotonic() - self.started) / self.finished * (self.total - self.finished)
        return f"ETA {int(left) // 60}:{int(left) % 60:02d}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _line(result: JobResult) -> str:
    job = result.job
    what = {"done": "done", "retry": "will be tried again", "failed": "failed", "lost": "taken over"}[result.outcome]
    flags = f", flagged {', '.join(result.flags)}" if result.flags else ""
    reason = f": {result.reason}" if result.reason else ""
    return f"call {job.linkedid} ({job.pbx}): {what} in {result.seconds:.1f} s{flags}{reason}"
