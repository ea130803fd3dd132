"""The supervisor's figures over the real system (replay PBX → daemon → HTTP and WebSocket): pushed to admins and
QA when they change, read by ``GET /api/supervisor``, kept across a restart mid-day, and the wallboard's page.

Expected numbers come from the trace's truth.json (07-queue-ringall-answered: one inbound call to queue support,
answered by 102, 101 and 105 rang and did not take it), never from the code under test.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from companion.config import load_config
from tests.daemon.conftest import UNIT, RunningDaemon
from tests.panel_env import PanelEnv, add_users, panel_env
from tests.ui_bridge.two_pbxs import two_pbxs
from tests.ui_bridge.wsclient import WsClient, session_cookie

TRACE = "07-queue-ringall-answered"


async def figures(url: str, cookie: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/api/supervisor", headers={"Cookie": f"cti_session={cookie}"})
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()["figures"]
        return result


async def support_of(url: str, cookie: str) -> dict[str, Any] | None:
    for f in await figures(url, cookie):
        for q in f["queues"]:
            if q["queue"] == "support":
                return {**q, "agents": {a["extension"]: a for a in f["agents"]}}
    return None


async def wait_for_answered(url: str, cookie: str, answered: int) -> dict[str, Any]:
    async with asyncio.timeout(20 * UNIT):
        while True:
            support = await support_of(url, cookie)
            if support is not None and support["answered"] == answered:
                return support
            await asyncio.sleep(0.05)


async def test_the_figures_are_pushed_when_they_change_and_read_by_http() -> None:
    async with panel_env([TRACE], speed=0) as env:
        admin = await WsClient.connect(env, "admin")
        qa = await WsClient.connect(env, "qa")
        anna = await WsClient.connect(env, "anna")
        try:
            env.start_calls()
            pushed = await admin.wait_for("supervisor.figures", timeout=20)
            assert pushed["pbx"] == "main" and pushed["service_level_seconds"] == 20.0
            cookie = await session_cookie(env, "admin")
            support = await wait_for_answered(env.url, cookie, 1)
            # truth.json: answered by 102 after 4.5 s (within 20 s: 100 %), 12.585 s of talk; nothing abandoned.
            assert (support["waiting"], support["answered"], support["abandoned"], support["short_abandoned"],
                    support["unanswered"], support["service_level"]) == (0, 1, 0, 0, 0, 1.0)
            assert abs(support["average_talk_seconds"] - 12.585) <= 0.1
            agents = support["agents"]
            # 102 took it; 101 and 105 rang for it and did not (truth.json's agents_rung_not_answered).
            assert (agents["102"]["calls"], agents["102"]["misses"]) == (1, 0)
            assert (agents["101"]["calls"], agents["101"]["misses"]) == (0, 1)
            assert (agents["105"]["calls"], agents["105"]["misses"]) == (0, 1)
            # The same figures reached the admin and QA sockets (the `all` audience), never the agent's.
            await admin.wait_for("supervisor.figures", timeout=10)
            await qa.wait_for("supervisor.figures", timeout=10)

            def answered(client: WsClient) -> bool:
                return any(q["queue"] == "support" and q["answered"] == 1
                           for m in client.of_type("supervisor.figures") for q in m["queues"])

            async with asyncio.timeout(10 * UNIT):
                while not (answered(admin) and answered(qa)):
                    await asyncio.sleep(0.05)
            assert anna.of_type("supervisor.figures") == []
            # Nothing changes once the call is over: no more pushes (at most one a second, and only on a change).
            count = len(admin.of_type("supervisor.figures"))
            await asyncio.sleep(2.5)
            assert len(admin.of_type("supervisor.figures")) == count
            # An agent may not read them.
            async with httpx.AsyncClient(base_url=env.url) as http:
                agent = await session_cookie(env, "anna")
                refused = await http.get("/api/supervisor", headers={"Cookie": f"cti_session={agent}"})
                assert refused.status_code == 403
                assert refused.json()["error"]["message"] == "the supervisor's figures are for admins and QA"
        finally:
            for client in (admin, qa, anna):
                await client.conn.close()


async def test_a_daemon_restarted_mid_day_keeps_the_days_counts() -> None:
    async with panel_env([TRACE], speed=0) as env:
        env.start_calls()
        cookie = await session_cookie(env, "admin")
        await wait_for_answered(env.url, cookie, 1)
        await env.running.stop()
        # A new daemon on the same store (the replay has nothing more to play): the day's rows are loaded.
        async with RunningDaemon(load_config(env.config)) as again:
            daemon = again.daemon
            assert daemon.panel_server is not None and daemon.store is not None
            url = daemon.panel_server.url
            restarted = PanelEnv(url=url, ws_url=url.replace("http", "ws", 1) + "/ws", replay=env.replay,
                                 running=again, config=env.config, tmp=env.tmp)
            if not await daemon.store.get_user("admin"):
                await add_users(daemon.store)
            cookie = await session_cookie(restarted, "admin")
            support = await wait_for_answered(url, cookie, 1)
            assert (support["agents"]["102"]["calls"], support["agents"]["101"]["misses"]) == (1, 1)


async def test_the_wallboard_page_needs_a_login() -> None:
    async with panel_env([TRACE]) as env, httpx.AsyncClient(base_url=env.url) as http:
        page = await http.get("/wallboard")
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/wallboard"
        assert (await http.get("/static/wallboard.js")).status_code == 401
        await http.post("/api/login", json={"name": "qa", "password": "qa-password-1"})
        page = await http.get("/wallboard")
        assert page.status_code == 200 and 'data-test="wallboard"' in page.text
        assert (await http.get("/static/wallboard.js")).status_code == 200


async def test_each_admin_gets_the_figures_of_their_own_pbxs_only() -> None:
    """Two PBXs playing the same trace: spb's call counts on spb's figures only, and reaches only its users."""
    async with two_pbxs([TRACE]) as pbxs:
        env = pbxs.env
        boss_msk, qa_spb = await WsClient.connect(env, "boss-msk"), await WsClient.connect(env, "qa-spb")
        try:
            pbxs.replays["spb"].resume()  # msk stays held: no call there
            spb = await support_of(env.url, await session_cookie(env, "qa-spb"))
            async with asyncio.timeout(20 * UNIT):
                while spb is None or spb["answered"] != 1:
                    await asyncio.sleep(0.05)
                    spb = await support_of(env.url, await session_cookie(env, "qa-spb"))
            everything = {f["pbx"]: f for f in await figures(env.url, await session_cookie(env, "boss"))}
            assert set(everything) == {"msk", "spb"}
            assert all(q["answered"] == 0 for q in everything["msk"]["queues"])
            assert [f["pbx"] for f in await figures(env.url, await session_cookie(env, "boss-msk"))] == ["msk"]
            await qa_spb.wait_for("supervisor.figures", timeout=10, pbx="spb")
            assert {m["pbx"] for m in boss_msk.of_type("supervisor.figures")} <= {"msk"}
            assert {m["pbx"] for m in qa_spb.of_type("supervisor.figures")} == {"spb"}
        finally:
            for client in (boss_msk, qa_spb):
                await client.conn.close()
