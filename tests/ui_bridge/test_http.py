"""The panel's HTTP side over real loopback: login, sessions, the JSON API, roles, pages."""

from __future__ import annotations

import httpx

from tests.panel_env import panel_env
from tests.ui_bridge.wsclient import WsClient, login

TRANSFER = "13-blind-transfer-redirect"


async def test_nothing_but_the_login_page_answers_without_a_login() -> None:
    async with panel_env([TRANSFER]) as env, httpx.AsyncClient(base_url=env.url) as http:
        page = await http.get("/")
        assert page.status_code == 303 and page.headers["location"] == "/login"
        login_page = await http.get("/login")
        assert login_page.status_code == 200 and "<form" in login_page.text
        for path in ("/api/me", "/api/calls", "/api/missed", "/api/missed/1", "/static/admin.js",
                     "/static/agent.js", "/static/panel.js"):
            response = await http.get(path)
            assert response.status_code == 401, path
            if path.startswith("/api"):
                assert response.json()["error"]["code"] == "unauthorized"
        for path in ("/static/login.js", "/static/panel.css", "/static/net.js"):  # what the login page loads
            assert (await http.get(path)).status_code == 200, path
        # Logged in, the rest of the panel loads; nothing outside its folder ever does.
        await http.post("/api/login", json={"name": "qa", "password": "qa-password-1"})
        assert (await http.get("/static/admin.js")).status_code == 200
        assert (await http.get("/static/%2e%2e/http.py")).status_code == 404


async def test_login_sets_an_httponly_cookie_and_logout_ends_the_session() -> None:
    async with panel_env([TRANSFER]) as env, httpx.AsyncClient(base_url=env.url) as http:
        response = await http.post("/api/login", json={"name": "anna", "password": "anna-password-1"})
        assert response.status_code == 200
        assert response.json()["user"] == {"name": "anna", "role": "agent", "extension": "101",
                                           "display_name": "Анна Смирнова"}
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "anna-password" not in cookie
        assert (await http.get("/api/me")).json()["user"]["name"] == "anna"
        assert (await http.get("/")).status_code == 200
        assert (await http.post("/api/logout")).status_code == 204
        assert (await http.get("/api/me")).status_code == 401


async def test_failed_logins_are_rate_limited() -> None:
    async with panel_env([TRANSFER]) as env:
        for _ in range(5):
            response = await login(env, "anna", "wrong-password")
            assert response.status_code == 401
            assert response.json()["error"] == {"code": "bad_credentials", "message": "wrong name or password"}
        limited = await login(env, "anna", "wrong-password")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        # Even the right password waits now from this address: the back-off is what stops guessing.
        assert (await login(env, "anna")).status_code == 429
        # Another name from the same address is not locked out (tests/security/test_login_limits.py).
        assert (await login(env, "nobody", "x")).status_code == 401


async def test_a_login_from_a_foreign_page_or_in_a_wrong_shape_is_refused() -> None:
    async with panel_env([TRANSFER]) as env, httpx.AsyncClient(base_url=env.url) as http:
        response = await http.post("/api/login", json={"name": "anna", "password": "anna-password-1"},
                                   headers={"Origin": "http://evil.example"})
        assert response.status_code == 403
        for body in ({"name": 5, "password": "x"}, {"name": "anna"}, [1]):
            response = await http.post("/api/login", json=body)
            assert response.status_code == 400 and "name" in response.json()["error"]["message"]
        response = await http.post("/api/login", content=b"name=anna&password=x")
        assert response.status_code == 400


async def test_the_journal_api_shows_agents_their_own_calls_and_admins_everything() -> None:
    async with panel_env(["13-blind-transfer-redirect", "08-queue-abandon"], speed=0) as env:
        admin = await WsClient.connect(env, "admin")
        env.start_calls()
        await admin.wait_for("missed.new", timeout=30)
        await env.running.daemon.store.flush()  # type: ignore[union-attr]
        clients = {}
        for name in ("anna", "dmitry", "admin", "qa"):
            http = httpx.AsyncClient(base_url=env.url)
            assert (await http.post("/api/login", json={"name": name,
                                                        "password": env.users[name][0]})).status_code == 200
            clients[name] = http
        try:
            everything = (await clients["admin"].get("/api/calls")).json()["calls"]
            assert {c["caller"] for c in everything} == {"79160001313", "79990001122"}
            assert everything[0]["started_at"] >= everything[1]["started_at"]  # newest first
            anna = (await clients["anna"].get("/api/calls", params={"agent": "104"})).json()["calls"]
            assert {c["caller"] for c in anna} == {"79160001313", "79990001122"}  # 101 rang in the queue too
            dmitry = (await clients["dmitry"].get("/api/calls")).json()["calls"]
            assert [c["caller"] for c in dmitry] == ["79160001313"]  # 104 took the transfer only
            missed = (await clients["admin"].get("/api/missed", params={"status": "open"})).json()["missed"]
            assert [e["caller"] for e in missed] == ["79990001122"]
            one = (await clients["qa"].get(f"/api/missed/{missed[0]['id']}")).json()
            assert one["entry"]["id"] == missed[0]["id"] and one["history"][0]["action"] == "opened"
            assert (await clients["anna"].get("/api/missed")).status_code == 403
            assert (await clients["admin"].get("/api/calls", params={"since": "yesterday"})).status_code == 400
            only_missed = (await clients["qa"].get("/api/calls", params={"outcome": "missed"})).json()["calls"]
            assert [c["caller"] for c in only_missed] == ["79990001122"]
        finally:
            for http in clients.values():
                await http.aclose()


async def test_logging_out_closes_the_websockets_of_that_session() -> None:
    async with panel_env([TRANSFER]) as env, httpx.AsyncClient(base_url=env.url) as http:
        response = await http.post("/api/login", json={"name": "anna", "password": "anna-password-1"})
        cookie = response.cookies["cti_session"]
        import websockets

        async with websockets.connect(env.ws_url, additional_headers={"Cookie": f"cti_session={cookie}"}) as conn:
            await conn.recv()
            other = await WsClient.connect(env, "anna")  # another browser of the same agent stays
            assert (await http.post("/api/logout")).status_code == 204
            try:
                while True:
                    await conn.recv()
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1008
            assert (await other.request({"type": "ping"}))["type"] == "reply"
