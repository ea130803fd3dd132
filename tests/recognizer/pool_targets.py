"""Functions the pool's tests run in worker processes (module-level: a spawned worker imports them by name).

``crashing_run_job`` is ``run_job`` with a deliberately crashing audio step: a recording whose name holds ``crash``
makes the worker SIGKILL itself mid-job, as a segfault in native code or the OOM killer would.
"""

from __future__ import annotations

import os
import signal
import time

from cti.transcripts import Transcript
from recognizer import job
from recognizer.engine import AudioError
from recognizer.job import JobSpec, run_job


def echo(payload: str) -> tuple[int, str]:
    """The worker's pid and the payload back."""
    return os.getpid(), payload


def die(payload: str) -> str:
    """``kill``: SIGKILL itself; ``exit``: ``os._exit(3)``; ``audio``: an AudioError; ``bug``: a ValueError."""
    if payload == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if payload == "exit":
        os._exit(3)
    if payload == "audio":
        raise AudioError("recording x.wav: truncated")
    if payload == "bug":
        raise ValueError("a bug")
    return payload


def hang(payload: float) -> float:
    """Busy for ``payload`` seconds (a long recognition)."""
    time.sleep(payload)
    return payload


def kept_engine(spec: JobSpec) -> tuple[Transcript, int, int]:
    """The transcript, the worker's pid and the id of the engine it used (the same id: the model was kept)."""
    transcript = run_job(spec)
    engine = job.engine_for(spec.choice, spec.model_dir)
    return transcript, os.getpid(), id(engine)


def crashing_run_job(spec: JobSpec) -> Transcript:
    """``run_job``, except that a recording named ``*crash*`` kills the worker while it is being read."""
    if any("crash" in source.name for source in spec.sources):
        os.kill(os.getpid(), signal.SIGKILL)
    return run_job(spec)
