"""Zammad end to end: real traces replayed into a real daemon, its Generic CTI over HTTP (tests/crm/zammad_server.py).

* Each call is exactly newCall → answer → hangup in Zammad's caller log (a missed one newCall → hangup with its
  cause), a queue call that rang three phones and a transfer included; the agent named as Zammad reads it.
* Faults: Zammad down a while, answering 503 and 429, an answer lost after Zammad logged the event (a timeout):
  afterwards every call is complete, in order, nothing doubled.
* Zammad's reject: the daemon hangs the call up through AMI (the replay PBX receives the ``Hangup``) and still sends
  the hangup event at the end.
* A call whose end the daemon learnt only from the resync after an outage still gets its hangup.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from asterisk.messages import AmiMessage
from asterisk.replay import ReplayPbx, load_trace
from cti.crm import CrmItem
from cti.effects import CallAnswered
from tests.conftest import UNIT
from tests.crm.local_server import LocalServer, serving
from tests.crm.zammad_server import ZammadCti
from tests.daemon.conftest import (
    QUICK_RECONNECT,
    RunningDaemon,
    leg_event,
    resyncs,
    serve_through,
    settings_for,
    wait_until,
)
from tests.traces import TRACES

QUEUE = "main:1795479360.12"  # 07: rings 101, 102, 105; 102 answers
ABANDONED = "main:1795479383.16"  # 08: the caller gives up in the queue
TRANSFER = "main:1795479510.36"  # 13: 101 answers, transfers to 104
CLICK = "main:1795479586.44"  # 16: 101 calls 89161234567 out
BUSY = "main:1795479314.6"  # 04: 103 refuses busy
DIRECT = "main:1795479242.0"  # 01: 103 answers
FIVE = ["07-queue-ringall-answered", "08-queue-abandon", "13-blind-transfer-redirect", "16-click-to-call-answered",
        "04-direct-busy"]
EXPECTED = {QUEUE: ["newCall", "answer", "hangup"], ABANDONED: ["newCall", "hangup"],
            TRANSFER: ["newCall", "answer", "hangup"], CLICK: ["newCall", "answer", "hangup"],
            BUSY: ["newCall", "hangup"]}


def sections(zammad: ZammadCti, server: LocalServer, extra: str = "", *, crm: str = "") -> dict[str, str]:
    """``[crm]`` (quick retries) and ``[crm.zammad]`` pointed at the test's Zammad."""
    return {"crm": "retry_first_seconds = 0.05\nretry_max_seconds = 0.2\n" + crm,
            "crm.zammad": f'url = "{zammad.endpoint(server.url)}"\nusers = {{ "102" = "oleg" }}\n' + extra}


def complete(zammad: ZammadCti, expected: dict[str, list[str]]) -> bool:
    return all(zammad.events_of(call) == events for call, events in expected.items())


async def idle(running: RunningDaemon) -> None:
    """Wait until nothing is pending or in flight in the daemon's Zammad outbox."""
    crm = running.daemon.crm
    store = running.daemon.store
    assert crm is not None and store is not None
    sender = crm.senders["zammad"]
    async with asyncio.timeout(20 * UNIT):
        while await store.list_crm_items(crm="zammad", state="pending") or sender.stats().in_flight:
            await asyncio.sleep(0.02)


async def items_of(running: RunningDaemon, call: str) -> list[CrmItem]:
    store = running.daemon.store
    assert store is not None
    return await store.list_crm_items(crm="zammad", call=call)


@asynccontextmanager
async def zammad_daemon(tmp_path: Path, traces: list[str], zammad: ZammadCti, server: LocalServer, extra: str = "",
                        *, paused: bool = False, ami: str = "") -> AsyncIterator[tuple[ReplayPbx, RunningDaemon]]:
    async with ReplayPbx([TRACES / name for name in traces], speed=0) as pbx:
        if paused:
            pbx.pause()
        _, port = pbx.address
        settings = settings_for(tmp_path, port, sections=sections(zammad, server, extra), extra_ami=ami)
        async with RunningDaemon(settings) as running:
            yield pbx, running


def no_event_twice(zammad: ZammadCti) -> None:
    """Zammad applied each (call, event) once: its log holds each event of a call once, and nothing was refused
    as a duplicate except the repeat of a newCall whose answer was lost."""
    for call_id, entry in zammad.calls.items():
        assert len(entry.events) == len(set(entry.events)), (call_id, entry.events)


async def test_each_call_is_new_call_answer_hangup_once(tmp_path: Path) -> None:
    zammad = ZammadCti()
    async with serving(zammad.app) as server, zammad_daemon(tmp_path, FIVE, zammad, server) as (_pbx, running):
        await wait_until(lambda: complete(zammad, EXPECTED), 30, "every call complete in Zammad")
        await idle(running)
    assert set(zammad.calls) == set(EXPECTED)
    assert all(seen.status == 200 for seen in zammad.requests)  # nothing refused, nothing sent twice
    assert len(zammad.requests) == sum(len(v) for v in EXPECTED.values())

    queue = zammad.calls[QUEUE]
    call = {"from": "79161234500", "to": "74951234567", "direction": "in", "callId": QUEUE}
    assert queue.params[0] == {"event": "newCall", **call, "queue": "support"}
    # 102 is "oleg" in [crm.zammad] users: Zammad's login, and the name while no panel user has 102.
    assert queue.params[1] == {"event": "answer", **call, "queue": "support", "user": "oleg",
                               "answeringNumber": "oleg"}
    assert queue.params[2] == {"event": "hangup", **call, "queue": "support", "cause": "normalClearing",
                               "answeringNumber": "oleg"}
    assert queue.done and queue.state == "hangup"

    abandoned = zammad.calls[ABANDONED]
    assert abandoned.params[1]["cause"] == "cancel" and abandoned.done is False  # Zammad lists it as missed

    transfer = zammad.calls[TRANSFER]
    assert transfer.params[1]["answeringNumber"] == "101" and transfer.params[2]["cause"] == "normalClearing"

    click = zammad.calls[CLICK]
    assert click.direction == "out" and (click.from_, click.to) == ("101", "89161234567")
    assert click.params[0]["user"] == "101"  # the agent who called: no panel user, no mapping: the extension
    assert "user" not in click.params[1]  # an outbound answer names nobody (Zammad would overwrite the customer)

    assert zammad.calls[BUSY].params[1]["cause"] == "busy"


async def test_zammad_down_a_while_then_every_call_complete_in_order(tmp_path: Path) -> None:
    zammad = ZammadCti()
    async with serving(zammad.app) as server:
        await server.stop()  # Zammad is down when the calls happen
        async with zammad_daemon(tmp_path, FIVE, zammad, server) as (pbx, running):
            crm = running.daemon.crm
            assert crm is not None
            sender = crm.senders["zammad"]
            await wait_until(lambda: pbx.finished.is_set() and sender.stats().retried >= 5, 30,
                             "the calls happened and their requests were retried")
            assert "cannot connect" in (sender.stats().last_error or "")
            await server.start()
            await wait_until(lambda: complete(zammad, EXPECTED), 30, "every call complete once Zammad is back")
            await idle(running)
    no_event_twice(zammad)
    assert all(seen.status == 200 for seen in zammad.requests)


async def test_503_429_and_a_lost_answer_leave_every_call_complete_once(tmp_path: Path) -> None:
    zammad = ZammadCti()
    zammad.hang_next(1, processed=True)  # the first newCall is logged, its answer never comes: a timeout
    zammad.fail_next(3, 503)
    zammad.fail_next(2, 429, {"error": "Too Many Requests"}, {"Retry-After": "0"})
    async with serving(zammad.app) as server, \
            zammad_daemon(tmp_path, FIVE, zammad, server, f"timeout = {0.5 * UNIT}\n") as (_pbx, running):
        await wait_until(lambda: complete(zammad, EXPECTED), 40, "every call complete despite the faults")
        await idle(running)
        zammad.release()
    no_event_twice(zammad)
    statuses = [seen.status for seen in zammad.requests]
    assert statuses.count(503) == 3 and statuses.count(429) == 2
    # The newCall whose answer was lost was sent again: Zammad said it has it, and the call went on.
    repeats = [seen for seen in zammad.requests if seen.status == 500]
    assert [(seen.event, seen.answer["error"]) for seen in repeats] == [("newCall", "Object already exists!")]


def ringing(prefix: str) -> Callable[[AmiMessage], bool]:
    return leg_event("Newstate", prefix, "Ringing")


def events_of(trace: str) -> list[AmiMessage]:
    return [e.message for e in load_trace(TRACES / trace).events]


def hangups(pbx: ReplayPbx) -> list[AmiMessage]:
    return [a.message for a in pbx.received_actions if a.message.action == "Hangup"]


@pytest.mark.parametrize("hangs_up", [True, False])
async def test_a_reject_hangs_the_call_up_and_the_hangup_event_still_follows(tmp_path: Path, hangs_up: bool) -> None:
    zammad = ZammadCti(blocked=("79161234567",))  # 01's caller is on Zammad's blocklist
    extra = f"reject_hangs_up = {'true' if hangs_up else 'false'}\n"
    async with serving(zammad.app) as server, \
            zammad_daemon(tmp_path, ["01-direct-answered"], zammad, server, extra, paused=True) as (pbx, running):
        await serve_through(pbx, events_of("01-direct-answered"), ringing("PJSIP/103-"), "103 ringing")
        await wait_until(lambda: zammad.events_of(DIRECT) == ["newCall"], 20, "Zammad got the newCall")
        async with asyncio.timeout(20 * UNIT):
            while (items := await items_of(running, DIRECT))[0].state != "sent":
                await asyncio.sleep(0.02)
        assert items[0].kind == "newCall"
        assert items[0].answer == ({"rejected": True, "hung_up": True} if hangs_up else {"rejected": True})
        if hangs_up:
            (hangup,) = hangups(pbx)
            assert hangup.get("Channel", "").startswith("PJSIP/trunk-")  # the customer's: the call ends for all
            assert hangup.get("Cause") == "21"  # call rejected
        else:
            assert hangups(pbx) == []
        # The replay PBX plays the recorded call on (it executes no action): its end is still sent to Zammad.
        pbx.resume()
        await wait_until(lambda: zammad.events_of(DIRECT)[-1:] == ["hangup"], 20, "the hangup event")
        await idle(running)
    assert zammad.calls[DIRECT].comment == "normalClearing"
    assert zammad.requests[0].answer == {"action": "reject", "reason": "busy"}


async def test_a_call_that_ended_during_an_outage_still_gets_its_hangup(tmp_path: Path) -> None:
    """The PBX link drops while a call is up and the call ends while nobody listens: the resync ends it (``complete``
    false) and Zammad, which has newCall and answer, gets the hangup: it never keeps a call ringing for ever."""
    zammad = ZammadCti()
    events = events_of("01-direct-answered")
    async with serving(zammad.app) as server, \
            zammad_daemon(tmp_path, ["01-direct-answered"], zammad, server, paused=True,
                          ami=QUICK_RECONNECT) as (pbx, running):
        await serve_through(pbx, events, lambda m: m.event == "DialEnd" and m.get("DialStatus") == "ANSWER",
                            "the answer")
        await running.wait_for_effect(CallAnswered)
        await wait_until(lambda: zammad.events_of(DIRECT) == ["newCall", "answer"], 20, "newCall and answer sent")
        pbx.drop_connections()
        pbx.advance(len(events) - pbx.position)  # the hang-up happens while nobody is connected
        await wait_until(lambda: resyncs(pbx) >= 2 and not running.daemon.book.calls, 20, "the resync ended the call")
        await wait_until(lambda: zammad.events_of(DIRECT) == ["newCall", "answer", "hangup"], 20, "the hangup")
        await idle(running)
    assert zammad.calls[DIRECT].comment == "normalClearing"
    no_event_twice(zammad)
