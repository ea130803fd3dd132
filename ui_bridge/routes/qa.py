"""The QA page's API (issue 14): a call's transcript, its audio, comments pinned to a moment, scores against the
checklist, the per-agent report, and the search of every call's words.

Roles ``qa`` and ``admin`` only (the route table, ``ui_bridge/http.py``): an agent or an employee is refused the page,
every route here and the audio. Each user reaches only the PBXs they belong to: a call of another PBX is 403, a
listing is narrowed to theirs (``ui_bridge/pbx_access.py``).

The audio: ``GET /api/calls/{pbx}/{linkedid}/audio/{index}`` plays the call's ``index``-th recording as the journal
lists it. The client names a number, never a file; the file is sent as every recording is
(``ui_bridge/recording_audio.py``: the journal's name made a path by ``asterisk/recording_files.py``, HTTP Range,
``Cache-Control: no-store``), so the player seeks without loading the whole call.
The waveform is drawn in the browser from the same audio (Web Audio API, ``ui_bridge/static/qa.js``): whatever the
browser can play it can draw, with no second decoder here (``ui_bridge`` may not import ``recognizer/``).
"""

from __future__ import annotations

import csv
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import tzinfo
from typing import Annotated, Any, TextIO

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from asterisk.recording_files import RecordingSettings
from cti.qa import AgentScore, Checklist, QaComment, QaScore, score_of
from cti.records import CallRecord
from cti.safe_text import csv_cells
from cti.transcripts import SPEAKERS, Speaker, TranscriptionJob, TranscriptQuery
from store.repository import Store, User
from ui_bridge.settings import QaSettings

from ..api_models import BadRequest, period, read_model, whole_number
from ..csv_download import csv_response, download_format
from ..notifier import Notifier
from ..pbx_access import PbxRefused, belongs, listing_filter
from ..recording_audio import recording_response, recordings_of
from .gate import api_error

log = logging.getLogger(__name__)

#: The 403 of the QA page, its routes and the audio, for agents, employees and integration tokens.
QA_IS_FOR = "the QA page (transcripts, recordings, comments, scores) is for QA and admins"
#: The 403 of a comment or a score sent from a foreign page.
FOREIGN_QA = "this origin may not comment on or score calls"
#: A linkedid as Asterisk writes it (``1795479242.0``), with room for other PBXs' ids; anything else is no call.
_LINKEDID = re.compile(r"[A-Za-z0-9._\-]{1,64}")
#: A filter's text (agent, queue, number, keyword list): one short line.
_FILTER_TEXT = 64
#: The search box: a few words.
_QUERY_TEXT = 200
#: A comment's text: no control character but line breaks and tabs.
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]*$"
#: The longest period a report covers (days): a year and a day of slack.
_REPORT_DAYS = 367
_CSV_COLUMNS = ("agent", "name", "calls", "average", "lowest", "highest")


class _QaBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CommentBody(_QaBody):
    """``POST /api/calls/{pbx}/{linkedid}/comments``: a remark pinned ``at_second`` seconds into the recording."""

    at_second: Annotated[float, Field(ge=0, le=86_400, allow_inf_nan=False)]
    #: Line breaks are kept; other control characters (a NUL, which PostgreSQL cannot store; bidi overrides) refused.
    text: Annotated[str, Field(min_length=1, max_length=2000, pattern=_TEXT)]


class ScoreBody(_QaBody):
    """``POST /api/calls/{pbx}/{linkedid}/scores``: the filled checklist, ``{item key: points}`` (JSON integers)."""

    answers: Annotated[dict[Annotated[str, Field(max_length=40)], StrictInt], Field(max_length=50)]


class QaRoutes:
    """The handlers of the QA page's routes; the route table (``ui_bridge/http.py``) says who may call them."""

    def __init__(self, store: Callable[[], Store], notifier: Notifier, followed: Sequence[str], settings: QaSettings,
                 recording: RecordingSettings) -> None:
        self.store = store
        self.notifier = notifier
        self.followed = list(followed)
        self.checklist: Checklist = settings.checklist_of()
        self.recording = recording

    @property
    def tz(self) -> tzinfo | None:
        return self.notifier.messages.tz

    # -- the call ------------------------------------------------------------------------------------------------

    async def transcript(self, request: Request, user: User) -> Response:
        """The call as the QA page opens it: its journal row, its recordings (by index), the transcript's words per
        speaker (or, with none yet, the job's state and the reason it failed) and the keyword lists it matched."""
        try:
            pbx, linkedid, record = await self._call(request, user)
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        store = self.store()
        job = await store.transcription_job_of(linkedid, pbx=pbx)
        transcript = await store.get_transcript(linkedid, pbx=pbx)
        flags = await store.transcript_flags(linkedid, pbx=pbx) if transcript is not None else ()
        layouts = {s.name: s.layout for s in job.sources} if job is not None else {}
        return JSONResponse({
            "call": self.notifier.messages.call_json(record),
            "recordings": [{"index": i, "name": name, "layout": layouts.get(name),
                            "url": f"/api/calls/{pbx}/{linkedid}/audio/{i}"}
                           for i, name in enumerate(recordings_of(record))],
            "transcript": None if transcript is None else {
                "engine": transcript.engine, "model": transcript.model, "duration": transcript.duration,
                "language": transcript.language,
                "words": [{"speaker": w.speaker, "text": w.text, "start": round(w.start, 3), "end": round(w.end, 3),
                           "conf": round(w.conf, 3)} for w in transcript.words]},
            "job": None if job is None else self._job_json(job),
            "flags": list(flags),
        })

    async def audio(self, request: Request, user: User) -> Response:
        """The call's ``index``-th recording, with HTTP Range (Starlette's ``FileResponse``)."""
        try:
            pbx, _linkedid, record = await self._call(request, user)
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        return recording_response(self.recording, pbx, record, request.path_params["index"])

    async def comments(self, request: Request, user: User) -> Response:
        try:
            pbx, linkedid, _record = await self._call(request, user)
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        comments = await self.store().qa_comments(linkedid, pbx=pbx)
        return JSONResponse({"comments": [self._comment_json(c) for c in comments]})

    async def add_comment(self, request: Request, user: User) -> Response:
        try:
            pbx, linkedid, _record = await self._call(request, user)
            body = await read_model(request, CommentBody)
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        comment = await self.store().add_qa_comment(linkedid, pbx=pbx, at_second=body.at_second, text=body.text,
                                                    by=user.name, at=time.time())
        return JSONResponse({"comment": self._comment_json(comment)}, status_code=201)

    async def scores(self, request: Request, user: User) -> Response:
        try:
            pbx, linkedid, _record = await self._call(request, user)
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        scores = await self.store().qa_scores(linkedid, pbx=pbx)
        return JSONResponse({"scores": [self._score_json(s) for s in scores]})

    async def add_score(self, request: Request, user: User) -> Response:
        """Score the call against the configured checklist (replacing this reviewer's earlier score); the agent is
        the one who answered the call, as the journal says."""
        try:
            pbx, linkedid, record = await self._call(request, user)
            body = await read_model(request, ScoreBody)
            points, max_points = score_of(self.checklist, body.answers)
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        except (BadRequest, ValueError) as exc:
            return api_error(400, "bad_request", str(exc))
        score = await self.store().save_qa_score(
            linkedid, pbx=pbx, checklist=self.checklist.name, answers=dict(body.answers), points=points,
            max_points=max_points, agent=record.answered_by, by=user.name, at=time.time())
        return JSONResponse({"score": self._score_json(score)}, status_code=201)

    # -- the page's lists ----------------------------------------------------------------------------------------

    async def read_checklist(self, request: Request, user: User) -> Response:
        return JSONResponse({"name": self.checklist.name, "max_points": self.checklist.max_points, "items": [
            {"key": i.key, "title": i.title, "kind": i.kind, "points": i.points, "weight": i.weight}
            for i in self.checklist.items]})

    async def report(self, request: Request, user: User) -> Response:
        """The per-agent report over ``since``..``until`` (JSON, or ``format=csv`` as ``;``-separated CSV with
        formulas neutralised, UTF-8 with a BOM or cp1251 like the other reports)."""
        q = request.query_params
        try:
            fmt, encoding = download_format(q)
            since, until = period(q, self.tz)
            if since is None or until is None:
                raise BadRequest("since and until: required (a date, 2026-11-01, or an ISO 8601 time)")
            if until <= since:
                raise BadRequest("until is not after since: the period is empty")
            if until - since > _REPORT_DAYS * 86400:
                raise BadRequest(f"the period is longer than {_REPORT_DAYS} days")
            checklist = q.get("checklist") or self.checklist.name
            if len(checklist) > 64:
                raise BadRequest("checklist: a checklist's name (at most 64 characters)")
            pbxs = listing_filter(user, self.followed, q.get("pbx"))
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        rows = await self.store().qa_agent_report(since=since, until=until, pbxs=pbxs, checklist=checklist)
        agents = [self._agent_json(row, pbxs) for row in rows]
        if fmt == "json":
            return JSONResponse({"since": self.notifier.time(since), "until": self.notifier.time(until),
                                 "checklist": checklist, "agents": agents})

        def write(out: TextIO) -> None:
            writer = csv.writer(out, delimiter=";", lineterminator="\r\n")  # as 1C and a Russian Excel open it
            writer.writerow(_CSV_COLUMNS)
            writer.writerows(csv_cells(agent, _CSV_COLUMNS) for agent in agents)

        return csv_response(write, "qa-agents.csv", encoding)

    async def search(self, request: Request, user: User) -> Response:
        """``GET /api/transcripts/search``: the calls whose words match ``q`` (every word, stemmed), filtered by
        date, agent, number, queue, speaker and keyword flag, newest first; each hit with the moment to open it at."""
        try:
            query = self._search_query(request, user)
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        hits = await self.store().search_transcripts(query)
        numbers = self.notifier.messages.numbers
        return JSONResponse({"hits": [{
            "pbx": hit.pbx, "linkedid": hit.linkedid, "started_at": self.notifier.time(hit.call_started_at),
            "caller": hit.caller, "caller_display": numbers(hit.caller), "answered_by": hit.answered_by,
            "queue": hit.queue, "speaker": hit.speaker, "at_second": round(hit.at_second, 3), "snippet": hit.snippet,
            "flags": list(hit.flags)} for hit in hits]})

    # -- parts ---------------------------------------------------------------------------------------------------

    async def _call(self, request: Request, user: User) -> tuple[str, str, CallRecord]:
        """The path's PBX and call, which must be one of the user's PBXs and in the journal."""
        pbx = request.path_params["pbx"]
        linkedid = request.path_params["linkedid"]
        if pbx not in self.followed:
            raise PbxRefused(404, f"no PBX {pbx[:40]!r} (known: {', '.join(self.followed)})")
        if not belongs(user, pbx):
            raise PbxRefused(403, f"you do not belong to the PBX {pbx!r}")
        if not _LINKEDID.fullmatch(linkedid):
            raise PbxRefused(404, f"no call {linkedid[:40]!r}")
        record = await self.store().get_call(linkedid, pbx=pbx)
        if record is None:
            raise PbxRefused(404, f"no call {linkedid} in the journal of the PBX {pbx!r}")
        return pbx, linkedid, record

    def _search_query(self, request: Request, user: User) -> TranscriptQuery:
        q = request.query_params
        text = q.get("q") or ""
        if len(text) > _QUERY_TEXT or not text.isprintable():
            raise BadRequest(f"q: one line of at most {_QUERY_TEXT} characters")
        since, until = period(q, self.tz)
        speaker = q.get("speaker") or None
        if speaker is not None and speaker not in SPEAKERS:
            raise BadRequest(f"speaker is one of {', '.join(SPEAKERS)}")
        return TranscriptQuery(
            text=text, since=since, until=until, agent=_filter(q, "agent"), number=_filter(q, "number"),
            queue=_filter(q, "queue"), speaker=_speaker(speaker), flag=_filter(q, "flag"),
            pbxs=_pbxs(listing_filter(user, self.followed, q.get("pbx"))),
            limit=whole_number(q, "limit", 50, 1, 200))

    def _job_json(self, job: TranscriptionJob) -> dict[str, Any]:
        return {"state": job.state, "attempts": job.attempts, "reason": job.reason,
                "queued_at": self.notifier.time(job.queued_at),
                "finished_at": self.notifier.time(job.finished_at) if job.finished_at is not None else None}

    def _comment_json(self, comment: QaComment) -> dict[str, Any]:
        return {"id": comment.id, "at_second": round(comment.at_second, 3), "text": comment.text, "by": comment.by,
                "at": self.notifier.time(comment.at)}

    def _score_json(self, score: QaScore) -> dict[str, Any]:
        return {"id": score.id, "checklist": score.checklist, "answers": score.answers, "points": score.points,
                "max_points": score.max_points, "percent": round(score.percent, 1), "agent": score.agent,
                "by": score.by, "at": self.notifier.time(score.at)}

    def _agent_json(self, row: AgentScore, pbxs: Sequence[str] | None) -> dict[str, Any]:
        return {"agent": row.agent, "name": self._agent_name(row.agent, pbxs), "calls": row.calls,
                "average": round(row.average, 1), "lowest": round(row.lowest, 1), "highest": round(row.highest, 1)}

    def _agent_name(self, extension: str, pbxs: Sequence[str] | None) -> str | None:
        """The agent's name from ``[pbx.agents]`` of the report's PBXs (the first that names them)."""
        names: Mapping[str, Mapping[str, str]] = self.notifier.messages.agent_names
        for pbx in pbxs if pbxs is not None else self.followed:
            name = names.get(pbx, {}).get(extension)
            if name:
                return name
        return None


def _filter(q: Mapping[str, str], name: str) -> str | None:
    value = (q.get(name) or "").strip()
    if not value:
        return None
    if len(value) > _FILTER_TEXT or not value.isprintable():
        raise BadRequest(f"{name}: one line of at most {_FILTER_TEXT} characters")
    return value


def _speaker(value: str | None) -> Speaker | None:
    for speaker in SPEAKERS:
        if value == speaker:
            return speaker
    return None


def _pbxs(pbxs: list[str] | None) -> tuple[str, ...] | None:
    return tuple(pbxs) if pbxs is not None else None
