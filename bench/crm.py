"""The CRM push (issue 16): the outbox's throughput, and what the push adds to a screen-pop.

Why this exists: the push writes every request to the store before it is sent, and a sender per CRM takes them
back out, one transaction each way per request; and the issue asks that the CRMs never cost a pop. So:

**(a) Outbox throughput.** ``--items`` requests (``--calls`` calls of 5 events each, as the push queues them:
``queue_crm``, one transaction per call event) are queued, then one webhook sender (``companion/crm/sender.py`` with
the real ``companion/crm/webhook.py`` connector: HMAC signature, one POST each, ``PARALLEL`` calls at once) sends
them all to a local receiver that answers 204 at once; items/s from the first take to the last ``sent``. On SQLite
(a file in a temporary folder) and on a throwaway PostgreSQL (``bench/pgserver.py``, durable: a commit waits for the
WAL on disk) unless ``--no-postgres``. **The baseline**, in the same run against the same receiver: the same number
of POSTs of the same bodies by a bare ``httpx.AsyncClient`` with the same parallelism and no store (the network's
and the receiver's ceiling); the ratio says what the outbox costs.

**(b) Added pop latency.** A real daemon (``companion.daemon.Daemon`` in this process, its panel, the replay PBX on
loopback) is fed inbound calls that ring 23 phones, one pop at a time, each timed at an admin's WebSocket client
from the replay serving the *Ringing* event to the ``call.ringing`` frame's arrival: with no CRM (**the baseline**)
and with all five connectors on (Bitrix24, amoCRM, Zammad, 1C, the webhook), pointed at a local server that answers
every request at once (so each call's requests are really sent while the pops go out). ``--rounds`` daemons of each,
interleaved; p50/p90 of all pops of each, and the ratio of the medians.

``python -m bench.crm [--calls 2000] [--rounds 5] [--no-postgres] [--no-write]``; the report goes to stdout and
(unless ``--no-write``) into its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from bench.machine import machine
from bench.year import write_section

REPO = Path(__file__).resolve().parent.parent
SECTION = "bench.crm"
TRACES = ["07-queue-ringall-answered", "08-queue-abandon", "11-ringgroup-answered", "12-ringgroup-noanswer",
          "01-direct-answered", "05-caller-hangup-ringing", "10-queue-timeout-voicemail", "02-direct-agent-hangup",
          "23-cyrillic-anonymous", "13-blind-transfer-redirect"]
EVENTS_PER_CALL = ("ringing", "ringing", "answered", "ring_stopped", "ended")
SECRET = "bench-secret"


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def until(predicate: Callable[[], bool], what: str, limit: float = 120.0) -> None:
    """Wait for ``predicate`` (looked at every 10 ms), at most ``limit`` seconds."""
    try:
        async with asyncio.timeout(limit):
            while not predicate():  # noqa: ASYNC110 - counters and flags no event announces
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise SystemExit(f"bench.crm: {what}: not within {limit:g} s") from None


# -- a receiver that answers at once ---------------------------------------------------------------------------

class Receiver:
    """Every request answered at once: 200 with a body each connector takes as done (Bitrix24's ``result``)."""

    ANSWER = json.dumps({"result": {"CALL_ID": "externalCall.bench"}, "ok": True}).encode()

    def __init__(self) -> None:
        self.requests = 0

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        self.requests += 1
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": self.ANSWER})


@asynccontextmanager
async def receiving() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off", access_log=False))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started, "the local CRM server started")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield receiver, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


# -- (a) the outbox's throughput --------------------------------------------------------------------------------

async def outbox_run(store: Any, url: str, calls: int) -> dict[str, float]:
    """Queue ``calls`` × 5 requests as the push does, then send them all with one webhook sender."""
    from companion.crm.connector import ConnectorDeps
    from companion.crm.sender import CrmSender
    from companion.crm.webhook import connector
    from cti.crm import CrmRequest
    from ui_bridge.crm_settings import CrmSettings, WebhookSettings

    settings = CrmSettings(webhook=WebhookSettings(url=f"{url}/hook", secret=SECRET, rate=1000, burst=10_000))
    items = calls * len(EVENTS_PER_CALL)
    started = time.perf_counter()
    now = time.time()
    for call in range(calls):
        for event in EVENTS_PER_CALL:
            payload = {"event": event, "call": {"id": f"bench:{call}", "caller": "79161234567"}, "agent": "101"}
            await store.queue_crm("webhook", f"bench:{call}", None, [CrmRequest("event", payload)], at=now)
    queued = time.perf_counter() - started
    async with httpx.AsyncClient(timeout=30) as http:
        deps = ConnectorDeps(store=lambda: store, http=http, links=_NoLinks(), clock=time.time)
        sender = CrmSender(connector(settings.webhook, deps), settings, lambda: store, poll_seconds=0.05)
        started = time.perf_counter()
        task = asyncio.create_task(sender.run())
        await until(lambda: sender.sent >= items, f"{items} requests sent", 3600)
        sent = time.perf_counter() - started
        sender.stop()
        await task
    return {"items": items, "queued_per_s": items / queued, "sent_per_s": items / sent, "seconds": sent}


class _NoLinks:
    def url(self, pbx: str, linkedid: str, index: int) -> str:
        raise LookupError("no recording links in the bench")


async def bare_run(url: str, items: int, parallel: int) -> float:
    """The baseline: the same POSTs (signed bodies of the same size) straight from httpx, ``parallel`` at once."""
    import hashlib
    import hmac

    body = json.dumps({"delivery": 1, "seq": 1, "event": "ringing", "call": {"id": "bench:0", "caller": "79161234567"},
                       "agent": "101"}).encode()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(items):
        queue.put_nowait(n)

    async with httpx.AsyncClient(timeout=30) as http:
        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                response = await http.post(f"{url}/hook", content=body, headers={
                    "Content-Type": "application/json", "X-CTI-Signature": signature, "X-CTI-Delivery": str(n),
                    "X-CTI-Event": "ringing"})
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(parallel)))
        return items / (time.perf_counter() - started)


async def throughput(calls: int, postgres: bool) -> dict[str, Any]:
    from companion.crm.sender import PARALLEL
    from store import open_store
    from store.settings import StoreSettings

    out: dict[str, Any] = {}
    async with receiving() as (_receiver, url):
        progress(f"(a) bare httpx: {calls * len(EVENTS_PER_CALL)} POSTs, {PARALLEL} at once")
        out["bare"] = await bare_run(url, calls * len(EVENTS_PER_CALL), PARALLEL)
        with tempfile.TemporaryDirectory(prefix="bench-crm-") as tmp:
            progress("(a) the outbox on SQLite")
            async with open_store(StoreSettings(path=Path(tmp) / "crm.sqlite"), region="RU") as store:
                writer = asyncio.create_task(store.run_writer())
                try:
                    out["sqlite"] = await outbox_run(store, url, calls)
                finally:
                    writer.cancel()
        if postgres:
            from bench.pgserver import PgServer

            async with PgServer() as server:
                progress(f"(a) the outbox on PostgreSQL {server.version}")
                db = await server.database("crm")
                async with open_store(StoreSettings(url=db), region="RU") as store:
                    writer = asyncio.create_task(store.run_writer())
                    try:
                        out["postgres"] = await outbox_run(store, url, calls)
                    finally:
                        writer.cancel()
                out["postgres_version"] = server.version
    out["parallel"] = PARALLEL
    return out


# -- (b) the pop's latency with the CRMs on ---------------------------------------------------------------------

def write_config(tmp: Path, ami_port: int, crm_url: str | None) -> Path:
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^port = \d+", f"port = {ami_port}", text, count=1)
    text = re.sub(r"(?m)^port = 8080", "port = 0", text, count=1)
    text = re.sub(r'(?m)^path = ".*"', 'path = "journal.sqlite"', text, count=1)
    if crm_url is not None:
        text += (f'\n[crm]\n\n[crm.bitrix24]\nportal = "{crm_url}"\nclient_id = "local.bench"\n'
                 f'client_secret = "bench"\noauth_url = "{crm_url}/oauth/token/"\n'
                 'users = { "101" = 1, "102" = 2, "103" = 3, "104" = 4, "105" = 5 }\n'
                 f'\n[crm.amocrm]\nbase_url = "{crm_url}"\ntoken = "bench"\n'
                 f'\n[crm.zammad]\nurl = "{crm_url}/api/v1/cti/bench"\n'
                 f'\n[crm.onec]\npush_url = "{crm_url}/base/hs/cti/events"\nusername = "cti"\npassword = "bench"\n'
                 f'\n[crm.webhook]\nurl = "{crm_url}/hook"\nsecret = "{SECRET}"\n')
    path = tmp / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def pops_of_one_daemon(crm_url: str | None) -> tuple[list[float], int]:
    """One daemon fed the traces one pop at a time: each pop's latency (s), and the CRM requests sent meanwhile."""
    import websockets

    from asterisk.replay import ReplayPbx, load_trace
    from companion.config import load_config
    from companion.daemon import Daemon
    from companion.pbx_link import model_config
    from cti.effects import CallRang
    from cti.model import CallBook
    from store.repository import User
    from ui_bridge.auth import new_token, token_hash
    from ui_bridge.routes.crm_bitrix24 import OAUTH, token_record

    shared = Path(__import__("os").environ.get("CTI_SHARED", REPO.parent / "shared")) / "ami-traces"
    traces = [load_trace(shared / name) for name in TRACES]
    events = [e.message for trace in traces for e in trace.events]
    with tempfile.TemporaryDirectory(prefix="bench-crm-pops-") as tmp:
        replay = ReplayPbx(traces, speed=1.0, rebase_time=True)
        replay.pause()
        await replay.start("127.0.0.1", 0)
        settings = load_config(write_config(Path(tmp), replay.address[1], crm_url))
        daemon = Daemon(settings)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            await until(lambda: daemon.store is not None and daemon.ready.is_set(), "the daemon started")
            store = daemon.store
            assert store is not None and daemon.panel_server is not None
            token = new_token()
            await store.add_user(User(name="bench-admin", role="admin"))
            await store.add_token("bench-admin", token_hash(token), "bench")
            if crm_url is not None:
                await store.put_crm_value("bitrix24", OAUTH, token_record(
                    access_token="a", refresh_token="r", expires_at=time.time() + 3600, domain="bench",
                    member_id="bench", application_token="bench"))
            book = CallBook(model_config(settings.pbx))
            pops = [i for i, msg in enumerate(events) if any(isinstance(e, CallRang) for e in book.apply(msg))]
            ws_url = daemon.panel_server.url.replace("http", "ws", 1) + "/ws"
            async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                while json.loads(await ws.recv())["type"] != "state":
                    pass
                await until(lambda: any(a.message.action == "QueueStatus" for a in replay.received_actions),
                            "the daemon resynced")
                latencies: list[float] = []
                served_at = 0.0
                for index in pops:
                    if replay.position <= index:
                        served_at = time.perf_counter()
                        replay.advance(index + 1 - replay.position)
                    while json.loads(await ws.recv())["type"] != "call.ringing":
                        pass
                    latencies.append(time.perf_counter() - served_at)
            sent = sum(s.sent for s in daemon.crm.stats().values()) if daemon.crm is not None else 0
            return latencies, sent
        finally:
            stop.set()
            await task
            await replay.close()


async def pop_latency(rounds: int) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"none": [], "all": []}
    sent = 0
    async with receiving() as (receiver, url):
        for n in range(rounds):
            for label in ("none", "all"):
                progress(f"(b) round {n + 1}/{rounds}: {'no CRM' if label == 'none' else 'all five CRMs on'}")
                latencies, sent_now = await pops_of_one_daemon(url if label == "all" else None)
                runs[label] += latencies
                sent += sent_now
        requests = receiver.requests
    return {"runs": runs, "sent": sent, "requests": requests, "rounds": rounds}


# -- the report -------------------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def report(a: dict[str, Any], b: dict[str, Any], calls: int) -> str:
    when = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = ["## CRM push: outbox throughput and the pop with every CRM on (`python -m bench.crm`)", "",
             f"Run {when} on {machine('httpx', 'aiolimiter', with_sqlite=True)}.", "",
             f"**(a) Outbox throughput**: {calls:,} calls × {len(EVENTS_PER_CALL)} events = "
             f"{calls * len(EVENTS_PER_CALL):,} requests queued as the push queues them (`queue_crm`, one "
             f"transaction each), then sent by one webhook sender ({a['parallel']} calls at once, signed POSTs) to "
             "a local receiver answering at once. Baseline: the same POSTs from a bare `httpx.AsyncClient`, "
             f"{a['parallel']} at once, no store.", "",
             "| store | queued/s | sent/s (take → POST → `crm_sent`) | vs bare httpx |", "|---|---|---|---|",
             f"| — (bare httpx, the baseline) | — | {a['bare']:,.0f} | 1.00 |"]
    for backend, name in (("sqlite", "SQLite"), ("postgres", f"PostgreSQL {a.get('postgres_version', '')}")):
        if backend in a:
            r = a[backend]
            lines.append(f"| {name} | {r['queued_per_s']:,.0f} | {r['sent_per_s']:,.0f} | "
                         f"{r['sent_per_s'] / a['bare']:.2f} |")
    none, every = b["runs"]["none"], b["runs"]["all"]
    ratio = statistics.median(every) / statistics.median(none)
    lines += ["", f"**(b) Screen-pop latency** at an admin's WebSocket, from the replay serving the *Ringing* event "
              f"to the `call.ringing` frame: {b['rounds']} daemons of each kind, interleaved, {len(none)} pops each "
              f"kind; with all five connectors on, the local CRM server answered {b['requests']:,} requests "
              "meanwhile.", "",
              "| CRMs | pops | p50 ms | p90 ms | max ms |", "|---|---|---|---|---|"]
    for label, values in (("none (the baseline)", none), ("all five on", every)):
        lines.append(f"| {label} | {len(values)} | {statistics.median(values) * 1000:.2f} | "
                     f"{pct(values, 0.9) * 1000:.2f} | {max(values) * 1000:.2f} |")
    lines += ["", f"Median with every CRM on / without: **{ratio:.2f}**.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls of 5 events queued and sent in (a)")
    parser.add_argument("--rounds", type=int, default=5, help="daemons of each kind in (b)")
    parser.add_argument("--no-postgres", action="store_true", help="(a) on SQLite only")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)  # the daemons' own log: only what went wrong

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        return await throughput(args.calls, not args.no_postgres), await pop_latency(args.rounds)

    a, b = asyncio.run(run())
    text = report(a, b, args.calls)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
        progress("written to docs/benchmarks.md")


if __name__ == "__main__":
    main()
