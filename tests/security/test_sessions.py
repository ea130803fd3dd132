"""Login sessions in the store and their revocation, over the real panel and the real CLI (issue 9, finding 3;
finding 11, the sockets part).

The CLI runs against the daemon's own config and store with its own event loop and store connection (in-process,
in a thread: tests/cli_runner.py), as an admin would run it on the server: whatever it changes reaches the daemon
only through the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from companion.config import load_config
from store import StoreSettings, open_store
from tests.cli_runner import cti_async
from tests.daemon.conftest import UNIT, RunningDaemon
from tests.panel_env import PanelEnv, panel_env
from tests.ui_bridge.wsclient import WsClient, session_cookie

TRACE = "01-direct-answered"
#: Every socket of a revoked session is closed within this long (the sweep runs once a second).
CLOSE_WITHIN = 2.0


async def cti_cli(*args: str, input: str | None = None) -> str:
    """The ``cti`` command, in-process, without blocking the daemon's loop (the test's)."""
    return (await cti_async(*args, input=input)).stdout


async def socket_with(env: PanelEnv | str, *, cookie: str | None = None, token: str | None = None) -> WsClient:
    url = env if isinstance(env, str) else env.ws_url
    headers = {"Cookie": f"cti_session={cookie}"} if cookie else {"Authorization": f"Bearer {token}"}
    client = WsClient(await websockets.connect(url, additional_headers=headers))
    await client.wait_for("hello")
    return client


async def status_of(url: str, *, cookie: str | None = None, token: str | None = None) -> int:
    headers = {"Cookie": f"cti_session={cookie}"} if cookie else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url) as http:
        return (await http.get("/api/me", headers=headers)).status_code


async def closed_by_server(client: WsClient, within: float = CLOSE_WITHIN) -> websockets.ConnectionClosed:
    async with asyncio.timeout(within * UNIT):
        await client._reader
    assert client.closed is not None and client.closed.rcvd is not None, "closed without a close frame"
    return client.closed


async def send_quietly(conn: ClientConnection, message: dict[str, Any]) -> None:
    """Send even if the server has closed the socket already (then nothing was carried out, as wanted)."""
    with contextlib.suppress(websockets.ConnectionClosed):
        await conn.send(json.dumps(message))


def originates(env: PanelEnv) -> int:
    return sum(1 for a in env.replay.received_actions if a.message.get("Action") == "Originate")


async def pbx_connected(env: PanelEnv) -> None:
    """A command not carried out must be for want of a login, not of a PBX."""
    assert env.running.daemon.client is not None
    await env.running.daemon.client.wait_connected(10 * UNIT)


async def test_sessions_survive_a_restart_and_a_logout_ends_one_in_the_store() -> None:
    async with panel_env([TRACE]) as env:
        kept = await session_cookie(env, "anna")
        ended = await session_cookie(env, "anna")
        async with httpx.AsyncClient(base_url=env.url, cookies={"cti_session": ended}) as http:
            assert (await http.post("/api/logout")).status_code == 204
        assert await status_of(env.url, cookie=ended) == 401
        await env.running.stop()

        async with RunningDaemon(load_config(env.config)) as again:
            assert again.daemon.panel_server is not None
            url = again.daemon.panel_server.url
            assert await status_of(url, cookie=kept) == 200  # nobody has to log in again after a restart
            assert await status_of(url, cookie=ended) == 401  # a logout stays a logout
            socket = await socket_with(url.replace("http", "ws", 1) + "/ws", cookie=kept)
            assert socket.of_type("hello")[0]["user"]["name"] == "anna"
            await socket.close()


async def test_removing_a_user_ends_their_sessions_tokens_and_open_sockets_at_once() -> None:
    async with panel_env([TRACE]) as env:
        cookie = await session_cookie(env, "admin")
        token = (await cti_cli("users", "token", "admin", "--config", str(env.config))).strip()
        by_cookie = await socket_with(env, cookie=cookie)
        by_token = await socket_with(env, token=token)
        call = {"type": "originate", "number": "79160001122", "extension": "101"}
        await pbx_connected(env)
        assert (await by_token.request(call))["type"] == "reply"  # the command works before
        assert originates(env) == 1

        await cti_cli("users", "remove", "admin", "--config", str(env.config))
        for socket in (by_cookie, by_token):  # a command sent right after is not carried out
            await send_quietly(socket.conn, {**call, "id": "after-removal"})
        assert await status_of(env.url, cookie=cookie) == 401
        assert await status_of(env.url, token=token) == 401
        for socket in (by_cookie, by_token):
            closed = await closed_by_server(socket)
            assert closed.rcvd is not None and closed.rcvd.code == 1008
        assert not [m for s in (by_cookie, by_token) for m in s.of_type("reply") if m["id"] == "after-removal"]
        assert originates(env) == 1


async def test_a_new_password_ends_the_users_sessions_but_not_their_api_tokens() -> None:
    async with panel_env([TRACE]) as env:
        cookie = await session_cookie(env, "admin")
        token = (await cti_cli("users", "token", "admin", "--config", str(env.config))).strip()
        by_cookie = await socket_with(env, cookie=cookie)
        by_token = await socket_with(env, token=token)
        await pbx_connected(env)

        await cti_cli("users", "passwd", "admin", "--password-stdin", "--config", str(env.config),
                      input="a-new-password-2\n")
        await send_quietly(by_cookie.conn, {"type": "originate", "number": "79160001122", "extension": "101",
                                            "id": "after-passwd"})
        assert await status_of(env.url, cookie=cookie) == 401
        closed = await closed_by_server(by_cookie)
        assert closed.rcvd is not None and closed.rcvd.code == 1008
        assert originates(env) == 0
        # An API token is a credential of its own (a CRM plug-in): a password change leaves it working.
        assert (await by_token.request({"type": "ping"}))["type"] == "reply"
        assert await status_of(env.url, token=token) == 200
        env.users["admin"] = ("a-new-password-2", *env.users["admin"][1:])
        assert await status_of(env.url, cookie=await session_cookie(env, "admin")) == 200
        await by_token.close()


async def test_a_role_change_made_by_another_process_closes_the_users_sockets() -> None:
    async with panel_env([TRACE]) as env:
        cookie = await session_cookie(env, "anna")
        socket = await socket_with(env, cookie=cookie)
        other = await socket_with(env, cookie=await session_cookie(env, "oleg"))
        # as another process would:
        async with open_store(StoreSettings(path=env.tmp / "journal.sqlite"), region="RU") as elsewhere:
            await elsewhere.update_user("anna", display_name="Анна С.")  # what she may do is unchanged
            await elsewhere.update_user("oleg", role="qa")
        closed = await closed_by_server(other)
        assert closed.rcvd is not None and closed.rcvd.code == 1008
        assert (await socket.request({"type": "ping"}))["type"] == "reply"
        assert await status_of(env.url, cookie=cookie) == 200
        await socket.close()


async def test_a_socket_closes_when_its_session_expires() -> None:
    lifetime = 3.0 * UNIT
    async with panel_env([TRACE], http_extra=f"session_hours = {lifetime / 3600}") as env:
        cookie = await session_cookie(env, "anna")
        socket = await socket_with(env, cookie=cookie)
        for _ in range(3):  # keep-alive pings are not a use of the session: they do not extend it
            assert (await socket.request({"type": "ping"}))["type"] == "reply"
        closed = await closed_by_server(socket, within=lifetime / UNIT + CLOSE_WITHIN)
        assert closed.rcvd is not None and closed.rcvd.code == 1008 and "expired" in closed.rcvd.reason
        assert await status_of(env.url, cookie=cookie) == 401


async def test_one_login_holds_at_most_max_sockets_per_session() -> None:
    async with panel_env([TRACE], http_extra="max_sockets_per_session = 3") as env:
        cookie = await session_cookie(env, "anna")
        headers = {"Cookie": f"cti_session={cookie}"}
        tries = await asyncio.gather(*(websockets.connect(env.ws_url, additional_headers=headers)
                                       for _ in range(8)), return_exceptions=True)
        opened = [t for t in tries if isinstance(t, ClientConnection)]
        refused = [t for t in tries if not isinstance(t, ClientConnection)]
        assert len(opened) == 3, tries
        for error in refused:
            assert isinstance(error, websockets.InvalidStatus) and error.response.status_code == 429, error
            assert b"3 live connections" in error.response.body
        another_session = await socket_with(env, cookie=await session_cookie(env, "anna"))  # its own count
        await opened[0].close()
        async with asyncio.timeout(5 * UNIT):  # a closed socket frees its place
            while True:
                try:
                    opened[0] = await websockets.connect(env.ws_url, additional_headers=headers)
                    break
                except websockets.InvalidStatus:
                    await asyncio.sleep(0.05)
        for conn in opened:
            await conn.close()
        await another_session.close()
