"""The subscribers' policies: one that raises, stalls or falls behind costs only itself; their tasks live and die
with the TaskGroup of whoever runs the pipeline (the daemon's).

``companion.pipeline`` on its own, with real asyncio tasks and queues in a real TaskGroup, then the whole daemon over
the replay PBX (a raising and a stalled subscriber beside a real WebSocket: tests/security/test_listener_isolation.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from asterisk.replay import ReplayPbx
from companion.daemon import Daemon
from companion.pipeline import Pipeline, Policy
from cti.effects import CallStarted, Effect
from tests.daemon.conftest import UNIT, settings_for
from tests.traces import TRACES


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


def subscriber_tasks() -> list[asyncio.Task[object]]:
    """The subscribers' tasks still alive on this loop."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("subscriber-") and not t.done()]


@asynccontextmanager
async def running(pipeline: Pipeline) -> AsyncIterator[Pipeline]:
    """The pipeline's tasks in a TaskGroup of the test's own, as the daemon runs them in its group."""
    async with asyncio.TaskGroup() as tg:
        pipeline.attach(tg)
        try:
            yield pipeline
        finally:
            await pipeline.close(1 * UNIT)


class Stuck:
    """An asynchronous subscriber that never returns from the effects it is given (until released)."""

    def __init__(self) -> None:
        self.entered: list[Effect] = []
        self.cancelled = 0
        self.release = asyncio.Event()

    async def __call__(self, effect: Effect) -> None:
        self.entered.append(effect)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def test_a_subscriber_raising_on_every_effect_costs_the_others_nothing(caplog: pytest.LogCaptureFixture
                                                                             ) -> None:
    pipeline = Pipeline()
    async with running(pipeline):
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


async def test_a_stalled_subscriber_is_cancelled_after_its_timeout_and_goes_on_with_the_next_effect() -> None:
    pipeline = Pipeline()
    async with running(pipeline):
        stuck = Stuck()
        got: list[Effect] = []
        pipeline.subscribe(stuck, name="stuck", policy=Policy(timeout=0.05 * UNIT))
        pipeline.subscribe(got.append, name="healthy")
        pipeline.publish([started(1), started(2), started(3)])
        await until(lambda: len(got) == 3, "the healthy subscriber's effects")
        await until(lambda: pipeline.stats()[0].stalled == 3, "each stalled effect to be given up")
        assert numbers(stuck.entered) == [1, 2, 3], "after a stall, the next effect is still handed over"


async def test_a_subscriber_that_stalls_for_good_sheds_its_oldest_effects_and_nobody_waits_for_it() -> None:
    """No timeout: its queue fills to its bound, then the oldest waiting effect makes room for each new one."""
    pipeline = Pipeline()
    async with running(pipeline):
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


async def test_drop_newest_keeps_the_effects_that_were_waiting() -> None:
    pipeline = Pipeline()
    async with running(pipeline):
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


async def test_close_delivers_what_is_queued_then_cancels_a_subscriber_that_never_returns() -> None:
    pipeline = Pipeline()
    async with running(pipeline):
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
    async with running(pipeline):
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


async def test_subscribers_get_unique_names_for_their_counts() -> None:
    pipeline = Pipeline()

    def view(effect: Effect) -> None:
        return None

    names = [pipeline.subscribe(view).name, pipeline.subscribe(view).name, pipeline.subscribe(view, name="crm").name]
    assert len(set(names)) == 3 and names[2] == "crm"
    assert [s.name for s in pipeline.stats()] == names


# -- the tasks belong to their owner's TaskGroup ----------------------------------------------------------------


class Boom(RuntimeError):
    pass


async def test_effects_published_before_the_pipeline_runs_wait_for_it_then_arrive_in_order() -> None:
    pipeline = Pipeline()
    got: list[Effect] = []
    pipeline.subscribe(got.append, name="view")
    pipeline.publish([started(n) for n in range(5)])  # nothing to run them on yet: they wait in the queue
    assert pipeline.stats()[0].queued == 5 and not subscriber_tasks()
    async with running(pipeline):
        await until(lambda: len(got) == 5, "the waiting effects, once the pipeline runs")
    assert numbers(got) == list(range(5))


async def test_no_subscriber_failure_ever_cancels_the_owners_task_group() -> None:
    """Raising, stalling past its timeout, even cancelling itself: the group and its other tasks go on."""
    pipeline = Pipeline()
    got: list[Effect] = []

    def broken(effect: Effect) -> None:
        raise Boom("a bug in a subscriber")

    async def self_cancelling(effect: Effect) -> None:
        raise asyncio.CancelledError  # its task ends as cancelled; the next effect starts it again

    async def stalls(effect: Effect) -> None:
        await asyncio.Event().wait()

    neighbour_done = asyncio.Event()

    async def neighbour() -> None:  # another task of the owner's group: it would be cancelled if the group failed
        await until(lambda: len(got) == 20, "every effect to reach the healthy subscriber")
        neighbour_done.set()

    async with asyncio.TaskGroup() as tg:
        pipeline.attach(tg)
        tg.create_task(neighbour())
        pipeline.subscribe(broken, name="broken")
        pipeline.subscribe(self_cancelling, name="self-cancelling")
        pipeline.subscribe(stalls, name="stalls", policy=Policy(timeout=0.01 * UNIT))
        pipeline.subscribe(got.append, name="healthy")
        for n in range(20):
            pipeline.publish([started(n)])
            await asyncio.sleep(0)  # let the self-cancelling task end between effects, so it is restarted
        await neighbour_done.wait()
        await until(lambda: pipeline.stats()[2].stalled == 20, "every stall to be given up")
        await pipeline.close(1 * UNIT)
    stats = {s.name: s for s in pipeline.stats()}
    assert stats["broken"].failed == 20
    assert stats["self-cancelling"].restarts >= 1
    assert numbers(got) == list(range(20))
    assert not subscriber_tasks()


async def test_when_the_owners_task_group_fails_it_takes_every_subscriber_task_down_with_it() -> None:
    pipeline = Pipeline()
    stuck = Stuck()
    pipeline.subscribe(stuck, name="stuck", policy=Policy(timeout=None))
    with pytest.raises(ExceptionGroup) as failed:
        async with asyncio.TaskGroup() as tg:
            pipeline.attach(tg)
            pipeline.publish([started(1), started(2)])
            await until(lambda: len(stuck.entered) == 1, "the stuck subscriber to hold an effect")

            async def failing() -> None:
                raise Boom("the store failed")

            tg.create_task(failing())
            await asyncio.Event().wait()  # the group's failure cancels this too
    assert [type(e) for e in failed.value.exceptions] == [Boom]
    assert stuck.cancelled == 1 and not subscriber_tasks()
    pipeline.publish([started(3)])  # the group is gone: nothing raises, nothing starts, the effect waits
    assert not subscriber_tasks() and pipeline.stats()[0].queued == 2


# -- the daemon ------------------------------------------------------------------------------------------------------


async def test_the_daemon_failing_for_another_reason_leaves_no_subscriber_task_running(tmp_path: Path) -> None:
    """A task of the daemon's group fails (here a side task of the event path with a bug) while a subscriber is
    stuck in an effect: the daemon stops with that error, and its subscribers' tasks are gone with it."""
    stuck = Stuck()
    seen: list[Effect] = []
    async with ReplayPbx([TRACES / "07-queue-ringall-answered"], speed=0, rebase_time=True) as pbx:
        pbx.pause()
        daemon = Daemon(settings_for(tmp_path, pbx.address[1]))
        daemon.subscribe(stuck, name="stuck", policy=Policy(timeout=None))
        daemon.subscribe(seen.append, name="healthy")
        run = asyncio.create_task(daemon.run(asyncio.Event()))  # never asked to stop
        async with asyncio.timeout(5 * UNIT):
            await daemon.ready.wait()
        pbx.resume()
        await until(lambda: len(stuck.entered) == 1 and len(seen) > 1, "effects, one of them held by the stuck one")
        assert {t.get_name() for t in subscriber_tasks()} >= {"subscriber-stuck", "subscriber-healthy"}

        async def failing() -> None:
            raise Boom("a side task of the event path failed")

        daemon._spawn(failing())
        with pytest.raises(ExceptionGroup) as failed:
            async with asyncio.timeout(10 * UNIT):
                await run
    assert [type(e) for e in failed.value.exceptions] == [Boom]
    assert stuck.cancelled == 1, "the stuck subscriber was cancelled, not left behind"
    assert not subscriber_tasks()


async def test_a_daemon_cancelled_from_outside_leaves_no_subscriber_task_running(tmp_path: Path) -> None:
    """What ``run_daemon``'s own group does to the daemon when something beside it fails."""
    stuck = Stuck()
    async with ReplayPbx([TRACES / "07-queue-ringall-answered"], speed=0, rebase_time=True) as pbx:
        pbx.pause()
        daemon = Daemon(settings_for(tmp_path, pbx.address[1]))
        daemon.subscribe(stuck, name="stuck", policy=Policy(timeout=None))
        run = asyncio.create_task(daemon.run(asyncio.Event()))
        async with asyncio.timeout(5 * UNIT):
            await daemon.ready.wait()
        pbx.resume()
        await until(lambda: len(stuck.entered) == 1, "the stuck subscriber to hold an effect")
        run.cancel()
        await asyncio.wait([run], timeout=10 * UNIT)
    assert run.cancelled()
    assert stuck.cancelled == 1 and not subscriber_tasks()
