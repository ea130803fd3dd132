"""The transcription service: the queue in a real store, jobs run in real worker processes with the Korean model.

* A worker that dies mid-job (a test-only audio step SIGKILLs it) costs that job a try; after ``max_attempts`` it is
  failed with the reason, and the queue goes on; an empty or truncated WAV fails its job at once with its reason.
* A call replayed through the replay PBX, its recording in the recordings folder, ends up transcribed, and a keyword
  list it matches pushes ``call.flagged`` to an admin's WebSocket.
* ``cti run`` SIGKILLed in the middle of a queue, then started again: every job done exactly once.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
import sys
from asyncio.subprocess import DEVNULL
from pathlib import Path

from companion.config import Settings
from companion.transcriber import JobResult, Transcriber
from cti.transcripts import AudioSource, NewJob
from recognizer.pool import WorkerPool
from store import open_store
from tests.conftest import UNIT
from tests.daemon.conftest import CTI, settings_for, wait_until, write_config
from tests.panel_env import panel_env
from tests.recognizer import pool_targets
from tests.speech import EMPTY_TRACE, ko_model_dir, recording_refs, recordings_dir
from tests.traces import REPO, TRACES
from tests.ui_bridge.wsclient import WsClient

#: A recorded, answered queue call (agent 102) and its file.
QUEUE_TRACE = "07-queue-ringall-answered"
QUEUE_FILE = "1795479360.12.wav"
#: Words the Korean model hears in that recording (it has no Russian: these are its guesses, every run).
HEARD = ["이냐", "라며", "다기화"]


def transcription(folder: Path, **keys: object) -> dict[str, str]:
    """``sections=`` lines: transcription on with the Korean model, recordings read from ``folder``."""
    lines = ["enabled = true", f'model = "{ko_model_dir()}"', 'language = "ko"', "lease_seconds = 3"]
    lines += [f"{key} = {value}" for key, value in keys.items()]
    return {"transcription": "\n".join(lines), "recording": f'dir = "{folder}"'}


async def test_a_dying_worker_and_bad_files_fail_their_jobs_and_the_queue_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "monitor"
    folder.mkdir()
    good = recordings_dir(QUEUE_TRACE) / QUEUE_FILE
    shutil.copy(good, folder / "good.wav")
    shutil.copy(good, folder / "crash.wav")
    whole = good.read_bytes()
    (folder / "cut.wav").write_bytes(whole[: len(whole) * 2 // 3])
    shutil.copy(next((EMPTY_TRACE / "recordings").glob("*.wav")), folder / "empty.wav")
    settings: Settings = settings_for(tmp_path, 5038, sections=transcription(folder, max_attempts=2))
    results: list[JobResult] = []
    async with asyncio.timeout(240 * UNIT), open_store(settings.store, region="RU") as store:
        for i, name in enumerate(("crash.wav", "cut.wav", "empty.wav", "good.wav")):
            await store.enqueue_transcription(NewJob("main", f"1.{i}", (AudioSource(name, "mono"),),
                                                     settings.transcription.default_choice(), 1000.0 + i), at=1.0)
        async with WorkerPool(1, pool_targets.crashing_run_job) as pool:
            await Transcriber(settings, lambda: store, pool, on_result=results.append).run(until_empty=True)
            assert pool.deaths == 2

        crash, cut, empty, fine = [await store.transcription_job_of(f"1.{i}", pbx="main") for i in range(4)]
        assert crash is not None and (crash.state, crash.attempts) == ("failed", 2)
        assert crash.reason == "the worker process died (signal SIGKILL)"
        assert cut is not None and (cut.state, cut.attempts) == ("failed", 1)  # a bad file is not tried again
        assert cut.reason is not None and "cut.wav" in cut.reason and "truncated" in cut.reason
        assert empty is not None and (empty.state, empty.attempts) == ("failed", 1)
        assert empty.reason is not None and "empty.wav" in empty.reason and "empty" in empty.reason
        assert fine is not None and (fine.state, fine.attempts, fine.reason) == ("done", 1, None)
        transcript = await store.get_transcript("1.3", pbx="main")
        assert transcript is not None and transcript.words and transcript.engine == "vosk"
        for job in (crash, cut, empty):
            assert await store.get_transcript(job.linkedid, pbx="main") is None
        assert [(r.job.linkedid, r.outcome) for r in results] == [
            ("1.0", "retry"), ("1.0", "failed"), ("1.1", "failed"), ("1.2", "failed"), ("1.3", "done")]


async def test_a_replayed_call_is_transcribed_and_a_matching_keyword_list_flags_it_to_admins(tmp_path: Path) -> None:
    folder = tmp_path / "monitor"
    folder.mkdir()
    shutil.copy(recordings_dir(QUEUE_TRACE) / QUEUE_FILE, folder / QUEUE_FILE)
    words = ", ".join(f'"{w}"' for w in HEARD)
    sections = transcription(folder, keywords=f'{{ heard = [{words}], never = ["ничегоподобного"] }}')
    async with asyncio.timeout(240 * UNIT):
        async with panel_env([QUEUE_TRACE], speed=0, sections=sections) as env:
            admin, agent = await WsClient.connect(env, "admin"), await WsClient.connect(env, "oleg")
            env.start_calls()
            flagged = await admin.wait_for("call.flagged", timeout=180)
            linkedid = recording_refs(QUEUE_TRACE)[QUEUE_FILE]["linkedid"]
            assert (flagged["linkedid"], flagged["pbx"], flagged["flags"]) == (linkedid, "main", ["heard"])
            assert flagged["answered_by"] == "102" and flagged["queue"] == "support"
            (hit,) = flagged["hits"]
            assert hit["flag"] == "heard" and hit["phrase"] in HEARD and hit["at_second"] > 0
            done = await admin.wait_for("call.transcribed", linkedid=linkedid)
            assert done["flags"] == ["heard"]
            transcript = await env.store.get_transcript(linkedid, pbx="main")
            assert transcript is not None and any(w.text in HEARD for w in transcript.words)
            assert await env.store.transcript_flags(linkedid, pbx="main") == ("heard",)
            # An agent's panel gets neither message (admins and QA only).
            await agent.request({"type": "subscribe", "scope": "own"})
            assert not agent.of_type("call.flagged") and not agent.of_type("call.transcribed")
            for client in (admin, agent):
                await client.close()


#: Recorded, answered calls whose recordings the SIGKILL test copies into one folder.
KILL_TRACES = ["01-direct-answered", "02-direct-agent-hangup", "07-queue-ringall-answered", "23-cyrillic-anonymous"]


def _jobs(db: Path) -> list[tuple[str, str, int, float | None]]:
    """(linkedid, state, attempts, finished_at) of every job, read as another process would."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return [tuple(row) for row in conn.execute(  # type: ignore[misc]
                "SELECT linkedid, state, attempts, finished_at FROM transcription_jobs ORDER BY id")]
    except sqlite3.Error:
        return []


def _transcripts(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
        return [row[0] for row in conn.execute("SELECT linkedid FROM transcripts")]


async def test_sigkill_in_the_middle_of_the_queue_then_a_restart_does_every_job_exactly_once(tmp_path: Path) -> None:
    from asterisk.replay import ReplayPbx

    folder = tmp_path / "monitor"
    folder.mkdir()
    for trace in KILL_TRACES:
        for wav in recordings_dir(trace).glob("*.wav"):
            shutil.copy(wav, folder / wav.name)
    db = tmp_path / "journal.sqlite"
    async with asyncio.timeout(600 * UNIT), ReplayPbx([TRACES / t for t in KILL_TRACES], speed=0) as pbx:
        config = write_config(tmp_path, pbx.address[1], sections=transcription(folder))
        first = await asyncio.create_subprocess_exec(*CTI, "run", "--config", str(config), cwd=REPO,
                                                     stdout=DEVNULL, stderr=DEVNULL)
        try:
            # Killed once some jobs are done and some are not (one of them, likely, in a worker's hands).
            await wait_until(lambda: len(_jobs(db)) == len(KILL_TRACES)
                             and any(state == "done" for _, state, _, _ in _jobs(db)), 300, "jobs done")
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        before = _jobs(db)
        done_before = {job[0]: job for job in before if job[1] == "done"}
        assert 0 < len(done_before) < len(KILL_TRACES), before
        second = await asyncio.create_subprocess_exec(*CTI, "run", "--config", str(config), cwd=REPO,
                                                      stdout=DEVNULL, stderr=sys.stderr)
        try:
            await wait_until(lambda: all(state == "done" for _, state, _, _ in _jobs(db)), 300,
                             "every job done after the restart")
        finally:
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 30 * UNIT) == 0
    after = _jobs(db)
    assert len(after) == len(KILL_TRACES)  # one job per call: none queued twice
    for linkedid, job in done_before.items():
        assert next(j for j in after if j[0] == linkedid) == job  # not run again: finished_at and attempts unchanged
    assert sorted(_transcripts(db)) == sorted(j[0] for j in after)  # each call exactly one transcript
