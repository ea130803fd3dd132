"""``cti store copy --from sqlite:PATH --to postgresql://…``: a site's SQLite store moved to PostgreSQL.

A real SQLite file filled through the ``Store`` interface (calls with legs, missed entries with their history and
call-backs, agents' misses, users, tokens, sessions, the directory, live events), copied by the command run
in-process into a database of the throwaway cluster (tests/postgres.py), then read back through the interface.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from cti.alerts import Condition
from cti.complaints import ActionRow, CallRef, ComplaintChange, ComplaintFilter, NewComplaint, NewMail, OpenTask
from cti.crm import CrmRequest
from cti.directory import Contact, Vehicle
from cti.reminders import NewReminder
from cti.reports import REPORTS, ReportQuery
from cti.transcripts import AudioSource, EngineChoice, NewJob, Transcript, TranscriptQuery, Word
from store.postgres import PostgresStore
from store.repository import Store, User
from store.sqlite import SqliteStore
from store.transfer import BadUrl, is_search_index, postgres_url, sqlite_path
from tests.cli_runner import Ran, cti
from tests.postgres import cluster
from tests.store.builders import T0, agent_miss, leg, make_call, missed_for
from tests.store.contact_drafts import follow

MOSCOW = ZoneInfo("Europe/Moscow")
#: The reports over the days of the fill, in whole days of the site's zone: read from the day counts.
FIRST_MIDNIGHT = datetime.fromtimestamp(T0, MOSCOW).replace(hour=0, minute=0, second=0).timestamp()
REPORT_DAYS = ReportQuery(FIRST_MIDNIGHT, FIRST_MIDNIGHT + 2 * 86400, tz=MOSCOW)
TOKEN = "a" * 64
SESSION = "b" * 64
_names = itertools.count(1)


async def empty_database() -> str:
    """A new database with nothing in it (no schema either): the copy must migrate it first."""
    admin = await asyncpg.connect(cluster().url("postgres"))
    try:
        name = f"cti_copy_{os.getpid()}_{next(_names)}"
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return cluster().url(name)


async def fill(store: Store) -> None:
    """Something in every table, through the interface only, as a site's daemon, panel and CLI leave it."""
    await store.add_user(User(name="anna", role="agent", extension="101", display_name="Анна Смирнова",
                              password_hash="scrypt$anna"))
    await store.add_user(User(name="Boss", role="admin", extension=None, display_name=None, password_hash="x"))
    await store.add_token("anna", TOKEN, "softphone")
    await store.add_session(SESSION, "Boss", created_at=T0, expires_at=T0 + 3600, address="10.0.0.5")
    # The reports' day counts, kept in the site's zone as every row below is written.
    await store.keep_report_days(MOSCOW)

    missed = make_call("m-1", started_at=T0, ring_seconds=12.5, agents_rung_not_answered=("101", "102"),
                       legs=(leg("1.1", None), leg("1.2", "101"), leg("1.3", "102", hangup_cause=17)))
    store.stage_call(missed, missed_for(missed), [agent_miss(missed, "101"), agent_miss(missed, "102")])
    # The call-back: an answered outbound call to the same number, written another way, closes the entry.
    callback = make_call("cb-1", direction="outbound", caller="101", called="8 (916) 123-45-67", answered=True,
                         answered_by="101", started_at=T0 + 600, agents_answered=("101",), recording="cb-1.wav",
                         recordings=("cb-1.wav",), legs=(leg("2.1", "101", answered_at=T0 + 605, status="answered"),))
    store.stage_call(callback, None, [])
    second = make_call("m-2", caller="74957654321", caller_name="ООО «Ромашка»", started_at=T0 + 700,
                       queue="support", complete=False)
    store.stage_call(second, missed_for(second), [])
    answered = make_call("a-1", caller="79031112233", answered=True, answered_by="102", started_at=T0 + 800,
                         hangup_cause=16, hangup_cause_txt="Normal Clearing", hung_up_by="caller",
                         transferred_to="103", did="74951234567")
    store.stage_call(answered, None, [])
    store.stage_event("live-1", [("Event", "Newchannel"), ("CallerIDName", "Иван \"Ваня\"")], T0 + 900.25)
    store.stage_event("live-1", [("Event", "VarSet"), ("Value", "a"), ("Value", "b")], T0 + 901.5)
    await store.flush()

    [entry] = await store.list_missed(number="74957654321")
    assert entry.id is not None
    await store.close_missed(entry.id, "called back from a mobile", by="anna", at=T0 + 1000)
    await store.reopen_missed(entry.id, "nobody answered", by="Boss", at=T0 + 1100)
    await store.comment_missed(entry.id, "call after 18:00", by="anna", at=T0 + 1200)
    # The register a team shares: a call-back's result on the entry, and a claim on the number.
    await store.record_callback_result("main", "74957654321", "no_answer", by="Boss", comment="не берут",
                                       at=T0 + 1250)
    await store.claim_number("main", "74957654321", by="anna", by_name="Анна Смирнова", at=T0 + 1300,
                             until=T0 + 1900)

    ivanov, _ = await store.add_contacts([
        Contact(name="Иванов Пётр Сергеевич", phones=("8 916 123-45-67", "+7 (495) 111-22-33"),
                email="ivanov@example.ru", external_id="000123",
                vehicles=(Vehicle(make="тойота", model="Camry", year=2019, plate="А123ВС 777",
                                  vin="jtnb11hk103456789"), Vehicle(make="ЛАДА", plate="Е001КХ 50"))),
        Contact(name="ООО Ромашка", kind="corporate", phones=("84991112233",))])
    await store.attach_call("a-1", ivanov, by="anna")
    # The supervisor's alerts: one acknowledged and resolved, one still active (figures with Cyrillic text).
    waited, _ = await store.raise_alert(Condition(
        key="long_wait:main:m-1", kind="long_wait", pbx="main", subject="79161234567", since=T0,
        figures={"queue": "support", "caller_name": "Иван", "wait_seconds": 95.5}), at=T0 + 95)
    await store.acknowledge_alert(waited.id, "Boss", at=T0 + 100)
    await store.resolve_alert(waited.id, at=T0 + 120)
    await store.raise_alert(Condition(key="service_level:main:support", kind="service_level", pbx="main",
                                      subject="support", since=None, figures={"service_level": 62.5}), at=T0 + 130)
    # The contact register: a new client's contact (made in the directory with its car), a stage a DMS set.
    registered = await store.save_contact(follow("private_new", at=T0 + 140, linkedid="a-1"), repeat_days=180,
                                          run_id=7, at=T0 + 200)
    await store.set_contact_stage(registered.id, "booking", at=T0 + 300, by="dms", external_id="ЗН-1")
    # The contact script: a version's text and a run of it, saved once (revision 2), with Cyrillic in its state.
    await store.keep_script_version("car-service", "3f2a9c01b7de", 'title = "Входящий звонок"\n', at=T0 + 140)
    run, _ = await store.start_script_run(pbx="main", agent="101", linkedid="a-1", script="car-service",
                                          version="3f2a9c01b7de", state={"stack": ["reason"], "note": "«Шкода»"},
                                          at=T0 + 150)
    await store.save_script_run(run.id, state={"stack": ["reason", "private_client"]}, status="open", revision=1,
                                at=T0 + 160)
    # Call-back reminders: one for a master (the employee role), pushed as due and escalated; one closed by hand.
    await store.add_user(User(name="ivan", role="employee", extension="201", display_name="Иван Мастеров",
                              password_hash="scrypt$ivan"))
    await store.add_reminder(NewReminder(
        pbx="main", employee="ivanov", employee_name="Иванов", extension="201", number="79161234567",
        number_key="79161234567", due_at=T0 + 170, created_at=T0 + 160, user_name="ivan", contact_id=ivanov,
        client_name="Иванов Пётр", card={"name": "Иванов Пётр", "cars": ["Тойота Camry"]}, note="«по ремонту»",
        created_by="101", run_id=run.id, linkedid="a-1"))
    await store.due_reminders(T0 + 180)
    await store.escalate_reminders(T0 + 180 + 1800, 1800)
    other, _ = await store.add_reminder(NewReminder(
        pbx="main", employee="petrov", employee_name="Петров", extension=None, number="74957654321",
        number_key="74957654321", due_at=T0 + 200, created_at=T0 + 160))
    await store.close_reminder(other.id, by="Boss", comment="не нужно", cancelled=True, at=T0 + 210)
    # Transcription: a call transcribed (words of both sides, a keyword flag), another queued; QA's comment and
    # score; the retention's log.
    for linkedid, started in (("cb-1", T0 + 600), ("a-1", T0 + 800)):
        await store.enqueue_transcription(NewJob(
            pbx="main", linkedid=linkedid, sources=(AudioSource(name=f"{linkedid}.wav", layout="stereo"),),
            choice=EngineChoice(model="vosk-model-small-ru-0.22", language="ru"), call_started_at=started),
            at=T0 + 1000)
    job = await store.take_transcription_job(worker="w1", lease_seconds=60, now=T0 + 1001, max_attempts=3)
    assert job is not None and job.linkedid == "cb-1"
    await store.finish_transcription_job(job.id, Transcript(
        words=(Word("agent", "Здравствуйте", 0.5, 1.25, 0.97), Word("customer", "машину", 1.5, 2.0, 0.8),
               Word("customer", "починили?", 2.1, 2.6, 0.7)),
        engine="vosk", model="vosk-model-small-ru-0.22", duration=30.0, language="ru"),
        worker="w1", at=T0 + 1010, flags=("repairs",))
    await store.add_qa_comment("cb-1", pbx="main", at_second=1.5, text="клиент спросил «машину»", by="Boss",
                               at=T0 + 1020)
    await store.save_qa_score("cb-1", pbx="main", checklist="service", answers={"greeting": 1, "goodbye": 0},
                              points=1, max_points=2, agent="101", by="Boss", at=T0 + 1030)
    await store.forget_audio("m-1", pbx="main", names=["m-1.wav"], at=T0 + 1040, reason="older than 90 days")
    # A complaint filed from a call (numbered, its task, its e-mail), moved on with an action plan, escalated, with a
    # question, an attachment; an e-mail sent and one given up; a user's e-mail address.
    await store.update_user("anna", email="anna@example.ru")
    complaint, _ = await store.register_complaint(NewComplaint(
        type="quality", kind="client", source="call", responsible="anna", created_by="Boss",
        client_name="Иванов Пётр", client_phone="79161234567", client_email="ivanov@example.ru", contact_id=ivanov,
        plate="А123ВС 777", subject="ЗН-1", comment="«стук» после ремонта", fields={"description": "стучит"},
        calls=(CallRef("main", "a-1"),), idempotency_key="portal-1"), at=T0 + 1100, stage_due_at=T0 + 1200,
        mails=[NewMail(to=("anna@example.ru",), subject="Жалоба", body="Вам назначена жалоба", about="complaint")])
    await store.commit_complaint(ComplaintChange(
        complaint=replace(complaint, stage="review", status="in_progress", justified=True, stage_entered_at=T0 + 1150,
                          stage_due_at=T0 + 5000, action_plan=(ActionRow(when="2023-11-15", what="Диагностика",
                                                                         who="Сидоров", effort_hours=1.5),)),
        by="anna", at=T0 + 1150, history=(("moved", {"to": "review"}),),
        open_task=OpenTask(stage="review", assignee="anna", due_at=T0 + 5000)))
    [task] = await store.overdue_tasks(T0 + 6000)
    await store.escalate_task(task.id, at=T0 + 6000)
    await store.add_complaint_note(complaint.id, action="question", details={"text": "Брак?"}, by="anna",
                                   at=T0 + 6100)
    await store.add_attachment(complaint.id, file_name="фото.jpg", content_type="image/jpeg", size=1024,
                               stored_as="c1-a1.jpg", by="anna", at=T0 + 6200)
    sent = await store.take_mail(now=T0 + 6300, lease_seconds=60)
    assert sent is not None
    await store.mail_sent(sent.id, at=T0 + 6301)
    lost = await store.queue_mail(NewMail(to=("nobody@example.ru",), subject="x", body="y"), at=T0 + 6400)
    await store.mail_failed(lost.id, "550 no such user", at=T0 + 6401, next_try_at=None)
    # The CRM outbox: a call's requests with its planner state, one sent (its answer kept for the call), one waiting
    # behind it; another CRM's request given up; a connector's kept value.
    registered_call, _ = await store.queue_crm("bitrix24", "main:a-1", {"stage": "ringing", "кто": "Анна"},
                                               [CrmRequest("register", {"PHONE_NUMBER": "79031112233"}),
                                                CrmRequest("finish", {"CALL_ID": {"$remote": "call_id"}})],
                                               at=T0 + 6500)
    await store.take_crm("bitrix24", now=T0 + 6500, lease_seconds=60)
    await store.crm_sent(registered_call.id, {"call_id": "externalCall.1"}, at=T0 + 6501)
    [pushed] = await store.queue_crm("webhook", "main:a-1", None, [CrmRequest("event", {"kind": "ended"})],
                                     at=T0 + 6502)
    await store.crm_failed(pushed.id, "HTTP 410 «Gone»", at=T0 + 6503, next_try_at=None)
    await store.put_crm_value("bitrix24", "tokens", {"access": "a1", "refresh": "r1"})


async def read_back(store: Store) -> dict[str, Any]:
    """What the panel, the CLI and the daemon can read of a store, through the interface."""
    calls = await store.list_calls()
    entries = await store.list_missed()
    return {
        "calls": calls,
        "each call": [await store.get_call(c.linkedid) for c in calls],
        "calls of agent 101": await store.list_calls(agent="101"),
        "calls of the number": await store.list_calls(number="79161234567"),
        "missed": entries,
        "history": {e.id: await store.missed_history(e.id or 0) for e in entries},
        "agent misses": await store.list_agent_misses(),
        "users": await store.list_users(),
        "token": await store.user_of_token(TOKEN),
        "grants": await store.grants([TOKEN, SESSION]),
        "contacts": await store.list_contacts(),
        "found by plate": await store.find_contacts("а123вс"),
        "contact of a-1": await store.contact_of_call("a-1"),
        "live events": await store.live_events(),
        "card": await store.caller_facts("79161234567"),
        "alerts": await store.list_alerts(),
        "register groups": await store.list_missed_groups(now=T0 + 1400),
        "claims": await store.list_claims(now=T0 + 1400),
        "results": {e.id: await store.entry_results(e.id or 0) for e in entries},
        "registered contacts": await store.list_registered_contacts(),
        "script runs": await store.open_script_runs(),
        "script version": await store.script_source("car-service", "3f2a9c01b7de"),
        "reminders": await store.list_reminders(open_only=False),
        "reports": [(await store.report(name, REPORT_DAYS)).to_json() for name in REPORTS],
        "transcription jobs": await store.list_transcription_jobs(),
        "transcript": await store.get_transcript("cb-1"),
        "transcript flags": await store.transcript_flags("cb-1"),
        "found in transcripts": await store.search_transcripts(TranscriptQuery(text="машина", speaker="customer")),
        "qa comments": await store.qa_comments("cb-1"),
        "qa scores": await store.qa_scores("cb-1"),
        "qa report": await store.qa_agent_report(since=T0, until=T0 + 86400),
        "deleted audio": await store.deleted_audio(),
        "complaints": await store.list_complaints(ComplaintFilter()),
        "complaint history": await store.complaint_history(1),
        "complaint tasks": await store.complaint_tasks(open_only=False),
        "attachment": await store.get_attachment(1),
        "mails": await store.list_mails(),
        "crm items": await store.list_crm_items(),
        "crm status": await store.crm_status(),
        "crm call": [await store.crm_call_state("bitrix24", "main:a-1"),
                     await store.crm_call_answers("bitrix24", "main:a-1")],
        "crm value": await store.crm_value("bitrix24", "tokens"),
    }


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Path]:
    """A site's SQLite store, filled and closed (as after stopping the daemon)."""
    path = tmp_path / "site.sqlite"
    async with SqliteStore.open(path) as store:
        await fill(store)
    yield path


def sqlite_tables(path: Path) -> dict[str, int]:
    """Every table of the SQLite file (SQLite's own bookkeeping and the full-text index, derived, aside) and its row
    count."""
    with sqlite3.connect(path) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                          "AND name NOT LIKE 'sqlite_%'") if not is_search_index(r[0])]
        return {name: db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def printed_counts(stdout: str) -> list[list[str]]:
    """The rows of the counts table the command prints: table, SQLite, PostgreSQL, check."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in stdout.splitlines() if line.startswith("│")]


def copy(source: Path | str, target: str, *extra: str, check: bool = True) -> Ran:
    source_url = source if isinstance(source, str) else f"sqlite:{source}"
    return cti("store", "copy", "--from", source_url, "--to", target, *extra, check=check)


async def test_a_filled_store_reads_back_equal_from_postgresql(site: Path) -> None:
    target = await empty_database()
    async with SqliteStore.open(site) as store:
        expected = await read_back(store)
    copy(site, target)
    async with PostgresStore.open(target) as store:
        got = await read_back(store)
        # The copied outbox goes on where it was: the call's waiting request is the next one handed out.
        [next_request] = await store.take_crm("bitrix24", now=T0 + 7000, lease_seconds=60, limit=5)
        assert (next_request.call, next_request.seq, next_request.kind) == ("main:a-1", 2, "finish")
    assert set(got) == set(expected)
    for what in expected:  # one by one: a failure names what differs
        assert got[what] == expected[what], what
    # Not an empty comparison: the copy carried the cases that matter.
    history = expected["history"]
    assert [h.action for h in history[1]] == ["opened", "closed"] and history[1][1].linkedid == "cb-1"
    assert [h.action for h in history[2]] == ["opened", "closed", "reopened", "commented"]
    assert len(expected["calls"]) == 4 and expected["calls"][0].legs[2].hangup_cause == 17
    assert expected["contact of a-1"].vehicles[0].plate == "А123ВС 777" and len(expected["live events"]) == 2
    [found] = expected["found in transcripts"]  # PostgreSQL's index of the copied transcripts finds it too
    assert (found.linkedid, found.at_second, found.flags) == ("cb-1", 1.5, ("repairs",))
    [complaint] = expected["complaints"]
    assert (complaint.number, complaint.justified, complaint.revision) == ("Ж-2023-0001", True, 2)
    assert [h.action for h in expected["complaint history"]] == ["registered", "moved", "escalated", "question",
                                                                 "attached"]
    assert [m.sent_at is not None for m in expected["mails"]] == [False, True]
    assert [(i.crm, i.seq, i.state) for i in expected["crm items"]] == [
        ("webhook", 1, "failed"), ("bitrix24", 2, "pending"), ("bitrix24", 1, "sent")]
    assert expected["crm call"] == [{"stage": "ringing", "кто": "Анна"}, {"call_id": "externalCall.1"}]


async def test_every_table_of_the_sqlite_store_is_copied_and_counted(site: Path) -> None:
    """Fails when a SQLite table is added and not copied: the fill must reach it too, the copy must count it."""
    tables = sqlite_tables(site)
    empty = [name for name, rows in tables.items() if not rows]
    assert not empty, f"fill() leaves these tables empty; make it write them: {empty}"
    target = await empty_database()
    ran = copy(site, target)
    conn = await asyncpg.connect(target)
    try:
        for name, rows in tables.items():
            assert await conn.fetchval(f'SELECT count(*) FROM "{name}"') == rows, name
            [cells] = [row for row in printed_counts(ran.stdout) if row[0] == name]
            assert cells == [name, str(rows), str(rows), "ok"], ran.stdout
    finally:
        await conn.close()
    assert f"copied {sum(tables.values())} row(s) in {len(tables)} tables" in ran.stdout, ran.stdout


async def test_a_sqlite_table_with_no_postgresql_counterpart_stops_the_copy_before_anything_is_written(
        site: Path) -> None:
    with sqlite3.connect(site) as db:  # a table someone added by hand: nothing the file keeps is left behind
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    target = await empty_database()
    ran = copy(site, target, check=False)
    assert ran.returncode == 1 and "table notes has no counterpart in the PostgreSQL schema" in ran.stderr
    conn = await asyncpg.connect(target)
    try:
        assert await conn.fetchval("SELECT count(*) FROM calls") == 0
    finally:
        await conn.close()


async def test_a_value_postgresql_cannot_take_names_its_row_and_nothing_is_committed(site: Path) -> None:
    with sqlite3.connect(site) as db:  # SQLite keeps any text in a column; PostgreSQL's text[] needs a JSON list
        db.execute("UPDATE calls SET recordings = 'cb-1.wav' WHERE linkedid = 'cb-1'")
    target = await empty_database()
    ran = copy(site, target, check=False)
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    assert "table calls: a row cannot be copied (linkedid 'cb-1')" in ran.stderr, ran.stderr
    conn = await asyncpg.connect(target)
    try:
        assert await conn.fetchval("SELECT count(*) FROM agent_misses") == 0  # copied before calls: rolled back
    finally:
        await conn.close()


async def test_ids_go_on_after_the_copied_ones(site: Path) -> None:
    """A register entry's number is never reused, even one SQLite gave and lost; new rows take new ids."""
    with sqlite3.connect(site) as db:  # the newest entry deleted (as a retention job would): its id stays used
        db.execute("PRAGMA foreign_keys = ON")  # its history goes with it, as in the store
        newest = db.execute("SELECT max(id) FROM missed").fetchone()[0]
        db.execute("DELETE FROM missed WHERE id = ?", (newest,))
    target = await empty_database()
    copy(site, target)
    async with PostgresStore.open(target) as store:
        before = {c.id for c in await store.list_contacts()}
        missed = make_call("m-new", caller="79260000000", started_at=T0 + 5000)
        store.stage_call(missed, missed_for(missed), [agent_miss(missed, "101", rang_at=T0 + 5001)])
        store.stage_event("live-2", [("Event", "Newchannel")], T0 + 5002)
        await store.flush()
        [entry] = await store.list_missed(number="79260000000")
        assert entry.id == newest + 1
        new = await store.add_contact(Contact(name="Петров", phones=("79260000000", "84951112233")))
        assert new.id not in before and new.phones == ("79260000000", "84951112233")
        assert [e[0] for e in await store.live_events()] == ["live-1", "live-1", "live-2"]
        assert (await store.missed_history(newest + 1))[0].action == "opened"
        # A complaint filed after the copy: the next id and the year's next number.
        filed, _ = await store.register_complaint(NewComplaint(type="question", kind="client", source="panel",
                                                               responsible="anna", created_by="anna"),
                                                  at=T0 + 5100, stage_due_at=None)
        assert (filed.id, filed.number) == (2, "Ж-2023-0002")


async def test_a_target_that_holds_data_is_refused(site: Path) -> None:
    target = await empty_database()
    copy(site, target)
    again = copy(site, target, check=False)
    assert again.returncode == 1
    assert "already holds data" in again.stderr and "calls" in again.stderr, again.stderr
    conn = await asyncpg.connect(target)
    try:
        assert await conn.fetchval("SELECT count(*) FROM calls") == sqlite_tables(site)["calls"]
    finally:
        await conn.close()


async def test_a_count_that_differs_is_an_error_naming_the_table_and_nothing_is_committed(site: Path) -> None:
    """A target that silently drops rows (a trigger someone left there): the check catches it, exit status 1."""
    target = await empty_database()
    async with PostgresStore.open(target):
        pass  # migrated, so the trigger has its table
    conn = await asyncpg.connect(target)
    try:
        await conn.execute("CREATE FUNCTION drop_row() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'")
        await conn.execute("CREATE TRIGGER lose_102 BEFORE INSERT ON agent_misses FOR EACH ROW "
                           "WHEN (NEW.agent = '102') EXECUTE FUNCTION drop_row()")
        ran = copy(site, target, check=False)
        assert ran.returncode == 1, ran.stdout
        assert "agent_misses (2 in the source, 1 in the target)" in ran.stderr, ran.stderr
        assert "DIFFERS" in ran.stdout and "Traceback" not in ran.stderr
        assert await conn.fetchval("SELECT count(*) FROM calls") == 0  # rolled back: the copy can be run again
    finally:
        await conn.close()


async def test_a_password_in_the_url_is_never_printed(site: Path) -> None:
    """An unreachable database: one line naming it without its password, exit status 1."""
    port = cluster().port
    ran = copy(site, f"postgresql://cti:s3cr3t-pw@127.0.0.1:{port}/no_such_database", check=False)
    assert ran.returncode == 1 and "s3cr3t-pw" not in ran.stdout + ran.stderr
    assert "postgresql://cti:***@127.0.0.1" in ran.stderr and "no_such_database" in ran.stderr, ran.stderr


@pytest.mark.parametrize(("source", "target", "says"), [
    ("/var/lib/cti/cti.sqlite", "postgresql://cti@db/cti", "is not a SQLite store"),
    ("sqlite://db.example.org/cti.sqlite", "postgresql://cti@db/cti", "has no host"),
    ("sqlite:", "postgresql://cti@db/cti", "names no file"),
    ("sqlite:cti.sqlite", "mysql://cti:pw@db/cti", "is not a PostgreSQL database"),
    ("sqlite:cti.sqlite", "postgresql://cti:pw@db", "names no database"),
])
def test_a_bad_url_is_one_clear_line_with_status_2(source: str, target: str, says: str) -> None:
    ran = cti("store", "copy", "--from", source, "--to", target, check=False)
    assert ran.returncode == 2 and says in ran.stderr, ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1 and ":pw@" not in ran.stderr


def test_a_missing_sqlite_file_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.sqlite"
    ran = copy(missing, cluster().url("postgres"), check=False)
    assert ran.returncode == 1 and f"no SQLite store at {missing}" in ran.stderr, ran.stderr
    assert not missing.exists()


def test_both_forms_of_a_sqlite_url() -> None:
    assert sqlite_path("sqlite:///var/lib/cti/cti.sqlite") == Path("/var/lib/cti/cti.sqlite")
    assert sqlite_path("sqlite:/var/lib/cti/cti.sqlite") == Path("/var/lib/cti/cti.sqlite")
    assert sqlite_path("sqlite:data/cti.sqlite") == Path("data/cti.sqlite")
    assert postgres_url("postgres://cti@db:5433/cti") == "postgres://cti@db:5433/cti"
    with pytest.raises(BadUrl):
        sqlite_path("postgresql://cti@db/cti")
