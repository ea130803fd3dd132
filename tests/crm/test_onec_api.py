"""1C's side of the API over real HTTP against the whole system (replay PBX → daemon → panel, the real SQLite store):
the pull feed of call events and click-to-call, as a 1C base calls them with an integration user's token.

* The feed gives a replayed call's events in its order, each once, in the documented shape; a long-poll waiting for
  events wakes when the first one is queued; walking the feed a few events at a time from cursor to cursor loses
  none and repeats none, and asking with the same cursor again gives the same events.
* Click-to-call reaches the replay PBX as one ``Originate`` from the agent's phone; the same ``Idempotency-Key`` again
  rings nobody twice; the call that follows carries the 1C request's id on every event. A bad number is a 400, the
  PBX down a 503, and the same key once the PBX is back places the call.
* Bad cursors, waits and limits are 400s; a panel user who is not an admin is refused; without ``[crm.onec]`` the
  routes are 404.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from asterisk.messages import AmiMessage
from companion.crm.onec import OneCEvent
from store.repository import User
from tests.conftest import UNIT
from tests.daemon.conftest import POLL_SECONDS
from tests.panel_env import PanelEnv, panel_env
from tests.ui_bridge.wsclient import session_cookie
from ui_bridge.auth import new_token, token_hash
from ui_bridge.routes.crm_onec import ONEC_IS_FOR

EVENTS = "/api/crm/1c/events"
CALLS = "/api/crm/1c/calls"
QUEUE_CALL = "main:1795479360.12"  # 07: rings 101, 102, 105; 102 answers
DIRECT_CALL = "main:1795479242.0"  # 01: 103 answers
CLICK_CALL = "main:1795479586.44"  # 16: 101 calls 89161234567 (click-to-call), answered
PULL = {"crm.onec": 'pull = true\nusers = { "102" = "petrova" }'}


@asynccontextmanager
async def onec_client(traces: list[str], sections: dict[str, str] | None = None
                      ) -> AsyncIterator[tuple[PanelEnv, httpx.AsyncClient]]:
    """The whole system with ``sections``, and an HTTP client holding an integration user's token, as a 1C base."""
    async with panel_env(traces, sections=PULL if sections is None else sections) as env:
        await env.store.add_user(User(name="base-1c", role="integration"))
        token = new_token()
        await env.store.add_token("base-1c", token_hash(token), "1C")
        async with httpx.AsyncClient(base_url=env.url, headers={"Authorization": f"Bearer {token}"},
                                     timeout=70 * UNIT) as http:
            yield env, http


async def serve_all(env: PanelEnv) -> None:
    """The held replay taken to its end at once."""
    last = env.events[-1]
    await env.serve_through(lambda m: m is last, "the trace's last event")


async def read(http: httpx.AsyncClient, after: int, **params: Any) -> tuple[list[dict[str, Any]], int]:
    response = await http.get(EVENTS, params={"after": after, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"events", "cursor"}
    for event in body["events"]:
        OneCEvent.model_validate(event)
    return body["events"], body["cursor"]


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout * UNIT):
        while not await check():
            await asyncio.sleep(POLL_SECONDS)


def of_call(events: list[dict[str, Any]], call: str) -> list[dict[str, Any]]:
    return [e for e in events if e["call"]["id"] == call]


async def test_the_feed_gives_each_call_in_order_wakes_a_long_poll_and_cursors_lose_and_repeat_nothing() -> None:
    async with onec_client(["07-queue-ringall-answered", "01-direct-answered"]) as (env, http):
        assert await read(http, 0) == ([], 0)  # nothing yet; the cursor stays where it was
        waiting = asyncio.create_task(http.get(EVENTS, params={"after": 0, "wait": 60}))
        await serve_all(env)
        woke = await asyncio.wait_for(waiting, 30 * UNIT)  # well before its 60 s: an event woke it
        assert woke.status_code == 200
        first = woke.json()["events"]
        assert first and first[0]["event"] == "ringing" and first[0]["call"]["id"] == QUEUE_CALL

        walked: list[dict[str, Any]] = []
        cursor = 0

        async def walk() -> bool:
            nonlocal cursor
            page, after = await read(http, cursor, limit=2, wait=1)
            assert len(page) <= 2 and after == (page[-1]["delivery"] if page else cursor)
            again, _ = await read(http, cursor, limit=2)  # the same cursor again: the same events (and any new)
            assert again[:len(page)] == page
            walked.extend(page)
            cursor = after
            return len(walked) >= 10

        await until(walk, 30, "both calls' ten events were walked")
        deliveries = [e["delivery"] for e in walked]
        assert deliveries == sorted(set(deliveries))  # oldest first, none twice
        queue = of_call(walked, QUEUE_CALL)
        assert [e["event"] for e in queue] == ["ringing"] * 3 + ["answered"] + ["ring_stopped"] * 2 + ["ended"]
        assert [e["seq"] for e in queue] == list(range(1, 8))
        assert queue[3]["agent"] == "102" and queue[3]["user"] == "petrova"
        assert queue[-1]["result"]["outcome"] == "answered"
        assert queue[-1]["result"]["recordings"] == [{"index": 0, "url": None}]  # no [crm] public_url: no link
        assert [e["event"] for e in of_call(walked, DIRECT_CALL)] == ["ringing", "answered", "ended"]
        assert walked[:len(first)] == first
        assert await read(http, cursor) == ([], cursor)  # at the end: nothing more, the cursor kept
        # Pull only: nothing is pushed anywhere, nothing is left pending in the outbox.
        await until(lambda: no_pending(env), 10, "the pull-only items are done")


async def no_pending(env: PanelEnv) -> bool:
    return await env.store.list_crm_items(crm="onec", state="pending") == []


async def test_click_to_call_from_1c_rings_once_per_key_and_its_call_carries_the_request_id() -> None:
    async with onec_client(["16-click-to-call-answered"]) as (env, http):
        body = {"extension": "101", "number": "8 916 123-45-67", "request_id": "ЗаказКлиента ТД-000123"}
        placed = await http.post(CALLS, json=body, headers={"Idempotency-Key": "call-1"})
        assert placed.status_code == 202, placed.text
        answer = placed.json()
        assert answer["request_id"] == "ЗаказКлиента ТД-000123" and answer["pbx"] == "main" and answer["action_id"]
        assert answer["extension"] == "101" and answer["number"] == "8 916 123-45-67"

        def originates() -> list[AmiMessage]:
            return [a.message for a in env.replay.received_actions if a.message.action == "Originate"]

        await env.wait_for(lambda: len(originates()) == 1, what="the Originate reached the PBX")
        [originate] = originates()
        assert originate.get("Channel") == "PJSIP/101" and originate.get("Exten") == "89161234567"

        again = await http.post(CALLS, json=body, headers={"Idempotency-Key": "call-1"})  # 1C's retry
        assert again.status_code == 200 and again.json() == answer
        other = await http.post(CALLS, json={**body, "number": "89160000000"}, headers={"Idempotency-Key": "call-1"})
        assert other.status_code == 409 and other.json()["error"]["code"] == "conflict"
        assert len(originates()) == 1  # nobody rang twice

        await serve_all(env)  # the PBX's call: 101's phone, then the number
        events: list[dict[str, Any]] = []

        async def ended() -> bool:
            events[:] = (await read(http, 0, limit=100))[0]
            return any(e["event"] == "ended" for e in of_call(events, CLICK_CALL))

        await until(ended, 20, "the click-to-call's events")
        call = of_call(events, CLICK_CALL)
        assert call and all(e["started_by"] == {"request_id": "ЗаказКлиента ТД-000123"} for e in call)
        assert call[-1]["result"]["outcome"] == "answered" and call[-1]["agent"] == "101"
        assert call[0]["call"]["direction"] == "outbound" and call[0]["call"]["customer"] == "89161234567"


async def test_click_to_call_errors_bad_number_pbx_down_then_the_same_key_once_it_is_back() -> None:
    async with onec_client(["16-click-to-call-answered"]) as (env, http):
        def originates() -> int:
            return sum(a.message.action == "Originate" for a in env.replay.received_actions)

        for bad in ({"extension": "101", "number": "звонок"}, {"extension": "10x", "number": "89161234567"},
                    {"extension": "101"}, {"extension": "101", "number": "89161234567", "caller_id": "x"},
                    {"extension": "101", "number": "89161234567", "request_id": "две\nстроки"}):
            response = await http.post(CALLS, json=bad)
            assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request", bad
        bad_key = await http.post(CALLS, json={"extension": "101", "number": "89161234567"},
                                  headers={"Idempotency-Key": "a key with spaces"})
        assert bad_key.status_code == 400
        assert originates() == 0

        secret = env.replay.secret
        env.replay.secret = "changed-on-the-pbx"  # the PBX drops the link and refuses the logins after it
        env.replay.drop_connections()

        async def down() -> bool:
            return (await http.get("/readyz")).status_code == 503

        await until(down, 10, "the PBX link is down")
        body = {"extension": "101", "number": "89161234567"}
        refused = await http.post(CALLS, json=body, headers={"Idempotency-Key": "call-2"})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "pbx_unavailable"
        assert originates() == 0

        env.replay.secret = secret

        async def up() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await until(up, 10, "the PBX link is back")
        placed = await http.post(CALLS, json=body, headers={"Idempotency-Key": "call-2"})
        assert placed.status_code == 202, placed.text
        assert placed.json()["request_id"] == "call-2"  # no request_id given: the key names the request
        await env.wait_for(lambda: originates() == 1, what="the Originate reached the PBX")


async def test_a_refused_click_to_call_leaves_no_claim_on_the_next_call_to_that_number() -> None:
    async with onec_client(["16-click-to-call-answered"]) as (env, http):
        body = {"extension": "101", "number": "89161234567"}
        secret = env.replay.secret
        env.replay.secret = "changed-on-the-pbx"
        env.replay.drop_connections()
        await until(lambda: _status_is(http, "/readyz", 503), 10, "the PBX link is down")
        refused = await http.post(CALLS, json={**body, "request_id": "ЗН-отказ"})
        assert refused.status_code == 503, refused.text
        env.replay.secret = secret
        await until(lambda: _status_is(http, "/readyz", 200), 10, "the PBX link is back")
        # 1C asks again for another document: the call that rings is that one's, not the refused one's.
        placed = await http.post(CALLS, json={**body, "request_id": "ЗН-второй"})
        assert placed.status_code == 202, placed.text
        await serve_all(env)
        events: list[dict[str, Any]] = []

        async def ended() -> bool:
            events[:] = (await read(http, 0, limit=100))[0]
            return any(e["event"] == "ended" for e in of_call(events, CLICK_CALL))

        await until(ended, 20, "the click-to-call's events")
        assert {str(e["started_by"]) for e in of_call(events, CLICK_CALL)} == {str({"request_id": "ЗН-второй"})}


async def _status_is(http: httpx.AsyncClient, path: str, status: int) -> bool:
    return (await http.get(path)).status_code == status


async def test_bad_cursors_waits_and_limits_are_refused_and_the_routes_are_for_the_token_and_admins() -> None:
    async with onec_client(["16-click-to-call-answered"]) as (env, http):
        for params in ({"after": -1}, {"after": "x"}, {"after": 2**63}, {"after": "1.5"}, {"wait": 61},
                       {"wait": -1}, {"wait": "x"}, {"wait": "1e3"}, {"limit": 0}, {"limit": 501}):
            response = await http.get(EVENTS, params=params)
            assert response.status_code == 400, params
            assert response.json()["error"]["code"] == "bad_request"
        async with httpx.AsyncClient(base_url=env.url) as panel:
            assert (await panel.get(EVENTS)).status_code == 401
            panel.cookies.set("cti_session", await session_cookie(env, "anna"))
            refused = await panel.get(EVENTS)
            assert refused.status_code == 403 and refused.json()["error"]["message"] == ONEC_IS_FOR
            assert (await panel.post(CALLS, json={"extension": "101", "number": "89161234567"})).status_code == 403
            panel.cookies.set("cti_session", await session_cookie(env, "admin"))
            assert (await panel.get(EVENTS)).status_code == 200


async def test_without_a_1c_section_the_routes_are_404() -> None:
    async with onec_client(["16-click-to-call-answered"], sections={}) as (env, http):
        assert (await http.get(EVENTS)).status_code == 404
        response = await http.post(CALLS, json={"extension": "101", "number": "89161234567"})
        assert response.status_code == 404
        assert not [a for a in env.replay.received_actions if a.message.action == "Originate"]
