"""The subscribers' policies: one that raises, stalls or falls behind costs only itself.

``companion.pipeline`` on its own, with real asyncio tasks and queues (the whole daemon over the replay PBX
and a real WebSocket is in tests/security/test_listener_isolation.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from companion.pipeline import Pipeline, Policy
from cti.effects import CallStarted, Effect
from tests.daemon.conftest import UNIT


def started(n: int) -> CallStarted:
    return CallStarted(linkedid=f"1795479360.{n}", direction="inbound", caller=f"7916000{n:04d}", caller_name=None,
                       called="74950000101", at=1795479360.0 + n)


def numbers(effects: list[Effect]) -> list[int]:
    return [int(e.linkedid.rsplit(".", 1)[1]) for e in effects if isinstance(e, CallStarted)]


async def until(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    try:
        async with asyncio.timeout(timeout * UNIT):
            while not predicate():
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class Stuck:
    """An asynchronous subscriber that never returns from the effects it is given (until released)."""

    def __init__(self) -> None:
        self.entered: list[Effect] = []
        self.release = asyncio.Event()

    async def __call__(self, effect: Effect) -> None:
        self.entered.append(effect)
        await self.release.wait()


async def test_a_subscriber_raising_on_every_effect_costs_the_others_nothing(caplog: pytest.LogCaptureFixture
                                                                             ) -> None:
    pipeline = Pipeline()
    got: list[Effect] = []

    def broken(effect: Effect) -> None:
        raise RuntimeError("cannot show it")

    pipeline.subscribe(broken, name="broken")
    pipeline.subscribe(got.append, name="journal-view")
    with caplog.at_level(logging.WARNING, logger="companion.pipeline"):
        for n in range(200):
            pipeline.publish([started(n)])
        await until(lambda: len(got) == 200, "every effect to reach the healthy subscriber")
        await until(lambda: pipeline.failures == 200, "every failure to be counted")
    assert numbers(got) == list(range(200)), "in order, none lost"
    broken_stats, healthy = pipeline.stats()
    assert (broken_stats.failed, broken_stats.delivered, broken_stats.shed) == (200, 0, 0)
    assert (healthy.delivered, healthy.failed) == (200, 0)
    tracebacks = [r for r in caplog.records if r.exc_info and "broken" in r.getMessage()]
    assert len(tracebacks) == 1, "logged once with its traceback, not once per effect"
    await pipeline.close(1 * UNIT)


async def test_a_stalled_subscriber_is_cancelled_after_its_timeout_and_goes_on_with_the_next_effect() -> None:
    pipeline = Pipeline()
    stuck = Stuck()
    got: list[Effect] = []
    pipeline.subscribe(stuck, name="stuck", policy=Policy(timeout=0.05 * UNIT))
    pipeline.subscribe(got.append, name="healthy")
    pipeline.publish([started(1), started(2), started(3)])
    await until(lambda: len(got) == 3, "the healthy subscriber's effects")
    await until(lambda: pipeline.stats()[0].stalled == 3, "each stalled effect to be given up")
    assert numbers(stuck.entered) == [1, 2, 3], "after a stall, the next effect is still handed over"
    await pipeline.close(1 * UNIT)


async def test_a_subscriber_that_stalls_for_good_sheds_its_oldest_effects_and_nobody_waits_for_it() -> None:
    """No timeout: its queue fills to its bound, then the oldest waiting effect makes room for each new one."""
    pipeline = Pipeline()
    stuck = Stuck()
    got: list[Effect] = []
    pipeline.subscribe(stuck, name="stuck", policy=Policy(queue_size=10, when_full="drop_oldest", timeout=None))
    pipeline.subscribe(got.append, name="healthy")
    pipeline.publish([started(0)])
    await until(lambda: len(stuck.entered) == 1, "the stuck subscriber to hold its first effect")
    for n in range(1, 1000):
        pipeline.publish([started(n)])  # synchronous: it returns at once however stuck the subscriber is
    await until(lambda: len(got) == 1000, "the healthy subscriber's effects")
    stats = pipeline.stats()[0]
    assert (stats.queued, stats.most_queued) == (10, 10), "memory stays bounded"
    assert stats.shed == 1000 - 1 - 10
    stuck.release.set()
    await until(lambda: len(stuck.entered) == 11, "the stuck subscriber to catch up")
    assert numbers(stuck.entered) == [0, *range(990, 1000)], "it kept the newest effects"
    await pipeline.close(1 * UNIT)


async def test_drop_newest_keeps_the_effects_that_were_waiting() -> None:
    pipeline = Pipeline()
    stuck = Stuck()
    pipeline.subscribe(stuck, name="stuck", policy=Policy(queue_size=3, when_full="drop_newest", timeout=None))
    pipeline.publish([started(0)])
    await until(lambda: len(stuck.entered) == 1, "the first effect to be handed over")
    for n in range(1, 10):
        pipeline.publish([started(n)])
    stuck.release.set()
    await until(lambda: pipeline.stats()[0].delivered == 4, "the waiting ones to be delivered")
    assert numbers(stuck.entered) == [0, 1, 2, 3]
    assert pipeline.stats()[0].shed == 6
    await pipeline.close(1 * UNIT)


async def test_close_delivers_what_is_queued_then_cancels_a_subscriber_that_never_returns() -> None:
    pipeline = Pipeline()
    stuck = Stuck()
    slow_got: list[Effect] = []

    async def slow(effect: Effect) -> None:
        await asyncio.sleep(0)
        slow_got.append(effect)

    pipeline.subscribe(stuck, name="stuck", policy=Policy(timeout=None))
    pipeline.subscribe(slow, name="slow")
    pipeline.publish([started(n) for n in range(50)])
    loop = asyncio.get_running_loop()
    began = loop.time()
    await pipeline.close(0.2 * UNIT)
    assert loop.time() - began < 2 * UNIT, "the drain is bounded"
    assert numbers(slow_got) == list(range(50)), "what was queued reached the subscriber that keeps up"
    pipeline.publish([started(99)])  # after close: dropped, nothing raised, no task started
    assert all(s.queued == 0 for s in pipeline.stats()[1:])


async def test_a_subscriber_task_that_dies_is_started_again_by_the_next_effect() -> None:
    pipeline = Pipeline()
    stuck = Stuck()
    subscriber = pipeline.subscribe(stuck, name="stuck", policy=Policy(timeout=None))
    pipeline.publish([started(1)])
    await until(lambda: len(stuck.entered) == 1, "the first effect")
    task = subscriber._task
    assert task is not None
    task.cancel()  # as if something outside killed it
    await until(task.done, "the task to end")
    stuck.release.set()
    pipeline.publish([started(2)])
    await until(lambda: len(stuck.entered) == 2, "the next effect, on a new task")
    assert pipeline.stats()[0].restarts == 1
    await pipeline.close(1 * UNIT)


async def test_subscribers_get_unique_names_for_their_counts() -> None:
    pipeline = Pipeline()

    def view(effect: Effect) -> None:
        return None

    names = [pipeline.subscribe(view).name, pipeline.subscribe(view).name, pipeline.subscribe(view, name="crm").name]
    assert len(set(names)) == 3 and names[2] == "crm"
    assert [s.name for s in pipeline.stats()] == names
