"""Scale-out: 20 replay PBXs, 2 daemons on PostgreSQL, 2,000 WebSocket clients on 2 panel nodes, against one site.

Why this exists (issue 11): a company hosting CTI for many sites runs several ``cti run`` processes on one
PostgreSQL; a screen-pop is worth something only if it reaches the agent while the phone rings, whichever panel
node the agent's browser landed on, and the store must keep up with every site's busy hour. The yardstick is the
single site as it runs today, measured in the same run on the same box: one daemon on SQLite, one PBX, its panel.

**Cluster phase.** A throwaway PostgreSQL (``bench/pgserver.py``: durable by default, as a site runs it).
``--pbxs`` replay PBXs in this process, each looping every trace of ``../shared/ami-traces`` (each pass moves the
ids and ``Timestamp``s on: ``asterisk/replay/pbx.py``), each starting at another trace so they do not ring in step,
at the speed that makes ``--calls-per-hour`` calls an hour per PBX (the busy hour). ``--daemons`` ``cti run``
processes split the PBXs between them (``[cluster] follow``), their panels serve only ``/metrics``; ``--panels``
panel-only nodes (``follow = []``) serve the clients: ``--clients`` WebSocket clients in all (agents with distinct
extensions per PBX, each user of one PBX, and ``--admins`` admins of every PBX, who get every message), spread
over the panel nodes as a load balancer would, one client process per panel node (``bench.popfanout_clients``).
Users and API tokens are in the store before any node starts. The pops cross nodes: the daemon following the PBX
publishes them on the store's bus (PostgreSQL ``LISTEN/NOTIFY``, ``ui_bridge/fanout.py``) and the panel nodes
hand them to their clients.

**Baseline phase**, same run, after the cluster stopped: one ``cti run`` on SQLite with one replay PBX at the
same busy-hour rate and its own panel, the same number of clients (all agents of that PBX, the same admins) in
the same two client processes, the same pops.

**Pops** (both phases): ``--pops`` synthetic inbound calls over ``--duration`` seconds, each to a random PBX and a
random agent of it, made by ``bench.popfanout`` (the filtered frames of ``01-direct-answered`` with new ids, the
``Newstate`` *Ringing* frame alone, ``time.monotonic()`` stamped right after it is handed to the replay PBX's
writer). The sample is the ``call.ringing`` frame's arrival at the agent's client (and at each admin) minus the
stamp; CLOCK_MONOTONIC is system-wide on Linux. Beside it: AMI events/s each daemon applied (its ``/metrics``,
``cti_ami_events``), the store's write lag (``cti_store_pending_writes``, sampled every second) and back-pressure
pauses, the CPU of every process.

**Room to spare** (``bench/cluster_store.py``), after the cluster phase on a fresh database of the same server: the
store alone fed what the daemons stage for ``--store-calls`` calls, as fast as it commits: calls/s it sustains
against the calls/s the PBXs' busy hours need.

Nothing asserts. The report goes to stdout and into its section of ``docs/benchmarks.md`` (``--no-write``: not);
progress to stderr. On a small box every size is an option: the report says what ran.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asterisk.replay import ReplayPbx
from bench.cluster_nodes import Node, agent_extensions, node_config, total
from bench.cluster_store import Capacity, measure
from bench.machine import machine
from bench.pgserver import PgServer
from bench.pipeline import write_section
from bench.popfanout import (  # the pieces of the single-node pop bench, reused as they are
    DOC,
    TAIL,
    TEMPLATE,
    Background,
    ClientProcess,
    Phase,
    SyntheticCalls,
    _ms,
    _ratio,
    _row,
    box_cpu,
    cpu_seconds,
    free_port,
    inject,
    pct,
    phase_of,
    play_call,
    pop_offsets,
    traces_dir,
)
from store import StoreSettings, open_store
from store.repository import User
from ui_bridge.auth import new_token, token_hash

SECTION = "bench.cluster"
TARGET_P99_MS = 20.0
#: Seconds of background traffic after the clients connected, before the first pop.
WARMUP = 5.0
#: Client processes in both phases (one per panel node in the cluster; both on the one node in the baseline).
CLIENT_PROCESSES = 2


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- who is where ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Client:
    index: int
    name: str
    role: str
    pbx: str | None  # None: an admin of every PBX
    extension: str | None
    token: str


def plan_clients(pbx_ids: Sequence[str], clients: int, admins: int) -> list[Client]:
    """``admins`` admins of every PBX, the rest agents shared out over the PBXs, distinct extensions per PBX."""
    agents = clients - admins
    out: list[Client] = []
    for n, pbx in enumerate(pbx_ids):
        share = agents // len(pbx_ids) + (1 if n < agents % len(pbx_ids) else 0)
        out += [Client(len(out) + i, f"{pbx}-{ext}", "agent", pbx, ext, new_token())
                for i, ext in enumerate(agent_extensions(share))]
    out += [Client(len(out) + i, f"admin{i:02d}", "admin", None, None, new_token()) for i in range(admins)]
    return out


async def create_users(settings: StoreSettings, clients: Sequence[Client]) -> None:
    async with open_store(settings, region="RU") as store:
        for c in clients:
            await store.add_user(User(name=c.name, role=c.role, extension=c.extension,  # type: ignore[arg-type]
                                      pbxs=(c.pbx,) if c.pbx else ()))
            await store.add_token(c.name, token_hash(c.token), "bench")


# -- one phase ---------------------------------------------------------------------------------------------

@dataclass
class Layout:
    """What runs in a phase: the PBXs, the nodes that follow them, the nodes the clients connect to."""

    name: str
    store: dict[str, Any]  # the nodes' [store] section
    pbx_ids: list[str]
    followers: list[list[str]]  # per daemon: the PBXs it follows ([] for one node without [cluster])
    panels: int  # panel-only nodes; 0: the clients connect to the daemons
    pg: PgServer | None = None


@dataclass
class Result:
    layout: Layout
    phase: Phase
    clients: int
    speed: float
    daemon_events: dict[str, float]  # daemon -> AMI events/s applied over the window
    pop_events: float  # of which the synthetic calls' frames, events/s in all
    pending: dict[str, list[float]]  # daemon -> sampled cti_store_pending_writes
    pauses: dict[str, float]  # daemon -> back-pressure pauses over the window
    dropped_slow: float
    fanout_dropped: float
    warnings: dict[str, list[str]] = field(default_factory=dict)


async def run_phase(args: argparse.Namespace, bg: Background, layout: Layout, tmp: Path) -> Result:
    rng = random.Random(args.seed)
    speed = args.calls_per_hour / (bg.calls / bg.pass_seconds * 3600)
    pbxs: dict[str, ReplayPbx] = {}
    for n, pbx_id in enumerate(layout.pbx_ids):
        turn = n * 7 % len(bg.traces)  # each PBX starts at another trace: not every site rings at once
        pbxs[pbx_id] = ReplayPbx(bg.traces[turn:] + bg.traces[:turn], speed=speed, loop=True, rebase_time=True)
    ports = {pbx_id: (await pbx.start("127.0.0.1", 0))[1] for pbx_id, pbx in pbxs.items()}
    clients = plan_clients(layout.pbx_ids, args.clients, args.admins)
    progress(f"{layout.name}: {len(pbxs)} replay PBX(s) at speed {speed:.2f} ({args.calls_per_hour:g} calls/h "
             f"each); creating {len(clients)} users")
    await create_users(StoreSettings(**layout.store), clients)

    def make_node(name: str, follow: list[str] | None) -> Node:
        port = free_port()
        config = node_config(tmp / layout.name / name / "config.toml", ports, store=layout.store, http_port=port,
                             follow=follow)
        return Node(name, config, port, tmp / layout.name / name / "node.log")

    single = layout.followers == [[]]
    daemons = [make_node(f"daemon-{chr(65 + d)}", None if single else follow)
               for d, follow in enumerate(layout.followers)]
    panels = [make_node(f"panel-{chr(65 + p)}", []) for p in range(layout.panels)]
    serving = panels or daemons
    groups: list[list[Client]] = [[] for _ in range(max(CLIENT_PROCESSES, len(serving)))]
    home = {pbx_id: d for d, follow in enumerate(layout.followers) for pbx_id in follow}
    for c in clients:
        # Without panel nodes each agent is on the daemon that follows their PBX (no pop crosses nodes).
        k = home[c.pbx] if not panels and c.pbx in home else c.index
        groups[k % len(groups)].append(c)
    procs = [ClientProcess(f"ws://127.0.0.1:{serving[k % len(serving)].http_port}/ws",
                           [{"index": c.index, "token": c.token} for c in group],
                           tmp / layout.name / f"clients-{k}.pickle") for k, group in enumerate(groups)]
    template = SyntheticCalls(next(t for t in bg.traces if t.name == TEMPLATE))
    index_of = {(c.pbx, c.extension): c.index for c in clients if c.role == "agent"}
    agents_of = {pbx_id: [c.extension for c in clients if c.pbx == pbx_id] for pbx_id in layout.pbx_ids}
    admins = [c.index for c in clients if c.role == "admin"]
    try:
        for node in daemons:
            await node.start()
        for node in daemons:
            await node.ready()
        await until_following(daemons, len(pbxs))
        for node in panels:
            await node.start()
        for node in panels:
            await node.ready()
        progress(f"{layout.name}: {len(daemons)} daemon(s) follow {len(pbxs)} PBX(s), {len(panels)} panel "
                 f"node(s) up; connecting {len(clients)} clients")
        started = await asyncio.gather(*(p.start() for p in procs))
        ok, failed = sum(s[0] for s in started), sum(s[1] for s in started)
        progress(f"{layout.name}: {ok} clients connected ({failed} failed); {WARMUP:g} s of background first")
        await asyncio.sleep(WARMUP)

        stamps: dict[str, float] = {}
        target: dict[str, int] = {}

        def synthetic_call(k: int, pbx_id: str, ext: str) -> Coroutine[Any, Any, None]:
            def rang(linkedid: str, at: float) -> None:
                stamps[linkedid] = at
                target[linkedid] = index_of[(pbx_id, ext)]

            return play_call(pbxs[pbx_id], template, k, ext, rang)

        offsets = pop_offsets(rng, args.pops, args.duration)
        where = [rng.choice(layout.pbx_ids) for _ in offsets]
        who = [(p, rng.choice(agents_of[p])) for p in where]
        pending: dict[str, list[float]] = {n.name: [] for n in daemons}
        before = {n.name: await n.metrics() for n in daemons + panels}
        nodes = daemons + panels
        cpu0 = cpu_now(nodes, procs, layout.pg)
        box0 = box_cpu()
        w0 = time.monotonic()
        sampler = asyncio.create_task(sample_pending(daemons, pending))
        progress(f"{layout.name}: injecting {args.pops} pops over {args.duration:g} s")
        await inject(w0, offsets, [synthetic_call(k, pbx_id, ext) for k, (pbx_id, ext) in enumerate(who)])
        await asyncio.sleep(TAIL)
        w1 = time.monotonic()
        window = w1 - w0
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        after = {n.name: await n.metrics() for n in nodes}
        cpu1 = cpu_now(nodes, procs, layout.pg)
        box1 = box_cpu()
        cpu = {k: (cpu1[k] - cpu0[k]) / window for k in cpu0}
        cpu["other processes"] = max(0.0, (box1[0] - box0[0]) / window - sum(cpu.values()))
        cpu["steal"] = (box1[1] - box0[1]) / window
        results = [await p.stop() for p in procs]
    finally:
        for p in procs:
            p.kill()
        for node in panels + daemons:
            await node.stop()
        for pbx in pbxs.values():
            await pbx.close()
    merged = {"records": [r for res in results for r in res["records"]],
              "closed_early": [c for res in results for c in res["closed_early"]]}
    phase, _ = phase_of(layout.name, merged, stamps, target, admins, w0, w1, cpu, ok, failed)

    def delta(name: str, metric: str) -> float:
        return total(after[name], metric) - total(before[name], metric)

    return Result(
        layout, phase, len(clients), speed,
        daemon_events={n.name: delta(n.name, "cti_ami_events_total") / window for n in daemons},
        pop_events=len(stamps) * sum(len(phase) for phase in template.phases) / window,
        pending=pending, pauses={n.name: delta(n.name, "cti_store_pauses_total") for n in daemons},
        dropped_slow=sum(delta(n.name, "cti_websocket_dropped_slow_total") for n in serving),
        fanout_dropped=sum(delta(n.name, "cti_fanout_dropped_total") for n in nodes),
        warnings={n.name: n.warnings() for n in nodes if n.warnings()})


def cpu_now(nodes: Sequence[Node], procs: Sequence[ClientProcess], pg: PgServer | None) -> dict[str, float]:
    out = {node.name: node.cpu() for node in nodes}
    out["clients"] = sum(p.cpu() for p in procs)
    out["replay PBXs + injector"] = time.process_time()
    if pg is not None:
        out["PostgreSQL"] = sum(cpu_seconds(pid) for pid in pg.pids())
    return out


async def until_following(daemons: Sequence[Node], pbxs: int, limit: float = 60.0) -> None:
    """Wait until every PBX is followed: the daemons' ``cti_ami_connected`` add up to the PBXs."""
    async with asyncio.timeout(limit):
        while True:
            connected = sum([total(await d.metrics(), "cti_ami_connected") for d in daemons])
            if connected >= pbxs:
                return
            await asyncio.sleep(0.2)


async def sample_pending(daemons: Sequence[Node], out: dict[str, list[float]]) -> None:
    while True:
        for node in daemons:
            out[node.name].append(total(await node.metrics(), "cti_store_pending_writes"))
        await asyncio.sleep(1.0)


# -- the report ----------------------------------------------------------------------------------------------

def _load(r: Result) -> str:
    cpu = ", ".join(f"{k} {v:.0%}" for k, v in r.phase.cpu.items())
    per = ", ".join(f"{k} {v:,.0f}" for k, v in r.daemon_events.items())
    backlog = ", ".join(f"{k} max {max(v, default=0):,.0f} / mean {statistics.fmean(v) if v else 0:,.1f}"
                        for k, v in r.pending.items())
    pauses = sum(r.pauses.values())
    events = sum(r.daemon_events.values())
    return (f"AMI events/s applied: **{events:,.0f}** in all ({per}): {events - r.pop_events:,.0f} of the looped "
            f"traces and {r.pop_events:,.0f} of the synthetic calls; store write lag "
            f"(`cti_store_pending_writes`, sampled every second): {backlog}; back-pressure pauses: {pauses:.0f}. "
            f"Clients' frames/s in all: {r.phase.frames_per_s:,.0f} ({r.phase.admin_msgs_per_s:,.0f} per admin). "
            f"Dropped as too slow (1013): {r.dropped_slow:.0f}; fan-out envelopes dropped: {r.fanout_dropped:.0f}; "
            f"clients closed before the end: {len(r.phase.closed_early)}, failed to connect: {r.phase.failed}; "
            f"pops that never reached a recipient: {r.phase.lat.missing}. CPU over the window, share of one core: "
            f"{cpu}.")


def report(args: argparse.Namespace, bg: Background, c: Result, b: Result | None, cap: Capacity | None,
           pg_version: str, load: tuple[float, float, float], started: datetime, wall: float) -> str:
    need_calls = len(c.layout.pbx_ids) * args.calls_per_hour / 3600
    per_call = bg.delivered / bg.calls
    lat = c.phase.lat
    p99 = pct(lat.agent, 99) if lat.agent else float("inf")
    if c.layout.panels:
        serving = f"{c.layout.panels} panel-only nodes (`follow = []`)"
        spread = "spread evenly over the panel nodes: every pop reaches its agent through the store's bus"
    else:
        serving = "no panel-only node: the daemons' own panels"
        spread = ("each agent on the daemon following their PBX (no pop crosses nodes; an admin gets another "
                  "node's pops only through the store's bus)")
    lines = [
        f"## Scale-out: {len(c.layout.pbx_ids)} PBXs, {len(c.layout.followers)} daemons on PostgreSQL, "
        f"{c.clients:,} WebSocket clients on {c.layout.panels or len(c.layout.followers)} "
        f"{'panel' if c.layout.panels else 'daemon'} nodes (`python -m bench.cluster`)",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {machine('websockets', 'uvicorn', 'asyncpg', with_sqlite=True)}, "
        f"PostgreSQL {pg_version} ({'durable: fsync and synchronous_commit on' if not args.fast_pg else 'fsync off'}"
        f"); load average before the run {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min); the "
        f"whole run took {wall:.0f} s. Everything on this one box: the replay PBXs and the pop injector (one "
        f"process), every node, PostgreSQL and the client processes (one per serving node, at least "
        f"{CLIENT_PROCESSES}).",
        "",
        f"**Load.** Each replay PBX loops the {len(bg.traces)} traces at {c.speed:.2f}× real time: "
        f"**{args.calls_per_hour:g} calls an hour per PBX** (the busy hour; the traces' mix of queues, ring "
        f"groups, direct calls, transfers, click-to-call, internal calls), ≈{per_call:.0f} AMI events per call "
        f"after the daemon's filters. Cluster: {len(c.layout.pbx_ids)} PBXs split "
        f"{' / '.join(str(len(f)) for f in c.layout.followers)} over {len(c.layout.followers)} daemons "
        f"(`[cluster] follow`), {serving} serving {c.clients - args.admins:,} agents (distinct extensions per "
        f"PBX, each a user of one PBX) and {args.admins} admins of every PBX, {spread}. Baseline: one daemon on "
        f"SQLite with one PBX at the same rate, its own panel serving the same "
        f"{b.clients if b else c.clients:,} clients (all agents of that PBX, the same admins). Measured: "
        f"**{args.pops} synthetic inbound calls over {args.duration:g} s** per phase, each to a random PBX and a "
        f"random agent of it. Latency = from `time.monotonic()` right after the replay PBX queued the *Ringing* "
        f"frame to the `call.ringing` frame's arrival at the client, in **ms**, nearest-rank percentiles.",
        "",
        "| path | samples | p50 | p90 | p99 | max | mean |",
        "|---|---:|---:|---:|---:|---:|---:|",
        _row(f"cluster: rung agent ({'another node' if c.layout.panels else 'same node'})", lat.agent),
        _row("cluster: each admin", lat.admins),
    ]
    if b is not None:
        lines += [_row("baseline: rung agent", b.phase.lat.agent), _row("baseline: each admin", b.phase.lat.admins)]
    lines += [""]
    if b is not None:
        lines += [f"Cluster / baseline, rung agent: p50 **{_ratio(lat.agent, b.phase.lat.agent, 50)}**, p99 "
                  f"**{_ratio(lat.agent, b.phase.lat.agent, 99)}**.", ""]
    verdict = "met" if p99 < TARGET_P99_MS else "**missed**"
    if not c.layout.panels:
        verdict += " (but on the same node: this run says nothing of the pops across nodes)"
    lines += [f"Target (issue 11): pop p99 < {TARGET_P99_MS:g} ms across nodes: {_ms(p99)} ms, {verdict}.", "",
              f"**Cluster.** {_load(c)}", ""]
    if b is not None:
        lines += [f"**Baseline.** {_load(b)}", ""]
    if cap is not None:
        need_events = need_calls * cap.events / cap.calls
        lines += [
            f"**Room to spare in the store** (`bench/cluster_store.py`): one PostgreSQL store with one writer (as "
            f"one daemon has) fed {cap.calls:,} calls of the traces' mix (`bench.year`'s copies, spread over "
            f"{len(c.layout.pbx_ids)} PBX ids) with their {cap.events:,} live events ({cap.events / cap.calls:.0f} "
            f"a call, {cap.in_progress} calls in progress at any time, so each call's events are committed before "
            f"the call deletes them), as fast as it commits, back-pressure at {cap.max_pending:,} pending items "
            f"({cap.flushes} waits): **{cap.calls_per_s:,.0f} calls/s** ({cap.events_per_s:,.0f} events/s) over "
            f"{cap.seconds:.1f} s. {len(c.layout.pbx_ids)} PBXs' busy hours need {need_calls:.2f} calls/s "
            f"({need_events:,.0f} events/s): **{cap.calls_per_s / need_calls:,.0f}× room to spare**, i.e. one "
            f"writer carries the busy hour of ≈{cap.calls_per_s * 3600 / args.calls_per_hour:,.0f} PBXs at "
            f"{args.calls_per_hour:g} calls/h. Rows afterwards: "
            f"{', '.join(f'{k} {v:,}' for k, v in cap.rows.items())}.",
            ""]
    warnings = {**{f"cluster {k}": v for k, v in c.warnings.items()},
                **({f"baseline {k}": v for k, v in b.warnings.items()} if b else {})}
    if warnings:
        lines += ["Warnings in the nodes' logs (last ones):", "", "```"]
        lines += [f"{k}: {line}" for k, v in warnings.items() for line in v]
        lines += ["```", ""]
    return "\n".join(lines)


# -- the run -------------------------------------------------------------------------------------------------

async def cluster_and_capacity(args: argparse.Namespace, bg: Background, tmp: Path
                               ) -> tuple[Result, Capacity | None, str]:
    pbx_ids = [f"p{n + 1:02d}" for n in range(args.pbxs)]
    split = [pbx_ids[d::args.daemons] for d in range(args.daemons)]
    async with PgServer(durable=not args.fast_pg, max_connections=100 + 10 * (args.daemons + args.panels)) as pg:
        progress(f"PostgreSQL {pg.version} on port {pg.port}")
        url = await pg.database("cti")
        layout = Layout("cluster", {"url": url}, pbx_ids, split, args.panels, pg)
        result = await run_phase(args, bg, layout, tmp)
        cap = None
        if args.store_calls:
            progress(f"room to spare: feeding {args.store_calls:,} calls to a fresh database as fast as it commits")
            cap = await measure(await pg.database("capacity"), calls=args.store_calls, pbxs=pbx_ids,
                                in_progress=args.in_progress, seed=args.seed)
        return result, cap, pg.version


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=(
        "Scale-out benchmark: N replay PBXs followed by several daemons on PostgreSQL, WebSocket clients on "
        "panel-only nodes (pop latency across nodes, events/s, the store's lag and room to spare), against one "
        "daemon on SQLite with one PBX, in the same run."))
    parser.add_argument("--pbxs", type=int, default=20, help="replay PBXs in the cluster (default 20)")
    parser.add_argument("--daemons", type=int, default=2, help="daemons splitting the PBXs (default 2)")
    parser.add_argument("--panels", type=int, default=2, help="panel-only nodes serving the clients (default 2; 0: "
                        "the clients connect to the daemons, each agent to the one following their PBX)")
    parser.add_argument("--clients", type=int, default=2000, help="WebSocket clients in all, admins included "
                        "(default 2,000; the baseline has as many)")
    parser.add_argument("--admins", type=int, default=4, help="of them admins of every PBX (default 4)")
    parser.add_argument("--calls-per-hour", type=float, default=600.0,
                        help="busy-hour calls per PBX (default 600: a 25-agent call centre's busy hour)")
    parser.add_argument("--pops", type=int, default=300, help="measured screen-pops per phase (default 300)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds the pops are spread over (default 60)")
    parser.add_argument("--store-calls", type=int, default=20_000,
                        help="calls fed to the store for its room to spare (default 20,000; 0: skip)")
    parser.add_argument("--in-progress", type=int, default=600, help="calls in progress while the store is fed "
                        "(default 600: 20 PBXs × 600 calls/h × 3 min)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the single-site baseline")
    parser.add_argument("--fast-pg", action="store_true", help="PostgreSQL without fsync (default: durable)")
    parser.add_argument("--seed", type=int, default=1, help="random choice of PBXs, agents and pop times")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--workdir", type=Path, help="diagnosis: keep the nodes' files and logs in this new folder "
                        "(default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    if min(args.pbxs, args.daemons, args.pops) < 1 or args.panels < 0 or args.duration <= 0:
        parser.error("--pbxs, --daemons, --pops and --duration must be positive, --panels >= 0")
    if args.daemons > args.pbxs:
        parser.error("--daemons: at most one daemon per PBX")
    if not 0 <= args.admins < args.clients or args.clients - args.admins < args.pbxs:
        parser.error("--clients must leave at least one agent per PBX after --admins")
    load = os.getloadavg()
    started = datetime.now(UTC)
    t0 = time.monotonic()
    bg = Background.load(traces_dir())
    with contextlib.ExitStack() as stack:
        tmp = str(args.workdir or stack.enter_context(tempfile.TemporaryDirectory(prefix="cti-cluster-")))
        Path(tmp).mkdir(parents=True, exist_ok=True)
        cluster, cap, pg_version = asyncio.run(cluster_and_capacity(args, bg, Path(tmp)))
        baseline = None
        if not args.no_baseline:
            journal = Path(tmp) / "baseline" / "journal.sqlite"
            journal.parent.mkdir()
            layout = Layout("baseline", {"path": str(journal)}, ["main"], [[]], 0)
            baseline = asyncio.run(run_phase(args, bg, layout, Path(tmp)))
    text = report(args, bg, cluster, baseline, cap, pg_version, load, started, time.monotonic() - t0)
    print(text)
    if not args.no_write:
        write_section(SECTION, text, DOC)
        progress(f"written to {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
