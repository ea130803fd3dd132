"""Effects to subscribers, each behind its own bounded queue and task: one that fails or stalls costs only itself.

Why: the daemon reads the PBX, applies each message to the pure model and stages what must be stored
(persist, then publish: wazo-call-logd's order); then every subscriber (the panel, the demo's terminal,
next contact scripts, transcription jobs, a CRM push) gets the effects. If subscribers ran inside the AMI
read, one that raised would lose the others their effects, and one that blocked or was slow would hold the
read itself. Here :meth:`Pipeline.publish` only appends to each subscriber's queue (never waits), and a task
per subscriber hands the effects over in order.

Each subscriber has a :class:`Policy`:

* **full queue**: the subscriber fell ``queue_size`` effects behind. ``drop_oldest`` makes room by shedding
  the oldest waiting effect (a live view wants the latest), ``drop_newest`` sheds the effect arriving (a
  consumer that wants the beginning of a story intact). Either way it is counted and logged.
* **raises**: the effect is counted as failed and logged; the next effect goes on.
* **stalls**: an asynchronous subscriber that takes longer than ``timeout`` seconds on one effect is
  cancelled; that effect is counted as stalled and the task goes on with the next one.
* **dies** (cancelled from outside, say): the next effect published starts it again (counted).

Logging is rate-limited per subscriber (the first traceback, then at most one line a minute with the counts,
``companion/throttled_warning.py``), so a subscriber failing on every effect cannot flood the log; the
counts are always kept (:meth:`Pipeline.stats`).

A subscriber is a callable taking one effect. A synchronous one runs on the event loop (it must not block:
hand long work to a task or a thread); one that returns an awaitable is awaited, within its ``timeout``.

The subscribers' tasks live in a ``asyncio.TaskGroup`` the owner gives (:meth:`Pipeline.attach`: the daemon's own
group), so whatever ends that group (SIGTERM's path, or another task of the daemon failing) ends them too, and no
subscriber task outlives the daemon. A subscriber's own failure never reaches the group: its task counts and logs
it and goes on, and even a bug in the task's own loop only ends that task (the next effect starts it again).

Shutdown (:meth:`Pipeline.close`): what is queued is delivered within a bound, then the tasks are cancelled.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from cti.effects import Effect

from .throttled_warning import ThrottledWarning

log = logging.getLogger(__name__)

Handler = Callable[[Effect], Awaitable[None] | None]
#: A failing or shedding subscriber is logged at most this often (seconds); the counts are kept regardless.


@dataclass(frozen=True, slots=True)
class Policy:
    """How a subscriber's queue and task behave when it cannot keep up or fails."""

    #: Effects that may wait for the subscriber; beyond, ``when_full`` sheds one.
    queue_size: int = 10_000
    when_full: Literal["drop_oldest", "drop_newest"] = "drop_oldest"
    #: Seconds an asynchronous subscriber may take on one effect before it is cancelled (None: no limit).
    timeout: float | None = 30.0


@dataclass(frozen=True, slots=True)
class SubscriberStats:
    """One subscriber's counts since start (for a health check, ``cti``, the tests)."""

    name: str
    delivered: int  # handed over and returned without raising
    failed: int  # raised
    stalled: int  # cancelled after ``timeout``
    shed: int  # dropped from a full queue
    restarts: int  # its task started again after it died
    queued: int  # waiting now
    most_queued: int  # the longest the queue has been


class Subscriber:
    """One consumer of effects: its queue, its task, its counts. Made by :meth:`Pipeline.subscribe`."""

    def __init__(self, name: str, handler: Handler, policy: Policy) -> None:
        self.name = name
        self.handler = handler
        self.policy = policy
        self._queue: deque[Effect] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        #: Where the task runs (``Pipeline.attach``); None: not yet, or no longer (effects wait in the queue).
        self.group: asyncio.TaskGroup | None = None
        self._busy = False
        self._closed = False
        self.delivered = self.failed = self.stalled = self.shed = self.restarts = self.most_queued = 0
        #: The first line with the traceback (when there is one), then at most one a minute.
        self._warn = ThrottledWarning(log, "problem(s)")

    # -- the publishing side (the AMI read path): never waits ------------------------------------------

    def offer_all(self, effects: list[Effect]) -> None:
        """Queue one message's effects: in one step while they fit (the usual case), else one by one."""
        if self._closed:
            return
        queue = self._queue
        if len(queue) + len(effects) > self.policy.queue_size:
            for effect in effects:
                self.offer(effect)
            return
        queue.extend(effects)
        if len(queue) > self.most_queued:
            self.most_queued = len(queue)
        self._ensure_running()

    def offer(self, effect: Effect) -> None:
        if self._closed:
            return
        queue = self._queue
        if len(queue) >= self.policy.queue_size:
            self.shed += 1
            if self.policy.when_full == "drop_newest":
                self._warn("subscriber %s is %d effects behind: %s shed (%d so far)", self.name, len(queue),
                           type(effect).__name__, self.shed)
                return
            dropped = queue.popleft()
            self._warn("subscriber %s is %d effects behind: the oldest (%s) shed (%d so far)", self.name,
                       len(queue) + 1, type(dropped).__name__, self.shed)
        queue.append(effect)
        if len(queue) > self.most_queued:
            self.most_queued = len(queue)
        self._ensure_running()

    def attach(self, group: asyncio.TaskGroup) -> None:
        """Run this subscriber's task in ``group`` (see :meth:`Pipeline.attach`)."""
        self.group = group
        if self._queue:
            self._ensure_running()

    def _ensure_running(self) -> None:
        task = self._task
        if task is None or task.done():
            group = self.group
            if group is None:
                return  # not attached yet (or any more): the effect waits in the queue, within its bound
            wake = asyncio.Event()
            run = self._run(wake)
            try:
                new = group.create_task(run, name=f"subscriber-{self.name}")
            except RuntimeError:  # the group is shutting down or finished: nothing more runs in it
                run.close()
                self.group = None
                return
            if task is not None:
                self.restarts += 1  # died (or was cancelled) under us: the queue still gets served
            self._task, self._wake = new, wake
        elif not self._busy and self._wake is not None:
            self._wake.set()

    # -- the subscriber's own task ------------------------------------------------------------------------

    async def _run(self, wake: asyncio.Event) -> None:
        """Hand the queued effects over, in order, then sleep until more come; never raises into the group."""
        queue = self._queue
        try:
            while True:
                while queue:
                    effect = queue.popleft()
                    self._busy = True
                    try:
                        pending = self._hand_over(effect)
                        if pending is not None:
                            await self._deliver(effect, pending)
                    finally:
                        self._busy = False
                wake.clear()
                await wake.wait()
        except Exception:  # a bug of this loop, not the subscriber's (that is caught per effect in _deliver)
            log.exception("subscriber %s: its task failed; the next effect starts it again", self.name)

    def _hand_over(self, effect: Effect) -> Awaitable[None] | None:
        """Call the handler; a synchronous one is done (and counted) here, without a coroutine per effect. What
        an asynchronous one returned is left to :meth:`_deliver`."""
        try:
            result = self.handler(effect)
        except TimeoutError:
            self._stalled(effect)
        except Exception:
            self._failed(effect)
        else:
            if result is not None and inspect.isawaitable(result):
                return result
            self.delivered += 1
        return None

    def _stalled(self, effect: Effect) -> None:
        self.stalled += 1
        self._warn("subscriber %s took over %g s on %s: cancelled, going on with the next effect (%d stalled so "
                   "far)", self.name, self.policy.timeout, type(effect).__name__, self.stalled)

    def _failed(self, effect: Effect) -> None:
        self.failed += 1
        self._warn("subscriber %s failed on %s (%d failures so far); the effect is stored anyway", self.name,
                   type(effect).__name__, self.failed, exc_info=True)

    async def _deliver(self, effect: Effect, result: Awaitable[None]) -> None:
        try:
            async with asyncio.timeout(self.policy.timeout):
                await result
        except TimeoutError:
            self._stalled(effect)
        except Exception:
            self._failed(effect)
        else:
            self.delivered += 1

    # -- shutdown -------------------------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        return not self._queue and not self._busy

    async def cancel(self) -> None:
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])  # not ``await task``: a cancellation of the caller itself still propagates

    def stats(self) -> SubscriberStats:
        return SubscriberStats(self.name, self.delivered, self.failed, self.stalled, self.shed, self.restarts,
                               len(self._queue), self.most_queued)


class Pipeline:
    """The subscribers of one daemon. ``subscribe`` adds one; ``publish`` hands effects to all of them."""

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []
        self.closed = False
        self._group: asyncio.TaskGroup | None = None

    def attach(self, group: asyncio.TaskGroup) -> None:
        """Run every subscriber's task in ``group`` from now on (effects queued before are handed over now).

        The owner's group bounds the tasks' lives: when it ends, for whatever reason, it cancels and awaits them.
        A subscriber never makes the group fail (see the module's docstring).
        """
        self._group = group
        for subscriber in self.subscribers:
            subscriber.attach(group)

    def subscribe(self, handler: Handler, *, name: str | None = None, policy: Policy | None = None) -> Subscriber:
        """Add a subscriber: from the next published effect on, it gets every effect, in order, in its own task."""
        label = name or getattr(handler, "__qualname__", None) or type(handler).__name__
        names = {s.name for s in self.subscribers}
        unique, n = label, 1
        while unique in names:
            n += 1
            unique = f"{label}#{n}"
        subscriber = Subscriber(unique, handler, policy or Policy())
        self.subscribers.append(subscriber)
        if self._group is not None:
            subscriber.attach(self._group)
        return subscriber

    def publish(self, effects: Iterable[Effect]) -> None:
        """Offer the effects to every subscriber. Called from the AMI read path: it never waits nor raises
        because of a subscriber. The subscribers' tasks start in the group given to :meth:`attach`."""
        batch = effects if isinstance(effects, list) else list(effects)
        if batch:
            for subscriber in self.subscribers:
                subscriber.offer_all(batch)

    def stats(self) -> list[SubscriberStats]:
        return [s.stats() for s in self.subscribers]

    @property
    def failures(self) -> int:
        """Effects some subscriber raised on, all subscribers together."""
        return sum(s.failed for s in self.subscribers)

    async def drain(self, within: float) -> bool:
        """Wait until every queue is empty and no subscriber is busy, at most ``within`` seconds."""
        deadline = time.monotonic() + within
        while not all(s.idle for s in self.subscribers):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def close(self, within: float) -> None:
        """Deliver what is queued within ``within`` seconds, then stop every subscriber's task (once)."""
        if self.closed:
            return
        self.closed = True
        if not await self.drain(within):
            behind = {s.name: s.stats().queued for s in self.subscribers if not s.idle}
            log.warning("stopping: subscribers still behind after %g s, their effects dropped: %s", within, behind)
        for subscriber in self.subscribers:
            await subscriber.cancel()
