"""Watching the CRM push (issue 16, ``docs/crm.md#watching-the-push``): what an admin reads of it.

* ``cti crm status`` over a real store: per CRM what waits, what was given up, what was sent, the lag and the last
  error; ``--failed`` the given-up requests; ``cti crm retry`` puts one back (with its call's later ones) or all;
* a real daemon pushing to a webhook receiver on loopback that is down, then refuses, then accepts: ``GET
  /api/health``'s ``crm`` part, ``GET /api/crm``, ``/metrics``' ``cti_crm_*`` say so at each stage, and «Повторить»
  (``POST /api/crm/requests/{id}/retry``) gets a given-up request delivered once the receiver takes it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from companion.config import load_config
from cti.crm import CrmRequest
from store import open_store
from store.repository import Store
from tests.cli_runner import cti
from tests.conftest import UNIT
from tests.crm.local_server import LocalServer
from tests.crm.webhook_server import PATH, Answer, WebhookReceiver
from tests.daemon.conftest import write_config
from tests.panel_env import PanelEnv, panel_env
from tests.ui_bridge.wsclient import session_cookie

SECRET = "status-test-secret"
WEBHOOK = 'url = "http://127.0.0.1:{port}' + PATH + '"\nsecret = "' + SECRET + '"'
#: Retries at once, so the test sees several while the receiver is down (the sender's back-off, ``[crm]``).
QUICK_RETRIES = "retry_first_seconds = 0.05\nretry_factor = 1.0\nretry_max_seconds = 0.05"
TRACE = "01-direct-answered"


# -- the command line ----------------------------------------------------------------------------------------------

async def _fill(store: Store, now: float) -> dict[str, int]:
    """Call A: its ringing given up (refused), its end waiting; call B: its one event sent. Returns the ids."""
    a = await store.queue_crm("webhook", "main:1700000000.1", None,
                              [CrmRequest("event", {"event": "ringing"}), CrmRequest("event", {"event": "ended"})],
                              at=now - 120)
    b = await store.queue_crm("webhook", "main:1700000000.2", None, [CrmRequest("event", {"event": "ended"})],
                              at=now - 60)
    taken = {item.id for item in await store.take_crm("webhook", now=now, lease_seconds=60, limit=10)}
    assert taken == {a[0].id, b[0].id}  # one per call: A's end waits for its ringing
    await store.crm_failed(a[0].id, "HTTP 400: unknown event", at=now - 30, next_try_at=None)
    await store.crm_sent(b[0].id, {}, at=now - 50)
    return {"a_ringing": a[0].id, "a_ended": a[1].id, "b_ended": b[0].id}


def _store_ids(config: Path) -> dict[str, int]:
    settings = load_config(config)

    async def go() -> dict[str, int]:
        async with open_store(settings.store, region=settings.pbx.default_region) as store:
            return await _fill(store, time.time())

    return asyncio.run(go())


def test_status_failed_and_retry_from_the_command_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, 5038, sections={"crm.webhook": WEBHOOK.format(port=9)})
    ids = _store_ids(config)
    c = str(config)

    [row] = json.loads(cti("crm", "status", "--config", c, "--format", "json").stdout)
    assert {k: row[k] for k in ("crm", "configured", "pending", "failed", "sent", "last_error")} == {
        "crm": "webhook", "configured": True, "pending": 1, "failed": 1, "sent": 1,
        "last_error": "HTTP 400: unknown event"}
    assert 115 <= row["lag_seconds"] < 120 + 30 * UNIT  # A's end, queued 2 minutes ago, waits
    table = cti("crm", "status", "--config", c).stdout
    assert "webhook" in table and "HTTP 400: unknown event" in table and "cti crm retry ID" in table

    [given_up] = json.loads(cti("crm", "status", "--failed", "--config", c, "--format", "json").stdout)
    assert (given_up["id"], given_up["call"], given_up["seq"], given_up["kind"], given_up["error"]) == (
        ids["a_ringing"], "main:1700000000.1", 1, "event", "HTTP 400: unknown event")
    assert given_up["failed_at"].endswith("+03:00")  # in the site's zone ([pbx] timezone)
    assert "main:1700000000.1" in cti("crm", "status", "--failed", "--config", c).stdout
    assert json.loads(cti("crm", "status", "--failed", "--crm", "bitrix24", "--config", c, "--format",
                          "json").stdout) == []

    put_back = cti("crm", "retry", str(ids["a_ringing"]), "--config", c).stdout
    assert f"#{ids['a_ringing']} webhook event of call main:1700000000.1" in put_back
    [row] = json.loads(cti("crm", "status", "--config", c, "--format", "json").stdout)
    assert (row["pending"], row["failed"], row["sent"]) == (2, 0, 1)
    assert "No CRM request is given up." in cti("crm", "status", "--failed", "--config", c).stdout

    sent = cti("crm", "retry", str(ids["b_ended"]), "--config", c, check=False)
    assert sent.returncode == 1 and "was sent" in sent.stderr
    unknown = cti("crm", "retry", "999999", "--config", c, check=False)
    assert unknown.returncode == 1 and "no CRM request #999999" in unknown.stderr, unknown.stderr
    neither = cti("crm", "retry", "--config", c, check=False)
    assert neither.returncode == 2 and "--all-failed" in neither.stderr
    bad_crm = cti("crm", "status", "--crm", "salesforce", "--config", c, check=False)
    assert bad_crm.returncode == 2 and "Traceback" not in bad_crm.stderr


def test_retry_all_failed_puts_back_each_call_in_its_order(tmp_path: Path) -> None:
    config = write_config(tmp_path, 5038, sections={"crm.webhook": WEBHOOK.format(port=9)})
    settings = load_config(config)

    async def give_up_everything() -> None:
        async with open_store(settings.store, region=settings.pbx.default_region) as store:
            now = time.time()
            await store.queue_crm("webhook", "main:1.1", None, [CrmRequest("event", {"n": i}) for i in range(3)],
                                  at=now)
            for _ in range(3):
                [item] = await store.take_crm("webhook", now=now, lease_seconds=60)
                await store.crm_failed(item.id, "refused", at=now, next_try_at=None)

    asyncio.run(give_up_everything())
    out = cti("crm", "retry", "--all-failed", "--config", str(config)).stdout
    assert out.splitlines() == [f"Queued again: #{n} webhook event of call main:1.1 (request {n} of the call)"
                                for n in (1, 2, 3)]

    async def sequence() -> list[tuple[int, str]]:
        async with open_store(settings.store, region=settings.pbx.default_region) as store:
            took = []
            now = time.time() + 1
            for _ in range(3):  # the store hands them out one at a time, in the call's order
                [item] = await store.take_crm("webhook", now=now, lease_seconds=60)
                took.append((item.seq, item.state))
                await store.crm_sent(item.id, {}, at=now)
            return took

    assert asyncio.run(sequence()) == [(1, "pending"), (2, "pending"), (3, "pending")]
    assert "nothing to put back" in cti("crm", "retry", "--all-failed", "--config", str(config)).stdout


def test_no_crm_configured_says_so(tmp_path: Path) -> None:
    config = write_config(tmp_path, 5038)
    asyncio.run(_open_once(config))
    out = cti("crm", "status", "--config", str(config))
    assert "No CRM is configured" in out.stdout
    assert json.loads(cti("crm", "status", "--config", str(config), "--format", "json").stdout) == []


async def _open_once(config: Path) -> None:
    settings = load_config(config)
    async with open_store(settings.store, region=settings.pbx.default_region):
        pass


# -- the daemon: health, the admin's API, the metrics ---------------------------------------------------------------

@asynccontextmanager
async def crm_panel(server: LocalServer) -> AsyncIterator[tuple[PanelEnv, httpx.AsyncClient]]:
    sections = {"crm.webhook": WEBHOOK.format(port=server.port), "crm": QUICK_RETRIES}
    async with panel_env([TRACE], speed=20.0, sections=sections) as env:
        cookie = await session_cookie(env, "admin")
        async with httpx.AsyncClient(base_url=env.url, cookies={"cti_session": cookie},
                                     headers={"Origin": env.url}) as http:
            yield env, http


async def wait_for(read: Any, check: Any, what: str, timeout: float = 20.0) -> Any:
    async with asyncio.timeout(timeout * UNIT):
        while True:
            value = await read()
            if check(value):
                return value
            await asyncio.sleep(0.05)


async def crm_health(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/api/health")
    assert response.status_code == 200, response.text
    [webhook] = response.json()["crm"]
    return dict(webhook)


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(f'{name}{{crm="webhook"}} '):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the metrics")


async def test_health_api_and_metrics_follow_a_receiver_down_refusing_then_taking() -> None:
    receiver = WebhookReceiver(SECRET, refuse=lambda body: Answer(400, body="not this event"))
    server = LocalServer(receiver.app)
    await server.start()
    await server.stop()  # the port is kept: the receiver is down, connections are refused
    try:
        async with crm_panel(server) as (env, http):
            before = await crm_health(http)
            assert before == {"crm": "webhook", "configured": True, "pending": 0, "failed": 0, "sent": 0,
                              "lag_seconds": 0.0, "retried": 0, "last_error": None}
            env.start_calls()
            # Down: the call's events wait, are retried, and the lag grows.
            down = await wait_for(lambda: crm_health(http),
                                  lambda h: h["pending"] >= 1 and h["retried"] >= 2 and h["lag_seconds"] > 0,
                                  "requests waiting and retried while the receiver is down")
            assert down["failed"] == 0 and down["last_error"]
            scraped = (await http.get("/metrics")).text
            assert metric(scraped, "cti_crm_retried_total") >= 2
            assert metric(scraped, "cti_crm_pending") >= 1 and metric(scraped, "cti_crm_lag_seconds") > 0
            assert metric(scraped, "cti_crm_failed_total") == 0

            # Up but refusing: each request is given up, with the receiver's answer as its error.
            async with asyncio.timeout(20 * UNIT):
                await env.replay.finished.wait()
            await wait_for(lambda: env.store.list_crm_items(crm="webhook"),
                           lambda items: any(i.payload.get("event") == "ended" for i in items), "the call's end queued")
            await server.start()
            refused = await wait_for(lambda: crm_health(http), lambda h: h["pending"] == 0,
                                     "every request given up")
            assert refused["failed"] >= 3 and refused["sent"] == 0  # ringing, answered, ended at least
            assert "400" in (refused["last_error"] or "")
            view = (await http.get("/api/crm")).json()
            assert [c["crm"] for c in view["crms"]] == ["webhook"]
            assert len(view["given_up"]) == refused["failed"] == sum(status == 400 for _, status, _ in receiver.tries)
            scraped = (await http.get("/metrics")).text
            assert metric(scraped, "cti_crm_failed_total") == refused["failed"]
            assert metric(scraped, "cti_crm_given_up") == refused["failed"]
            assert metric(scraped, "cti_crm_pending") == 0 and metric(scraped, "cti_crm_lag_seconds") == 0

            # Taking: «Повторить» on the oldest puts it (and its call's later ones) back, and they are delivered.
            receiver.refuse = None
            oldest = min(view["given_up"], key=lambda item: item["id"])
            answer = await http.post(f"/api/crm/requests/{oldest['id']}/retry", json={})
            assert answer.status_code == 200, answer.text
            requeued = answer.json()["requests"]
            assert requeued[0]["id"] == oldest["id"] and all(r["state"] == "pending" for r in requeued)
            await wait_for(lambda: crm_health(http), lambda h: h["sent"] == len(requeued),
                           "the requests put back delivered")
            # The oldest given up is the call's first request: the whole call goes again, in its order.
            assert len(requeued) == refused["failed"]
            assert [r["seq"] for r in requeued] == sorted(r["seq"] for r in requeued)
            assert [body["delivery"] for body in receiver.events] == [r["id"] for r in requeued]
            assert receiver.events[0]["event"] == "ringing" and receiver.events[-1]["event"] == "ended"
            after = await crm_health(http)
            assert (after["pending"], after["failed"]) == (0, 0)
            assert (await http.post("/api/crm/requests/999999/retry", json={})).status_code == 404
            assert (await http.post("/api/crm/requests/x1/retry", json={})).status_code == 404
    finally:
        await server.stop()
