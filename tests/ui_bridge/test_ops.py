"""``/healthz``, ``/readyz`` and ``/metrics`` over real HTTP against a running daemon and the replay PBX over TCP.

What an operator relies on: the liveness probe answers while the process does; the readiness probe turns 503 with
its reason when the PBX drops the link and refuses it back, and 200 again once the daemon is logged in again; the
metrics are never served without the token (or, with none configured, to anything but this machine directly), and
what they show moves with what really happens: AMI events served, WebSocket clients connecting and leaving, a pop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from asterisk.settings import ConfigError
from companion.config import parse_config
from tests.conftest import UNIT
from tests.daemon.conftest import POLL_SECONDS, QUICK_RECONNECT, leg_event
from tests.panel_env import PanelEnv, panel_env
from tests.ui_bridge.wsclient import WsClient, session_cookie
from ui_bridge.hub import Hub
from ui_bridge.metrics import NodeMetrics

TRACE = "13-blind-transfer-redirect"  # 79160001313 → DID 74950000101 → agent 101 rings first
AGENT_CHANNEL = "PJSIP/101-00000025"
TOKEN = "test-metrics-token-0123456789abcdef"
WITH_TOKEN = f'metrics_token = "{TOKEN}"'
BEARER = {"Authorization": f"Bearer {TOKEN}"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by (name, labels), read with prometheus_client's own parser."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def scrape(http: httpx.AsyncClient, headers: dict[str, str] | None = None) -> Samples:
    response = await http.get("/metrics", headers=BEARER if headers is None else headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Ask ``check`` (over HTTP) again until it holds, at most ``timeout`` units."""
    try:
        async with asyncio.timeout(timeout * UNIT):
            while not await check():
                await asyncio.sleep(POLL_SECONDS)
    except TimeoutError:
        raise AssertionError(f"not within {timeout * UNIT:g} s: {what}") from None


async def logged_in(env: PanelEnv) -> None:
    client = env.running.daemon.client
    await env.wait_for(lambda: client is not None and client.connected, 10, "the daemon logged in to the PBX")


# -- probes ---------------------------------------------------------------------------------------------------------


async def test_readyz_follows_the_ami_link_through_a_drop_and_back_while_healthz_stays_ok() -> None:
    async with panel_env([TRACE], ami_extra=QUICK_RECONNECT, http_extra=WITH_TOKEN) as env, \
            httpx.AsyncClient(base_url=env.url) as http:
        await logged_in(env)
        live = await http.get("/healthz")
        assert live.status_code == 200 and live.text == "ok\n" and live.headers["cache-control"] == "no-store"
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"ready": True, "reasons": []}
        assert value(await scrape(http), "cti_ami_connected", pbx="main") == 1

        # The PBX drops the link and refuses the logins after it (its AMI secret was changed): the link stays down.
        secret = env.replay.secret
        env.replay.secret = "changed-on-the-pbx"
        env.replay.drop_connections()

        async def not_ready() -> bool:
            return (await http.get("/readyz")).status_code == 503

        await until(not_ready, 10, "/readyz turned 503")
        refused = await http.get("/readyz")
        assert refused.json() == {"ready": False, "reasons": ["pbx main: AMI not connected"]}
        assert refused.headers["cache-control"] == "no-store"
        # Nothing internal leaks to an unauthenticated probe: no address, no port, no secret, no error text.
        port = str(env.replay.address[1])
        assert port not in refused.text and "127.0.0.1" not in refused.text and secret not in refused.text
        assert (await http.get("/healthz")).status_code == 200  # the process is fine: no restart wanted
        down = await scrape(http)
        assert value(down, "cti_ami_connected", pbx="main") == 0

        env.replay.secret = secret  # the PBX takes the login again: the daemon reconnects on its own

        async def ready_again() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await until(ready_again, 10, "/readyz back to 200 after the reconnect")
        back = await scrape(http)
        assert value(back, "cti_ami_connected", pbx="main") == 1
        assert value(back, "cti_ami_reconnects_total", pbx="main") >= 1


# -- who may read the metrics ---------------------------------------------------------------------------------------


async def test_metrics_need_the_token_when_one_is_set_and_then_from_any_address() -> None:
    extra = f'{WITH_TOKEN}\ntrusted_proxies = ["127.0.0.1"]'
    async with panel_env([TRACE], http_extra=extra) as env, httpx.AsyncClient(base_url=env.url) as http:
        cookie = await session_cookie(env, "admin")  # an admin's login is not the metrics token
        refused_with: list[httpx.Headers | dict[str, str]] = [
            {},
            {"Authorization": "Bearer wrong-token-of-a-good-length"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": "Bearer"},
            httpx.Headers({b"Authorization": "Bearer é-not-ascii".encode()}),  # bytes no token is made of
            {"Cookie": f"cti_session={cookie}"},
        ]
        for headers in refused_with:
            response = await http.get("/metrics", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["error"]["code"] == "unauthorized"
            assert "cti_" not in response.text
        samples = await scrape(http)
        assert ("cti_ami_events_total", frozenset({("pbx", "main")})) in samples
        # With the token, a client elsewhere (relayed by the trusted proxy) reads them too.
        await scrape(http, {**BEARER, "X-Forwarded-For": "203.0.113.9"})


async def test_without_a_token_metrics_answer_only_direct_requests_from_this_machine() -> None:
    async with panel_env([TRACE], http_extra='trusted_proxies = ["127.0.0.1"]') as env, \
            httpx.AsyncClient(base_url=env.url) as http:
        samples = await scrape(http, {})  # this machine, directly
        assert ("cti_websocket_clients", frozenset()) in samples
        # A bearer token when none is configured neither opens nor closes it: only where the request comes from counts.
        await scrape(http, {"Authorization": "Bearer anything-at-all-0123456789"})
        relayed = [
            {"X-Forwarded-For": "203.0.113.9"},  # a client elsewhere, through the trusted proxy
            {"X-Forwarded-For": "127.0.0.1"},  # relayed by a proxy: who really asked is not known
            {"Forwarded": "for=203.0.113.9"},
            {"X-Real-IP": "203.0.113.9"},
            {"Authorization": "Bearer anything-at-all-0123456789", "X-Forwarded-For": "203.0.113.9"},
        ]
        for headers in relayed:
            response = await http.get("/metrics", headers=headers)
            assert response.status_code == 403, headers
            assert response.json()["error"] == {"code": "forbidden", "message":
                                                "metrics: only from this machine unless [http] metrics_token is set"}


async def test_malformed_requests_to_the_probes_and_the_metrics_get_4xx() -> None:
    async with panel_env([TRACE], http_extra=WITH_TOKEN) as env, httpx.AsyncClient(base_url=env.url) as http:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await http.post(path, headers=BEARER, content=b"x")).status_code == 405, path
            assert (await http.delete(path, headers=BEARER)).status_code == 405, path
            # A GET carries no body: refused before any handler runs.
            with_body = await http.request("GET", path, headers=BEARER, content=b"{}")
            assert 400 <= with_body.status_code < 500, path
        host, port = env.url.removeprefix("http://").split(":")
        for raw in (b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \x00\r\n\r\n",
                    b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: many\r\n\r\n",
                    b"GET /healthz HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n"):
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                writer.write(raw)
                await writer.drain()
                async with asyncio.timeout(10 * UNIT):
                    status = await reader.readline()
            finally:
                writer.close()
            code = int(status.split()[1])
            assert 400 <= code < 500, (raw, status)
        # The panel still answers after them.
        assert (await http.get("/healthz")).status_code == 200


def test_a_metrics_token_too_short_or_with_spaces_is_a_config_error() -> None:
    for token in ("short", "a token with spaces in it", "x" * 257, "токен-не-ascii-0123456789"):
        with pytest.raises(ConfigError, match=r"http\.metrics_token"):
            parse_config({"http": {"metrics_token": token}})
    assert parse_config({"http": {"metrics_token": TOKEN}}).http.metrics_token == TOKEN
    assert parse_config({}).http.metrics_token == ""


# -- what the metrics show --------------------------------------------------------------------------------------------


async def test_metrics_move_with_events_clients_and_a_pop() -> None:
    async with panel_env([TRACE], speed=0, http_extra=WITH_TOKEN) as env, \
            httpx.AsyncClient(base_url=env.url) as http:
        daemon = env.running.daemon
        await logged_in(env)
        before = await scrape(http)
        assert value(before, "cti_websocket_clients") == 0
        assert value(before, "cti_pop_latency_seconds_count", pbx="main") == 0
        assert value(before, "cti_calls_in_progress", pbx="main") == 0

        # The PBX is held: the daemon's own once-a-second ticks are not counted as AMI events.
        ticks = daemon.ticks
        await env.wait_for(lambda: daemon.ticks >= ticks + 2, 10, "two ticks of the daemon's clock")
        idle = await scrape(http)
        assert value(idle, "cti_ami_events_total", pbx="main") == value(before, "cti_ami_events_total",
                                                                             pbx="main")

        anna, admin = [await WsClient.connect(env, name) for name in ("anna", "admin")]
        for client in (anna, admin):
            await client.wait_for("state")
        assert value(await scrape(http), "cti_websocket_clients") == 2

        await env.serve_through(leg_event("Newstate", AGENT_CHANNEL, "Ringing"), "101 ringing")
        await anna.wait_for("call.ringing", extension="101")
        pops = len(admin.of_type("call.ringing"))

        async def timed() -> bool:
            return value(await scrape(http), "cti_pop_latency_seconds_count", pbx="main") == pops

        await until(timed, 10, "the pop's latency observed")
        after = await scrape(http)
        assert value(after, "cti_ami_events_total", pbx="main") > value(before, "cti_ami_events_total",
                                                                            pbx="main")
        assert value(after, "cti_calls_in_progress", pbx="main") == len(daemon.book.calls) >= 1
        latency = value(after, "cti_pop_latency_seconds_sum", pbx="main")
        assert 0 < latency < 10 * UNIT * pops  # the pop reached the clients well within the wait above
        assert value(after, "cti_pop_latency_seconds_bucket", pbx="main", le="+Inf") == pops
        assert value(after, "cti_subscriber_delivered_total", subscriber="panel") > 0
        assert value(after, "cti_subscriber_failed_total", subscriber="panel") == 0
        assert value(after, "cti_store_open") == 1
        assert value(after, "cti_store_max_pending_writes") == daemon.settings.store.max_pending

        await anna.conn.close()

        async def one_left() -> bool:
            return value(await scrape(http), "cti_websocket_clients") == 1

        await until(one_left, 10, "the closed client no longer counted")
        await admin.conn.close()


def test_the_process_metrics_are_there_too() -> None:
    """A registry per node still carries the process's own CPU, memory and descriptors (ProcessCollector)."""
    names = {name for name, _labels in parse(generate_latest(NodeMetrics(None, Hub()).registry).decode())}
    assert {"process_resident_memory_bytes", "process_open_fds", "cti_websocket_clients",
            "cti_pop_latency_seconds_count"} <= names
