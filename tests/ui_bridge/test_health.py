"""``GET /api/health`` over real HTTP: an admin sees the AMI link, every pipeline subscriber with its counts and the
store's backlog; nobody else does (agents and QA 403, no login 401)."""

from __future__ import annotations

import httpx

from cti.effects import CallEnded, Effect
from tests.panel_env import panel_env
from tests.traces import TRACES, load_truth

TRACE = "07-queue-ringall-answered"


async def test_an_admin_sees_each_subscriber_with_its_counts_and_the_store_backlog() -> None:
    given: list[Effect] = []
    ended: list[Effect] = []

    def crm_push(effect: Effect) -> None:  # a subscriber with a bug: it fails on every call's end
        given.append(effect)
        if isinstance(effect, CallEnded):
            ended.append(effect)
            raise RuntimeError("the CRM is down")

    async with panel_env([TRACE], speed=0) as env, httpx.AsyncClient(base_url=env.url) as http:
        daemon = env.running.daemon
        daemon.subscribe(crm_push, name="crm-push")
        assert (await http.post("/api/login", json={"name": "admin", "password": env.users["admin"][0]})).is_success
        env.start_calls()
        calls = len(load_truth(TRACES / TRACE))
        await env.wait_for(lambda: len(ended) == calls and not daemon.book.calls, 20, "every call to end")
        await env.wait_for(lambda: all(s.queued == 0 for s in daemon.pipeline.stats()), 10, "the queues to empty")

        response = await http.get("/api/health")
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
        health = response.json()
        assert health["ami_connected"] is True and health["ami_error"] is None
        assert health["events_applied"] > 0 and health["calls_in_progress"] == 0
        assert health["store"]["pending"] >= 0 and health["store"]["max_pending"] == 5_000
        subscribers = {s["name"]: s for s in health["subscribers"]}
        # supervisor: ui_bridge/supervisor.py; reminders: ui_bridge/reminders.py (answered calls close reminders)
        assert set(subscribers) == {"panel", "supervisor", "reminders", "crm-push"}
        panel, crm = subscribers["panel"], subscribers["crm-push"]
        assert panel["delivered"] > 0 and panel["failed"] == panel["shed"] == panel["queued"] == 0
        assert crm["failed"] == calls and crm["delivered"] == len(given) - calls > 0
        assert crm["stalled"] == crm["shed"] == crm["restarts"] == crm["queued"] == 0
        assert set(panel) == {"name", "queued", "most_queued", "delivered", "failed", "stalled", "shed", "restarts"}


async def test_only_admins_read_the_health() -> None:
    async with panel_env([TRACE]) as env:
        async with httpx.AsyncClient(base_url=env.url) as anonymous:
            response = await anonymous.get("/api/health")
            assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
        for name in ("anna", "qa"):
            async with httpx.AsyncClient(base_url=env.url) as http:
                await http.post("/api/login", json={"name": name, "password": env.users[name][0]})
                response = await http.get("/api/health")
                assert response.status_code == 403, name
                assert response.json()["error"] == {"code": "forbidden",
                                                    "message": "the daemon's health is for admins"}
