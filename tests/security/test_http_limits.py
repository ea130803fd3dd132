"""The panel's edge under hostile clients, over real loopback: request bodies, half-sent requests, connection
counts, Host names (DNS rebinding) and the headers every response carries.

Issue 9, findings 4 (body limits), 5 (connection exhaustion) and 10 (hosts and headers).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import websockets

from tests.security.edge_helpers import (
    RawConnection,
    assert_no_tracebacks,
    edge_env,
    half_sent_request,
    http_from,
    port_of,
    rss_bytes,
    scaled,
)
from tests.ui_bridge.wsclient import WsClient, login, session_cookie
from ui_bridge.auth import new_token, token_hash

ANNA = {"name": "anna", "password": "anna-password-1"}


@pytest.fixture(autouse=True)
def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    assert_no_tracebacks(caplog)


# -- bodies (finding 4) ----------------------------------------------------------------------------------------


async def test_a_400_mb_streamed_login_is_refused_with_413_and_memory_stays_flat() -> None:
    async with edge_env() as env, httpx.AsyncClient(base_url=env.url, timeout=scaled(30)) as http:
        chunk = b"x" * 65536

        async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse it by
            for _ in range(400 * 16):
                yield chunk

        before = rss_bytes()
        response = await http.post("/api/login", content=body(), headers={"Content-Type": "application/json"})
        grown = rss_bytes() - before
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "too_large"
        assert grown < 8 * 1024 * 1024, f"the daemon grew by {grown / 2**20:.0f} MB reading a refused body"
        # The panel still logs people in.
        assert (await http.post("/api/login", json=ANNA)).status_code == 200


async def test_a_declared_oversized_body_is_refused_before_it_is_sent() -> None:
    async with edge_env() as env:
        conn = await RawConnection.open(env, send=(
            f"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:{port_of(env)}\r\nContent-Type: application/json\r\n"
            "Content-Length: 400000000\r\n\r\n").encode())
        async with asyncio.timeout(scaled(2)):  # not a byte of the body sent: answered at once
            answer = await conn.reader.readuntil(b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 413 "), answer
        conn.close()


async def test_each_route_has_its_own_body_limit() -> None:
    async with edge_env("max_body_bytes = 8192") as env, httpx.AsyncClient(base_url=env.url) as http:
        # A login is a name and a password: 4 KiB is plenty.
        padded = {**ANNA, "pad": "x" * 5000}
        assert (await http.post("/api/login", json=padded)).status_code == 413
        assert (await http.post("/api/login", json=ANNA)).status_code == 200
        # Other writes: [http] max_body_bytes.
        big = {"name": "Иванов", "notes": "x" * 9000}
        response = await http.post("/api/contacts", json=big)
        assert response.status_code == 413 and "8192" in response.json()["error"]["message"]
        assert (await http.post("/api/contacts", json={"name": "Иванов", "notes": "x" * 1000})).status_code == 201


async def test_a_client_that_leaves_mid_body_or_trickles_it_leaves_no_traceback() -> None:
    timeout = scaled(1.0)
    async with edge_env(f"header_timeout = {timeout}") as env:
        host = f"Host: 127.0.0.1:{port_of(env)}\r\n"
        for head in (f"POST /api/login HTTP/1.1\r\n{host}Content-Length: 100\r\n\r\n0123456789",
                     f"POST /api/contacts HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n"):
            gone = await RawConnection.open(env, send=head.encode())
            trickle = await RawConnection.open(env, send=head.encode())
            gone.close()  # leaves mid-body
            assert await trickle.closed_within(timeout + scaled(2.0)) is not None  # never finishes: cut off
        async with httpx.AsyncClient(base_url=env.url) as http:
            assert (await http.post("/api/login", json=ANNA)).status_code == 200


async def test_a_request_whose_body_breaks_off_into_garbage_gets_one_answer() -> None:
    async with edge_env() as env:
        host = f"Host: 127.0.0.1:{port_of(env)}\r\n"
        for request in (f"GET /login HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\nZZZ\r\n",
                        f"POST /api/login HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\nZZZ\r\n"):
            conn = await RawConnection.open(env, send=request.encode())
            answer = await conn.closed_within(scaled(5))
            assert answer is not None and answer.count(b"HTTP/1.1 ") == 1, answer
            assert answer.split(b" ")[1] in (b"400", b"413"), answer


# -- connections (finding 5) --------------------------------------------------------------------------------


async def test_half_sent_requests_are_closed_after_the_header_timeout_and_agents_still_get_in() -> None:
    timeout = scaled(2.0)
    settings = (f"header_timeout = {timeout}\nmax_connections_per_address = 4\n"
                'trusted_proxies = ["127.0.0.3"]')
    async with edge_env(settings) as env:
        loop = asyncio.get_running_loop()

        async def closed_at(conn: RawConnection) -> float | None:
            return loop.time() if await conn.closed_within(timeout + scaled(3.0)) is not None else None

        slow = [await RawConnection.open(env, "127.0.0.1", half_sent_request(env)) for _ in range(7)]
        # Over the per-address bound: closed at once, and only the new ones.
        for conn in slow[4:]:
            assert await conn.closed_within(scaled(1.0)) is not None, "a connection over the bound stayed open"
        # A reverse proxy carries everyone: it is exempt.
        proxied = [await RawConnection.open(env, "127.0.0.3", half_sent_request(env)) for _ in range(6)]
        hanging = slow[:4] + proxied
        watchers = [asyncio.create_task(closed_at(conn)) for conn in hanging]
        # An agent on another address logs in and gets the WebSocket while the slow ones hang.
        async with http_from(env, "127.0.0.2") as agent:
            assert (await agent.post("/api/login", json=ANNA)).status_code == 200
            cookie = agent.cookies["cti_session"]
        ws = WsClient(await websockets.connect(env.ws_url, additional_headers={"Cookie": f"cti_session={cookie}"},
                                               local_addr=("127.0.0.2", 0)))
        await ws.wait_for("state")
        # The slow ones are cut when their time is up: not before, not much after.
        for conn, at in zip(hanging, await asyncio.gather(*watchers), strict=True):
            assert at is not None, "a half-sent request was never cut"
            assert timeout * 0.95 <= at - conn.opened <= timeout + scaled(1.5), at - conn.opened
        # The agent's WebSocket is not a request waiting for headers: it stays.
        assert (await ws.request({"type": "ping"}))["type"] == "reply"
        await ws.close()
        # The address's slots are free again.
        assert (await login(env, "anna")).status_code == 200


async def test_a_keep_alive_connection_gets_the_header_timeout_for_each_request() -> None:
    timeout = scaled(2.0)
    async with edge_env(f"header_timeout = {timeout}") as env:
        request = f"GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port_of(env)}\r\n\r\n".encode()
        conn = await RawConnection.open(env, send=request)
        head = await conn.reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
        await conn.reader.readexactly(int(lengths[0]))
        conn.writer.write(b"GET /login HTTP/1.1\r\nHo")  # the next request starts, and stops
        closed = await conn.closed_within(timeout + scaled(2.0))
        assert closed is not None, "the second request's headers never timed out"


async def test_the_total_connection_bound_refuses_new_connections_and_keeps_established_websockets() -> None:
    timeout = scaled(2.0)
    async with edge_env(f"header_timeout = {timeout}\nmax_connections = 4\nmax_connections_per_address = 10") as env:
        token = new_token()
        await env.store.add_token("anna", token_hash(token), "test")
        agent = WsClient(await websockets.connect(env.ws_url, additional_headers={"Authorization": f"Bearer {token}"},
                                                  local_addr=("127.0.0.2", 0)))
        await agent.wait_for("state")
        slow = [await RawConnection.open(env, f"127.0.0.{4 + i}", half_sent_request(env)) for i in range(3)]
        extra = await RawConnection.open(env, "127.0.0.9", half_sent_request(env))
        refused = await extra.closed_within(scaled(1.0))
        assert refused is not None, "a connection over the total bound stayed open"
        assert refused == b"" or refused.startswith(b"HTTP/1.1 503 ")
        assert (await agent.request({"type": "ping"}))["type"] == "reply"  # the established one stays
        for conn in slow:
            assert await conn.closed_within(timeout + scaled(2.0)) is not None
        async with http_from(env, "127.0.0.9") as late:  # room again
            assert (await late.post("/api/login", json=ANNA)).status_code == 200
        assert agent.closed is None
        await agent.close()


# -- hosts and headers (finding 10) ---------------------------------------------------------------------------


async def test_a_foreign_host_name_is_refused_before_login_on_http_and_websocket() -> None:
    async with edge_env('allowed_hosts = ["cti.example.ru"]') as env, httpx.AsyncClient(base_url=env.url) as http:
        port = port_of(env)
        evil = f"evil.example:{port}"
        # DNS rebinding: the page of evil.example, now resolving to the panel, posts to its "own" origin.
        response = await http.post("/api/login", json=ANNA, headers={"Host": evil, "Origin": f"http://{evil}"})
        assert response.status_code == 421, response.text
        assert "evil.example" in response.text and "allowed_hosts" in response.text
        assert "set-cookie" not in response.headers
        assert (await http.get("/", headers={"Host": evil})).status_code == 421
        for bad in ("", "evil.example:1:2", "[::1", "a b", "127.0.0.1.evil.example"):
            assert (await http.get("/login", headers={"Host": bad})).status_code in (400, 421), bad
        cookie = await session_cookie(env, "anna")
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(f"ws://{evil}/ws", host="127.0.0.1", port=port,
                                     origin=f"http://{evil}",  # type: ignore[arg-type]
                                     additional_headers={"Cookie": f"cti_session={cookie}"})
        assert refused.value.response.status_code == 421
        # What is allowed: IP literals, localhost, this machine's names and [http] allowed_hosts.
        for good in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "10.1.2.3", "LocalHost",
                     socket.gethostname(), f"{socket.getfqdn()}:{port}", f"cti.example.ru:{port}", "CTI.Example.RU"):
            assert (await http.get("/login", headers={"Host": good})).status_code == 200, good
        async with websockets.connect(f"ws://cti.example.ru:{port}/ws", host="127.0.0.1", port=port,
                                      origin=f"http://cti.example.ru:{port}",  # type: ignore[arg-type]
                                      additional_headers={"Cookie": f"cti_session={cookie}"}) as conn:
            assert json.loads(await conn.recv())["type"] == "hello"


async def test_every_response_carries_the_security_headers() -> None:
    async with edge_env() as env, httpx.AsyncClient(base_url=env.url) as http:
        responses = [await http.get("/login"), await http.get("/static/panel.css"), await http.get("/api/me"),
                     await http.get("/nowhere"), await http.post("/api/login", content=b"x" * 10_000),
                     await http.get("/login", headers={"Host": "evil.example"})]
        assert [r.status_code for r in responses] == [200, 200, 401, 404, 413, 421]
        await http.post("/api/login", json=ANNA)
        responses += [await http.get("/"), await http.get("/api/calls")]
        for response in responses:
            headers = response.headers
            where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
            assert headers["x-frame-options"] == "DENY", where
            assert headers["x-content-type-options"] == "nosniff", where
            assert headers["referrer-policy"] == "no-referrer", where
            csp = {d.split()[0]: d.split()[1:] for d in headers["content-security-policy"].split(";") if d.strip()}
            assert csp["default-src"] == ["'self'"], where
            assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"], where
            assert "'unsafe-inline'" not in headers["content-security-policy"], where
        with pytest.raises(websockets.InvalidStatus) as refused:  # a refused handshake is a response too
            await websockets.connect(env.ws_url)
        assert refused.value.response.headers["X-Frame-Options"] == "DENY"


async def test_logout_from_a_foreign_page_is_refused() -> None:
    async with edge_env() as env, httpx.AsyncClient(base_url=env.url) as http:
        assert (await http.post("/api/login", json=ANNA)).status_code == 200
        response = await http.post("/api/logout", headers={"Origin": "http://evil.example"})
        assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
        assert (await http.get("/api/me")).status_code == 200  # still logged in
        assert (await http.post("/api/logout", headers={"Origin": env.url})).status_code == 204
        assert (await http.get("/api/me")).status_code == 401
