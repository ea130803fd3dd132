"""Calls for the QA page's tests: a journal row whose recordings are a trace's real files, and its transcript stored the
way the transcription service stores one (a job queued, taken with a lease, finished with its words).

The recordings are read where they are (``../shared/ami-traces/<trace>/recordings``, through ``[recording] dir``):
never copied. The split recording of scenario 34 has the mix and each side's own file, so its words land on both
lanes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from cti.records import CallRecord
from cti.transcripts import AudioSource, EngineChoice, NewJob, Transcript
from store.repository import Store
from tests.panel_env import PanelEnv, panel_env
from tests.speech import SPLIT_BASE, SPLIT_TRACE
from tests.store.builders import make_call

#: The folder ``[recording] dir`` points at: scenario 34's recordings.
RECORDINGS = SPLIT_TRACE / "recordings"
MIX = f"{SPLIT_BASE}.wav"
CUSTOMER_SIDE = f"{SPLIT_BASE}-in.wav"  # what the customer's channel sent: their voice
AGENT_SIDE = f"{SPLIT_BASE}-out.wav"  # what it heard: the agent's
SOURCES = (AudioSource(MIX, "mono"), AudioSource(CUSTOMER_SIDE, "customer"), AudioSource(AGENT_SIDE, "agent"))
LINKEDID = "1795480910.341"
AGENT = "102"
#: The panel's trace: never started, the journal is filled by hand.
TRACE = "13-blind-transfer-redirect"


def recording_section(folder: Path = RECORDINGS) -> dict[str, str]:
    """``panel_env(sections=...)``: the daemon reads recordings from ``folder``."""
    return {"recording": f'dir = "{folder}"'}


def recorded_call(linkedid: str = LINKEDID, *, recordings: Sequence[str] = (MIX, CUSTOMER_SIDE, AGENT_SIDE),
                  answered_by: str = AGENT, started_at: float | None = None, **overrides: object) -> CallRecord:
    """An answered inbound call whose journal row lists ``recordings``."""
    return make_call(linkedid, answered=True, answered_by=answered_by,
                     started_at=started_at if started_at is not None else time.time() - 3600,
                     recording=recordings[0] if recordings else None, recordings=tuple(recordings), **overrides)


async def save_call(store: Store, record: CallRecord) -> None:
    store.stage_call(record, None, ())
    await store.flush()


async def store_transcript(store: Store, record: CallRecord, transcript: Transcript,
                           flags: Sequence[str] = ()) -> None:
    """The call's transcript stored as the service stores it: queued, taken, finished by the lease's holder."""
    now = time.time()
    job = await store.enqueue_transcription(NewJob(pbx=record.pbx, linkedid=record.linkedid, sources=SOURCES,
                                                   choice=EngineChoice(model=transcript.model),
                                                   call_started_at=record.started_at), at=now)
    assert job is not None
    taken = await store.take_transcription_job(worker="qa-test", lease_seconds=600, now=now, max_attempts=3)
    assert taken is not None and taken.id == job.id
    assert await store.finish_transcription_job(job.id, transcript, worker="qa-test", at=now, flags=flags)


@asynccontextmanager
async def qa_panel(transcript: Transcript, *, flags: Sequence[str] = ()) -> AsyncIterator[tuple[PanelEnv, CallRecord]]:
    """The whole system reading recordings from scenario 34's folder, its journal holding the call
    (:func:`recorded_call`) with ``transcript`` stored for it (matching the keyword lists ``flags``)."""
    async with panel_env([TRACE], sections=recording_section()) as env:
        record = recorded_call()
        await save_call(env.store, record)
        await store_transcript(env.store, record, transcript, flags=flags)
        yield env, record
