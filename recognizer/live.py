"""Live transcription: each tapped lane of a call in progress decoded as it plays, in long-lived worker processes.

The daemon (``companion/``) opens a :class:`LiveRecognizer` per tapped lane from one :class:`LiveWorkers` pool,
feeds it the lane's :class:`cti.live.AudioFrame` s as the SIP tap decodes them, and reads its
:class:`cti.live.LiveResult` s (partials while an utterance grows, a final when it ends) with ``async for``::

    async with LiveWorkers(2) as live:                       # at the daemon's start, beside the after-call pool
        await live.preload([model])                          # optional: load the model before the first call
        rec = live.open(tap_info, model)                     # a tapped lane answered (non-blocking)
        rec.feed(frame)                                      # from the tap, on the event loop; never blocks
        async for result in rec: ...                         # -> call.transcript.partial / .final, keywords
        await rec.close()                                    # the call ended: the last words settled, lane freed

**Why a pool of its own, not ``recognizer/pool.py``'s.** The after-call pool runs one job at a time per worker, a job
being a whole call's recording; a live lane is a *stream* that lasts the call, with state between its frames (a Vosk
``KaldiRecognizer`` in the middle of an utterance). So a live worker holds several lanes at once (a lane costs its
recogniser, a few MB; the model, hundreds of MB, is loaded once per worker and shared), decodes them round-robin in
0.1 s pieces (``recognizer/live_stream.py``), and lives as long as the daemon. Both pools are built the same way:
processes started with ``spawn``, SIGINT ignored in the worker, a death seen through the process's sentinel. A worker
that dies (a crash in native code, the OOM killer) costs only its lanes: each ends with :class:`LiveLaneError`
("the worker process died (signal SIGKILL)"), which its reader sees from ``async for``, and a new worker takes the
dead one's place for the next lanes. Their calls are still transcribed after they end, from the recording.

**Never on the event loop, never without bound.** ``feed`` only queues the frame for the worker's sender thread;
a reader thread per worker hands results back with ``call_soon_threadsafe``. A worker that falls behind (more lanes
than its core decodes in real time) is handled in this order:

1. it thins the partials of a lane with more than :data:`BEHIND_SECONDS` of audio waiting to one per second of the
   utterance's audio (a partial is out of date before it is read, but the reader still sees the words grow; finals are
   never skipped: ``recognizer/live_stream.py``);
2. ``feed`` drops a lane's new audio while its **lag** (:attr:`LiveRecognizer.lag`: seconds of audio fed and not yet
   decoded, measured from the worker's own count) would exceed ``max_lag``: memory stays bounded, the words of the
   dropped audio are lost (counted in :attr:`LiveRecognizer.dropped_seconds`), the utterance in progress is settled at
   the gap, and the call is still transcribed whole after it ends;
3. a reader that does not keep up sees a lane's partials replaced by the next one (never a final dropped while a
   partial can be), and at most :data:`MAX_WAITING` results waiting.

Vosk is the live engine (the model chosen as after-call transcription chooses it: :func:`live_choice`). Whisper is
not: it decodes an utterance only once it has ended, and on this project's test machine the base model takes 1.2-1.7 s
per utterance on one thread, so a final would come 1.7-2.2 s after its words, over the issue's 1.5 s, at 1.2 CPU
seconds per utterance (``docs/transcription.md``, "Live transcription"). A line routed to Whisper is transcribed after
the call only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from cti.live import AudioFrame, Lane, LiveResult, TapInfo
from cti.records import CallRecord
from cti.transcripts import EngineChoice

from .engine import ModelError, RecognizerError
from .pool import STOP_GRACE_SECONDS, died_reason
from .settings import TranscriptionSettings, choose_engine

log = logging.getLogger(__name__)

#: Seconds of a lane's audio fed and not yet decoded beyond which ``feed`` drops new audio (default ``max_lag``).
MAX_LAG_SECONDS = 5.0
#: A lane with more than this many seconds waiting in its worker gets its partials thinned until it catches up.
BEHIND_SECONDS = 0.5
#: Results a lane keeps for a reader that does not read (partials go first, then the oldest finals).
MAX_WAITING = 200
#: How long ``close`` waits for the worker to settle a lane's last words while the worker decodes none of its audio.
CLOSE_TIMEOUT = 10.0
#: The worker reports a lane's progress at least this often (seconds of its audio).
_PROGRESS_SECONDS = 0.2
#: A worker that dies sooner than this after its start (seconds) is replaced only after a pause that doubles with
#: each such death (up to :data:`RESTART_MAX_SECONDS`): a worker that cannot start is not restarted in a tight loop.
QUICK_DEATH_SECONDS = 10.0
RESTART_MAX_SECONDS = 60.0
#: The most audio the sender puts in one message (1 s).
_BATCH_BYTES = 16_000
#: A piece of audio the worker decodes before looking at its other lanes and its pipe again (seconds).
_PIECE_SECONDS = 0.1


class LiveLaneError(RecognizerError):
    """A lane ended before it was closed: its worker died, its model could not load, or the pool is stopping."""


@dataclass(frozen=True, slots=True)
class LiveModel:
    """The model a lane is decoded with: the after-call choice and the folder it resolves to (picklable)."""

    choice: EngineChoice
    model_dir: str

    @classmethod
    def of(cls, choice: EngineChoice, settings: TranscriptionSettings) -> LiveModel:
        return cls(choice, str(settings.model_path(choice)))


def live_choice(record: CallRecord, settings: TranscriptionSettings) -> LiveModel | None:
    """The model a call's lanes are decoded with live: the one after-call transcription would choose
    (:func:`recognizer.settings.choose_engine`, per queue/DID), or None when that is Whisper (after the call only)
    or no model is configured. ``record`` is the call as known at its answer (``cti.model.build_record``)."""
    choice = choose_engine(record, settings)
    if choice.engine != "vosk" or not choice.model:
        return None
    return LiveModel.of(choice, settings)


# ----------------------------------------------------------------------------------------------- the worker process


@dataclass(eq=False)
class _WorkerLane:
    decoder: Any  # recognizer.live_stream.LaneDecoder (imported in the worker only)
    #: ("audio", pcm, start) pieces in order, then ("close",) once the parent closed the lane.
    items: deque[tuple[Any, ...]] = field(default_factory=deque)
    waiting: float = 0.0
    reported: float = 0.0


def _live_worker_main(conn: Connection) -> None:
    """A live worker: keep its lanes' decoders, take audio as it comes, decode the lanes round-robin."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .live_stream import LaneDecoder, vosk_recogniser
    from .vosk_engine import load_model

    lanes: dict[int, _WorkerLane] = {}

    def send(message: tuple[Any, ...]) -> bool:
        try:
            conn.send(message)
        except (EOFError, OSError):
            return False
        return True

    def model_of(model: LiveModel) -> Any:
        if model.choice.engine != "vosk":
            raise ModelError(f"live transcription runs Vosk only, not {model.choice.engine}")
        return load_model(Path(model.model_dir))

    def handle(message: Any) -> bool:
        kind = message[0]
        if kind == "audio":
            lane = lanes.get(message[1])
            if lane is not None:
                lane.items.append(("audio", message[2], message[3]))
                lane.waiting += len(message[2]) / 2 / 8000
        elif kind == "open":
            _, lane_id, lane_name, model = message
            try:
                lanes[lane_id] = _WorkerLane(LaneDecoder(lane_name, vosk_recogniser(model_of(model))()))
            except RecognizerError as exc:
                return send(("error", lane_id, str(exc)))
            except Exception as exc:  # a library's own error: the lane fails with it, the worker goes on
                return send(("error", lane_id, f"the live recogniser failed to start: {type(exc).__name__}: {exc}"))
        elif kind == "close":
            lane = lanes.get(message[1])
            if lane is not None:
                lane.items.append(("close",))
            else:
                return send(("closed", message[1], len(lanes)))
        elif kind == "drop":
            lanes.pop(message[1], None)
        elif kind == "load":
            try:
                model_of(message[1])
            except RecognizerError as exc:
                log.warning("live recogniser: %s", exc)
        return True

    while True:
        busy = any(lane.items for lane in lanes.values())
        try:
            if conn.poll(0 if busy else None):
                while True:
                    message = conn.recv()
                    if message is None:
                        return
                    if not handle(message):
                        return
                    if not conn.poll(0):
                        break
        except (EOFError, OSError):
            return  # the parent is gone
        for lane_id in list(lanes):
            lane = lanes[lane_id]
            if not lane.items:
                continue
            item = lane.items.popleft()
            decoder = lane.decoder
            try:
                if item[0] == "close":
                    results = decoder.finish()
                    del lanes[lane_id]
                    if not send(("lane", lane_id, results, decoder.taken, decoder.partials_skipped)):
                        return
                    if not send(("closed", lane_id, len(lanes))):
                        return
                    continue
                pcm, start = item[1], item[2]
                piece = int(8000 * _PIECE_SECONDS) * 2
                if len(pcm) > piece:  # a long batch: a piece now, the rest after the other lanes' turn
                    lane.items.appendleft(("audio", pcm[piece:], start + piece / 2 / 8000))
                    pcm = pcm[:piece]
                lane.waiting = max(0.0, lane.waiting - len(pcm) / 2 / 8000)
                results = decoder.feed(pcm, start, behind=lane.waiting > BEHIND_SECONDS)
            except RecognizerError as exc:
                lanes.pop(lane_id, None)
                if not send(("error", lane_id, str(exc))):
                    return
                continue
            except Exception as exc:  # a bug, or a library's own error: this lane fails, the others go on
                lanes.pop(lane_id, None)
                if not send(("error", lane_id, f"the live recogniser failed: {type(exc).__name__}: {exc}")):
                    return
                continue
            if results or decoder.taken - lane.reported >= _PROGRESS_SECONDS - 1e-9:
                lane.reported = decoder.taken
                if not send(("lane", lane_id, results, decoder.taken, decoder.partials_skipped)):
                    return


# ----------------------------------------------------------------------------------------------- the parent's side


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    outbox: queue.SimpleQueue[tuple[Any, ...] | None]
    lanes: dict[int, LiveRecognizer] = field(default_factory=dict)
    #: Lanes the worker itself says it holds (its answer to the last ``close``).
    reported_lanes: int | None = None
    dead: bool = False
    started_at: float = field(default_factory=time.monotonic)
    #: The sender and reader threads: joined when the pool closes, so nothing of it outlives ``close``.
    threads: list[threading.Thread] = field(default_factory=list)


class LiveRecognizer:
    """One tapped lane being transcribed (made by :meth:`LiveWorkers.open`).

    ``feed`` the lane's frames in order; iterate (``async for``) for its results in order: partials (each replaces
    the previous one) and finals (settled, never repeated). The iteration ends after :meth:`close` has settled the
    last words, or raises :class:`LiveLaneError` when the lane ended otherwise (its worker died...), after the
    results that came before.
    """

    def __init__(self, pool: LiveWorkers, worker: _Worker, lane_id: int, tap: TapInfo, max_lag: float) -> None:
        self.tap = tap
        self._pool = pool
        self._worker = worker
        self._id = lane_id
        self._max_lag = max_lag
        self._results: deque[LiveResult] = deque()
        self._wake = asyncio.Event()
        self._ended = asyncio.get_running_loop().create_future()
        self._closing = False
        #: Seconds of audio given to the worker, and decoded by it (its own count).
        self.fed_seconds = 0.0
        self.taken_seconds = 0.0
        #: Seconds of audio ``feed`` dropped because the lane lagged more than ``max_lag``.
        self.dropped_seconds = 0.0
        #: Partials the worker skipped (it was behind), and partials replaced here before they were read.
        self.partials_skipped = 0
        self.partials_replaced = 0
        #: Finals dropped because nobody read :data:`MAX_WAITING` results (a reader that stopped reading).
        self.finals_dropped = 0
        self.error: LiveLaneError | None = None

    @property
    def lane(self) -> Lane:
        return self.tap.lane

    @property
    def worker_pid(self) -> int | None:
        return self._worker.process.pid

    @property
    def lag(self) -> float:
        """Seconds of this lane's audio fed and not yet decoded: how far behind real time its results are."""
        return max(0.0, self.fed_seconds - self.taken_seconds)

    @property
    def ended(self) -> bool:
        return self._ended.done()

    def feed(self, frame: AudioFrame) -> bool:
        """Queue the lane's next frame for its worker (on the event loop; never blocks). False when the frame was
        not taken: the lane has ended or is closing, or it lags ``max_lag`` seconds already (the frame is dropped)."""
        if self._closing or self._ended.done():
            return False
        seconds = frame.seconds
        if self.lag + seconds > self._max_lag:
            self.dropped_seconds += seconds
            return False
        self.fed_seconds += seconds
        self._worker.outbox.put(("audio", self._id, frame.pcm, frame.start))
        return True

    def __aiter__(self) -> LiveRecognizer:
        return self

    async def __anext__(self) -> LiveResult:
        while not self._results:
            if self._ended.done():
                if self.error is not None:
                    raise self.error
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
        return self._results.popleft()

    async def close(self, within: float = CLOSE_TIMEOUT) -> None:
        """The lane is over (the call ended, the tap was torn down): the worker settles its last words (they come
        out of the iteration before it stops) and frees the lane. Safe to call twice, or after the lane ended.

        It waits as long as the worker goes on decoding the lane's audio (at most its :attr:`lag`, however long that
        takes a worker short of CPU), and gives up only when ``within`` seconds pass with none of it decoded: a
        stuck worker, not a slow one, loses the last words."""
        if not self._closing and not self._ended.done():
            self._closing = True
            self._worker.outbox.put(("close", self._id))
        while not self._ended.done():
            progress = self.taken_seconds
            try:
                await asyncio.wait_for(asyncio.shield(self._ended), within)
            except TimeoutError:
                if self.taken_seconds > progress:
                    continue
                self._worker.outbox.put(("drop", self._id))
                self._end(LiveLaneError(f"the recogniser did not settle the {self.lane} lane: nothing of it was "
                                        f"decoded for {within:.0f} s"))

    # -- called by the pool, on the loop

    def _results_in(self, results: Sequence[LiveResult], taken: float, skipped: int) -> None:
        self.taken_seconds = taken
        self.partials_skipped = skipped
        for result in results:
            if not result.final and self._results and not self._results[-1].final:
                self._results.pop()  # a partial not read yet is replaced by the newer one
                self.partials_replaced += 1
            self._results.append(result)
        while len(self._results) > MAX_WAITING:
            partial = next((r for r in self._results if not r.final), None)
            if partial is not None:
                self._results.remove(partial)
                self.partials_replaced += 1
            else:
                self._results.popleft()
                self.finals_dropped += 1
        if results:
            self._wake.set()

    def _end(self, error: LiveLaneError | None) -> None:
        if self._ended.done():
            return
        self.error = error
        self._ended.set_result(None)
        self._worker.lanes.pop(self._id, None)
        self._wake.set()


class LiveWorkers:
    """``size`` long-lived worker processes decoding live lanes, several lanes each (see the module's docstring).

    ``max_lag``: seconds of a lane's audio that may wait for its worker before ``feed`` drops new audio.
    """

    def __init__(self, size: int = 1, *, max_lag: float = MAX_LAG_SECONDS, name: str = "cti-live") -> None:
        if size < 1:
            raise ValueError("a live pool has at least one worker")
        self.size = size
        self.max_lag = max_lag
        self.name = name
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._ids = itertools.count(1)
        self._preload: list[LiveModel] = []
        self._started = 0
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Workers that died soon after their start, one after the other (the restart pause doubles with each).
        self._quick_deaths = 0
        #: Workers that died and were replaced.
        self.deaths = 0

    async def __aenter__(self) -> LiveWorkers:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the worker processes (the models load at a lane's ``open`` or a :meth:`preload`)."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        for _ in range(self.size):
            self._workers.append(await self._loop.run_in_executor(None, self._spawn))

    async def preload(self, models: Sequence[LiveModel]) -> None:
        """Load these models in every worker now (and in each worker started later), so the first call's lanes do
        not wait seconds for them. A model that fails to load is logged by the worker; a lane opened on it fails."""
        await self.start()
        for model in models:
            if model not in self._preload:
                self._preload.append(model)
            for worker in self._workers:
                worker.outbox.put(("load", model))

    def _spawn(self) -> _Worker:
        parent, child = self._context.Pipe()
        self._started += 1
        process = self._context.Process(target=_live_worker_main, args=(child,), name=f"{self.name}-{self._started}",
                                        daemon=True)
        process.start()
        child.close()
        worker = _Worker(process, parent, queue.SimpleQueue())
        worker.threads = [
            threading.Thread(target=_send_loop, args=(worker,), name=f"{process.name}-send", daemon=True),
            threading.Thread(target=self._receive_loop, args=(worker,), name=f"{process.name}-recv", daemon=True)]
        for thread in worker.threads:
            thread.start()
        for model in self._preload:
            worker.outbox.put(("load", model))
        return worker

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def lanes_per_worker(self) -> dict[int, int]:
        """Each live worker's pid and the lanes it holds (as the parent counts them)."""
        return {w.process.pid: len(w.lanes) for w in self._workers if w.process.pid is not None}

    def reported_lanes(self, pid: int) -> int | None:
        """The lanes a worker said it still held when it last closed one (its own count, not the parent's)."""
        return next((w.reported_lanes for w in self._workers if w.process.pid == pid), None)

    def open(self, tap: TapInfo, model: LiveModel) -> LiveRecognizer:
        """A recogniser for one tapped lane, on the worker with the fewest lanes. Returns at once: the model loads
        in the worker (a model that cannot load ends the lane with :class:`LiveLaneError`, naming the file)."""
        if self._closed or self._loop is None:
            raise LiveLaneError("the live recogniser is not running")
        alive = [w for w in self._workers if not w.dead]
        if not alive:
            raise LiveLaneError("no live recogniser worker is running (a new one is starting)")
        worker = min(alive, key=lambda w: len(w.lanes))
        lane_id = next(self._ids)
        recogniser = LiveRecognizer(self, worker, lane_id, tap, self.max_lag)
        worker.lanes[lane_id] = recogniser
        worker.outbox.put(("open", lane_id, tap.lane, model))
        return recogniser

    def _receive_loop(self, worker: _Worker) -> None:
        """In a thread per worker: hand each message to the loop; the worker's death too."""
        conn, process = worker.conn, worker.process
        while True:
            ready = wait([conn, process.sentinel])
            if conn in ready:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    break
                if not self._post(self._message, worker, message):
                    return
                continue
            if process.sentinel in ready:
                break
        process.join(STOP_GRACE_SECONDS)
        self._post(self._died, worker, process.exitcode)

    def _post(self, callback: Any, *args: Any) -> bool:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed
            return False
        return True

    def _message(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind, lane_id = message[0], message[1]
        recogniser = worker.lanes.get(lane_id)
        if kind == "closed":
            worker.reported_lanes = message[2]
        if recogniser is None:
            return
        if kind == "lane":
            recogniser._results_in(message[2], message[3], message[4])
        elif kind == "closed":
            recogniser._end(None)
        elif kind == "error":
            recogniser._end(LiveLaneError(message[2]))

    def _died(self, worker: _Worker, exitcode: int | None) -> None:
        if worker.dead:
            return
        worker.dead = True
        worker.outbox.put(None)
        with contextlib.suppress(OSError):
            worker.conn.close()
        if self._closed:
            for recogniser in list(worker.lanes.values()):
                recogniser._end(LiveLaneError("the live recogniser is stopping"))
            return
        reason = died_reason(exitcode)
        self.deaths += 1
        log.warning("live recogniser: %s (pid %s) with %d lanes; starting another", reason, worker.process.pid,
                    len(worker.lanes))
        for recogniser in list(worker.lanes.values()):
            recogniser._end(LiveLaneError(reason))
        if worker in self._workers:
            self._workers.remove(worker)
        quick = time.monotonic() - worker.started_at < QUICK_DEATH_SECONDS
        self._quick_deaths = self._quick_deaths + 1 if quick else 0
        pause = min(RESTART_MAX_SECONDS, 2.0 ** (self._quick_deaths - 1)) if self._quick_deaths > 1 else 0.0
        assert self._loop is not None
        self._loop.create_task(self._replace(pause))

    async def _replace(self, pause: float) -> None:
        assert self._loop is not None
        if pause:
            await asyncio.sleep(pause)
            if self._closed:
                return
        worker = await self._loop.run_in_executor(None, self._spawn)
        if self._closed:
            worker.outbox.put(None)
            await self._loop.run_in_executor(None, _join, [worker])
            return
        self._workers.append(worker)

    async def close(self) -> None:
        """Stop the workers (the daemon is stopping): open lanes end with :class:`LiveLaneError`, workers that do
        not leave within ``STOP_GRACE_SECONDS`` are killed."""
        if self._closed:
            return
        self._closed = True
        workers = list(self._workers)
        for worker in workers:
            for recogniser in list(worker.lanes.values()):
                recogniser._end(LiveLaneError("the live recogniser is stopping"))
            worker.outbox.put(("stop",))
        if self._loop is not None:
            await self._loop.run_in_executor(None, _join, workers)
        self._workers.clear()


def _send_loop(worker: _Worker) -> None:
    """In a thread per worker: send what the loop queued, each lane's contiguous audio waiting at once as one message
    (at most :data:`_BATCH_BYTES`): a worker with many lanes gets a few messages per lane and second, not one per
    20 ms frame. A lane's messages keep their order (its ``close`` after its audio)."""
    conn = worker.conn
    while True:
        message = worker.outbox.get()
        batch: list[tuple[Any, ...] | None] = [message]
        while message is not None and len(batch) < 10_000:
            try:
                message = worker.outbox.get_nowait()
            except queue.Empty:
                break
            batch.append(message)
        for out in _coalesced(batch):
            if out is None:
                return
            if out[0] == "stop":
                with contextlib.suppress(OSError, EOFError):
                    conn.send(None)
                return
            try:
                conn.send(out)
            except (OSError, EOFError, ValueError):
                return


def _coalesced(batch: Sequence[tuple[Any, ...] | None]) -> list[tuple[Any, ...] | None]:
    out: list[tuple[Any, ...] | None] = []
    audio_at: dict[int, int] = {}  # lane -> index in ``out`` of its audio message that may still grow
    for message in batch:
        if message is None or message[0] != "audio":
            if message is not None and len(message) > 1:
                audio_at.pop(message[1], None)
            out.append(message)
            if message is None:
                break
            continue
        lane_id, pcm, start = message[1], message[2], message[3]
        at = audio_at.get(lane_id)
        if at is not None:
            prev = out[at]
            assert prev is not None
            joined = prev[2] + pcm
            if abs(prev[3] + len(prev[2]) / 2 / 8000 - start) < 0.5 / 8000 and len(joined) <= _BATCH_BYTES:
                out[at] = ("audio", lane_id, joined, prev[3])
                continue
        audio_at[lane_id] = len(out)
        out.append(message)
    return out


def _join(workers: Sequence[_Worker]) -> None:
    for worker in workers:
        worker.process.join(STOP_GRACE_SECONDS)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(STOP_GRACE_SECONDS)
        worker.outbox.put(None)
        for thread in worker.threads:  # the reader ends with its process, the sender at the None
            thread.join(STOP_GRACE_SECONDS)
        with contextlib.suppress(OSError):
            worker.conn.close()
