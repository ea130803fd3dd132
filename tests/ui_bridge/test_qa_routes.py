"""The QA page's API over real HTTP against the whole system (replay PBX → daemon → panel, the real SQLite store): who
may read a call's transcript and audio, the audio served with HTTP Range by the framework, comments and scores kept,
the per-agent report (JSON and a neutralised CSV), the search, and every kind of bad request refused for what it is.

The call is scenario 34's split recording (its real files, read where they are through ``[recording] dir``); its
transcript is stored through the store as the transcription service stores one (tests/ui_bridge/qa_calls.py).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from cti.transcripts import EngineChoice, NewJob, Transcript, Word
from store.repository import User
from tests.panel_env import PanelEnv
from tests.ui_bridge.qa_calls import (
    AGENT,
    LINKEDID,
    MIX,
    RECORDINGS,
    SOURCES,
    qa_panel,
    recorded_call,
    save_call,
)
from tests.ui_bridge.wsclient import session_cookie
from ui_bridge.auth import hash_password
from ui_bridge.routes.qa import QA_IS_FOR

CALL = f"/api/calls/main/{LINKEDID}"
WORDS = (Word("agent", "здравствуйте", 0.4, 0.9, 0.9), Word("agent", "сервис", 1.0, 1.5, 0.8),
         Word("customer", "машина", 4.7, 5.2, 0.7), Word("customer", "сломалась", 5.3, 6.0, 0.95),
         Word("unknown", "ага", 7.0, 7.2, 0.5))
TRANSCRIPT = Transcript(words=WORDS, engine="vosk", model="vosk-model-small-ru-0.22", duration=9.94, language="ru")
ANSWERS = {"greeting": 1, "identified": 1, "booking": 1, "goodbye": 0}  # 1 + 1 + 1×2 of 7 (the default checklist)


@asynccontextmanager
async def qa_env() -> AsyncIterator[tuple[PanelEnv, httpx.AsyncClient]]:
    async with (qa_panel(TRANSCRIPT, flags=("complaint",)) as (env, _record),
                httpx.AsyncClient(base_url=env.url) as http):
        yield env, http


async def as_user(env: PanelEnv, http: httpx.AsyncClient, name: str) -> None:
    http.cookies.clear()
    http.cookies.set("cti_session", await session_cookie(env, name))


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    message = response.json()["error"]["message"]
    assert isinstance(message, str)
    return message


async def test_agents_and_employees_are_refused_the_page_every_route_and_the_audio() -> None:
    async with qa_env() as (env, http):
        urls = [f"{CALL}/transcript", f"{CALL}/audio/0", f"{CALL}/comments", f"{CALL}/scores", "/api/qa/checklist",
                "/api/qa/report?since=2026-01-01&until=2026-02-01", "/api/transcripts/search?q=машина"]
        for name in ("anna", "elena"):  # an agent, an employee
            await as_user(env, http, name)
            for url in urls:
                assert error(await http.get(url), 403) == QA_IS_FOR, (name, url)
            assert error(await http.post(f"{CALL}/comments", json={"at_second": 1, "text": "x"}), 403) == QA_IS_FOR
            assert error(await http.post(f"{CALL}/scores", json={"answers": ANSWERS}), 403) == QA_IS_FOR
            page = await http.get("/qa")
            assert page.status_code == 403 and "<html" not in page.text
        http.cookies.clear()
        assert (await http.get(f"{CALL}/audio/0")).status_code == 401
        anonymous = await http.get("/qa")
        assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=/qa"
        assert await env.store.qa_comments(LINKEDID, pbx="main") == []
        assert await env.store.qa_scores(LINKEDID, pbx="main") == []
        for name in ("qa", "admin"):
            await as_user(env, http, name)
            page = await http.get("/qa")
            assert page.status_code == 200 and '<script type="module" src="/static/qa.js">' in page.text


async def test_a_user_of_another_pbx_sees_nothing_of_this_one() -> None:
    async with qa_env() as (env, http):
        await env.store.add_user(User(name="spb-qa", role="qa", display_name="СПб", pbxs=("spb",),
                                      password_hash=hash_password("spb-password-1")))
        response = await http.post("/api/login", json={"name": "spb-qa", "password": "spb-password-1"})
        assert response.status_code == 200, response.text
        for url in (f"{CALL}/transcript", f"{CALL}/audio/0", f"{CALL}/comments", f"{CALL}/scores"):
            assert "do not belong to the PBX 'main'" in error(await http.get(url), 403)
        hits = await http.get("/api/transcripts/search", params={"q": "машина"})
        assert hits.status_code == 200 and hits.json()["hits"] == []
        assert "do not belong" in error(await http.get("/api/transcripts/search", params={"pbx": "main"}), 403)
        report = await http.get("/api/qa/report", params={"since": "2020-01-01", "until": "2020-12-31"})
        assert report.status_code == 200 and report.json()["agents"] == []


async def test_the_transcript_comes_per_speaker_with_the_recordings_by_index() -> None:
    async with qa_env() as (env, http):
        await as_user(env, http, "qa")
        data = (await http.get(f"{CALL}/transcript")).json()
        assert data["call"]["linkedid"] == LINKEDID and data["call"]["answered_by"] == AGENT
        assert [(r["index"], r["name"], r["layout"]) for r in data["recordings"]] == [
            (0, MIX, "mono"), (1, MIX.replace(".wav", "-in.wav"), "customer"),
            (2, MIX.replace(".wav", "-out.wav"), "agent")]
        assert data["recordings"][0]["url"] == f"{CALL}/audio/0"
        assert [(w["speaker"], w["text"], w["start"], w["end"]) for w in data["transcript"]["words"]] == [
            (w.speaker, w.text, w.start, w.end) for w in WORDS]
        assert data["job"]["state"] == "done" and data["flags"] == ["complaint"]
        # A recorded call with no transcript yet says where its job is.
        other = recorded_call("1795480910.999")
        await save_call(env.store, other)
        waiting = (await http.get("/api/calls/main/1795480910.999/transcript")).json()
        assert waiting["transcript"] is None and waiting["job"] is None and len(waiting["recordings"]) == 3
        now = time.time()
        job = await env.store.enqueue_transcription(NewJob(pbx="main", linkedid=other.linkedid, sources=SOURCES,
                                                           choice=EngineChoice(), call_started_at=other.started_at),
                                                    at=now)
        assert job is not None
        queued = (await http.get("/api/calls/main/1795480910.999/transcript")).json()
        assert queued["transcript"] is None and queued["job"]["state"] == "queued"
        await env.store.take_transcription_job(worker="w", lease_seconds=60, now=now, max_attempts=3)
        await env.store.fail_transcription_job(job.id, "truncated WAV", worker="w", at=now, retry=False)
        failed = (await http.get("/api/calls/main/1795480910.999/transcript")).json()
        assert (failed["job"]["state"], failed["job"]["reason"], failed["transcript"]) == ("failed", "truncated WAV",
                                                                                           None)


async def test_the_audio_is_served_with_http_range() -> None:
    async with qa_env() as (env, http):
        await as_user(env, http, "admin")
        whole = (RECORDINGS / MIX).read_bytes()
        full = await http.get(f"{CALL}/audio/0")
        assert full.status_code == 200 and full.content == whole
        assert full.headers["content-type"] == "audio/wav"
        assert full.headers["accept-ranges"] == "bytes" and full.headers["cache-control"] == "no-store"
        part = await http.get(f"{CALL}/audio/0", headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == whole[1000:2000]
        assert part.headers["content-range"] == f"bytes 1000-1999/{len(whole)}"
        tail = await http.get(f"{CALL}/audio/0", headers={"Range": "bytes=150000-"})
        assert tail.status_code == 206 and tail.content == whole[150000:]
        side = await http.get(f"{CALL}/audio/2", headers={"Range": "bytes=44-99"})
        agent_side = (RECORDINGS / MIX.replace(".wav", "-out.wav")).read_bytes()
        assert side.status_code == 206 and side.content == agent_side[44:100]
        beyond = await http.get(f"{CALL}/audio/0", headers={"Range": f"bytes={len(whole) + 10}-"})
        assert beyond.status_code == 416


async def test_an_unknown_recording_or_call_is_404_and_no_path_is_taken_from_anyone() -> None:
    async with qa_env() as (env, http):
        await as_user(env, http, "qa")
        for index in ("3", "99", "99999999999", "abc", "-1", "0x1", "１"):
            assert "has no recording" in error(await http.get(f"{CALL}/audio/{index}"), 404), index
        assert "no call" in error(await http.get("/api/calls/main/1795480910.777/audio/0"), 404)
        assert "no PBX" in error(await http.get(f"/api/calls/spb/{LINKEDID}/audio/0"), 404)
        for hostile in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a%00b", "x" * 65):
            response = await http.get(f"/api/calls/main/{hostile}/audio/0")
            assert response.status_code == 404, hostile
        # The journal's own names are checked too: one that leads out of the folder is never served.
        for name in ("../../../../etc/passwd", "/etc/passwd", "refs.json/../../x"):
            await save_call(env.store, recorded_call("1795480910.500", recordings=(name,)))
            assert "cannot be read here" in error(await http.get("/api/calls/main/1795480910.500/audio/0"), 404)
        await save_call(env.store, recorded_call("1795480910.501", recordings=("gone-by-retention.wav",)))
        assert "not in the recordings folder" in error(await http.get("/api/calls/main/1795480910.501/audio/0"), 404)
        await save_call(env.store, recorded_call("1795480910.502", recordings=()))
        assert "has no recording" in error(await http.get("/api/calls/main/1795480910.502/audio/0"), 404)


async def test_comments_are_kept_in_the_order_of_their_moments() -> None:
    async with qa_env() as (env, http):
        await as_user(env, http, "qa")
        hostile = "<img src=x onerror=alert(1)> =cmd|' /C calc'!A0"
        late = await http.post(f"{CALL}/comments", json={"at_second": 6.5, "text": "  клиент недоволен  "})
        assert late.status_code == 201, late.text
        assert late.json()["comment"]["text"] == "клиент недоволен" and late.json()["comment"]["by"] == "qa"
        await as_user(env, http, "admin")
        early = await http.post(f"{CALL}/comments", json={"at_second": 0.4, "text": hostile})
        assert early.status_code == 201
        listed = (await http.get(f"{CALL}/comments")).json()["comments"]
        assert [(c["at_second"], c["text"], c["by"]) for c in listed] == [(0.4, hostile, "admin"),
                                                                          (6.5, "клиент недоволен", "qa")]
        for body, where in (({"at_second": -1, "text": "x"}, "at_second"), ({"at_second": 1, "text": ""}, "text"),
                            ({"at_second": 1, "text": "x" * 2001}, "text"), ({"text": "x"}, "at_second"),
                            ({"at_second": "soon", "text": "x"}, "at_second"),
                            ({"at_second": 1, "text": "x", "by": "boss"}, "by"),
                            ({"at_second": 1e9, "text": "x"}, "at_second"),
                            ({"at_second": 1, "text": "a\x00b"}, "text"),
                            ({"at_second": 1, "text": "\u202eabc"}, "text")):
            assert where in error(await http.post(f"{CALL}/comments", json=body), 400), body
        bad_json = await http.post(f"{CALL}/comments", content=b"{not json",
                                   headers={"Content-Type": "application/json"})
        assert bad_json.status_code == 400
        nan = await http.post(f"{CALL}/comments", content=b'{"at_second": NaN, "text": "x"}',
                              headers={"Content-Type": "application/json"})
        assert nan.status_code == 400
        assert len(await env.store.qa_comments(LINKEDID, pbx="main")) == 2


async def test_a_score_is_saved_for_the_calls_agent_and_appears_in_the_report() -> None:
    async with qa_env() as (env, http):
        await as_user(env, http, "qa")
        checklist = (await http.get("/api/qa/checklist")).json()
        assert [i["key"] for i in checklist["items"]] == ["greeting", "identified", "booking", "goodbye"]
        assert checklist["max_points"] == 7 and checklist["items"][2]["kind"] == "points"
        saved = await http.post(f"{CALL}/scores", json={"answers": ANSWERS})
        assert saved.status_code == 201, saved.text
        score = saved.json()["score"]
        assert (score["points"], score["max_points"], score["percent"], score["agent"], score["by"]) == (
            4, 7, 57.1, AGENT, "qa")
        again = await http.post(f"{CALL}/scores", json={"answers": {**ANSWERS, "goodbye": 1}})  # replaces theirs
        assert again.status_code == 201
        await as_user(env, http, "admin")
        await http.post(f"{CALL}/scores", json={"answers": {"greeting": 0, "identified": 0, "booking": 0,
                                                            "goodbye": 0}})
        scores = (await http.get(f"{CALL}/scores")).json()["scores"]
        assert sorted((s["by"], s["points"]) for s in scores) == [("admin", 0), ("qa", 5)]

        day = recorded_call().started_at
        params = {"since": "2020-01-01", "until": "2099-01-01"}
        assert "longer than" in error(await http.get("/api/qa/report", params=params), 400)
        report = await http.get("/api/qa/report", params={"since": _day(day - 86400), "until": _day(day + 86400)})
        assert report.status_code == 200, report.text
        assert [(a["agent"], a["name"], a["calls"]) for a in report.json()["agents"]] == [(AGENT, "Олег Петров", 1)]
        row = report.json()["agents"][0]  # one call, its two reviewers' 71.4 % and 0 % averaged
        assert (row["average"], row["lowest"], row["highest"]) == (35.7, 35.7, 35.7)

        for bad in ({"since": "вчера", "until": "2026-01-01"}, {"until": "2026-01-01"},
                    {"since": "2026-02-01", "until": "2026-01-01"}, {"since": "2026-01-01", "until": "2026-02-01",
                                                                    "format": "xml"},
                    {"since": "2026-01-01", "until": "2026-02-01", "encoding": "koi8-r"}):
            error(await http.get("/api/qa/report", params=bad), 400)


async def test_the_report_csv_neutralises_what_a_spreadsheet_would_run() -> None:
    async with qa_env() as (env, http):
        hostile = recorded_call("1795480910.600", answered_by="=1+2")
        await save_call(env.store, hostile)
        await as_user(env, http, "qa")
        assert (await http.post(f"{CALL}/scores", json={"answers": ANSWERS})).status_code == 201
        assert (await http.post("/api/calls/main/1795480910.600/scores",
                                json={"answers": ANSWERS})).status_code == 201
        day = hostile.started_at
        period = {"since": _day(day - 86400), "until": _day(day + 86400)}
        for encoding, charset, bom in (("utf-8", "utf-8", "\ufeff"), ("cp1251", "windows-1251", "")):
            response = await http.get("/api/qa/report", params={**period, "format": "csv", "encoding": encoding})
            assert response.status_code == 200
            assert response.headers["content-type"] == f"text/csv; charset={charset}"
            text = response.content.decode(encoding)
            assert text.startswith(bom + "agent;name;calls;average;lowest;highest\r\n")
            rows = list(csv.DictReader(io.StringIO(text[len(bom):]), delimiter=";"))
            assert sorted((r["agent"], r["calls"], r["average"]) for r in rows) == [
                ("'=1+2", "1", "57.1"), (AGENT, "1", "57.1")]


async def test_a_bad_score_is_refused_naming_the_item() -> None:
    async with qa_env() as (env, http):
        await as_user(env, http, "qa")
        for answers, words in (({**ANSWERS, "smiled": 1}, "'smiled' is no item"),
                               ({"greeting": 1}, "is not answered"),
                               ({**ANSWERS, "booking": 3}, "'booking': 3 is out of range (0 to 2)"),
                               ({**ANSWERS, "greeting": True}, "answers.greeting"),
                               ({**ANSWERS, "greeting": "1"}, "answers.greeting"),
                               ({**ANSWERS, "greeting": 1.5}, "answers.greeting")):
            assert words in error(await http.post(f"{CALL}/scores", json={"answers": answers}), 400), answers
        assert "answers" in error(await http.post(f"{CALL}/scores", json={"points": 6}), 400)
        assert await env.store.qa_scores(LINKEDID, pbx="main") == []


async def test_the_search_finds_the_call_at_the_moment_of_the_word_and_refuses_bad_filters() -> None:
    async with qa_env() as (env, http):
        await as_user(env, http, "qa")
        hits = (await http.get("/api/transcripts/search", params={"q": "машину"})).json()["hits"]  # stemmed
        assert [(h["linkedid"], h["speaker"], h["at_second"]) for h in hits] == [(LINKEDID, "customer", 4.7)]
        assert hits[0]["answered_by"] == AGENT and "машина" in hits[0]["snippet"]
        assert hits[0]["caller_display"] == "+7 916 123-45-67" and hits[0]["flags"] == ["complaint"]
        assert (await http.get("/api/transcripts/search", params={"q": "машина", "speaker": "agent"})).json() == {
            "hits": []}
        assert len((await http.get("/api/transcripts/search", params={"q": "сервис", "agent": AGENT})).json()[
            "hits"]) == 1
        assert (await http.get("/api/transcripts/search", params={"q": "сервис", "agent": "101"})).json() == {
            "hits": []}
        assert len((await http.get("/api/transcripts/search", params={"flag": "complaint"})).json()["hits"]) == 1
        for hostile in ('"', "NEAR(машина сервис)", "машина*", "-машина", "' OR 1=1 --", "\\", "()", "AND OR NOT"):
            response = await http.get("/api/transcripts/search", params={"q": hostile})
            assert response.status_code == 200, (hostile, response.text)
        for params, words in (({"since": "завтра"}, "since"), ({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"),
                              ({"speaker": "boss"}, "speaker"), ({"q": "x" * 201}, "q:"), ({"q": "a\x00b"}, "q:"),
                              ({"since": "2026-02-01", "until": "2026-01-01"}, "after until"),
                              ({"agent": "1\n2"}, "agent"), ({"pbx": "spb"}, "no PBX")):
            assert words in error(await http.get("/api/transcripts/search", params=params), 400), params


def _day(epoch: float) -> str:
    """The day of ``epoch`` in the lab PBX's zone (the example config's), as a date parameter."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(epoch, ZoneInfo("Europe/Moscow")).date().isoformat()
