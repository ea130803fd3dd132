"""The CRM sender over a real store (SQLite), with a connector the test scripts, and the webhook over real HTTP.

* The back-off: each wait ``retry_factor`` times the last, capped; a ``Retry-After`` replaces it; once the request is
  ``give_up_hours`` old it is given up (the test's clock), its reason kept and visible in ``crm_status``.
* A connector that raises is a retry, never a dead sender: the request goes once it stops raising.
* A call's requests go strictly in order, one at a time, while another call's requests go meanwhile.
* The rate: a burst goes at once, then no faster than ``rate`` a second.
* The webhook's receiver down for a while (several retries), then back: every call's events arrive complete, in
  order, none twice. 503 and 429 with ``Retry-After``: the next try waits as asked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from asterisk.replay import ReplayPbx
from companion.crm.connector import GiveUp, Retry, SendResult, Sent
from companion.crm.sender import CrmSender, retry_at
from cti.crm import CrmItem, CrmName, CrmRequest, Planner
from cti.crm.webhook import WebhookPlanner
from store import open_store
from store.repository import Store
from store.settings import StoreSettings
from tests.crm.local_server import serving
from tests.crm.test_webhook import SECRET, webhook_settings
from tests.crm.webhook_server import Answer, WebhookReceiver
from tests.daemon.conftest import RunningDaemon, wait_until
from tests.traces import TRACES
from ui_bridge.crm_settings import CrmSettings

T0 = 1_790_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A connector whose answers the test decides: ``answers[kind]`` in turn (then Sent), an exception to raise, or
    an event to wait for before answering; it notes what it was given, in order."""

    name: CrmName = "webhook"

    def __init__(self, rate: float = 1000.0, burst: int = 1000) -> None:
        self.planner: Planner = WebhookPlanner()
        self.rate = rate
        self.burst = burst
        self.answers: dict[str, list[SendResult | Exception]] = {}
        self.hold: dict[str, asyncio.Event] = {}
        self.given: list[tuple[str, str, float]] = []
        self.in_flight: dict[str, int] = {}
        self.most_in_flight: dict[str, int] = {}

    async def send(self, item: CrmItem, answers: Mapping[str, Any]) -> SendResult:
        self.given.append((item.call, item.kind, time.monotonic()))
        self.in_flight[item.call] = self.in_flight.get(item.call, 0) + 1
        self.most_in_flight[item.call] = max(self.most_in_flight.get(item.call, 0), self.in_flight[item.call])
        try:
            if item.kind in self.hold:
                await self.hold[item.kind].wait()
            queued = self.answers.get(item.kind)
            if queued:
                answer = queued.pop(0)
                if isinstance(answer, Exception):
                    raise answer
                return answer
            return Sent({"id": f"{item.call}/{item.seq}"})
        finally:
            self.in_flight[item.call] -= 1


def crm_settings(**keys: Any) -> CrmSettings:
    return CrmSettings.model_validate({"retry_first_seconds": 2, "retry_factor": 2, "retry_max_seconds": 10,
                                       "give_up_hours": 1, "lease_seconds": 30, **keys})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(StoreSettings(path=tmp_path / "crm.sqlite"), region="RU") as opened:
        yield opened


def requests(*kinds: str) -> list[CrmRequest]:
    return [CrmRequest(kind, {"n": i}) for i, kind in enumerate(kinds)]


async def running(sender: CrmSender) -> asyncio.Task[None]:
    task = asyncio.create_task(sender.run())
    await wait_until(lambda: sender.looks >= 1, 5, "the sender looked at the outbox")
    return task


async def stopped(sender: CrmSender, task: asyncio.Task[None]) -> None:
    sender.stop()
    await asyncio.wait_for(task, 5)


def test_back_off_grows_is_capped_honours_retry_after_and_ends_at_give_up() -> None:
    settings = crm_settings()
    item = CrmItem(id=1, crm="webhook", call="main:1", seq=1, kind="event", payload={}, created_at=T0, attempts=1,
                   next_try_at=T0)
    waits = [retry_at(replace(item, attempts=n), T0 + 100, settings) for n in range(1, 6)]
    assert [w - (T0 + 100) for w in waits if w is not None] == [2, 4, 8, 10, 10]
    assert retry_at(item, T0 + 100, settings, after=30) == T0 + 130
    assert retry_at(item, T0 + 3599, settings) == T0 + 3600  # the last try at the give-up time itself
    assert retry_at(item, T0 + 3600, settings) is None
    # Put back by an admin long after it was given up: a whole period again, from its first wait.
    back = replace(item, attempts=1, retried_at=T0 + 86_400)
    assert retry_at(back, T0 + 86_400 + 1, settings) == T0 + 86_400 + 3
    assert retry_at(back, T0 + 86_400 + 3600, settings) is None


async def test_retried_with_back_off_until_given_up_and_visible(store: Store) -> None:
    clock = Clock()
    connector = Scripted()
    connector.answers["register"] = [Retry("HTTP 503: busy")] * 100
    sender = CrmSender(connector, crm_settings(), lambda: store, clock=clock, poll_seconds=0.01)
    await store.queue_crm("webhook", "main:1", {}, requests("register", "finish"), at=clock.now)
    task = await running(sender)
    try:
        await wait_until(lambda: sender.retried == 1, 5, "the first try failed")
        (item,) = await store.list_crm_items(crm="webhook", state="pending", call="main:1", limit=1)
        assert item.kind == "register" and item.next_try_at == T0 + 2 and item.last_error == "HTTP 503: busy"
        await asyncio.sleep(0.05)
        assert len(connector.given) == 1  # not due yet on the test's clock
        for n, wait in enumerate([2, 4, 8, 10], start=2):
            clock.now += wait
            await wait_until(lambda n=n: sender.retried == n, 5, f"try {n}")  # type: ignore[misc]
        clock.now = T0 + 3600  # an hour old: the next failure gives it up
        await wait_until(lambda: sender.failed == 1, 5, "given up")
        # The call's next request was waiting behind it; it goes now (the connector decides what a missing value is).
        await wait_until(lambda: sender.sent == 1, 5, "the next request of the call went")
    finally:
        await stopped(sender, task)
    (status,) = await store.crm_status()
    assert (status.pending, status.failed, status.sent) == (0, 1, 1)
    assert "still failing after 1 h: HTTP 503: busy" in (status.last_error or "")
    assert [kind for _, kind, _ in connector.given] == ["register"] * 6 + ["finish"]
    assert sender.stats().last_error is not None


async def test_a_refusal_is_given_up_at_once(store: Store) -> None:
    connector = Scripted()
    connector.answers["show"] = [GiveUp("HTTP 400: no such user")]
    sender = CrmSender(connector, crm_settings(), lambda: store, poll_seconds=0.01)
    await store.queue_crm("webhook", "main:1", {}, requests("show", "hide"), at=time.time())
    task = await running(sender)
    try:
        await wait_until(lambda: (sender.failed, sender.sent) == (1, 1), 5, "show given up, hide sent")
    finally:
        await stopped(sender, task)
    (failed,) = await store.list_crm_items(crm="webhook", state="failed")
    assert failed.kind == "show" and failed.attempts == 1 and failed.last_error == "HTTP 400: no such user"


async def test_a_connector_that_raises_is_retried_and_the_sender_lives_on(store: Store) -> None:
    connector = Scripted()
    connector.answers["register"] = [RuntimeError("a bug in a connector"), KeyError("CALL_ID")]
    sender = CrmSender(connector, crm_settings(retry_first_seconds=0.01, retry_max_seconds=0.02), lambda: store,
                       poll_seconds=0.01)
    await store.queue_crm("webhook", "main:1", {}, requests("register"), at=time.time())
    task = await running(sender)
    try:
        await wait_until(lambda: sender.sent == 1, 5, "sent on the third try")
        assert not task.done()
        await store.queue_crm("webhook", "main:2", {}, requests("register"), at=time.time())
        sender.wake()
        await wait_until(lambda: sender.sent == 2, 5, "the sender goes on")
    finally:
        await stopped(sender, task)
    assert sender.retried == 2
    (item,) = await store.list_crm_items(crm="webhook", call="main:1")
    assert item.attempts == 3 and item.state == "sent"


async def test_a_calls_requests_go_in_order_while_another_calls_go(store: Store) -> None:
    connector = Scripted()
    connector.hold["slow"] = asyncio.Event()
    sender = CrmSender(connector, crm_settings(), lambda: store, poll_seconds=0.01)
    task = await running(sender)
    try:
        await store.queue_crm("webhook", "main:A", {}, requests("slow", "a2", "a3"), at=time.time())
        await store.queue_crm("webhook", "main:B", {}, requests("b1", "b2", "b3", "b4"), at=time.time())
        sender.wake()
        await wait_until(lambda: sender.sent == 4, 5, "call B's four went while A's first was held")
        assert [kind for call, kind, _ in connector.given if call == "main:A"] == ["slow"]
        connector.hold["slow"].set()
        await wait_until(lambda: sender.sent == 7, 5, "A's went after")
    finally:
        await stopped(sender, task)
    assert [kind for call, kind, _ in connector.given if call == "main:A"] == ["slow", "a2", "a3"]
    assert [kind for call, kind, _ in connector.given if call == "main:B"] == ["b1", "b2", "b3", "b4"]
    assert connector.most_in_flight == {"main:A": 1, "main:B": 1}  # never two of one call at once
    # What the answers gave is kept for the call's later requests ({"$remote": ...}).
    assert await store.crm_call_answers("webhook", "main:A") == {"id": "main:A/3"}


async def test_the_rate_a_burst_then_no_faster_than_allowed(store: Store) -> None:
    connector = Scripted(rate=20.0, burst=5)
    sender = CrmSender(connector, crm_settings(), lambda: store, poll_seconds=0.01)
    for n in range(15):
        await store.queue_crm("webhook", f"main:{n}", {}, requests("event"), at=time.time())
    task = await running(sender)
    try:
        await wait_until(lambda: sender.sent == 15, 10, "all sent")
    finally:
        await stopped(sender, task)
    times = sorted(t for _, _, t in connector.given)
    # 5 at once, then 10 more at 20/s: at least 0.5 s for the last (less a tick of the bucket's clock).
    assert times[-1] - times[0] >= 0.45


async def test_the_receiver_down_for_a_while_then_everything_arrives_in_order_once(tmp_path: Path) -> None:
    receiver = WebhookReceiver(SECRET)
    traces = ["07-queue-ringall-answered", "01-direct-answered", "13-blind-transfer-redirect",
              "05-caller-hangup-ringing"]
    async with serving(receiver.app) as server, ReplayPbx([TRACES / t for t in traces], speed=0) as pbx:
        await server.stop()  # down before the first call
        _, port = pbx.address
        async with RunningDaemon(webhook_settings(tmp_path, port, server.url)) as daemon:
            crm = daemon.daemon.crm
            assert crm is not None
            sender = crm.senders["webhook"]
            await wait_until(lambda: pbx.finished.is_set(), 30, "the replay finished")
            # Several tries of the first requests fail while it is down (refused connections, retried).
            await wait_until(lambda: sender.retried >= 12, 20, "several retries while the receiver is down")
            assert not receiver.events
            await server.start()
            await wait_until(lambda: len(receiver.events) == 7 + 3 + 5 + 3, 30,
                             "every event arrived once it was back")
            await wait_until(lambda: sender.stats().in_flight == 0, 10, "nothing in flight")
    assert receiver.repeats == 0 and receiver.bad_signatures == 0
    for call, events in receiver.calls().items():
        bodies = receiver.of_call(call)
        assert [b["seq"] for b in bodies] == list(range(1, len(events) + 1)), call  # in order, none missing
        assert events[-1] == "ended" and events.count("ended") == 1
    assert receiver.calls()["main:1795479242.0"] == ["ringing", "answered", "ended"]
    assert receiver.calls()["main:1795479333.8"] == ["ringing", "ring_stopped", "ended"]


@pytest.mark.parametrize("status", [503, 429])
async def test_retry_after_is_honoured(status: int, tmp_path: Path) -> None:
    receiver = WebhookReceiver(SECRET)
    receiver.answer_next(Answer(status, {"Retry-After": "1"}, '{"error": "slow down"}'))
    async with serving(receiver.app) as server, ReplayPbx([TRACES / "01-direct-answered"], speed=0) as pbx:
        _, port = pbx.address
        async with RunningDaemon(webhook_settings(tmp_path, port, server.url)):
            await wait_until(lambda: len(receiver.events) == 3, 20, "the call's three events arrived")
    first, second = receiver.tries[:2]
    assert first[1] == status and second[1] == 200 and first[0] == second[0]  # the same delivery, again
    # retry_first_seconds is 0.05: the second try waited the second the receiver asked for.
    assert second[2] - first[2] >= 0.95
    assert [e["event"] for e in receiver.events] == ["ringing", "answered", "ended"]
