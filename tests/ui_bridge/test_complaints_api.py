"""Complaints over the JSON API, over the real system (replay PBX → daemon → panel, real HTTP and WebSocket on
loopback, the real SQLite store, a real local SMTP server where e-mails are checked).

What a centre relies on: a complaint registered in one request from a call comes with the caller and the car; it
moves through every stage, and a stage is never left without what it needs (the answer names it, in the user's
language); an overdue task is escalated once to the managers (the clock moved, not slept), who see it in their list
and reassign it with the reason kept; closing it e-mails the client the decision (received by the SMTP server); a
retried integration request never files two; two people editing at once never overwrite each other unseen; the
list and the report export as CSV a spreadsheet cannot run.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from store.repository import User
from tests.mail_server import MailServer
from tests.ui_bridge.complaints_env import CALL, CLIENT_PHONE, Clock, ComplaintsEnv, complaints_env, error_of
from tests.ui_bridge.wsclient import WsClient
from ui_bridge.auth import new_token, token_hash

MOSCOW = ZoneInfo("Europe/Moscow")  # [pbx] timezone of the tests' config

RU = {"Accept-Language": "ru-RU,ru;q=0.9"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


async def register(env: ComplaintsEnv, who: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await (await env.as_(who)).post("/api/complaints", json=body)
    assert response.status_code == status, response.text
    complaint: dict[str, Any] = response.json()["complaint"]
    return complaint


async def post(env: ComplaintsEnv, who: str, complaint: dict[str, Any], action: str, body: dict[str, Any],
               status: int = 200, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A change, sent with the revision last read; the complaint as it is after it (or the error body)."""
    response = await (await env.as_(who)).post(f"/api/complaints/{complaint['id']}/{action}",
                                              json={"revision": complaint["revision"], **body}, headers=headers)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer["complaint"] if status < 300 else answer


async def move(env: ComplaintsEnv, who: str, complaint: dict[str, Any], **body: Any) -> dict[str, Any]:
    return await post(env, who, complaint, "move", body)


async def edit(env: ComplaintsEnv, who: str, complaint: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return await post(env, who, complaint, "edit", {"changes": changes})


async def card(env: ComplaintsEnv, who: str, complaint_id: int) -> dict[str, Any]:
    response = await (await env.as_(who)).get(f"/api/complaints/{complaint_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def mail_section(server: MailServer) -> dict[str, str]:
    return {"mail": "\n".join(['host = "127.0.0.1"', f"port = {server.port}", 'security = "none"',
                               'from_address = "cti@service.example.ru"'])}


async def test_a_complaint_from_a_call_walks_every_stage_and_the_client_gets_the_decision_by_mail() -> None:
    with MailServer() as smtp:
        async with complaints_env(sections=mail_section(smtp)) as env:
            oleg = await WsClient.connect(env.panel, "oleg")
            # One request from the call: the client, their phone, e-mail and car come from the call and the directory.
            c = await register(env, "anna", {"type": "quality", "pbx": "main", "linkedid": CALL,
                                             "comment": "стук в подвеске после ремонта"})
            assert (c["source"], c["stage"], c["status"], c["responsible"], c["assignee"], c["created_by"]) == (
                "call", "registration", "registered", "oleg", "oleg", "anna")
            assert (c["client_name"], c["client_phone"], c["client_email"], c["car"], c["plate"]) == (
                "Петров Пётр", CLIENT_PHONE, "petrov@client.example.ru", "Skoda Octavia", "А123ВС777")
            assert c["calls"] == [{"pbx": "main", "linkedid": CALL}] and c["number"].startswith("Ж-")
            # The responsible's panel is told, and gets the stage's task with its deadline.
            await oleg.wait_for("complaint.registered")
            task = (await oleg.wait_for("complaint.task"))["task"]
            assert (task["complaint_id"], task["stage"], task["assignee"]) == (c["id"], "registration", "oleg")
            assert task["due_at"] is not None

            c = await move(env, "oleg", c)
            assert (c["stage"], c["status"]) == ("review", "in_progress")
            # The review cannot be left without its description and plan: refused, naming both, in Russian here.
            refused = await post(env, "oleg", c, "move", {}, status=422, headers=RU)
            error = refused["error"]
            assert error["code"] == "missing_fields"
            assert [f["name"] for f in error["fields"]] == ["description", "action_plan"]
            assert "Описание" in error["message"] and "План мероприятий" in error["message"]
            in_english = await post(env, "oleg", c, "move", {}, status=422, headers=EN)
            assert "Description" in in_english["error"]["message"]
            assert (await card(env, "oleg", c["id"]))["complaint"]["stage"] == "review"  # nothing moved

            c = await edit(env, "oleg", c, description="Клиент слышит стук спереди справа после замены стоек")
            c = await post(env, "oleg", c, "plan", {"row": {"when": "2026-11-25", "what": "Диагностика подвески",
                                                            "who": "Цех ремонта", "effort_hours": 1.5}}, status=201)
            assert c["action_plan"][0]["what"] == "Диагностика подвески"
            c = await move(env, "oleg", c)
            assert c["stage"] == "justification"
            # The responsible asks a colleague; the colleague answers; the stage comes back.
            c = await post(env, "oleg", c, "hand-over", {"to": "dmitry", "question": "Стойки ставили мы?"})
            assert (c["responsible"], c["assignee"]) == ("oleg", "dmitry")
            assert any(t["assignee"] == "dmitry" for t in (await card(env, "dmitry", c["id"]))["tasks"]
                       if t["state"] == "open")
            c = await post(env, "dmitry", c, "answer", {"text": "Да, по заказ-наряду ЗН-1024"})
            assert c["assignee"] == "oleg"
            c = await edit(env, "oleg", c, justified=True)
            c = await move(env, "oleg", c)
            assert c["stage"] == "corrective_action"
            c = await edit(env, "oleg", c, department="Цех ремонта", corrective_action="Стойки заменены по гарантии")
            c = await move(env, "oleg", c)
            c = await edit(env, "oleg", c, contact_method="звонок", client_feedback="стук пропал")
            c = await move(env, "oleg", c)
            assert c["stage"] == "result"
            c = await edit(env, "oleg", c, result="satisfied", decision="Стойки заменены бесплатно по гарантии.")
            c = await move(env, "oleg", c)
            assert (c["stage"], c["status"], c["missing"]) == ("closed", "satisfied", [])
            assert c["closed_at"] is not None

            view = await card(env, "oleg", c["id"])
            actions = [h["action"] for h in view["history"]]
            assert actions[0] == "registered" and actions.count("moved") == 6
            assert {"handed_over", "answered", "plan_added", "edited"} <= set(actions)
            closing = [h for h in view["history"] if h["action"] == "moved"][-1]
            assert closing["details"]["decision_to"] == "petrov@client.example.ru"
            assert not [t for t in view["tasks"] if t["state"] == "open"]
            # A closed complaint changes no more.
            again = await post(env, "oleg", c, "edit", {"changes": {"comment": "ещё"}}, status=409)
            assert again["error"]["code"] == "invalid_request"

            # The e-mails reached the SMTP server: the responsible's at registration, the colleague's question, the
            # answer back, the client's decision.
            mails = await smtp.wait_for(4)
            to_client = [r for r in mails if r.rcpt_tos == ("petrov@client.example.ru",)]
            assert len(to_client) == 1
            assert c["number"] in str(to_client[0].message["Subject"])
            assert "Стойки заменены бесплатно" in to_client[0].message.get_content()
            assert any(r.rcpt_tos == ("oleg@service.example.ru",) for r in mails)
            assert any(r.rcpt_tos == ("dmitry@service.example.ru",) for r in mails)
            await oleg.close()


async def test_an_overdue_task_is_escalated_once_and_the_manager_reassigns_it_with_the_reason_kept() -> None:
    async with complaints_env() as env:
        clock = Clock(env.desk.clock())
        env.desk.clock = clock
        admin = await WsClient.connect(env.panel, "admin")
        dmitry = await WsClient.connect(env.panel, "dmitry")
        c = await register(env, "anna", {"type": "delivery", "client_name": "Иванов", "client_phone": "79160000001",
                                         "comment": "машину не выдали в срок"})
        assert await env.desk.tick() == 0  # not due yet
        # The registration stage has 24 hours: a day and an hour later it is overdue.
        clock.now += 25 * 3600
        # This tick escalates it, unless the panel's own ticker (same clock) got there first: either way, once.
        await env.desk.tick()
        assert await env.desk.tick() == 0  # once
        overdue = await admin.wait_for("complaint.overdue")
        assert overdue["complaint"]["id"] == c["id"] and overdue["task"]["escalated_at"] is not None
        assert overdue["complaint"]["overdue"] is True
        listed = await (await env.as_("admin")).get("/api/complaints/overdue")
        assert [(t["complaint_id"], t["assignee"]) for t in listed.json()["tasks"]] == [(c["id"], "oleg")]
        # Anyone else sees their own overdue tasks only.
        own = (await (await env.as_("oleg")).get("/api/complaints/overdue")).json()["tasks"]
        assert [t["complaint_id"] for t in own] == [c["id"]]
        assert (await (await env.as_("anna")).get("/api/complaints/overdue")).json()["tasks"] == []
        # The manager's e-mail is in the outbox with the escalation (no [mail] here: it waits there).
        mails = await env.panel.store.list_mails()
        assert any(m.to == ("boss@service.example.ru",) and c["number"] in m.subject for m in mails)
        history = (await card(env, "admin", c["id"]))["history"]
        assert [h["action"] for h in history] == ["registered", "escalated"]

        # Only a manager reassigns; the reason is kept; the new responsible gets the stage's task.
        refused = await post(env, "oleg", c, "reassign", {"to": "dmitry", "reason": "отпуск"}, status=403)
        assert refused["error"]["code"] == "not_allowed"
        c = await post(env, "admin", c, "reassign", {"to": "dmitry", "reason": "Олег в отпуске"})
        assert (c["responsible"], c["assignee"]) == ("dmitry", "dmitry")
        task = (await dmitry.wait_for("complaint.task"))["task"]
        assert (task["assignee"], task["escalated_at"]) == ("dmitry", None)
        mine = (await (await env.as_("dmitry")).get("/api/complaints/tasks")).json()["tasks"]
        assert [(t["complaint_id"], t["stage"]) for t in mine] == [(c["id"], "registration")]
        assert (await (await env.as_("oleg")).get("/api/complaints/tasks")).json()["tasks"] == []
        history = (await card(env, "admin", c["id"]))["history"]
        assert history[-1]["action"] == "reassigned" and history[-1]["details"]["reason"] == "Олег в отпуске"
        assert history[-1]["details"]["responsible"] == {"old": "oleg", "new": "dmitry"}
        # oleg no longer sees it; dmitry does.
        assert (await (await env.as_("oleg")).get(f"/api/complaints/{c['id']}")).status_code == 403
        await admin.close()
        await dmitry.close()


async def integration_token(env: ComplaintsEnv, name: str) -> httpx.AsyncClient:
    await env.panel.store.add_user(User(name=name, role="integration"))
    token = new_token()
    await env.panel.store.add_token(name, token_hash(token), "portal")
    return await env.stack.enter_async_context(httpx.AsyncClient(
        base_url=env.panel.url, headers={"Authorization": f"Bearer {token}"}))


async def test_a_retried_integration_request_returns_the_first_complaint_and_never_files_two() -> None:
    async with complaints_env() as env:
        portal = await integration_token(env, "dealer-portal")
        body = {"type": "quality", "client_name": "ООО Ромашка", "client_phone": "+7 495 000-00-01",
                "comment": "гарантийная претензия по запчасти"}
        without = await portal.post("/api/complaints", json=body)
        assert without.status_code == 400 and "Idempotency-Key" in error_of(without)["message"]
        first = await portal.post("/api/complaints", json=body, headers={"Idempotency-Key": "order-77"})
        assert first.status_code == 201, first.text
        complaint = first.json()["complaint"]
        assert (complaint["source"], complaint["created_by"], first.json()["created"]) == (
            "api", "dealer-portal", True)
        again = await portal.post("/api/complaints", json=body, headers={"Idempotency-Key": "order-77"})
        assert again.status_code == 200 and again.json()["complaint"]["id"] == complaint["id"]
        assert again.json()["created"] is False
        # Retries racing each other: one complaint.
        racing = await asyncio.gather(*(portal.post("/api/complaints", json=body,
                                                    headers={"Idempotency-Key": "order-78"}) for _ in range(4)))
        assert sorted(r.status_code for r in racing) == [200, 200, 200, 201]
        assert len({r.json()["complaint"]["id"] for r in racing}) == 1
        # Another integration's key of the same text is its own.
        other = await integration_token(env, "1c-exchange")
        theirs = await other.post("/api/complaints", json=body, headers={"Idempotency-Key": "order-77"})
        assert theirs.status_code == 201 and theirs.json()["complaint"]["id"] != complaint["id"]
        # Each reads the complaints it filed, not the other's.
        assert (await portal.get(f"/api/complaints/{complaint['id']}")).status_code == 200
        assert (await other.get(f"/api/complaints/{complaint['id']}")).status_code == 403
        listed = await (await env.as_("admin")).get("/api/complaints")
        assert listed.json()["total"] == 3
        # A bad key and a call named by the integration are refused.
        bad = await portal.post("/api/complaints", json=body, headers={"Idempotency-Key": "a b"})
        assert bad.status_code == 400
        called = await portal.post("/api/complaints", json={**body, "pbx": "main", "linkedid": CALL},
                                   headers={"Idempotency-Key": "order-79"})
        assert called.status_code == 400


async def test_two_edits_from_the_same_revision_the_second_is_refused_with_the_complaint_as_it_is() -> None:
    async with complaints_env() as env:
        c = await register(env, "admin", {"type": "question", "client_name": "Сидоров", "comment": "вопрос"})
        first = await edit(env, "oleg", c, comment="вопрос о сроках")
        stale = await post(env, "admin", c, "edit", {"changes": {"comment": "другой текст"}}, status=409)
        assert stale["error"]["code"] == "changed"
        assert stale["error"]["complaint"]["comment"] == "вопрос о сроках"
        assert stale["error"]["complaint"]["revision"] == first["revision"]
        # A value the field cannot take is named.
        bad = await post(env, "oleg", first, "edit", {"changes": {"client_email": "not-an-address"}}, status=422)
        assert bad["error"]["field"] == "client_email"
        unknown = await post(env, "oleg", first, "edit", {"changes": {"no_such": "x"}}, status=422)
        assert unknown["error"]["field"] == "no_such"
        # An agent who is neither responsible nor assignee reads nothing of it and changes nothing.
        assert (await (await env.as_("dmitry")).get(f"/api/complaints/{c['id']}")).status_code == 403
        response = await (await env.as_("dmitry")).post(f"/api/complaints/{c['id']}/edit",
                                                       json={"changes": {"comment": "x"}})
        assert response.status_code == 403


async def test_the_list_filters_and_exports_csv_a_spreadsheet_cannot_run_and_the_report_counts() -> None:
    async with complaints_env() as env:
        formula = await register(env, "admin", {"type": "quality", "client_name": "=HYPERLINK(\"http://x\")",
                                                "comment": "+7 стук"})
        thanks = await register(env, "admin", {"type": "thanks", "client_name": "Благодарный", "comment": "спасибо"})
        await move(env, "oleg", thanks)
        admin = await env.as_("admin")
        by_type = (await admin.get("/api/complaints", params={"type": "thanks"})).json()
        assert [c["id"] for c in by_type["complaints"]] == [thanks["id"]] and by_type["total"] == 1
        by_status = (await admin.get("/api/complaints", params={"status": "registered"})).json()
        assert [c["id"] for c in by_status["complaints"]] == [formula["id"]]
        by_stage = (await admin.get("/api/complaints", params={"stage": "review"})).json()
        assert [c["id"] for c in by_stage["complaints"]] == [thanks["id"]]
        assert (await admin.get("/api/complaints", params={"overdue": "1"})).json()["total"] == 0
        assert (await admin.get("/api/complaints", params={"responsible": "oleg"})).json()["total"] == 2
        assert (await admin.get("/api/complaints", params={"status": "bogus"})).status_code == 400
        # An agent lists what they answer for (oleg: both; anna: none).
        assert (await (await env.as_("oleg")).get("/api/complaints")).json()["total"] == 2
        assert (await (await env.as_("anna")).get("/api/complaints")).json()["total"] == 0
        assert (await (await env.as_("anna")).get("/api/complaints", params={"responsible": "oleg"})
                ).status_code == 403

        exported = await admin.get("/api/complaints", params={"format": "csv"})
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";"))
        assert {r["number"] for r in rows} == {formula["number"], thanks["number"]}
        cells = {r["number"]: r for r in rows}[formula["number"]]
        assert cells["client_name"] == "'=HYPERLINK(\"http://x\")"  # a formula shown, never run
        assert cells["type_title"] == "Качество работ"
        cp1251 = await admin.get("/api/complaints", params={"format": "csv", "encoding": "cp1251"})
        assert "Благодарный" in cp1251.content.decode("cp1251")

        report = await admin.get("/api/complaints/report")
        assert report.status_code == 200, report.text
        figures = report.json()
        assert figures["total"] == 2
        assert {r["key"]: r["count"] for r in figures["by_type"]} == {"quality": 1, "thanks": 1}
        assert next(s for s in figures["stages"] if s["stage"] == "registration")["samples"] == 1
        report_csv = await admin.get("/api/complaints/report", params={"format": "csv"})
        assert "by_type" in report_csv.content.decode("utf-8-sig")
        # An agent's report counts the complaints they answer for (anna: none).
        assert (await (await env.as_("anna")).get("/api/complaints/report")).json()["total"] == 0
        assert (await (await env.as_("oleg")).get("/api/complaints/report")).json()["total"] == 2


async def test_a_period_of_dates_is_the_sites_days_whatever_zone_the_server_runs_in() -> None:
    """A Moscow manager's «since 2 March» starts at Moscow's midnight: a complaint filed at 00:30 Moscow time (21:30
    UTC the day before) is in it, one filed an hour earlier is not."""
    async with complaints_env() as env:
        clock = Clock(datetime(2026, 3, 1, 23, 30, tzinfo=MOSCOW).timestamp())
        env.desk.clock = clock
        before = await register(env, "admin", {"type": "quality", "client_name": "Накануне", "comment": "стук"})
        clock.now += 3600  # 00:30 on 2 March in Moscow, still 1 March in UTC
        on_the_day = await register(env, "admin", {"type": "quality", "client_name": "В срок", "comment": "стук"})
        admin = await env.as_("admin")
        listed = (await admin.get("/api/complaints", params={"since": "2026-03-02", "until": "2026-03-03"})).json()
        assert [c["id"] for c in listed["complaints"]] == [on_the_day["id"]]
        earlier = (await admin.get("/api/complaints", params={"until": "2026-03-02"})).json()
        assert [c["id"] for c in earlier["complaints"]] == [before["id"]]
