"""The transcription queue, the transcripts and their search, against the interface (every store runs this suite:
tests/store/conftest).

What the daemon and QA rely on: a call is queued once; a job is run by one taker at a time, again when its taker died
(its lease ran out), and given up with a reason after its tries; only the taker stores its transcript; two stores on
one database (two nodes, or a daemon and ``cti transcribe``) never take one job twice; a search finds every form of
a word («машину» finds «машина», "car" finds "cars") on the lane asked for, opens the call at the first match, and
takes any text typed in the box as words, never as the index's syntax.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from cti.stemming import words
from cti.transcripts import SPEAKERS, AudioSource, EngineChoice, NewJob, Speaker, Transcript, TranscriptQuery, Word
from store.repository import Store, TranscriptionJobNotFound
from tests.store.builders import T0, make_call
from tests.store.conftest import OpenStore

STEREO = (AudioSource(name="q-20240501-1.wav", layout="stereo", left="agent"),)
RU = EngineChoice(engine="vosk", model="vosk-model-small-ru-0.22", language="ru")


def new_job(linkedid: str, started: float = T0, pbx: str = "main") -> NewJob:
    return NewJob(pbx=pbx, linkedid=linkedid, sources=STEREO, choice=RU, call_started_at=started)


def said(*lines: tuple[Speaker, str], start: float = 0.5) -> Transcript:
    """A transcript of ``(speaker, "words …")`` lines, each word 0.5 s long, one after another."""
    out: list[Word] = []
    t = start
    for speaker, text in lines:
        for w in text.split():
            out.append(Word(speaker=speaker, text=w, start=round(t, 2), end=round(t + 0.4, 2), conf=0.9))
            t += 0.5
    return Transcript(words=tuple(out), engine="vosk", model="vosk-model-small-ru-0.22", duration=t + 1,
                      language="ru")


async def transcribed(store: Store, linkedid: str, transcript: Transcript, *, started: float = T0,
                      pbx: str = "main", flags: tuple[str, ...] = ()) -> None:
    """The call queued, taken and finished, as the worker pool does it."""
    assert await store.enqueue_transcription(new_job(linkedid, started, pbx), at=started + 60) is not None
    job = await store.take_transcription_job(worker="w1", lease_seconds=60, now=started + 61, max_attempts=3)
    assert job is not None and job.linkedid == linkedid
    assert await store.finish_transcription_job(job.id, transcript, worker="w1", at=started + 70, flags=flags)


# -- the queue ---------------------------------------------------------------------------------------------------


async def test_a_call_is_queued_once_and_reads_back_as_queued(store: Store) -> None:
    job = await store.enqueue_transcription(new_job("1714550000.1"), at=T0 + 50)
    assert job is not None
    assert (job.pbx, job.linkedid, job.sources, job.choice, job.call_started_at, job.state, job.attempts,
            job.queued_at, job.worker) == ("main", "1714550000.1", STEREO, RU, T0, "queued", 0, T0 + 50, None)
    assert await store.enqueue_transcription(new_job("1714550000.1"), at=T0 + 99) is None  # the daemon again
    assert await store.get_transcription_job(job.id) == job
    assert await store.transcription_job_of("1714550000.1") == job
    assert await store.transcription_job_of("1714550000.1", pbx="spb") is None  # a linkedid is a PBX's own
    assert await store.enqueue_transcription(new_job("1714550000.1", pbx="spb"), at=T0 + 99) is not None
    assert await store.count_transcription_jobs() == {"queued": 2, "running": 0, "done": 0, "failed": 0}
    with pytest.raises(TranscriptionJobNotFound):
        await store.get_transcription_job(job.id + 1000)


async def test_jobs_are_taken_oldest_call_first_each_by_one_taker(store: Store) -> None:
    for linkedid, started in (("late", T0 + 300), ("early", T0), ("middle", T0 + 100)):
        await store.enqueue_transcription(new_job(linkedid, started), at=T0 + 400)
    taken = [await store.take_transcription_job(worker=f"w{i}", lease_seconds=60, now=T0 + 500, max_attempts=3)
             for i in range(4)]
    assert [j.linkedid if j else None for j in taken] == ["early", "middle", "late", None]
    first = taken[0]
    assert first is not None
    assert (first.state, first.attempts, first.worker, first.started_at, first.lease_until) == (
        "running", 1, "w0", T0 + 500, T0 + 560)
    listed = await store.list_transcription_jobs(states=["running"])
    assert [j.linkedid for j in listed] == ["early", "middle", "late"]
    assert await store.list_transcription_jobs(states=["queued"]) == []


async def test_a_job_whose_taker_died_is_taken_again_and_only_the_new_taker_stores_it(store: Store) -> None:
    await store.enqueue_transcription(new_job("c1"), at=T0)
    first = await store.take_transcription_job(worker="node-a", lease_seconds=30, now=T0 + 1, max_attempts=3)
    assert first is not None
    # Within the lease nobody else takes it.
    assert await store.take_transcription_job(worker="node-b", lease_seconds=30, now=T0 + 30, max_attempts=3) is None
    again = await store.take_transcription_job(worker="node-b", lease_seconds=30, now=T0 + 31, max_attempts=3)
    assert again is not None and (again.id, again.attempts, again.worker) == (first.id, 2, "node-b")
    # The first taker comes back late: its work is refused, nothing of it is stored.
    assert not await store.finish_transcription_job(first.id, said(("agent", "первый")), worker="node-a", at=T0 + 40)
    assert not await store.extend_transcription_lease(first.id, worker="node-a", until=T0 + 90)
    assert await store.fail_transcription_job(first.id, "boom", worker="node-a", at=T0 + 40, retry=True) is None
    assert await store.get_transcript("c1") is None
    assert await store.finish_transcription_job(first.id, said(("agent", "второй")), worker="node-b", at=T0 + 45)
    done = await store.get_transcription_job(first.id)
    assert (done.state, done.finished_at, done.attempts, done.lease_until) == ("done", T0 + 45, 2, None)
    transcript = await store.get_transcript("c1")
    assert transcript is not None and transcript.text() == "второй"
    # Done is done: finishing it again (a duplicate message) changes nothing.
    assert not await store.finish_transcription_job(first.id, said(("agent", "третий")), worker="node-b", at=T0 + 50)
    assert (await store.get_transcript("c1")) == transcript


async def test_a_kept_lease_is_not_taken_over(store: Store) -> None:
    await store.enqueue_transcription(new_job("long"), at=T0)
    job = await store.take_transcription_job(worker="w1", lease_seconds=30, now=T0, max_attempts=3)
    assert job is not None
    assert await store.extend_transcription_lease(job.id, worker="w1", until=T0 + 120)
    assert await store.take_transcription_job(worker="w2", lease_seconds=30, now=T0 + 60, max_attempts=3) is None
    assert (await store.get_transcription_job(job.id)).lease_until == T0 + 120


async def test_a_job_that_keeps_killing_its_worker_is_failed_with_the_reason_and_the_queue_goes_on(
        store: Store) -> None:
    await store.enqueue_transcription(new_job("poison", T0), at=T0)
    await store.enqueue_transcription(new_job("fine", T0 + 10), at=T0)
    now = T0 + 100
    for attempt in (1, 2):
        job = await store.take_transcription_job(worker=f"w{attempt}", lease_seconds=10, now=now, max_attempts=2)
        assert job is not None and (job.linkedid, job.attempts) == ("poison", attempt)
        now += 11  # the worker died: nobody finishes it, its lease runs out
    nxt = await store.take_transcription_job(worker="w3", lease_seconds=10, now=now, max_attempts=2)
    assert nxt is not None and nxt.linkedid == "fine"
    poison = await store.transcription_job_of("poison")
    assert poison is not None and poison.state == "failed" and poison.attempts == 2
    assert poison.reason is not None and "w2" in poison.reason and "lease ran out" in poison.reason
    assert await store.count_transcription_jobs() == {"queued": 0, "running": 1, "done": 0, "failed": 1}


async def test_a_failed_try_is_retried_or_given_up_and_a_failed_job_can_be_queued_again(store: Store) -> None:
    await store.enqueue_transcription(new_job("bad.wav"), at=T0)
    job = await store.take_transcription_job(worker="w1", lease_seconds=60, now=T0, max_attempts=3)
    assert job is not None
    retried = await store.fail_transcription_job(job.id, "model busy", worker="w1", at=T0 + 1, retry=True)
    assert retried is not None and (retried.state, retried.reason, retried.worker) == ("queued", "model busy", None)
    job = await store.take_transcription_job(worker="w2", lease_seconds=60, now=T0 + 2, max_attempts=3)
    assert job is not None and job.attempts == 2
    failed = await store.fail_transcription_job(job.id, "not a WAV file: truncated header", worker="w2", at=T0 + 3,
                                                retry=False)
    assert failed is not None and (failed.state, failed.reason, failed.finished_at) == (
        "failed", "not a WAV file: truncated header", T0 + 3)
    assert await store.take_transcription_job(worker="w3", lease_seconds=60, now=T0 + 4, max_attempts=3) is None
    again = await store.requeue_transcription(job.id, at=T0 + 5)
    assert (again.state, again.attempts, again.reason, again.queued_at) == ("queued", 0, None, T0 + 5)
    assert await store.take_transcription_job(worker="w4", lease_seconds=60, now=T0 + 6, max_attempts=3) is not None
    with pytest.raises(TranscriptionJobNotFound):
        await store.requeue_transcription(job.id + 1000, at=T0)


async def test_two_stores_on_one_database_never_take_one_job_twice(open_store: OpenStore) -> None:
    """Two nodes (or a daemon and ``cti transcribe``) draining one queue at once: every job run exactly once."""
    a, b = await open_store(), await open_store()
    for i in range(24):
        await a.enqueue_transcription(new_job(f"call-{i:02d}", T0 + i), at=T0)
    taken: list[tuple[str, int]] = []

    async def drain(store: Store, name: str) -> None:
        while True:
            job = await store.take_transcription_job(worker=name, lease_seconds=600, now=T0 + 1000, max_attempts=3)
            if job is None:
                return
            taken.append((name, job.id))
            assert await store.finish_transcription_job(job.id, said(("agent", f"звонок {job.linkedid}")),
                                                        worker=name, at=T0 + 1001)

    await asyncio.gather(*(drain(s, f"{n}{i}") for s, n in ((a, "a"), (b, "b")) for i in range(3)))
    ids = [job_id for _, job_id in taken]
    assert len(ids) == 24 and len(set(ids)) == 24
    assert await b.count_transcription_jobs() == {"queued": 0, "running": 0, "done": 24, "failed": 0}


async def test_the_queue_and_the_transcripts_outlive_a_restart(open_store: OpenStore) -> None:
    store = await open_store()
    await transcribed(store, "kept", said(("agent", "Добрый день"), ("customer", "Здравствуйте")), flags=("vip",))
    await store.enqueue_transcription(new_job("waiting", T0 + 5), at=T0 + 5)
    await store.close()
    again = await open_store()
    transcript = await again.get_transcript("kept")
    assert transcript is not None and transcript.text("customer") == "Здравствуйте"
    assert await again.transcript_flags("kept") == ("vip",)
    assert [j.linkedid for j in await again.list_transcription_jobs(states=["queued"])] == ["waiting"]


# -- transcripts -------------------------------------------------------------------------------------------------


async def test_a_transcript_reads_back_word_for_word(store: Store) -> None:
    words_ = (Word("agent", "Автосервис", 0.31, 0.92, 0.97), Word("agent", "«Мотор»,", 0.95, 1.4, 0.8),
              Word("customer", "ёлки-палки", 1.5, 2.25, 0.5), Word("unknown", "ok", 3.0, 3.125, 1.0))
    transcript = Transcript(words=words_, engine="whisper", model="base", duration=12.5, language=None)
    await transcribed(store, "w", transcript, flags=("complaints", "competitors", "complaints"))
    assert await store.get_transcript("w") == transcript
    assert await store.transcript_flags("w") == ("competitors", "complaints")
    assert await store.get_transcript("w", pbx="spb") is None and await store.transcript_flags("nothing") == ()


async def test_a_call_transcribed_again_has_the_new_transcript_only(store: Store) -> None:
    await transcribed(store, "again", said(("agent", "старая машина")), flags=("old",))
    job = await store.transcription_job_of("again")
    assert job is not None
    await store.requeue_transcription(job.id, at=T0 + 100)
    taken = await store.take_transcription_job(worker="w9", lease_seconds=60, now=T0 + 101, max_attempts=3)
    assert taken is not None
    assert await store.finish_transcription_job(taken.id, said(("agent", "новый мотор")), worker="w9", at=T0 + 102)
    transcript = await store.get_transcript("again")
    assert transcript is not None and transcript.text() == "новый мотор"
    assert await store.transcript_flags("again") == ()
    assert await store.search_transcripts(TranscriptQuery(text="машина")) == []
    assert [h.linkedid for h in await store.search_transcripts(TranscriptQuery(text="мотора"))] == ["again"]


# -- search ------------------------------------------------------------------------------------------------------


async def test_every_form_of_a_word_finds_the_call_at_its_first_match(store: Store) -> None:
    await transcribed(store, "ru", said(
        ("agent", "Автосервис Мотор здравствуйте"),
        ("customer", "Добрый день я хочу записать машину на ремонт"),
        ("agent", "Какая у вас машина")))
    await transcribed(store, "en", said(("agent", "Good morning"), ("customer", "Both my cars need new tyres")),
                      started=T0 + 10)
    [hit] = await store.search_transcripts(TranscriptQuery(text="машина"))
    assert (hit.linkedid, hit.speaker) == ("ru", "customer")
    # «машину» is the call's 9th word: 3 of the agent's and 5 of the customer's before it, 0.5 s each.
    assert hit.at_second == 0.5 + 8 * 0.5
    assert hit.snippet == "день я хочу записать машину на ремонт"  # the customer's: four words before, the rest after
    for form in ("машину", "Машины", "МАШИНОЙ"):
        assert [h.linkedid for h in await store.search_transcripts(TranscriptQuery(text=form))] == ["ru"], form
    for form in ("car", "Cars", "tyre"):
        assert [h.linkedid for h in await store.search_transcripts(TranscriptQuery(text=form))] == ["en"], form
    assert await store.search_transcripts(TranscriptQuery(text="грузовик")) == []


async def test_the_speaker_lane_and_every_word_of_the_query(store: Store) -> None:
    await transcribed(store, "lanes", said(("agent", "запишу вас к мастеру"), ("customer", "спасибо мастер"),
                                           ("agent", "до свидания")))
    at_agent = await store.search_transcripts(TranscriptQuery(text="мастер", speaker="agent"))
    assert [(h.speaker, h.at_second) for h in at_agent] == [("agent", 0.5 + 3 * 0.5)]
    at_customer = await store.search_transcripts(TranscriptQuery(text="мастер", speaker="customer"))
    assert [(h.speaker, h.at_second, h.snippet) for h in at_customer] == [("customer", 0.5 + 5 * 0.5,
                                                                            "спасибо мастер")]
    # Every word is required: on one lane when a lane is named, anywhere in the call otherwise.
    assert len(await store.search_transcripts(TranscriptQuery(text="спасибо свидания"))) == 1
    assert await store.search_transcripts(TranscriptQuery(text="спасибо свидания", speaker="agent")) == []
    assert await store.search_transcripts(TranscriptQuery(text="спасибо грузовик")) == []
    assert await store.search_transcripts(TranscriptQuery(text="мастер", speaker="unknown")) == []
    # No words: every transcribed call with words on that lane, opened at its start.
    [only] = await store.search_transcripts(TranscriptQuery(speaker="customer"))
    assert (only.linkedid, only.at_second, only.speaker, only.snippet) == ("lanes", 0.0, "customer",
                                                                           "спасибо мастер")
    assert await store.search_transcripts(TranscriptQuery(speaker="unknown")) == []


async def test_the_filters_of_the_journal(store: Store) -> None:
    """Date, agent (who answered, or one of the agents who did), number in any form, queue, flag, PBX."""
    calls = [
        make_call("a", caller="79161234567", answered=True, answered_by="101", started_at=T0, queue="service"),
        make_call("b", caller="74957654321", answered=True, answered_by="102", started_at=T0 + 3600,
                  queue="sales", agents_answered=("102", "103")),
        make_call("c", direction="outbound", caller="101", called="79161234567", answered=True, answered_by="101",
                  started_at=T0 + 7200),
    ]
    for call in calls:
        store.stage_call(call, None, [])
    spb = dataclasses.replace(make_call("a", caller="79161234567", answered=True, answered_by="101",
                                        started_at=T0 + 10), pbx="spb")
    store.stage_call(spb, None, [])
    await store.flush()
    await transcribed(store, "a", said(("customer", "машина не заводится")), flags=("complaints",))
    await transcribed(store, "b", said(("customer", "машина на гарантии")), started=T0 + 3600)
    await transcribed(store, "c", said(("agent", "ваша машина готова")), started=T0 + 7200,
                      flags=("competitors",))
    await transcribed(store, "a", said(("customer", "машина в Питере")), started=T0 + 10, pbx="spb")

    async def found(**filters: object) -> list[str]:
        hits = await store.search_transcripts(TranscriptQuery(text="машина", **filters))  # type: ignore[arg-type]
        return [f"{h.pbx}/{h.linkedid}" for h in hits]

    assert await found() == ["main/c", "main/b", "spb/a", "main/a"]  # newest first
    assert await found(limit=2) == ["main/c", "main/b"]
    assert await found(since=T0 + 10, until=T0 + 7200) == ["main/b", "spb/a"]
    assert await found(agent="101") == ["main/c", "spb/a", "main/a"]
    assert await found(agent="103") == ["main/b"]  # answered after a transfer: one of agents_answered
    assert await found(number="+7 (916) 123-45-67") == ["main/c", "spb/a", "main/a"]  # either side of the call
    assert await found(number="8 495 765-43-21") == ["main/b"]
    assert await found(queue="service") == ["main/a"]
    assert await found(flag="complaints") == ["main/a"]
    assert await found(flag="*") == ["main/c", "main/a"]
    assert await found(pbxs=("spb",)) == ["spb/a"]
    assert await found(pbxs=()) == []
    assert await found(agent="101", pbxs=("main",), since=T0 + 1) == ["main/c"]
    hit = (await store.search_transcripts(TranscriptQuery(text="машина", queue="sales")))[0]
    assert (hit.caller, hit.answered_by, hit.queue, hit.call_started_at, hit.flags) == (
        "74957654321", "102", "sales", T0 + 3600, ())
    assert (await store.search_transcripts(TranscriptQuery(flag="competitors")))[0].flags == ("competitors",)


@pytest.mark.parametrize("typed", [
    '"машину"', "машину*", "-машину", "машину -мотор", "NEAR(машину мотор)", "машину OR мотор", "машину AND",
    "{customer_stems}: машину", "agent_stems:машину", "^машину", "машину)", "(машину", "'; DROP TABLE transcripts; --",
    "машину\x00", "машину\u202e", "a_машин", "машину'::text[]", "%машин_", "*", '"', "-", "NOT", "()", "''", ":",
])
async def test_anything_typed_is_taken_as_its_words_and_nothing_else(store: Store, typed: str) -> None:
    """FTS5 operators, tsquery and SQL syntax, quotes and controls: no error, and the same hits as the words alone."""
    await transcribed(store, "ru", said(("customer", "запишите машину на ремонт")))
    await transcribed(store, "or", said(("agent", "машину or near and not")), started=T0 + 5)
    plain = " ".join(words(typed))
    for speaker in (None, *SPEAKERS):
        got = await store.search_transcripts(TranscriptQuery(text=typed, speaker=speaker))
        # Text with no word in it finds nothing (it is not an empty box, which lists every call).
        assert got == (await store.search_transcripts(TranscriptQuery(text=plain, speaker=speaker)) if plain else [])
    assert await store.count_transcription_jobs() == {"queued": 0, "running": 0, "done": 2, "failed": 0}


async def test_operators_typed_are_words_to_find(store: Store) -> None:
    await transcribed(store, "ru", said(("customer", "запишите машину на ремонт")))
    await transcribed(store, "or", said(("agent", "машину or near and not")), started=T0 + 5)
    assert [h.linkedid for h in await store.search_transcripts(TranscriptQuery(text="машину"))] == ["or", "ru"]
    assert await store.search_transcripts(TranscriptQuery(text="машину OR ремонт")) == []  # "or" is a word too
    assert [h.linkedid for h in await store.search_transcripts(TranscriptQuery(text="машину OR"))] == ["or"]
    assert [h.linkedid for h in await store.search_transcripts(TranscriptQuery(text="-ремонт"))] == ["ru"]
    assert [h.linkedid for h in await store.search_transcripts(TranscriptQuery(text='NEAR("машину" not)'))] == ["or"]
    assert await store.search_transcripts(TranscriptQuery(text="* \" - ( )")) == []


# -- bulk mode and the retention's log ---------------------------------------------------------------------------


async def test_calls_without_transcription_are_the_answered_recorded_calls_with_no_job(store: Store) -> None:
    rec = {"recording": "r.wav", "recordings": ("r.wav",)}
    for call in (
        make_call("old", answered=True, answered_by="101", started_at=T0 - 10, **rec),
        make_call("todo-1", answered=True, answered_by="101", started_at=T0 + 20, **rec),
        make_call("todo-2", answered=True, answered_by="102", started_at=T0 + 10, recordings=("split-in.wav",)),
        make_call("no-audio", answered=True, answered_by="101", started_at=T0 + 30),
        make_call("missed", started_at=T0 + 40, **rec),
        make_call("queued", answered=True, answered_by="101", started_at=T0 + 50, **rec),
        make_call("later", answered=True, answered_by="101", started_at=T0 + 5000, **rec),
    ):
        store.stage_call(call, None, [])
    await store.flush()
    await store.enqueue_transcription(new_job("queued", T0 + 50), at=T0 + 60)
    todo = await store.calls_without_transcription(since=T0, until=T0 + 1000)
    assert [c.linkedid for c in todo] == ["todo-2", "todo-1"]  # oldest first
    assert todo[1].recordings == ("r.wav",) and todo[1].answered_by == "101"
    assert [c.linkedid for c in await store.calls_without_transcription(since=T0, limit=1)] == ["todo-2"]
    assert [c.linkedid for c in await store.calls_without_transcription(since=T0)] == ["todo-2", "todo-1", "later"]
    assert await store.calls_without_transcription(since=T0, pbxs=("spb",)) == []


async def test_the_retention_log_keeps_each_deleted_file_newest_first(store: Store) -> None:
    await store.forget_audio("c1", pbx="main", names=["c1-in.wav", "c1-out.wav"], at=T0, reason="older than 90 days")
    await store.forget_audio("c2", pbx="spb", names=["c2.wav"], at=T0 + 60, reason="older than 90 days")
    await store.forget_audio("c3", pbx="main", names=[], at=T0 + 70, reason="nothing")
    log = await store.deleted_audio()
    assert [(d.pbx, d.linkedid, d.name, d.at) for d in log] == [
        ("spb", "c2", "c2.wav", T0 + 60), ("main", "c1", "c1-out.wav", T0), ("main", "c1", "c1-in.wav", T0)]
    assert log[0].reason == "older than 90 days"
    assert [d.name for d in await store.deleted_audio(since=T0 + 1)] == ["c2.wav"]
    assert [d.name for d in await store.deleted_audio(limit=1)] == ["c2.wav"]
    await transcribed(store, "c1", said(("agent", "запись удалена")))  # the transcript outlives its audio
    assert await store.get_transcript("c1") is not None
