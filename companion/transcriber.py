"""The transcription service: a call's end queues its job in the store; runners take jobs and run them in the pool.

Two halves, both here because they share the one rule of the queue (the store's ``Transcriptions``):

* **Queueing** (:meth:`Transcriber.on_effect`, a pipeline subscriber): an answered call that ended with recordings
  gets a job (``NewJob``: its files and which side each holds, ``cti/recording.py``'s ``sources_of``; its engine and
  model, ``recognizer/settings.py``'s ``choose_engine``). The job is in the store before anything runs it, so a
  daemon killed a moment later loses nothing: the next start takes it.
* **Running** (:meth:`Transcriber.run`): as many runner tasks as ``[transcription] workers``, each taking the oldest
  job with a lease, renewing the lease while the job runs in the worker pool (``recognizer/pool.py``, off the event
  loop), then storing the transcript and ``done`` in one transaction (accepted only while the lease is the runner's:
  a job another taker took over after the lease ran out is never stored twice). A failed try goes back to the queue
  until ``max_attempts``, then stays ``failed`` with its reason; a recording that cannot be read (empty, truncated,
  not a WAV) is failed at once: the same file gives the same error. A transcript that matches keyword lists
  (``cti/keywords.py``) pushes ``call.flagged`` to the admins and QA of the call's PBX; every stored transcript pushes
  ``call.transcribed`` (an open QA page reloads it).

``cti transcribe`` uses the same runners (:meth:`Transcriber.run` with ``until_empty``) in its own process pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from cti.effects import CallEnded, Effect
from cti.keywords import KeywordMatch, keyword_matches
from cti.recording import sources_of
from cti.records import CallRecord
from cti.transcripts import NewJob, Transcript, TranscriptionJob
from recognizer.engine import AudioError, RecognizerError
from recognizer.job import JobSpec, facts_of
from recognizer.pool import PoolClosed, WorkerPool
from recognizer.settings import choose_engine

from .config import Settings
from .pipeline import Policy

if TYPE_CHECKING:
    from store.repository import Store
    from ui_bridge.outgoing import Messages, Outgoing

log = logging.getLogger(__name__)

#: The queueing subscriber writes one row per ended call; a lost ``CallEnded`` is a call never transcribed (``cti
#: transcribe --since`` catches up), so it is not shed lightly; bounded anyway.
TRANSCRIPTION_POLICY = Policy(queue_size=10_000, when_full="drop_newest", timeout=30.0)
#: An idle runner looks at the queue again this often (jobs another node or ``cti transcribe`` queued); a call
#: ending here wakes the runners at once.
IDLE_POLL_SECONDS = 5.0
#: After the store failed (a locked database, PostgreSQL away), a runner waits this long, doubled up to the last.
STORE_RETRY_FIRST = 1.0
STORE_RETRY_MAX = 30.0

Outcome = Literal["done", "retry", "failed", "lost"]


@dataclass(frozen=True, slots=True)
class JobResult:
    """What became of one try of a job (``cti transcribe``'s progress and summary, the tests)."""

    job: TranscriptionJob
    outcome: Outcome
    #: The failure's reason (``retry``/``failed``); None when done.
    reason: str | None
    seconds: float
    flags: tuple[str, ...] = ()


def new_job(record: CallRecord, settings: Settings) -> NewJob | None:
    """The job for a finished call, or None when there is nothing to transcribe (not answered, not recorded)."""
    if not record.answered or not record.recordings:
        return None
    sources = sources_of(record, settings.recording)
    if not sources:
        return None
    return NewJob(pbx=record.pbx, linkedid=record.linkedid, sources=sources,
                  choice=choose_engine(record, settings.transcription), call_started_at=record.started_at)


def job_spec(job: TranscriptionJob, settings: Settings, record: CallRecord | None = None) -> JobSpec:
    """What the worker process gets for ``job``: its files, its model's folder, where the recordings are."""
    transcription = settings.transcription
    speaker_model = transcription.speaker_model
    return JobSpec(job_id=job.id, pbx=job.pbx, linkedid=job.linkedid, sources=job.sources, choice=job.choice,
                   model_dir=str(transcription.model_path(job.choice)), recording=settings.recording,
                   speaker_model=str(speaker_model) if speaker_model is not None else None, facts=facts_of(record),
                   whisper=transcription.whisper)


def runner_name(index: int) -> str:
    """A runner's name in the job's lease: host, process and runner, unique while this process lives (a restarted
    daemon is a new taker; the jobs its predecessor held are taken again once their leases run out)."""
    return f"{socket.gethostname()}:{os.getpid()}:{index}"


class Transcriber:
    """The queue's two halves (module docstring) over one store and one worker pool.

    ``publish`` (the panel's fan-out) gets ``call.flagged``/``call.transcribed``, built by ``messages``; without
    them (``cti transcribe``) nothing is pushed. ``on_result`` hears of every try (done, retried, failed).
    """

    def __init__(self, settings: Settings, store: Callable[[], Store | None], pool: WorkerPool[JobSpec, Transcript],
                 *, messages: Messages | None = None, publish: Callable[[Outgoing], None] | None = None,
                 on_result: Callable[[JobResult], None] | None = None, clock: Callable[[], float] = time.time,
                 runners: int | None = None) -> None:
        self.settings = settings
        self.store = store
        self.pool = pool
        self.messages = messages
        self.publish = publish
        self.on_result = on_result
        self.clock = clock
        self.runners = runners or settings.transcription.workers
        self.keywords = settings.transcription.keyword_lists()
        self._wake = asyncio.Event()
        #: Set to stop taking jobs (the runners finish what they hold, then return): ``cti transcribe``'s Ctrl-C.
        self.stopping = asyncio.Event()
        #: Jobs queued by :meth:`on_effect` since start (the tests, the health page).
        self.queued = 0

    # -- queueing ----------------------------------------------------------------------------------------

    async def on_effect(self, effect: Effect) -> None:
        """The pipeline subscriber: an answered, recorded call that ended is queued."""
        if not isinstance(effect, CallEnded):
            return
        job = new_job(effect.record, self.settings)
        store = self.store()
        if job is None or store is None:
            return
        # The call's journal row first (staged, written by the store's writer): the runner that takes the job reads
        # it for the speakers' facts and for call.flagged, and may take it at once.
        await store.flush()
        if await store.enqueue_transcription(job, at=self.clock()) is not None:
            self.queued += 1
            self._wake.set()

    # -- running -----------------------------------------------------------------------------------------

    async def run(self, *, until_empty: bool = False) -> None:
        """The runners, until cancelled (the daemon stopping), :attr:`stopping` is set, or (``until_empty``) the
        queue has nothing left to take."""
        async with asyncio.TaskGroup() as tg:
            for index in range(self.runners):
                tg.create_task(self._runner(runner_name(index), until_empty), name=f"transcription-{index}")

    async def _runner(self, worker: str, until_empty: bool) -> None:
        delay = STORE_RETRY_FIRST
        while not self.stopping.is_set():
            store = self.store()
            if store is None:
                await self._idle(IDLE_POLL_SECONDS)
                continue
            settings = self.settings.transcription
            try:
                job = await store.take_transcription_job(worker=worker, lease_seconds=settings.lease_seconds,
                                                         now=self.clock(), max_attempts=settings.max_attempts)
                if job is None:
                    if until_empty:
                        return
                    await self._idle(IDLE_POLL_SECONDS)
                    continue
                await self._work(store, job, worker)
                delay = STORE_RETRY_FIRST
            except asyncio.CancelledError:
                raise
            except PoolClosed:
                return
            except Exception as exc:  # the store failed: this runner waits, the daemon goes on
                log.warning("transcription: the store failed (%s); trying again in %.0f s", exc, delay)
                await self._idle(delay)
                delay = min(delay * 2, STORE_RETRY_MAX)

    async def _idle(self, seconds: float) -> None:
        """Wait for a job to be queued here, for :attr:`stopping`, or ``seconds``."""
        self._wake.clear()
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(self.stopping.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def _work(self, store: Store, job: TranscriptionJob, worker: str) -> None:
        """Run one taken job in the pool while keeping its lease; store what came of it."""
        settings = self.settings.transcription
        started = time.monotonic()
        record = await store.get_call(job.linkedid, pbx=job.pbx)
        keeper = asyncio.create_task(self._keep_lease(store, job, worker), name=f"lease-{job.id}")
        try:
            transcript = await self.pool.run(job_spec(job, self.settings, record))
        except (asyncio.CancelledError, PoolClosed):
            # Stopping: the job goes back to the queue for the next start (its try counted), rather than wait out
            # its lease.
            with contextlib.suppress(Exception):
                await asyncio.shield(store.fail_transcription_job(
                    job.id, "interrupted: the transcription was stopped", worker=worker, at=self.clock(),
                    retry=job.attempts < settings.max_attempts))
            raise
        except RecognizerError as exc:
            reason = str(exc)
            retry = job.attempts < settings.max_attempts and not isinstance(exc, AudioError)
            failed = await store.fail_transcription_job(job.id, reason, worker=worker, at=self.clock(), retry=retry)
            outcome: Outcome = "lost" if failed is None else "retry" if retry else "failed"
            log.log(logging.INFO if retry else logging.WARNING, "transcription of call %s (job %d, try %d): %s%s",
                    job.linkedid, job.id, job.attempts, reason, "; queued again" if retry else "")
            self._tell(JobResult(job, outcome, reason, time.monotonic() - started))
            return
        finally:
            keeper.cancel()
        if record is None:
            record = await store.get_call(job.linkedid, pbx=job.pbx)
        matches = keyword_matches(transcript, self.keywords)
        flags = tuple(match.list for match in matches)
        stored = await store.finish_transcription_job(job.id, transcript, worker=worker, at=self.clock(), flags=flags)
        if not stored:  # the lease ran out and another taker has the job now: its result will be stored, not ours
            log.warning("transcription of call %s (job %d): no longer this runner's; its result is dropped",
                        job.linkedid, job.id)
            self._tell(JobResult(job, "lost", "the lease ran out", time.monotonic() - started))
            return
        log.info("transcription of call %s (job %d): %d words%s", job.linkedid, job.id, len(transcript.words),
                 f", flagged {', '.join(flags)}" if flags else "")
        self._push(job, matches, record)
        self._tell(JobResult(job, "done", None, time.monotonic() - started, flags))

    async def _keep_lease(self, store: Store, job: TranscriptionJob, worker: str) -> None:
        """Renew the job's lease every third of it while it runs (a long call on a slow CPU outlasts one lease)."""
        lease = self.settings.transcription.lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            try:
                if not await store.extend_transcription_lease(job.id, worker=worker, until=self.clock() + lease):
                    log.warning("transcription of call %s (job %d): the lease was lost", job.linkedid, job.id)
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("transcription of call %s (job %d): cannot renew the lease: %s", job.linkedid, job.id,
                            exc)

    def _push(self, job: TranscriptionJob, matches: list[KeywordMatch], record: CallRecord | None) -> None:
        if self.publish is None or self.messages is None:
            return
        if matches:
            self.publish(self.messages.call_flagged(job.pbx, job.linkedid, matches, record))
        self.publish(self.messages.call_transcribed(job.pbx, job.linkedid, [m.list for m in matches]))

    def _tell(self, result: JobResult) -> None:
        if self.on_result is not None:
            self.on_result(result)
