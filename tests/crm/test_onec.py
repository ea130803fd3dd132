"""1C's push end to end: real traces replayed into a real daemon, a 1C HTTP service (``tests/crm/onec_server.py``)
over HTTP with Basic auth.

* Each call's events reach the service in its order, once each, in the documented shape (every body validates
  against the JSON Schema's model, ``companion.crm.onec.OneCEvent``): the agent's 1C user beside the extension, the
  outcome at the end, the recording as a signed link the service can play without a login (the audio's bytes).
* Faults: wrong credentials (401) are retried with an error that says so, and once the password is right on the
  base every event arrives, in order, none doubled; the base updating (503) and down altogether are waited out; an
  event the service refuses as such (400) is given up with its answer kept, the call's later events still go.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from asterisk.replay import ReplayPbx
from companion.crm.onec import OneCEvent
from store.repository import Store
from tests.conftest import UNIT
from tests.crm.local_server import LocalServer, serving
from tests.crm.onec_server import PASSWORD, PATH, USER, OneCService
from tests.daemon.conftest import POLL_SECONDS, RunningDaemon, settings_for, wait_until
from tests.traces import TRACES

QUEUE_CALL = "main:1795479360.12"  # 07: rings 101, 102, 105; 102 answers; recorded
QUEUE_RECORDING = "1795479360.12.wav"
DIRECT_CALL = "main:1795479242.0"  # 01: 103 answers; recorded


def onec_sections(url: str, *, password: str = PASSWORD, crm: str = "", onec: str = "") -> dict[str, str]:
    """``[crm]`` (quick retries) and ``[crm.onec]`` pushing to the service at ``url``."""
    return {"recording": f'dir = "{TRACES / "07-queue-ringall-answered" / "recordings"}"',
            "crm": "retry_first_seconds = 0.05\nretry_max_seconds = 0.2\n" + crm,
            "crm.onec": f'push_url = "{url}{PATH}"\nusername = "{USER}"\npassword = "{password}"\n'
                        f'users = {{ "102" = "petrova", "103" = "ivanov" }}\n' + onec}


@asynccontextmanager
async def pushing_daemon(tmp_path: Path, traces: list[str], url: str, **kw: Any
                         ) -> AsyncIterator[tuple[ReplayPbx, RunningDaemon]]:
    """``traces`` replayed at once into a daemon pushing to the 1C service at ``url`` (:func:`onec_sections`)."""
    async with ReplayPbx([TRACES / t for t in traces], speed=0) as pbx, \
            RunningDaemon(settings_for(tmp_path, pbx.address[1], sections=onec_sections(url, **kw))) as running:
        yield pbx, running


def checked(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every event as the JSON Schema documents it (no key missing or unknown)."""
    for event in events:
        OneCEvent.model_validate(event)
    return events


async def test_each_call_arrives_in_order_once_in_the_documented_shape_with_a_playable_link(tmp_path: Path) -> None:
    service = OneCService()
    async with serving(service.app()) as server, \
            pushing_daemon(tmp_path, ["07-queue-ringall-answered", "01-direct-answered"], server.url,
                           crm='public_url = "https://cti.example.ru"') as (pbx, running):
        await wait_until(lambda: pbx.finished.is_set(), 30, "the replay finished")
        await wait_until(lambda: len(service.of_call(DIRECT_CALL)) >= 3 and len(service.of_call(QUEUE_CALL)) >= 7,
                         20, f"both calls' events arrived (got {len(service.events)})")
        queue = checked(service.of_call(QUEUE_CALL))
        assert [e["event"] for e in queue] == ["ringing"] * 3 + ["answered"] + ["ring_stopped"] * 2 + ["ended"]
        assert [e["seq"] for e in queue] == list(range(1, 8))
        deliveries = [e["delivery"] for e in queue]
        assert deliveries == sorted(deliveries) and not service.repeats  # a call's in order; calls go in parallel
        assert len({e["delivery"] for e in service.events}) == len(service.events)
        answered = queue[3]
        assert answered["agent"] == "102" and answered["user"] == "petrova"
        assert answered["call"]["customer"] == "79161234500" and answered["call"]["queue"] == "support"
        result = queue[-1]["result"]
        assert result["outcome"] == "answered" and result["answered_by"] == "102"
        assert result["answered_user"] == "petrova" and result["talk_seconds"] > 10
        [recording] = result["recordings"]
        link = recording["url"]
        assert link.startswith("https://cti.example.ru/crm/recording/") and QUEUE_RECORDING not in link
        direct = checked(service.of_call(DIRECT_CALL))
        assert [e["event"] for e in direct] == ["ringing", "answered", "ended"]
        assert direct[1]["user"] == "ivanov"
        # The base plays the link without a login: the recording's own bytes (here the panel stands in for
        # https://cti.example.ru).
        panel = running.daemon.panel_server
        assert panel is not None
        async with httpx.AsyncClient() as base:
            audio = await base.get(panel.url + link.removeprefix("https://cti.example.ru"))
        assert audio.status_code == 200
        assert audio.content == (TRACES / "07-queue-ringall-answered" / "recordings" / QUEUE_RECORDING
                                 ).read_bytes()


async def test_wrong_credentials_are_retried_with_a_clear_error_until_the_base_lets_us_in(tmp_path: Path) -> None:
    service = OneCService(password="другой пароль")  # the base's user has another password than our config
    async with serving(service.app()) as server, \
            pushing_daemon(tmp_path, ["01-direct-answered"], server.url) as (pbx, run):
        store = run.daemon.store
        assert store is not None
        await wait_until(lambda: pbx.finished.is_set(), 30, "the replay finished")
        await wait_until(lambda: sum(s == 401 for s, _ in service.requests) >= 3, 20, "1C refused us a few times")
        pending = await store.list_crm_items(crm="onec", state="pending")
        assert pending and all(i.attempts >= 1 for i in pending[-1:])
        said = [i.last_error for i in pending if i.last_error]
        assert said and "HTTP 401" in said[0] and "user or password is wrong" in said[0]
        assert not service.events
        service.password = PASSWORD  # the admin sets the password on the base
        await wait_until(lambda: len(service.of_call(DIRECT_CALL)) >= 3, 20, "the events arrived")
        await wait_until(lambda: run.daemon.crm is not None
                         and run.daemon.crm.senders["onec"].stats().in_flight == 0, 10, "nothing in flight")
    assert [e["event"] for e in service.of_call(DIRECT_CALL)] == ["ringing", "answered", "ended"]
    assert [e["seq"] for e in service.events] == [1, 2, 3] and not service.repeats


async def test_a_base_down_or_updating_is_waited_out_and_a_refused_event_is_given_up_alone(tmp_path: Path) -> None:
    service = OneCService()
    server = LocalServer(service.app())
    await server.start()
    await server.stop()  # the port is the base's; the base is down when the calls come
    try:
        async with pushing_daemon(tmp_path, ["01-direct-answered"], server.url) as (pbx, running):
            store = running.daemon.store
            assert store is not None
            await wait_until(lambda: pbx.finished.is_set(), 30, "the replay finished")
            await until(lambda: errors(store, "cannot connect"), 20, "a try found the base down")
            service.fail_next(1, 400, "Не удалось прочитать событие")  # the first event is refused as such
            service.fail_next(2, 503)  # then the base is being updated
            await server.start()  # back, on the same port
            await wait_until(lambda: len(service.of_call(DIRECT_CALL)) >= 2, 20, "the rest arrived")
            await until(lambda: nothing_pending(store), 10, "every request done")
            failed = await store.list_crm_items(crm="onec", state="failed")
    finally:
        await server.stop()
    assert [status for status, _ in service.requests] == [400, 503, 503, 200, 200]
    assert [i.seq for i in failed] == [1]
    assert failed[0].last_error is not None and "HTTP 400" in failed[0].last_error
    assert "Не удалось прочитать событие" in failed[0].last_error
    assert [e["event"] for e in service.of_call(DIRECT_CALL)] == ["answered", "ended"]
    assert [e["seq"] for e in service.events] == [2, 3] and not service.repeats


async def errors(store: Store, text: str) -> bool:
    """Whether a pending 1C request's last error says ``text``."""
    return any(i.last_error and text in i.last_error for i in await store.list_crm_items(crm="onec", state="pending"))


async def nothing_pending(store: Store) -> bool:
    return await store.list_crm_items(crm="onec", state="pending") == []


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout * UNIT):
        while not await check():
            await asyncio.sleep(POLL_SECONDS)
