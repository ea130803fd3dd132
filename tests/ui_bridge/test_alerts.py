"""The supervisor's alerts over the real WebSocket and HTTP, against the whole system (replay PBX → daemon → panel):
who gets ``alert.*``, who may acknowledge (``alert.ack``) and what a refusal says, and ``GET /api/alerts``' pages."""

from __future__ import annotations

import asyncio

import httpx

from asterisk.messages import AmiMessage
from cti.alerts import Condition
from store.repository import User
from tests.daemon.conftest import UNIT
from tests.panel_env import panel_env
from tests.ui_bridge.wsclient import WsClient, session_cookie
from ui_bridge.auth import hash_password

TRACE = "08-queue-abandon"
CALLER = "79990001122"


def queue_join(m: AmiMessage) -> bool:
    return m.event == "QueueCallerJoin"


async def test_a_long_wait_reaches_the_pbxs_admins_and_one_of_them_acknowledges_it() -> None:
    async with panel_env([TRACE], sections={"alerts": "long_wait_seconds = 1"}) as env:
        # A supervisor of another PBX only: sees nothing of this one, acknowledges nothing of it.
        env.users["spb-boss"] = ("spb-boss-password", "admin", None, None)
        await env.store.add_user(User(name="spb-boss", role="admin", pbxs=("spb",),
                                      password_hash=await asyncio.to_thread(hash_password, "spb-boss-password")))
        admin, second, qa, agent, stranger = [await WsClient.connect(env, name)
                                               for name in ("admin", "admin", "qa", "anna", "spb-boss")]
        await env.serve_through(queue_join, "the caller joining the queue")

        raised = (await admin.wait_for("alert.raised"))["alert"]
        assert (raised["kind"], raised["status"], raised["subject"], raised["pbx"]) == (
            "long_wait", "active", CALLER, "main")
        assert raised["key"].startswith("long_wait:main:") and raised["acknowledged_by"] is None
        assert raised["figures"]["queue"] == "support" and raised["figures"]["wait_seconds"] >= 1
        await second.wait_for("alert.raised")
        await qa.wait_for("alert.raised")  # QA reads what the admins see
        alert_id = raised["id"]

        for who, code in ((agent, "forbidden"), (qa, "forbidden"), (stranger, "forbidden")):
            refused = await who.request({"type": "alert.ack", "alert_id": alert_id})
            assert refused["type"] == "error" and refused["code"] == code, refused
        missing = await admin.request({"type": "alert.ack", "alert_id": alert_id + 1000})
        assert missing["type"] == "error" and missing["code"] == "not_found"
        for bad in ({"alert_id": 0}, {"alert_id": "x"}, {}):
            wrong = await admin.request({"type": "alert.ack", **bad})
            assert wrong["type"] == "error" and wrong["code"] == "bad_message", wrong

        reply = await admin.request({"type": "alert.ack", "alert_id": alert_id})
        assert reply["type"] == "reply" and reply["data"]["alert"]["acknowledged_by"] == "admin"
        told = (await second.wait_for("alert.acknowledged"))["alert"]
        assert told["id"] == alert_id and told["acknowledged_by"] == "admin" and told["status"] == "active"
        late = await second.request({"type": "alert.ack", "alert_id": alert_id})
        assert late["type"] == "error" and late["code"] == "conflict" and "admin" in late["message"]
        assert late["by"] == "admin"  # a field: a panel names who in its own language

        env.start_calls()  # the caller abandons: the alert is resolved, and keeps who acknowledged it
        resolved = (await second.wait_for("alert.resolved"))["alert"]
        assert resolved["id"] == alert_id and resolved["status"] == "resolved"
        assert resolved["acknowledged_by"] == "admin" and resolved["resolved_at"] is not None
        for client in (agent, stranger):
            assert not [t for t in client.types() if t.startswith("alert.")], client.types()
        assert len(admin.of_type("alert.raised")) == 1
        for client in (admin, second, qa, agent, stranger):
            await client.close()


async def test_the_history_pages_newest_first_for_admins_of_the_pbx() -> None:
    async with panel_env([TRACE]) as env:
        for i in range(3):
            await env.store.raise_alert(Condition(key=f"paused:main:10{i}", kind="paused", pbx="main",
                                                  subject=f"10{i}", since=1.0e9, figures={"extension": f"10{i}"}),
                                        at=1.0e9 + i)
        [first, *_] = await env.store.active_alerts()
        await env.store.resolve_alert(first.id, at=1.0e9 + 10)
        async with httpx.AsyncClient(base_url=env.url, timeout=10 * UNIT) as http:
            http.cookies.set("cti_session", await session_cookie(env, "admin"))
            page1 = (await http.get("/api/alerts", params={"limit": 2})).json()
            assert [a["subject"] for a in page1["alerts"]] == ["102", "101"] and page1["next"]
            page2 = (await http.get("/api/alerts", params={"limit": 2, "before": page1["next"]})).json()
            assert [a["subject"] for a in page2["alerts"]] == ["100"] and page2["next"] is None
            assert page2["alerts"][0]["status"] == "resolved" and page2["alerts"][0]["resolved_at"]
            active = (await http.get("/api/alerts", params={"status": "active"})).json()
            assert [a["subject"] for a in active["alerts"]] == ["102", "101"]
            resolved = (await http.get("/api/alerts", params={"status": "resolved"})).json()
            assert [a["subject"] for a in resolved["alerts"]] == ["100"]
            for bad in ({"limit": "0"}, {"limit": "201"}, {"status": "open"}, {"before": "abc"},
                        {"before": "9" * 30}, {"pbx": "nowhere"}):
                response = await http.get("/api/alerts", params=bad)
                assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request", bad


async def test_a_lost_queue_call_lowers_the_service_level_and_stays_not_called_back() -> None:
    alerts = "service_level_below = 80\nservice_level_min_calls = 1\nmissed_not_called_back_minutes = 0.02"
    async with panel_env([TRACE], speed=0, sections={"alerts": alerts}) as env:
        admin = await WsClient.connect(env, "admin")
        env.start_calls()  # the caller abandons: one queue call, none answered within 20 s
        await admin.wait_for("alert.raised", timeout=15)
        async with asyncio.timeout(15 * UNIT):  # the two conditions hold within a tick or two of each other
            while {a["alert"]["kind"] for a in admin.of_type("alert.raised")} != {"service_level", "missed"}:
                await asyncio.sleep(0.05)
        found = {a["alert"]["kind"]: a["alert"] for a in admin.of_type("alert.raised")}
        service = found["service_level"]
        assert service["key"] == "service_level:main:support" and service["since"] is None
        assert (service["figures"]["service_level"], service["figures"]["counted_calls"],
                service["figures"]["answered_within"]) == (0.0, 1, 0)
        [entry] = await env.store.list_missed(status="open")
        not_called = found["missed"]
        assert not_called["key"] == f"missed:main:{entry.id}" and not_called["figures"]["missed_id"] == entry.id
        assert not_called["subject"] == CALLER

        await env.store.close_missed(entry.id or 0, "перезвонили", by="admin")  # the register changed here
        resolved = (await admin.wait_for("alert.resolved"))["alert"]
        assert resolved["key"] == f"missed:main:{entry.id}"
        await admin.close()
