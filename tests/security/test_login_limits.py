"""The login throttle over the real panel (issue 9, findings 2 and 6).

Clients come from different loopback addresses (127.0.0.2, 127.0.0.3 ...: all of 127/8 is this machine on
Linux), so "another desk" is a real other TCP peer, and "behind the proxy" is a real ``X-Forwarded-For``
from a peer configured as trusted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter

import httpx
import pytest

from tests.daemon.conftest import UNIT
from tests.panel_env import PanelEnv, panel_env

TRACE = "01-direct-answered"
#: The address budget must not refill during a test: a long window (the back-off still starts at 1 s).
SLOW_WINDOW = "login_window_seconds = 3600"


def client(env: PanelEnv, address: str = "127.0.0.1", connections: int = 100) -> httpx.AsyncClient:
    """An HTTP client whose connections come from ``address``. It reuses a kept-alive connection for 1 s at most:
    the panel closes one idle for 5 s (uvicorn's default), and a request sent on a connection the server is
    closing at that moment fails with a read error on a loaded machine (the race every HTTP client has)."""
    transport = httpx.AsyncHTTPTransport(local_address=address,
                                         limits=httpx.Limits(max_connections=connections, keepalive_expiry=1.0))
    return httpx.AsyncClient(base_url=env.url, transport=transport, timeout=60 * UNIT)


async def log_in(http: httpx.AsyncClient, env: PanelEnv, name: str, password: str | None = None,
                 forwarded_for: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await http.post("/api/login", json={"name": name, "password": password or env.users[name][0]},
                           headers=headers)


async def eventually_logs_in(http: httpx.AsyncClient, env: PanelEnv, name: str, within: float,
                             forwarded_for: str | None = None) -> None:
    """A back-off, not a lock: the right password gets in once the announced wait is over."""
    async with asyncio.timeout(within * UNIT):
        while (response := await log_in(http, env, name, forwarded_for=forwarded_for)).status_code == 429:
            await asyncio.sleep(min(0.2, float(response.headers["retry-after"])))
    assert response.status_code == 200, response.text


async def test_parallel_guesses_get_no_more_password_checks_than_the_budget() -> None:
    async with panel_env([TRACE]) as env, client(env) as http:
        budget = env.running.daemon.settings.http.login_max_failures
        started = time.monotonic()
        first = await asyncio.gather(*(log_in(http, env, "anna", "wrong-password") for _ in range(100)))
        statuses = Counter(r.status_code for r in first)
        assert statuses == {401: budget, 429: 100 - budget}, statuses
        assert all(int(r.headers["retry-after"]) >= 1 for r in first if r.status_code == 429)

        burst = await asyncio.gather(*(log_in(http, env, "anna", "wrong-password") for _ in range(300)))
        elapsed = time.monotonic() - started
        checked = sum(r.status_code == 401 for r in burst)
        # Beyond the budget one check at a time, each 1, 2, 4 ... s after the last failure: in ``elapsed``
        # seconds at most floor(log2(elapsed + 1)) of them can have been let through.
        assert checked <= math.floor(math.log2(elapsed + 1)), (checked, elapsed)
        assert {r.status_code for r in burst} <= {401, 429}


async def test_typos_on_one_desk_never_lock_the_user_out_of_another() -> None:
    async with panel_env([TRACE], http_extra=SLOW_WINDOW) as env, \
            client(env, "127.0.0.2") as desk_a, client(env, "127.0.0.3") as desk_b, \
            client(env, "127.0.0.4") as sprayer:
        for _ in range(5):
            assert (await log_in(desk_a, env, "anna", "wrong-password")).status_code == 401
        backed_off = await log_in(desk_a, env, "anna")
        assert backed_off.status_code == 429 and int(backed_off.headers["retry-after"]) >= 1
        assert (await log_in(desk_b, env, "anna")).status_code == 200  # another desk: at once
        assert (await log_in(desk_a, env, "oleg")).status_code == 200  # another agent at desk A: at once
        await eventually_logs_in(desk_a, env, "anna", within=5)  # and anna herself after a second or so

        # One address trying many names has a budget too (four times the per-name one), over all names.
        budget = 4 * env.running.daemon.settings.http.login_max_failures
        for i in range(budget):
            assert (await log_in(sprayer, env, f"guess{i}", "Password1")).status_code == 401
        assert (await log_in(sprayer, env, "guess-more", "Password1")).status_code == 429
        assert (await log_in(desk_b, env, "guess-more", "Password1")).status_code == 401  # that address only


async def test_behind_a_trusted_proxy_each_forwarded_client_is_throttled_apart(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ui_bridge.routes.login")
    extra = f'trusted_proxies = ["127.0.0.1"]\n{SLOW_WINDOW}'
    async with panel_env([TRACE], http_extra=extra) as env, client(env) as proxy, \
            client(env, "127.0.0.2") as direct:
        for _ in range(5):
            assert (await log_in(proxy, env, "anna", "wrong-password", forwarded_for="10.0.0.1")).status_code == 401
        assert (await log_in(proxy, env, "anna", forwarded_for="10.0.0.1")).status_code == 429
        assert (await log_in(proxy, env, "anna", forwarded_for="10.0.0.2")).status_code == 200
        # A client behind the proxy cannot pick its address: the proxy appends the one it saw, and that counts.
        assert (await log_in(proxy, env, "anna", forwarded_for="10.0.0.2, 10.0.0.1")).status_code == 429
        assert "failed login for 'anna' from 10.0.0.1" in caplog.text

        # A peer that is not a trusted proxy is taken at its TCP address; its X-Forwarded-For is ignored.
        for _ in range(5):
            response = await log_in(direct, env, "oleg", "wrong-password", forwarded_for="10.0.0.3")
            assert response.status_code == 401
        assert (await log_in(direct, env, "oleg", forwarded_for="10.0.0.4")).status_code == 429
        assert "failed login for 'oleg' from 127.0.0.2" in caplog.text
        assert (await log_in(proxy, env, "oleg", forwarded_for="10.0.0.3")).status_code == 200
