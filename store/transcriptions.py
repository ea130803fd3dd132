"""The transcription queue, the transcripts and their search on both stores (``store.repository.Transcriptions``).

Why one module, as ``reminders.py``: the statements are the same on SQLite and PostgreSQL (named parameters, which
the PostgreSQL store numbers; ``ON CONFLICT``, ``RETURNING``) and so is every rule. What differs is small and
lives in each backend's subclass (``store/sqlite/transcripts.py``, ``store/postgres/transcripts.py``): how the
next job is locked, how the index of stems is asked, how a word's stems are compared, how rows are written many at
a time, and how a journal row becomes a record.

**Exactly once.** A job is written before it is run (``enqueue_transcription``); it is taken with a lease in one
transaction (SQLite: the one writer; PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so two nodes never take one job); its
transcript and its ``done`` are one transaction, accepted only while the job is still the taker's (``state =
'running' AND worker = :worker``): a job another taker ran after a lease ran out is stored once, by whoever holds it.

**Search.** Every word's stems (``cti/stemming.py``) are kept beside it, and each speaker's stems in order on the
transcript's row, indexed (SQLite FTS5, PostgreSQL GIN): a query's stems must all be on the lane it names (or each on
any lane), then the first word carrying one of them gives the moment the player opens at. The query's text becomes
stems of letters and digits only and is bound as a parameter: quotes, ``NEAR``, ``*``, ``-`` are words or nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from cti.phones import normalize_number
from cti.records import DEFAULT_PBX, CallRecord
from cti.stemming import stems as stems_of
from cti.transcripts import (
    SPEAKERS,
    AudioDeletion,
    AudioLayout,
    AudioSource,
    EngineChoice,
    EngineName,
    JobState,
    NewJob,
    Speaker,
    Transcript,
    TranscriptHit,
    TranscriptionJob,
    TranscriptQuery,
    Word,
)
from store.listing import pbx_condition, pbx_set
from store.repository import TranscriptionJobNotFound

T = TypeVar("T")
#: A row as either driver gives it (``sqlite3.Row``, ``asyncpg.Record``): read by column name.
Row = Any

JOB_STATES: tuple[JobState, ...] = ("queued", "running", "done", "failed")
#: The most hits one search returns, whatever it asks for.
MAX_HITS = 500
#: Words of the snippet before and after the first match (on the matching speaker's lane).
SNIPPET_BEFORE, SNIPPET_AFTER = 4, 8

_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_JOB_COLUMNS = ("pbx", "linkedid", "sources", "choice", "call_started_at", "queued_at")
_NEXT_JOB = ("SELECT * FROM transcription_jobs WHERE state = 'queued' OR (state = 'running' AND lease_until <= :now) "
             "ORDER BY call_started_at, id LIMIT 1")
_WORD_COLUMNS = ("transcript_id", "position", "speaker", "text", "start_s", "end_s", "conf", "stems")
_INSERT_WORD = (f"INSERT INTO transcript_words ({', '.join(_WORD_COLUMNS)}) "
                f"VALUES ({', '.join(':' + c for c in _WORD_COLUMNS)})")
_INSERT_FLAG = "INSERT INTO transcript_flags (transcript_id, flag) VALUES (:transcript_id, :flag)"
#: The lane columns of ``transcripts``, by speaker.
LANE_COLUMN: dict[Speaker, str] = {"agent": "agent_stems", "customer": "customer_stems", "unknown": "unknown_stems"}


# -- rows ----------------------------------------------------------------------------------------------------------


def sources_json(sources: Sequence[AudioSource]) -> str:
    return _encode([{"name": s.name, "layout": s.layout, "left": s.left} for s in sources])


def choice_json(choice: EngineChoice) -> str:
    return _encode({"engine": choice.engine, "model": choice.model, "language": choice.language})


def _opt(value: Any) -> float | None:
    return float(value) if value is not None else None


def job_from_row(row: Row) -> TranscriptionJob:
    """A ``transcription_jobs`` row (either driver's)."""
    state = row["state"]
    if state not in JOB_STATES:
        raise ValueError(f"transcription job #{row['id']}: unknown state {state!r}")
    sources = tuple(AudioSource(name=str(s["name"]), layout=cast(AudioLayout, s["layout"]),
                                left=cast(Speaker, s.get("left", "agent")))
                    for s in json.loads(row["sources"] or "[]"))
    c = json.loads(row["choice"] or "{}")
    choice = EngineChoice(engine=cast(EngineName, c.get("engine", "vosk")), model=str(c.get("model", "")),
                          language=c.get("language"))
    return TranscriptionJob(
        id=int(row["id"]), pbx=row["pbx"], linkedid=row["linkedid"], sources=sources, choice=choice,
        call_started_at=float(row["call_started_at"]), state=cast(JobState, state), attempts=int(row["attempts"]),
        queued_at=float(row["queued_at"]), started_at=_opt(row["started_at"]), finished_at=_opt(row["finished_at"]),
        worker=row["worker"], lease_until=_opt(row["lease_until"]), reason=row["reason"])


def word_rows(transcript_id: int, transcript: Transcript) -> list[dict[str, Any]]:
    """The ``transcript_words`` rows of a transcript, in its order, each word with its stems."""
    out = []
    for position, w in enumerate(transcript.words):
        if w.speaker not in SPEAKERS:
            raise ValueError(f"word {position}: unknown speaker {w.speaker!r}")
        out.append({"transcript_id": transcript_id, "position": position, "speaker": w.speaker, "text": w.text,
                    "start_s": float(w.start), "end_s": float(w.end), "conf": float(w.conf),
                    "stems": " ".join(stems_of(w.text))})
    return out


def lane_stems(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Each speaker's stems in order (the ``transcripts`` lane columns), from the word rows."""
    lanes: dict[Speaker, list[str]] = {s: [] for s in SPEAKERS}
    for r in rows:
        if r["stems"]:
            lanes[r["speaker"]].append(r["stems"])
    return {LANE_COLUMN[s]: " ".join(parts) for s, parts in lanes.items()}


def word_from_row(row: Row) -> Word:
    return Word(speaker=cast(Speaker, row["speaker"]), text=row["text"], start=float(row["start_s"]),
                end=float(row["end_s"]), conf=float(row["conf"]))


def deletion_from_row(row: Row) -> AudioDeletion:
    return AudioDeletion(pbx=row["pbx"], linkedid=row["linkedid"], name=row["name"], at=float(row["at"]),
                         reason=row["reason"])


def query_stems(text: str) -> list[str]:
    """A query's stems, each once, in the order typed."""
    return list(dict.fromkeys(stems_of(text)))


# -- the concern ---------------------------------------------------------------------------------------------------


class TranscriptOps:
    """``enqueue_transcription`` ... ``deleted_audio``: the ``store.repository.Transcriptions`` concern.

    A backend's subclass gives the dialect: ``_LOCK_NEXT``, ``_HAS_RECORDING``, ``_terms_condition``,
    ``_word_has_stem``, ``_insert_many``, ``_call_record`` (see the module's docstring)."""

    #: What follows the statement that picks the next job (PostgreSQL: ``FOR UPDATE SKIP LOCKED``).
    _LOCK_NEXT = ""
    #: A condition on journal row ``c``: the call has a recording.
    _HAS_RECORDING = "c.recording IS NOT NULL"

    if TYPE_CHECKING:  # given by the backend's base and its RegisterOps (elsewhere in the store's MRO)
        region: str

        async def _manual(self, work: Callable[[Any], Awaitable[T]]) -> T: ...
        async def _rows_in(self, conn: Any, sql: str, params: dict[str, Any]) -> Sequence[Row]: ...
        async def _read(self, sql: str, params: dict[str, Any]) -> Sequence[Row]: ...

    # -- the dialect --------------------------------------------------------------------------------------------

    def _terms_condition(self, stems: Sequence[str], speaker: Speaker | None, params: dict[str, Any]) -> str:
        """A condition on transcript ``t``: every stem on ``speaker``'s lane (None: each stem on some lane)."""
        raise NotImplementedError

    def _word_has_stem(self, stems: Sequence[str], params: dict[str, Any]) -> str:
        """A condition on word ``w``: one of its stems is one of ``stems``."""
        raise NotImplementedError

    async def _insert_many(self, conn: Any, sql: str, rows: Sequence[dict[str, Any]]) -> None:
        """Run ``sql`` (named parameters) once per row, in one round trip where the driver allows."""
        raise NotImplementedError

    def _call_record(self, row: Row) -> CallRecord:
        raise NotImplementedError

    # -- the queue ----------------------------------------------------------------------------------------------

    async def enqueue_transcription(self, job: NewJob, *, at: float) -> TranscriptionJob | None:
        params = {"pbx": job.pbx, "linkedid": job.linkedid, "sources": sources_json(job.sources),
                  "choice": choice_json(job.choice), "call_started_at": float(job.call_started_at),
                  "queued_at": float(at)}
        sql = (f"INSERT INTO transcription_jobs ({', '.join(_JOB_COLUMNS)}) "
               f"VALUES ({', '.join(':' + c for c in _JOB_COLUMNS)}) "
               "ON CONFLICT (pbx, linkedid) DO NOTHING RETURNING *")

        async def work(conn: Any) -> TranscriptionJob | None:
            made = await self._rows_in(conn, sql, params)
            return job_from_row(made[0]) if made else None

        return await self._manual(work)

    async def requeue_transcription(self, job_id: int, *, at: float) -> TranscriptionJob:
        async def work(conn: Any) -> TranscriptionJob:
            rows = await self._rows_in(
                conn, "UPDATE transcription_jobs SET state = 'queued', attempts = 0, queued_at = :at, "
                "started_at = NULL, finished_at = NULL, worker = NULL, lease_until = NULL, reason = NULL "
                "WHERE id = :id AND state IN ('done', 'failed') RETURNING *", {"id": job_id, "at": float(at)})
            if rows:
                return job_from_row(rows[0])
            return await self._job_in(conn, job_id)  # queued or running already: as it is

        return await self._manual(work)

    async def take_transcription_job(self, *, worker: str, lease_seconds: float, now: float,
                                     max_attempts: int) -> TranscriptionJob | None:
        if lease_seconds <= 0 or max_attempts < 1:
            raise ValueError("lease_seconds must be > 0 and max_attempts >= 1")
        now = float(now)
        # A read first: an idle queue (most of the day) never takes the write lock.
        if not await self._read(_NEXT_JOB, {"now": now}):
            return None

        async def work(conn: Any) -> TranscriptionJob | None:
            while True:
                found = await self._rows_in(conn, _NEXT_JOB + self._LOCK_NEXT, {"now": now})
                if not found:
                    return None
                job = job_from_row(found[0])
                if job.attempts >= max_attempts:
                    await self._rows_in(
                        conn, "UPDATE transcription_jobs SET state = 'failed', finished_at = :now, "
                        "lease_until = NULL, reason = :reason WHERE id = :id",
                        {"id": job.id, "now": now, "reason": _given_up(job, max_attempts)})
                    continue
                rows = await self._rows_in(
                    conn, "UPDATE transcription_jobs SET state = 'running', attempts = attempts + 1, "
                    "started_at = :now, worker = :worker, lease_until = :until WHERE id = :id RETURNING *",
                    {"id": job.id, "now": now, "worker": worker, "until": now + float(lease_seconds)})
                return job_from_row(rows[0])

        return await self._manual(work)

    async def extend_transcription_lease(self, job_id: int, *, worker: str, until: float) -> bool:
        async def work(conn: Any) -> bool:
            return bool(await self._rows_in(
                conn, "UPDATE transcription_jobs SET lease_until = :until WHERE id = :id AND state = 'running' "
                "AND worker = :worker RETURNING id", {"id": job_id, "worker": worker, "until": float(until)}))

        return await self._manual(work)

    async def finish_transcription_job(self, job_id: int, transcript: Transcript, *, worker: str, at: float,
                                       flags: Sequence[str] = ()) -> bool:
        async def work(conn: Any) -> bool:
            done = await self._rows_in(
                conn, "UPDATE transcription_jobs SET state = 'done', finished_at = :at, lease_until = NULL, "
                "reason = NULL WHERE id = :id AND state = 'running' AND worker = :worker RETURNING *",
                {"id": job_id, "worker": worker, "at": float(at)})
            if not done:
                return False
            job = job_from_row(done[0])
            key = {"pbx": job.pbx, "linkedid": job.linkedid}
            # A call transcribed again (``requeue``) has one transcript: the new one (also over a live one).
            await self._rows_in(conn, "DELETE FROM transcripts WHERE pbx = :pbx AND linkedid = :linkedid", key)
            await self._insert_transcript(conn, key, job.call_started_at, transcript, at, flags)
            return True

        return await self._manual(work)

    async def keep_live_transcript(self, linkedid: str, transcript: Transcript, *, pbx: str = DEFAULT_PBX,
                                   call_started_at: float, at: float, flags: Sequence[str] = ()) -> bool:
        async def work(conn: Any) -> bool:
            key = {"pbx": pbx, "linkedid": linkedid}
            if await self._rows_in(conn, "SELECT id FROM transcripts WHERE pbx = :pbx AND linkedid = :linkedid",
                                   key):
                return False
            await self._insert_transcript(conn, key, call_started_at, transcript, at, flags)
            return True

        return await self._manual(work)

    async def _insert_transcript(self, conn: Any, key: dict[str, str], started: float, transcript: Transcript,
                                 at: float, flags: Sequence[str]) -> None:
        """A call's transcript row, its words (with their stems) and its flags, in the caller's transaction."""
        words = word_rows(0, transcript)
        made = await self._rows_in(
            conn, "INSERT INTO transcripts (pbx, linkedid, call_started_at, engine, model, duration, language, "
            "created_at, agent_stems, customer_stems, unknown_stems) VALUES (:pbx, :linkedid, :started, "
            ":engine, :model, :duration, :language, :at, :agent_stems, :customer_stems, :unknown_stems) "
            "RETURNING id",
            {**key, "started": float(started), "engine": transcript.engine, "model": transcript.model,
             "duration": float(transcript.duration), "language": transcript.language, "at": float(at),
             **lane_stems(words)})
        transcript_id = int(made[0]["id"])
        for w in words:
            w["transcript_id"] = transcript_id
        if words:
            await self._insert_many(conn, _INSERT_WORD, words)
        chosen = sorted(set(flags))
        if chosen:
            await self._insert_many(conn, _INSERT_FLAG,
                                    [{"transcript_id": transcript_id, "flag": f} for f in chosen])

    async def fail_transcription_job(self, job_id: int, reason: str, *, worker: str, at: float,
                                     retry: bool) -> TranscriptionJob | None:
        async def work(conn: Any) -> TranscriptionJob | None:
            rows = await self._rows_in(
                conn, "UPDATE transcription_jobs SET state = :state, reason = :reason, lease_until = NULL, "
                "finished_at = :finished, worker = CASE WHEN :retry = 1 THEN NULL ELSE worker END "
                "WHERE id = :id AND state = 'running' AND worker = :worker RETURNING *",
                {"id": job_id, "worker": worker, "reason": reason, "state": "queued" if retry else "failed",
                 "finished": None if retry else float(at), "retry": 1 if retry else 0})
            return job_from_row(rows[0]) if rows else None

        return await self._manual(work)

    async def get_transcription_job(self, job_id: int) -> TranscriptionJob:
        rows = await self._read("SELECT * FROM transcription_jobs WHERE id = :id", {"id": job_id})
        if not rows:
            raise TranscriptionJobNotFound(job_id)
        return job_from_row(rows[0])

    async def _job_in(self, conn: Any, job_id: int) -> TranscriptionJob:
        rows = await self._rows_in(conn, "SELECT * FROM transcription_jobs WHERE id = :id", {"id": job_id})
        if not rows:
            raise TranscriptionJobNotFound(job_id)
        return job_from_row(rows[0])

    async def transcription_job_of(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> TranscriptionJob | None:
        rows = await self._read("SELECT * FROM transcription_jobs WHERE pbx = :pbx AND linkedid = :linkedid",
                                {"pbx": pbx, "linkedid": linkedid})
        return job_from_row(rows[0]) if rows else None

    async def list_transcription_jobs(self, *, states: Collection[JobState] | None = None,
                                      pbxs: Collection[str] | None = None, limit: int = 200) -> list[TranscriptionJob]:
        params: dict[str, Any] = {"limit": max(0, int(limit))}
        where: list[str] = []
        if states is not None:
            wanted = sorted(set(states))
            if any(s not in JOB_STATES for s in wanted):
                raise ValueError(f"unknown job state among {wanted}")
            for i, s in enumerate(wanted):
                params[f"state{i}"] = s
            where.append(f"state IN ({', '.join(f':state{i}' for i in range(len(wanted)))})" if wanted else "1 = 0")
        chosen = pbx_set(pbxs)
        if chosen is not None:
            where.append(pbx_condition("pbx", chosen, params))
        sql = ("SELECT * FROM transcription_jobs" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY call_started_at, id LIMIT :limit")
        return [job_from_row(r) for r in await self._read(sql, params)]

    async def count_transcription_jobs(self) -> dict[JobState, int]:
        counts: dict[JobState, int] = dict.fromkeys(JOB_STATES, 0)
        for row in await self._read("SELECT state, count(*) AS n FROM transcription_jobs GROUP BY state", {}):
            if row["state"] in counts:
                counts[row["state"]] = int(row["n"])
        return counts

    # -- transcripts --------------------------------------------------------------------------------------------

    async def get_transcript(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> Transcript | None:
        found = await self._read("SELECT * FROM transcripts WHERE pbx = :pbx AND linkedid = :linkedid",
                                 {"pbx": pbx, "linkedid": linkedid})
        if not found:
            return None
        t = found[0]
        words = await self._read("SELECT speaker, text, start_s, end_s, conf FROM transcript_words "
                                 "WHERE transcript_id = :id ORDER BY position", {"id": int(t["id"])})
        return Transcript(words=tuple(word_from_row(w) for w in words), engine=cast(EngineName, t["engine"]),
                          model=t["model"], duration=float(t["duration"]), language=t["language"])

    async def transcript_flags(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> tuple[str, ...]:
        rows = await self._read("SELECT f.flag FROM transcript_flags f JOIN transcripts t ON t.id = f.transcript_id "
                                "WHERE t.pbx = :pbx AND t.linkedid = :linkedid ORDER BY f.flag",
                                {"pbx": pbx, "linkedid": linkedid})
        return tuple(r["flag"] for r in rows)

    async def search_transcripts(self, query: TranscriptQuery) -> list[TranscriptHit]:
        if query.speaker is not None and query.speaker not in SPEAKERS:
            raise ValueError(f"unknown speaker {query.speaker!r}")
        stems = query_stems(query.text)
        if query.text.strip() and not stems:
            return []  # words asked for, none a word can match (only punctuation, operators, quotes)
        params: dict[str, Any] = {"limit": max(1, min(int(query.limit), MAX_HITS))}
        where = self._search_filters(query, params)
        if stems:
            where.append(self._terms_condition(stems, query.speaker, params))
        elif query.speaker is not None:
            params["speaker"] = query.speaker
            where.append("EXISTS (SELECT 1 FROM transcript_words w WHERE w.transcript_id = t.id "
                         "AND w.speaker = :speaker)")
        sql = ("SELECT t.id, t.pbx, t.linkedid, t.call_started_at, c.caller, c.answered_by, c.queue "
               "FROM transcripts t LEFT JOIN calls c ON c.linkedid = t.linkedid AND c.pbx = t.pbx"
               + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY t.call_started_at DESC, t.id DESC LIMIT :limit")
        found = await self._read(sql, params)
        if not found:
            return []
        flags = await self._flags_of([int(r["id"]) for r in found])
        return [await self._hit(r, stems, query.speaker, flags.get(int(r["id"]), ())) for r in found]

    def _search_filters(self, query: TranscriptQuery, params: dict[str, Any]) -> list[str]:
        """The filters of a search on transcript ``t`` and its journal row ``c`` (LEFT JOINed: a call the journal
        does not hold is found by its words, never by a filter of the journal's)."""
        where: list[str] = []
        if query.since is not None:
            where.append("t.call_started_at >= :since")
            params["since"] = float(query.since)
        if query.until is not None:
            where.append("t.call_started_at < :until")
            params["until"] = float(query.until)
        chosen = pbx_set(query.pbxs)
        if chosen is not None:
            where.append(pbx_condition("t.pbx", chosen, params))
        if query.agent is not None:
            params["agent"] = query.agent
            where.append("(c.answered_by = :agent OR EXISTS (SELECT 1 FROM call_agents a WHERE a.pbx = t.pbx "
                         "AND a.linkedid = t.linkedid AND a.agent = :agent AND a.answered))")
        if query.number is not None:
            key = normalize_number(query.number, self.region)
            if key is not None:
                params["number"] = key
                where.append("(c.caller_key = :number OR c.called_key = :number)")
            else:  # a withheld or unreadable number: as written, as the journal's own search does
                params["number"] = query.number
                where.append("((c.caller_key IS NULL AND c.caller = :number) "
                             "OR (c.called_key IS NULL AND c.called = :number))")
        if query.queue is not None:
            params["queue"] = query.queue
            where.append("c.queue = :queue")
        if query.flag is not None:
            flagged = "SELECT 1 FROM transcript_flags f WHERE f.transcript_id = t.id"
            if query.flag != "*":
                params["flag"] = query.flag
                flagged += " AND f.flag = :flag"
            where.append(f"EXISTS ({flagged})")
        return where

    async def _flags_of(self, ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
        params: dict[str, Any] = {}
        names = []
        for i, transcript_id in enumerate(ids):
            params[f"id{i}"] = transcript_id
            names.append(f":id{i}")
        rows = await self._read(f"SELECT transcript_id, flag FROM transcript_flags WHERE transcript_id IN "
                                f"({', '.join(names)}) ORDER BY transcript_id, flag", params)
        out: dict[int, list[str]] = {}
        for r in rows:
            out.setdefault(int(r["transcript_id"]), []).append(r["flag"])
        return {k: tuple(v) for k, v in out.items()}

    async def _hit(self, row: Row, stems: Sequence[str], speaker: Speaker | None,
                   flags: tuple[str, ...]) -> TranscriptHit:
        """A found call and where in it: its first word with one of the query's stems (on ``speaker``'s lane when
        given); without words asked for, the start of the call (``at_second`` 0) and its first words."""
        transcript_id = int(row["id"])
        params: dict[str, Any] = {"id": transcript_id}
        where = ["w.transcript_id = :id"]
        if speaker is not None:
            params["speaker"] = speaker
            where.append("w.speaker = :speaker")
        if stems:
            where.append(self._word_has_stem(stems, params))
        first = await self._read(f"SELECT w.position, w.speaker, w.start_s FROM transcript_words w "
                                 f"WHERE {' AND '.join(where)} ORDER BY w.position LIMIT 1", params)
        at_second, lane, snippet = 0.0, speaker, ""
        if first:
            position = int(first[0]["position"])
            lane = cast(Speaker, first[0]["speaker"]) if stems or speaker is not None else None
            if stems:
                at_second = float(first[0]["start_s"])
            snippet = await self._snippet(transcript_id, position, cast(Speaker, first[0]["speaker"]))
        return TranscriptHit(pbx=row["pbx"], linkedid=row["linkedid"], call_started_at=float(row["call_started_at"]),
                             caller=row["caller"], answered_by=row["answered_by"], queue=row["queue"], speaker=lane,
                             at_second=at_second, snippet=snippet, flags=flags)

    async def _snippet(self, transcript_id: int, position: int, speaker: Speaker) -> str:
        """A few words of ``speaker`` around the word at ``position``, as plain text."""
        params = {"id": transcript_id, "speaker": speaker, "position": position}
        before = await self._read("SELECT text FROM transcript_words WHERE transcript_id = :id AND speaker = :speaker "
                                  f"AND position < :position ORDER BY position DESC LIMIT {SNIPPET_BEFORE}", params)
        after = await self._read("SELECT text FROM transcript_words WHERE transcript_id = :id AND speaker = :speaker "
                                 f"AND position >= :position ORDER BY position LIMIT {SNIPPET_AFTER}", params)
        return " ".join([*(r["text"] for r in reversed(before)), *(r["text"] for r in after)])

    async def calls_without_transcription(self, *, since: float, until: float | None = None,
                                          pbxs: Collection[str] | None = None,
                                          limit: int = 1000) -> list[CallRecord]:
        params: dict[str, Any] = {"since": float(since), "limit": max(0, int(limit))}
        where = ["c.answered", "c.started_at >= :since", self._HAS_RECORDING,
                 "NOT EXISTS (SELECT 1 FROM transcription_jobs j WHERE j.pbx = c.pbx AND j.linkedid = c.linkedid)"]
        if until is not None:
            params["until"] = float(until)
            where.append("c.started_at < :until")
        chosen = pbx_set(pbxs)
        if chosen is not None:
            where.append(pbx_condition("c.pbx", chosen, params))
        sql = (f"SELECT c.* FROM calls c WHERE {' AND '.join(where)} "
               "ORDER BY c.started_at, c.linkedid, c.pbx LIMIT :limit")
        return [self._call_record(r) for r in await self._read(sql, params)]

    # -- the retention's log ------------------------------------------------------------------------------------

    async def forget_audio(self, linkedid: str, *, pbx: str, names: Sequence[str], at: float, reason: str) -> None:
        rows = [{"pbx": pbx, "linkedid": linkedid, "name": n, "at": float(at), "reason": reason}
                for n in dict.fromkeys(names)]
        if not rows:
            return

        async def work(conn: Any) -> None:
            await self._insert_many(conn, "INSERT INTO audio_deletions (pbx, linkedid, name, at, reason) "
                                    "VALUES (:pbx, :linkedid, :name, :at, :reason)", rows)

        await self._manual(work)

    async def deleted_audio(self, *, since: float | None = None, limit: int = 500) -> list[AudioDeletion]:
        params: dict[str, Any] = {"limit": max(0, int(limit))}
        where = ""
        if since is not None:
            params["since"] = float(since)
            where = " WHERE at >= :since"
        rows = await self._read(f"SELECT * FROM audio_deletions{where} ORDER BY at DESC, id DESC LIMIT :limit",
                                params)
        return [deletion_from_row(r) for r in rows]


def _given_up(job: TranscriptionJob, max_attempts: int) -> str:
    """Why a job that used up its tries failed: the last try's own reason, or that its worker never came back."""
    if job.state == "running":
        return (f"the worker ({job.worker}) died or was stopped during try {job.attempts} of {max_attempts}: "
                "its lease ran out")
    return f"gave up after {job.attempts} tries" + (f": {job.reason}" if job.reason else "")
