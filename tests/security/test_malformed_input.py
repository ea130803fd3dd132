"""Malformed and hostile input to the panel's API and WebSocket, over real loopback: each gets a clear 4xx or an
error message, never a 500, a traceback in the log or a socket dropped without a close frame.

Issue 9, finding 12 (the server's part).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
import websockets

from tests.daemon.conftest import leg_event
from tests.panel_env import PanelEnv, panel_env
from tests.security.edge_helpers import TRANSFER, RawConnection, assert_no_tracebacks, port_of, scaled
from tests.ui_bridge.wsclient import WsClient, session_cookie

ADMIN = {"name": "admin", "password": "admin-password-1"}


@pytest.fixture(autouse=True)
def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    assert_no_tracebacks(caplog)


async def still_serves(client: WsClient) -> None:
    """The connection survived: a request still gets its reply, and nothing closed it."""
    assert (await client.request({"type": "ping"}))["type"] == "reply"
    assert client.closed is None, f"the socket was closed: {client.closed!r}"


# -- the WebSocket ---------------------------------------------------------------------------------------------


async def test_a_deeply_nested_websocket_message_gets_an_error_and_the_socket_stays() -> None:
    async with panel_env([TRANSFER]) as env:
        anna = await WsClient.connect(env, "anna")
        await anna.wait_for("state")
        await anna.conn.send("[" * 8000 + "]" * 8000)  # 16,000 bytes, under max_message_bytes
        await anna.conn.send('{"type": "ping", "id": "deep", "x": ' + "{\"a\": " * 1000 + "1" + "}" * 1000 + "}")
        await still_serves(anna)
        errors = anna.of_type("error")
        assert [(e["id"], e["code"]) for e in errors] == [(None, "bad_json"), (None, "bad_json")]
        assert all("deep" in e["message"] for e in errors), errors
        # Past the hard frame limit the socket is closed, but with a close frame that says why.
        await anna.conn.send("[" * (2 * 1024 * 1024))
        async with asyncio.timeout(scaled(10)):
            await anna._reader
        assert anna.closed is not None and anna.closed.rcvd is not None and anna.closed.rcvd.code == 1009


async def test_a_lone_surrogate_anywhere_in_a_websocket_message_is_refused_and_the_socket_stays() -> None:
    async with panel_env([TRANSFER]) as env:
        anna = await WsClient.connect(env, "anna")
        await anna.wait_for("state")
        for text in (r'{"type": "ping", "id": "\ud800"}', r'{"type": "originate", "id": "o", "number": "\udc00"}',
                     r'{"type": "ping", "id": "k", "\ud83d": 1}', r'{"type": "ping", "id": "\ud800\u0041"}'):
            await anna.conn.send(text)
        await still_serves(anna)
        errors = anna.of_type("error")
        assert [(e["id"], e["code"]) for e in errors] == [(None, "bad_json")] * 4, errors
        assert all("surrogate" in e["message"] for e in errors), errors
        await anna.close()


async def test_a_text_frame_that_is_not_utf8_closes_with_1007_and_no_traceback() -> None:
    async with panel_env([TRANSFER]) as env:
        anna = await WsClient.connect(env, "anna")
        await anna.wait_for("state")
        await anna.conn.send(b"\xff\xfe", text=True)
        async with asyncio.timeout(scaled(10)):
            await anna._reader
        assert anna.closed is not None and anna.closed.rcvd is not None and anna.closed.rcvd.code == 1007


async def test_a_handshake_the_websocket_library_cannot_parse_is_answered_and_closed() -> None:
    async with panel_env([TRANSFER]) as env:
        port = port_of(env)
        for header in (b"X-Note: a\x7fb", b"X-Note: a\x00b"):
            conn = await RawConnection.open(env, send=(
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Version: 13\r\n").encode()
                + header + b"\r\n\r\n")
            answer = await conn.closed_within(scaled(5))
            assert answer is not None, f"{header!r}: no answer, and the connection is held open"
            assert answer.startswith(b"HTTP/1.1 400 "), answer


@asynccontextmanager
async def crm_answering(body: bytes) -> AsyncIterator[str]:
    """A CRM lookup service on loopback that answers every lookup with ``body`` (raw JSON bytes)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/caller?number={{number}}"


async def test_a_crm_name_with_a_lone_surrogate_and_controls_is_cleaned_and_the_pop_arrives() -> None:
    # A CRM answers with a name holding a lone surrogate (no UTF-8 form: a pop carrying it could not be sent at
    # all, and the agent lost it), a bell, an ESC colour sequence and a C1 next-line. The pop arrives with the
    # name cleaned, and the call's other messages flow behind it.
    body = rb'{"contacts": [{"name": "\ud800 Bad\u0007 \u001b[31mName\u0085Here"}]}'
    async with (crm_answering(body) as url,
                panel_env([TRANSFER], speed=0, directory_extra=f'crm_url = "{url}"\ncrm_timeout = 5.0') as env):
        admin = await WsClient.connect(env, "admin")
        # The PBX held while 101 rings (the CRM is asked then), the rest of the call served once the pop is out.
        await env.serve_through(leg_event("Newstate", "PJSIP/101-", "Ringing"), "101 ringing")
        pop = await admin.wait_for("call.ringing", timeout=30)
        assert pop["card"]["sources"] == ["local", "crm"], pop["card"]
        assert pop["card"]["name"] == "\ufffd Bad [31mName Here"
        env.start_calls()
        ended = await admin.wait_for("call.ended", timeout=30)
        assert admin.of_type("call.answered") and ended["linkedid"]
        await still_serves(admin)


async def test_refused_handshakes_log_a_bounded_number_of_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with panel_env([TRANSFER]) as env:
        port = port_of(env)
        cookie = await session_cookie(env, "anna")
        caplog.clear()

        async def refused(uri: str = env.ws_url, **kw: object) -> int:
            try:
                await websockets.connect(uri, **kw)  # type: ignore[arg-type]
            except websockets.InvalidStatus as exc:
                return exc.response.status_code
            raise AssertionError("the handshake was accepted")

        strangers = [refused() for _ in range(1000)]
        foreign = [refused(origin="http://evil.example", additional_headers={"Cookie": f"cti_session={cookie}"})
                   for _ in range(100)]
        rebinding = [refused(uri=f"ws://evil.example:{port}/ws", host="127.0.0.1", port=port) for _ in range(100)]
        statuses: list[int] = []
        batch = 50
        requests = strangers + foreign + rebinding
        for start in range(0, len(requests), batch):
            statuses += await asyncio.gather(*requests[start:start + batch])
        assert sorted(set(statuses)) == [401, 403, 421]
        server_lines = [r for r in caplog.records if r.name.startswith(("uvicorn", "ui_bridge", "websockets.server"))]
        shown = "\n".join(f"{r.levelname} {r.name}: {r.getMessage()}" for r in server_lines[:20])
        assert len(server_lines) <= 12, shown
        assert all(r.levelno in (logging.INFO, logging.WARNING) for r in server_lines)
        assert any("refused" in r.getMessage() for r in server_lines), "refusals are not logged at all"


# -- the JSON API ------------------------------------------------------------------------------------------------


async def test_deeply_nested_json_to_the_api_is_a_400() -> None:
    async with panel_env([TRANSFER]) as env, httpx.AsyncClient(base_url=env.url) as http:
        nested = b"[" * 1500 + b"]" * 1500
        response = await http.post("/api/login", content=nested, headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"
        surrogate = rb'{"name": "\ud800", "password": "x"}'
        assert (await http.post("/api/login", content=surrogate)).status_code == 400
        assert (await http.post("/api/login", json=ADMIN)).status_code == 200
        deep = b'{"name": ' + b"[" * 1500 + b"]" * 1500 + b"}"
        response = await http.post("/api/contacts", content=deep)
        assert response.status_code == 400 and "deep" in response.json()["error"]["message"]


async def journal_call(env: PanelEnv) -> str:
    """Play the trace to its end; the call is in the journal."""
    admin = await WsClient.connect(env, "admin")
    env.start_calls()
    ended = await admin.wait_for("call.ended", timeout=30)
    await env.store.flush()
    await admin.close()
    return str(ended["linkedid"])


async def test_numbers_out_of_range_are_refused_at_the_edge() -> None:
    async with panel_env([TRANSFER], speed=0) as env, httpx.AsyncClient(base_url=env.url) as http:
        linkedid = await journal_call(env)
        await http.post("/api/login", json=ADMIN)
        huge = "99999999999999999999"
        for path, params, word in (
                ("/api/calls", {"offset": huge}, "offset"), ("/api/calls", {"limit": "-1"}, "limit"),
                ("/api/calls", {"offset": "-1"}, "offset"), ("/api/calls", {"limit": huge}, "limit"),
                ("/api/missed", {"offset": huge}, "offset"), ("/api/missed", {"limit": "0"}, "limit"),
                ("/api/contacts", {"limit": huge}, "limit"), ("/api/calls", {"since": "1e23"}, "since")):
            response = await http.get(path, params=params)
            assert response.status_code == 400, (path, params, response.text)
            assert word in response.json()["error"]["message"], (path, params, response.text)
        for entry in (huge, "9" * 5000, "-1", "1e3", "١"):
            response = await http.get(f"/api/missed/{entry}")
            assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", entry
        contact = (await http.post("/api/contacts", json={"name": "Иванов Иван"})).json()["contact"]
        for bad in (1e23, "1e23", True, -1, 0, int(huge), None, str(contact["id"])):
            response = await http.post(f"/api/calls/{linkedid}/contact", json={"contact_id": bad})
            assert response.status_code == 400, (bad, response.text)
            assert "contact_id" in response.json()["error"]["message"], (bad, response.text)
        attached = await http.post(f"/api/calls/{linkedid}/contact", json={"contact_id": contact["id"]})
        assert attached.status_code == 200, attached.text


async def test_a_contact_with_a_bad_field_is_refused_naming_the_field() -> None:
    async with panel_env([TRANSFER]) as env, httpx.AsyncClient(base_url=env.url) as http:
        await http.post("/api/login", json=ADMIN)
        car = {"make": "Kia", "model": "Rio", "year": 2017, "plate": "а123вс777", "vin": "XTA21099043567890"}
        cases = [
            ({"name": ""}, "name"), ({"name": "   \t"}, "name"), ({"name": "Иванов", "phones": ["abc"]}, "phones"),
            ({"name": "Иванов", "phones": ["+7 916 ab"]}, "phones"),
            ({"name": "Иванов", "vehicles": [{**car, "plate": "???"}]}, "plate"),
            ({"name": "Иванов", "vehicles": [{**car, "year": -5}]}, "year"),
            ({"name": "Иванов", "vehicles": [{**car, "year": 3000}]}, "year"),
            ({"name": "Иванов", "vehicles": [{**car, "vin": "1"}]}, "vin"),
            ({"name": "Иванов", "vehicles": [{**car, "vin": "XTA2109904356789O"}]}, "vin"),
            ({"name": "Иванов", "vehicles": [{**car, "year": "2017"}]}, "year"),
        ]
        for body, field in cases:
            response = await http.post("/api/contacts", json=body)
            assert response.status_code == 400, (body, response.text)
            assert field in response.json()["error"]["message"], (body, response.text)
        assert (await http.get("/api/contacts", params={"q": "Иванов"})).json()["contacts"] == []
        good = await http.post("/api/contacts", json={"name": " Иванов Иван ", "phones": ["8 (916) 123-45-67"],
                                                      "vehicles": [car, {**car, "vin": "", "plate": "в 456 ек 199"},
                                                                   {"make": "Lada", "vin": None}]})
        assert good.status_code == 201, good.text
        created = good.json()["contact"]
        assert created["name"] == "Иванов Иван"
        assert [v["vin"] for v in created["vehicles"]] == ["XTA21099043567890", None, None]


async def test_a_contact_is_attached_only_to_a_call_that_exists() -> None:
    async with panel_env([TRANSFER], speed=0) as env, httpx.AsyncClient(base_url=env.url) as http:
        linkedid = await journal_call(env)
        await http.post("/api/login", json=ADMIN)
        contact = (await http.post("/api/contacts", json={"name": "Иванов Иван"})).json()["contact"]
        for nowhere in ("no-such-call", "1.1", linkedid + "9", "x" * 300):
            response = await http.post(f"/api/calls/{nowhere}/contact", json={"contact_id": contact["id"]})
            assert response.status_code == 404, (nowhere, response.text)
            assert response.json()["error"]["code"] == "not_found"
        attached = await http.post(f"/api/calls/{linkedid}/contact", json={"contact_id": contact["id"]})
        assert attached.status_code == 200
        missing = await http.post(f"/api/calls/{linkedid}/contact", json={"contact_id": contact["id"] + 1000})
        assert missing.status_code == 404


async def test_a_range_that_ends_before_it_starts_is_refused() -> None:
    async with panel_env([TRANSFER]) as env, httpx.AsyncClient(base_url=env.url) as http:
        await http.post("/api/login", json=ADMIN)
        for path in ("/api/calls", "/api/missed"):
            response = await http.get(path, params={"since": "2026-11-25", "until": "2026-11-24"})
            assert response.status_code == 400, response.text
            message = response.json()["error"]["message"]
            assert "since" in message and "until" in message
            same_day = await http.get(path, params={"since": "2026-11-24", "until": "2026-11-24T23:00"})
            assert same_day.status_code == 200
