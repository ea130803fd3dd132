"""A subscriber that raises or stalls costs nobody anything: the journal and the other subscribers get every effect.

Finding 8 of the security issue: a caller name the terminal journal could not print made the daemon's AMI
sink raise, and the rest of that AMI message's effects (a finished call's journal row among them) were
skipped. Issue 10: a subscriber that never returns must not hold the AMI read, the store or anyone else
either. The daemon stages first, then hands each effect to each subscriber's own bounded queue and task.

Over real parts: the replay PBX on TCP, the real daemon with its store, the panel with WebSocket clients.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from companion.daemon import SUBSCRIBER_DRAIN_SECONDS
from companion.pipeline import Policy
from cti.effects import CallEnded, CallRang, Effect
from tests.daemon.conftest import UNIT
from tests.panel_env import panel_env
from tests.traces import TRACES, compare_with_truth, load_truth
from tests.ui_bridge.wsclient import WsClient

#: Traces with several effects per AMI message (a transfer, a queue ringing three phones, an abandon).
TRACE_NAMES = ["13-blind-transfer-redirect", "07-queue-ringall-answered", "08-queue-abandon"]
STALLED_QUEUE = 8


class Boom(RuntimeError):
    pass


async def test_a_raising_and_a_stalled_subscriber_cost_the_journal_and_the_panel_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    truth = [call for name in TRACE_NAMES for call in load_truth(TRACES / name)]
    seen: list[Effect] = []
    stalled_got: list[Effect] = []
    never = asyncio.Event()

    def broken(effect: Effect) -> None:
        raise Boom(f"cannot show {type(effect).__name__}")

    async def stalled(effect: Effect) -> None:
        stalled_got.append(effect)
        await never.wait()  # never returns

    async with panel_env(TRACE_NAMES, speed=0) as env:
        daemon = env.running.daemon
        admin = await WsClient.connect(env, "admin")
        anna = await WsClient.connect(env, "anna")
        await admin.wait_for("state")
        await anna.wait_for("state")
        daemon.subscribe(broken, name="broken")
        daemon.subscribe(stalled, name="stalled", policy=Policy(queue_size=STALLED_QUEUE, timeout=None))
        daemon.subscribe(seen.append, name="healthy")
        with caplog.at_level(logging.WARNING):
            env.start_calls()
            await env.wait_for(env.replay.finished.is_set, 60, "the replay finished")
            await env.wait_for(lambda: not daemon.book.calls, 20, "every call ended")
            wanted = {c["linkedid"] for c in truth}
            await env.wait_for(lambda: {m["linkedid"] for m in admin.of_type("call.ended")} >= wanted, 20,
                               "every call.ended to reach the admin")
            await env.wait_for(lambda: all(s.queued == 0 for s in daemon.pipeline.stats() if s.name != "stalled"),
                               20, "the other subscribers to catch up")
            ended = [e for e in seen if isinstance(e, CallEnded)]
            for_anna = {e.record.linkedid for e in ended if "101" in e.audience}
            await env.wait_for(lambda: {m["linkedid"] for m in anna.of_type("call.ended")} >= for_anna, 20,
                               "agent 101's call.ended messages")
        await env.store.flush()
        rows = [r.to_json(None) for r in await env.store.list_calls(limit=1000)]
        stats = {s.name: s for s in daemon.pipeline.stats()}
        began = time.monotonic()
        await env.running.stop()  # SIGTERM's path: the stalled subscriber must not hold it
        stopping = time.monotonic() - began

    # The store: every call, exactly as truth.json has it.
    assert compare_with_truth(rows, truth) == []
    # The healthy in-process subscriber and the panel's WebSocket clients: every effect, every message.
    assert {e.record.linkedid for e in ended} == wanted
    pops = {(e.linkedid, e.agent) for e in seen if isinstance(e, CallRang)}
    assert {(m["linkedid"], m["extension"]) for m in admin.of_type("call.ringing")} >= pops
    assert for_anna and {m["linkedid"] for m in anna.of_type("call.ended")} == for_anna, \
        "agent 101 sees the end of each call it was on, and of no other"
    assert {(m["linkedid"], m["extension"]) for m in anna.of_type("call.ringing")} == {
        p for p in pops if p[1] == "101"}, "and only its own pops"
    # Each subscriber's counts, as a health check reads them.
    assert stats["broken"].failed == len(seen) and stats["broken"].delivered == 0
    assert len(stalled_got) == 1, "the stalled subscriber is still on its first effect"
    assert stats["stalled"].queued == STALLED_QUEUE and stats["stalled"].shed == len(seen) - 1 - STALLED_QUEUE
    assert stats["panel"].failed == stats["panel"].shed == stats["panel"].stalled == 0
    assert stats["panel"].delivered >= len(seen)
    assert stats["healthy"].delivered == len(seen)
    # Logged, not flooded: the raising subscriber's traceback once, the stalled one's shedding once.
    tracebacks = [r for r in caplog.records if r.exc_info and "broken" in r.getMessage()]
    assert len(tracebacks) == 1, "the failing subscriber is logged once, not once per effect"
    assert len([r for r in caplog.records if "stalled" in r.getMessage() and "shed" in r.getMessage()]) == 1
    assert stopping < (SUBSCRIBER_DRAIN_SECONDS + 5) * UNIT, f"stopping took {stopping:.1f} s"
