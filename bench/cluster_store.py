"""How much the store writes at most, in busy-hour PBXs: the "room to spare" of ``bench.cluster``.

Why a phase of its own: in the cluster phase the store carries 20 PBXs' busy hour and its backlog stays near
zero, which says it keeps up but not by how much. Feeding the cluster faster until the backlog grows would measure
the replay PBXs and the daemons' CPU on this small box long before the store. So here the store alone is fed as a
daemon feeds it, as fast as it commits, and the rate it sustains is compared with what the busy hours need.

**What is written** is what the daemon's event path stages (``companion/pbx_link.py``): every call's AMI events
as live events while it is in progress (``stage_event``, the journal kept for a rebuild after a crash), then the
finished call (``stage_call``: its row, legs, missed entry and agents' misses; the call's live events deleted in
the same batch). The calls are ``bench.year``'s copies of the traces' calls (its shapes and weights, new ids and
numbers, call-backs closing missed entries), spread over the PBXs; each call's live events are the filtered
events of its shape's trace (the frames the daemon's AMI session receives), staged ``in_progress`` calls before
the call itself ends, so they are committed before the call deletes them, as for a call lasting minutes.

**How fast**: the items are generated first (not timed), then staged in order with the daemon's back-pressure
(above ``max_pending`` unwritten items the feeder waits for a commit, as the daemon stops reading its PBX) and the
writer task running with the ``[store]`` defaults. The rate is calls (with their events) committed per second
over the whole feed, from the first item staged to the last one committed: one store, one writer connection,
as one daemon has.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from asterisk.messages import Headers
from asterisk.replay import load_trace
from bench.popfanout import daemon_filter
from bench.year import Generator, Population, Shape, agent_names, load_shapes, traces_dir
from cti.effects import CallEnded
from store import StoreSettings, open_store


@dataclass(frozen=True, slots=True)
class Capacity:
    calls: int
    events: int
    seconds: float
    in_progress: int
    max_pending: int
    flushes: int  # times the feeder waited for the backlog (back-pressure)
    rows: dict[str, int]

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def shape_events(shapes: Sequence[Shape]) -> dict[str, list[Headers]]:
    """Each shape's live events: the filtered frames of its trace (the daemon's session receives only those)."""
    folders = {p.name[:2]: p for p in traces_dir().iterdir() if (p / "ami.jsonl").is_file()}
    flt = daemon_filter()
    out: dict[str, list[Headers]] = {}
    for shape in shapes:
        trace = load_trace(folders[shape.key[:2]])
        out[shape.key] = [e.message.headers for e in trace.events if flt.delivers(e.message.serialize())]
    return out


def generate(count: int, pbxs: Sequence[str], seed: int) -> list[tuple[CallEnded, str]]:
    """``count`` calls of ``bench.year``'s generator, round-robin over ``pbxs``, each with its shape's key."""
    rng = random.Random(seed)
    agents = [str(101 + i) for i in range(48)]
    gen = Generator(rng, load_shapes(), agents, agent_names(agents), Population.make(rng, max(count, 10_000)))
    start = time.time() - count
    calls: list[tuple[CallEnded, str]] = []
    for i in range(count):
        before = dict(gen.shape_counts)
        ended = gen.call(start + i)
        key = next(k for k, n in gen.shape_counts.items() if n != before.get(k, 0))
        pbx = pbxs[i % len(pbxs)]
        record = replace(ended.record, pbx=pbx)
        missed = replace(ended.missed, pbx=pbx) if ended.missed is not None else None
        calls.append((CallEnded(record, missed, tuple(replace(m, pbx=pbx) for m in ended.agent_misses)), key))
    return calls


async def measure(url: str, *, calls: int, pbxs: Sequence[str], in_progress: int, seed: int = 7) -> Capacity:
    """Feed ``calls`` calls with their live events into the store at ``url`` as fast as it commits them."""
    shapes = load_shapes()
    events_of = shape_events(shapes)
    made = generate(calls, pbxs, seed)
    settings = StoreSettings(url=url)
    staged_events = flushes = 0
    async with open_store(settings, region="RU") as store:
        writer = asyncio.create_task(store.run_writer(), name="store-writer")
        started = time.perf_counter()
        for j in range(len(made) + in_progress):
            if j < len(made):
                ended, key = made[j]
                now = time.time()
                for headers in events_of[key]:
                    store.stage_event(ended.record.linkedid, headers, now, pbx=ended.record.pbx)
                staged_events += len(events_of[key])
            if j >= in_progress:
                done, _ = made[j - in_progress]
                store.stage_call(done.record, done.missed, done.agent_misses)
            if j % 20 == 0:
                await asyncio.sleep(0)  # the writer's turn, as between the daemon's socket reads
                if store.pending_count > settings.max_pending:
                    flushes += 1
                    await store.flush()
        await store.flush()
        seconds = time.perf_counter() - started
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    rows = await count_rows(url)
    return Capacity(len(made), staged_events, seconds, in_progress, settings.max_pending, flushes, rows)


async def count_rows(url: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return {table: int(await conn.fetchval(f"SELECT count(*) FROM {table}"))  # names from this list
                for table in ("calls", "live_events", "missed", "agent_misses")}
    finally:
        await conn.close()
