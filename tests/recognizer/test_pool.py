"""The worker pool: jobs run in spawned processes that keep their models; a worker that dies costs only its job.

Real processes, real signals: a worker SIGKILLs itself (``tests/recognizer/pool_targets.py``), and the pool must
report the death as the job's failure and go on with a new process. The model test runs ``run_job`` on a real trace
recording with the Korean Vosk model (loaded once, in the worker).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from asterisk.recording_files import RecordingSettings
from cti.transcripts import AudioSource, EngineChoice
from recognizer.engine import AudioError, RecognizerError
from recognizer.job import JobSpec
from recognizer.pool import WorkerDied, WorkerPool, died_reason
from tests.conftest import UNIT
from tests.recognizer import pool_targets
from tests.speech import ko_model_dir, recordings_dir


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive: read its state.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_a_worker_that_dies_fails_its_job_only_and_is_replaced() -> None:
    async with asyncio.timeout(60 * UNIT):
        async with WorkerPool(1, pool_targets.die) as pool:
            (first,) = pool.pids
            with pytest.raises(WorkerDied, match=r"^the worker process died \(signal SIGKILL\)$"):
                await pool.run("kill")
            assert not _alive(first)
            assert await pool.run("next job") == "next job"  # a new worker took the dead one's place
            (second,) = pool.pids
            assert second != first
            with pytest.raises(WorkerDied, match=r"^the worker process died \(exit status 3\)$"):
                await pool.run("exit")
            assert await pool.run("after") == "after"
            assert pool.deaths == 2


async def test_a_job_error_keeps_its_class_and_reason_and_the_worker() -> None:
    async with asyncio.timeout(60 * UNIT):
        async with WorkerPool(1, pool_targets.die) as pool:
            (pid,) = pool.pids
            with pytest.raises(AudioError, match=r"^recording x\.wav: truncated$"):
                await pool.run("audio")
            with pytest.raises(RecognizerError, match=r"^the recogniser failed: ValueError: a bug$"):
                await pool.run("bug")
            assert pool.pids == [pid] and pool.deaths == 0


async def test_two_workers_run_two_jobs_at_once() -> None:
    async with asyncio.timeout(60 * UNIT):
        async with WorkerPool(2, pool_targets.hang) as pool:
            await asyncio.gather(pool.run(0.0), pool.run(0.0))  # both workers up and warm
            started = asyncio.get_running_loop().time()
            await asyncio.gather(pool.run(1.0), pool.run(1.0))
            assert asyncio.get_running_loop().time() - started < 1.9  # not one after the other


async def test_a_cancelled_job_kills_its_worker_and_the_pool_goes_on() -> None:
    async with asyncio.timeout(60 * UNIT):
        async with WorkerPool(1, pool_targets.hang) as pool:
            (first,) = pool.pids
            job = asyncio.create_task(pool.run(600.0))
            await asyncio.sleep(0.2 * UNIT)  # let it start (not a proof: the assertions below are)
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await job
            assert await pool.run(0.0) == 0.0
            assert pool.pids != [first] and not _alive(first)


async def test_close_stops_every_worker() -> None:
    async with asyncio.timeout(60 * UNIT):
        pool = WorkerPool(2, pool_targets.echo)
        await pool.start()
        pids = pool.pids
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        await pool.close()
        assert not any(_alive(pid) for pid in pids)


def test_died_reason_names_the_signal() -> None:
    assert died_reason(-9) == "the worker process died (signal SIGKILL)"
    assert died_reason(-11) == "the worker process died (signal SIGSEGV)"
    assert died_reason(1) == "the worker process died (exit status 1)"


async def test_a_worker_keeps_its_model_and_a_bad_file_does_not_stop_it(tmp_path: Path) -> None:
    """Two real jobs in one worker: the same engine (the model loaded once); a truncated WAV between them fails with
    its reason and the worker goes on."""
    folder = tmp_path / "monitor"
    folder.mkdir()
    shutil.copy(recordings_dir("07-queue-ringall-answered") / "1795479360.12.wav", folder / "good.wav")
    whole = (folder / "good.wav").read_bytes()
    (folder / "cut.wav").write_bytes(whole[: len(whole) // 2])
    recording = RecordingSettings(dir=folder)
    choice = EngineChoice("vosk", str(ko_model_dir()), "ko")

    def spec(name: str) -> JobSpec:
        return JobSpec(1, "main", "1.1", (AudioSource(name, "mono"),), choice, str(ko_model_dir()), recording)

    async with asyncio.timeout(180 * UNIT):
        async with WorkerPool(1, pool_targets.kept_engine) as pool:
            transcript, pid, engine = await pool.run(spec("good.wav"))
            assert transcript.engine == "vosk" and transcript.words
            assert all(w.speaker == "unknown" for w in transcript.words)  # a mono mix, no speaker model
            assert 0 < transcript.words[0].start < transcript.words[-1].end <= transcript.duration + 0.01
            with pytest.raises(AudioError, match=r"cut\.wav"):
                await pool.run(spec("cut.wav"))
            again, pid_again, engine_again = await pool.run(spec("good.wav"))
            assert (pid_again, engine_again) == (pid, engine)
            assert again.words and again.duration == transcript.duration
