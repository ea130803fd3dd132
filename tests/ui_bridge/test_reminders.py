"""Call-back reminders over the WebSocket (real daemon, replay PBX over TCP, real store).

What a master and a supervisor rely on: a script route whose transfer nobody answers leaves a reminder kept for the
master and pushed to their panel at once; at its time it is pushed again as due; overdue, it is escalated to the
admins (whether or not the master ever logs in); an answered call between the master's extension and the client's
number closes it by itself; closing it by hand takes a comment and is the assignee's or an admin's only. The master
(role ``employee``) logs in and reads their own reminders, and nothing else of the panel.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from cti.scripts import Employee, ReminderWanted
from store.repository import ScriptRun
from tests.cli_runner import cti
from tests.daemon.conftest import UNIT, write_config
from tests.panel_env import PanelEnv, panel_env
from tests.ui_bridge.test_script_desk import TRANSFER, _at, actions, fields, launched, scripts, step
from tests.ui_bridge.wsclient import WsClient, session_cookie
from ui_bridge.reminders import ReminderDesk

CALLER = "79160001313"  # the caller of 13-blind-transfer-redirect, answered by agent 101


def desk(env: PanelEnv) -> ReminderDesk:
    panel = env.running.daemon.panel
    assert panel is not None
    return panel.reminders


async def remind(env: PanelEnv, extension: str, *, due_in: float, number: str = CALLER,
                 employee: str = "elena", run_id: int = 1) -> None:
    """A reminder handed over as the script desk hands one (its sink), due ``due_in`` seconds from now."""
    due_at = time.time() + due_in
    wanted = ReminderWanted(step="callback", employee=Employee(employee, "Елена Попова", extension), number=number,
                            due_at=due_at, due=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(due_at)),
                            note="перезвонить по ремонту", contact_id=None, client_name="Пётр «Шкода»",
                            linkedid=None)
    run = ScriptRun(id=run_id, pbx="main", agent="101", linkedid=None, script="car-service", version="1",
                    status="open", state={}, revision=1, started_at=time.time(), updated_at=time.time())
    await desk(env).add(wanted, run)


async def reminders_of(env: PanelEnv, name: str, view: str = "mine") -> httpx.Response:
    async with httpx.AsyncClient(base_url=env.url) as http:
        return await http.get(f"/api/reminders?view={view}",
                              headers={"Cookie": f"cti_session={await session_cookie(env, name)}"})


async def test_an_unanswered_transfer_leaves_a_reminder_pushed_to_the_master_then_due_then_escalated() -> None:
    sections = {**scripts(0.5), "reminders": "escalate_after_minutes = 0.05"}  # 3 s
    async with panel_env([TRANSFER], speed=0.1, replay_options={"live": True}, sections=sections) as env:
        anna, elena = await WsClient.connect(env, "anna"), await WsClient.connect(env, "elena")
        admin = await WsClient.connect(env, "admin")
        assert (await elena.wait_for("hello"))["user"]["role"] == "employee"
        run = await launched(env, anna)
        run = (await step(anna, run, {"option": "repair_private"}))["run"]
        run = (await step(anna, run, {"new": {"make": "Skoda", "plate": "А 123 ВС 77"}}))["run"]
        run = (await step(anna, run, {"employee": "elena"}))["run"]
        assert fields(actions(env, "Atxfer")[-1])["Exten"] == "105"
        moved = (await anna.wait_for("script.run", timeout=20, run=_at(anna, "callback")))["run"]
        assert moved["notice"] == "transfer_not_answered"
        await step(anna, moved, {"due": "+0m", "note": "перезвонить после обеда"})  # due at once (to the minute)

        new = (await elena.wait_for("reminder.new"))["reminder"]
        assert (new["employee"], new["employee_name"], new["extension"], new["user"], new["number"]) == (
            "elena", "Елена, мастер-приёмщик", "105", "elena", CALLER)
        assert (new["note"], new["run_id"], new["created_by"], new["status"]) == (
            "перезвонить после обеда", run["id"], "101", "open")
        [kept] = await env.store.list_reminders(extension="105")
        assert kept.id == new["id"] and kept.linkedid == run["linkedid"]

        due = (await elena.wait_for("reminder.due", timeout=10))["reminder"]
        assert due["id"] == new["id"] and due["due"]
        escalated = (await admin.wait_for("reminder.escalated", timeout=15))["reminder"]
        assert escalated["id"] == new["id"] and escalated["escalated_at"]
        assert [m["reminder"]["id"] for m in elena.of_type("reminder.due")] == [new["id"]]  # pushed once
        assert anna.of_type("reminder.new") == []  # not the agent's own: another extension's

        listed = (await reminders_of(env, "elena")).json()["reminders"]
        assert [r["id"] for r in listed] == [new["id"]] and listed[0]["due"]
        overdue = (await reminders_of(env, "admin", "overdue")).json()["reminders"]
        assert [r["id"] for r in overdue] == [new["id"]]
        assert (await reminders_of(env, "oleg")).json()["reminders"] == []  # another agent has none


async def test_due_at_its_time_and_escalated_for_a_master_who_never_logs_in() -> None:
    async with panel_env([TRANSFER], sections={"reminders": "escalate_after_minutes = 0.05"}) as env:
        admin = await WsClient.connect(env, "admin")
        await remind(env, "105", due_in=2 * UNIT)  # Елена never logs in
        made = (await admin.wait_for("reminder.new"))["reminder"]
        assert not made["due"] and admin.of_type("reminder.due") == []
        due = await admin.wait_for("reminder.due", timeout=5)
        arrived = next(t for t, msg in admin.received if msg is due)
        assert arrived >= next(t for t, msg in admin.received if msg["type"] == "reminder.new") + 1.0  # not early
        escalated = (await admin.wait_for("reminder.escalated", timeout=10))["reminder"]
        assert escalated["id"] == made["id"]
        elena = await WsClient.connect(env, "elena")  # she logs in later: her list has it, due
        await elena.wait_for("hello")
        [listed] = (await reminders_of(env, "elena")).json()["reminders"]
        assert listed["id"] == made["id"] and listed["due"] and listed["escalated_at"]


async def test_an_answered_call_between_the_extension_and_the_number_closes_it() -> None:
    async with panel_env([TRANSFER]) as env:
        anna = await WsClient.connect(env, "anna")
        await remind(env, "101", due_in=3600, employee="anna")  # Anna is to call 79160001313 back
        await remind(env, "102", due_in=3600, employee="oleg", run_id=2)  # Oleg too: he does not talk to them
        made = (await anna.wait_for("reminder.new"))["reminder"]
        env.start_calls()  # 79160001313 calls in and Anna (101) answers
        ended = await anna.wait_for("call.ended", timeout=30)
        closed = (await anna.wait_for("reminder.closed", timeout=10))["reminder"]
        assert (closed["id"], closed["status"], closed["closed_how"], closed["closed_by"]) == (
            made["id"], "done", "call", "call")
        assert closed["closed_linkedid"] == ended["linkedid"]
        [still_open] = await env.store.list_reminders()
        assert still_open.extension == "102"


async def test_closed_by_hand_with_a_comment_by_its_assignee_or_an_admin_only() -> None:
    async with panel_env([TRANSFER]) as env:
        elena, oleg, qa = [await WsClient.connect(env, n) for n in ("elena", "oleg", "qa")]
        await remind(env, "105", due_in=60)
        made = (await elena.wait_for("reminder.new"))["reminder"]
        close: dict[str, Any] = {"type": "reminder.close", "reminder_id": made["id"],
                                 "comment": "дозвонилась с мобильного, записала на среду"}
        assert (await oleg.request(close))["code"] == "forbidden"  # someone else's
        assert (await qa.request(close))["code"] == "forbidden"
        assert (await elena.request({"type": "reminder.close", "reminder_id": made["id"] + 99}))["code"] == \
            "not_found"
        reply = await elena.request(close)
        assert reply["type"] == "reply" and reply["data"]["reminder"]["closed_how"] == "hand"
        pushed = (await elena.wait_for("reminder.closed"))["reminder"]
        assert (pushed["status"], pushed["closed_by"], pushed["comment"]) == (
            "done", "elena", "дозвонилась с мобильного, записала на среду")
        again = await elena.request(close)
        assert again["code"] == "conflict" and again["by"] == "elena"
        assert (await reminders_of(env, "elena")).json()["reminders"] == []


async def test_an_employee_reads_their_reminders_and_nothing_else() -> None:
    async with panel_env([TRANSFER]) as env:
        elena = await WsClient.connect(env, "elena")
        await elena.wait_for("state")
        assert (await elena.request({"type": "subscribe", "scope": "all"}))["code"] == "forbidden"
        refused = await elena.request({"type": "queue.pause", "queue": "support"})
        assert refused["code"] == "forbidden"
        assert (await elena.request({"type": "originate", "number": CALLER, "extension": "101"}))["code"] == \
            "forbidden"  # her own phone only
        assert (await elena.request({"type": "script.runs"}))["code"] in ("forbidden", "not_found")
        called = await elena.request({"type": "originate", "number": CALLER})
        assert called["type"] == "reply", called
        [originate] = actions(env, "Originate")
        assert (fields(originate)["Channel"], fields(originate)["Exten"]) == ("PJSIP/105", CALLER)
        async with httpx.AsyncClient(base_url=env.url) as http:
            cookie = {"Cookie": f"cti_session={await session_cookie(env, 'elena')}"}
            assert (await http.get("/api/me", headers=cookie)).json()["user"]["role"] == "employee"
            for path in ("/api/calls", "/api/contacts?q=Иванов", "/api/missed", "/api/contacts/register"):
                assert (await http.get(path, headers=cookie)).status_code == 403, path
            assert (await http.get("/api/reminders?view=overdue", headers=cookie)).status_code == 403


def test_cti_users_add_makes_an_employee_who_needs_an_extension(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, 5039))
    no_ext = cti("users", "add", "ivan", "--role", "employee", "--password-stdin", "--config", config,
                 input="long-enough-1\n", check=False)
    assert no_ext.returncode == 2 and "--extension" in no_ext.stderr
    added = cti("users", "add", "ivan", "--role", "employee", "--extension", "201", "--password-stdin",
                "--config", config, input="long-enough-1\n")
    assert "user ivan (employee, extension 201) created" in added.stdout
    listed = json.loads(cti("users", "list", "--config", config, "--format", "json").stdout)
    assert [(u["name"], u["role"], u["extension"]) for u in listed] == [("ivan", "employee", "201")]
