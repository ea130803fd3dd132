"""Two ``cti run`` processes on one PostgreSQL store with two replay PBXs: each PBX is followed by exactly one of
them, and when that one is SIGKILLed mid-call the other takes over, resyncs and loses no call (issue 11).

Real parts only: the nodes are child processes of the installed command line, the store a throwaway PostgreSQL
cluster (``tests/postgres.py``), the PBXs replay PBXs over TCP held at the test's pace (``pause``/``advance``), so
the kill falls where the test says and nothing the PBX does is lost while no node follows it (a real PBX keeps
going; those seconds are lost, as for any reconnect: tests/daemon/test_drop_every_index.py).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import time
from asyncio.subprocess import DEVNULL, PIPE, Process
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import websockets

from asterisk.replay import ReplayPbx, load_trace
from companion.config import load_config
from tests.cli_runner import cti
from tests.conftest import UNIT
from tests.daemon.conftest import CTI, RunningDaemon, resyncs, wait_until, write_pbxs_config
from tests.postgres import cluster
from tests.traces import REPO, compare_with_truth, load_truth, trace_dirs
from tests.ui_bridge.wsclient import WsClient

TRACES = {p.name[:2]: p for p in trace_dirs()}
#: Moscow: a call transferred (talking long enough to be killed in), then a queue call abandoned, an internal one.
MSK = [TRACES["13"], TRACES["08"], TRACES["18"]]
#: St Petersburg: a ring group answered, a direct call to voicemail.
SPB = [TRACES["11"], TRACES["03"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def node_config(folder: Path, ports: dict[str, int], url: str, http_port: int) -> Path:
    """A node's file: the same PBXs for every node, the shared store, its own panel port, quick takeover."""
    folder.mkdir()
    path = write_pbxs_config(folder, ports, extra_ami="reconnect_min = 0.05\nreconnect_max = 0.2",
                             http_port=http_port)
    text = path.read_text(encoding="utf-8").replace('path = "journal.sqlite"', f'url = "{url}"', 1)
    path.write_text(text + "\n[cluster]\nlease_retry = 0.2\n", encoding="utf-8")
    return path


async def start_node(config: Path, http_port: int, *, stderr: int = DEVNULL) -> Process:
    """``cti run`` in a child process, returned once its panel answers ``/healthz`` (it has started)."""
    node = await asyncio.create_subprocess_exec(*CTI, "run", "--config", str(config), cwd=REPO, stdout=DEVNULL,
                                                stderr=stderr)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as http, asyncio.timeout(30 * UNIT):
        while True:
            assert node.returncode is None, "the node exited at start"
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return node
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)


async def stop_node(node: Process) -> str:
    """SIGTERM, then what the node wrote to stderr (it must stop cleanly)."""
    node.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(node.communicate(), 20 * UNIT)
    text = (err or b"").decode()
    assert node.returncode == 0, text
    assert "Traceback" not in text
    return text


async def following(http_port: int) -> dict[str, float]:
    """``cti_pbx_following`` by PBX from the node's ``/metrics``, and its ``/readyz`` status as ``"ready"``."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as http:
        metrics = (await http.get("/metrics")).text
        ready = (await http.get("/readyz")).status_code
    found = dict(re.findall(r'^cti_pbx_following\{pbx="(\w+)"\} (\S+)$', metrics, re.MULTILINE))
    return {**{pbx: float(v) for pbx, v in found.items()}, "ready": float(ready == 200)}


async def agent_on(http_port: int, name: str) -> WsClient:
    """An agent's panel socket on the node at ``http_port``, logged in there."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as http:
        response = await http.post("/api/login", json={"name": name, "password": f"{name}-password"})
    assert response.status_code == 200, response.text
    cookie = response.cookies["cti_session"]
    conn = await websockets.connect(f"ws://127.0.0.1:{http_port}/ws",
                                    additional_headers={"Cookie": f"cti_session={cookie}"}, max_size=None)
    return WsClient(conn)


class Counts:
    """The store's rows, read between the test's polls (a poll cannot await)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.calls: dict[str, int] = {}
        self.live: dict[str, int] = {}

    async def refresh(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            self.calls = dict(await conn.fetch("SELECT pbx, count(*) FROM calls GROUP BY pbx"))  # type: ignore[arg-type]
            self.live = dict(await conn.fetch("SELECT pbx, count(*) FROM live_events GROUP BY pbx"))  # type: ignore[arg-type]
        finally:
            await conn.close()

    async def until(self, predicate: Any, timeout: float, what: str) -> None:
        async with asyncio.timeout(timeout * UNIT):
            while True:
                await self.refresh()
                if predicate(self):
                    return
                await asyncio.sleep(0.05)
        raise AssertionError(what)


async def test_a_node_killed_mid_call_is_taken_over_and_no_call_is_lost_or_doubled(tmp_path: Path) -> None:
    url = await cluster().fresh_database()
    msk_events = load_trace(MSK[0]).events
    # Kill while the first call talks: after its first bridge (the agent answered), before it ends.
    talking = next(i for i, e in enumerate(msk_events) if e.message.get("Event") == "BridgeEnter")
    async with ReplayPbx(MSK, speed=0) as msk, ReplayPbx(SPB, speed=0) as spb:
        msk.pause()
        spb.pause()
        ports = {"msk": msk.address[1], "spb": spb.address[1]}
        http_a, http_b = free_port(), free_port()
        config_a = node_config(tmp_path / "a", ports, url, http_a)
        config_b = node_config(tmp_path / "b", ports, url, http_b)
        counts = Counts(url)
        cti("users", "add", "boss", "--role", "admin", "--config", str(config_a), "--password-stdin",
            input="boss-password-1\n")
        for pbx in ("msk", "spb"):  # agent 101 of each PBX
            cti("users", "add", f"anna-{pbx}", "--role", "agent", "--extension", "101", "--pbx", pbx, "--config",
                str(config_a), "--password-stdin", input=f"anna-{pbx}-password\n")
        node_a = await start_node(config_a, http_a)
        node_b: Process | None = None
        browser = httpx.AsyncClient()  # one cookie jar: the same browser, whichever node nginx sends it to
        try:
            await wait_until(lambda: resyncs(msk) == 1 and resyncs(spb) == 1, 30, "node A follows both PBXs")
            node_b = await start_node(config_b, http_b, stderr=PIPE)
            login = await browser.post(f"http://127.0.0.1:{http_a}/api/login",
                                       json={"name": "boss", "password": "boss-password-1"})
            assert login.status_code == 200
            assert (await browser.get(f"http://127.0.0.1:{http_b}/api/me")).json()["user"]["name"] == "boss"
            # Each agent's browser is on node B, which follows no PBX: the pops come from A over the store's bus.
            anna = {pbx: await agent_on(http_b, f"anna-{pbx}") for pbx in ("msk", "spb")}
            # B stands by: it has started and tries the leases every 0.2 s, but never logs in to a PBX A follows.
            msk.advance(talking + 1)
            spb.resume()  # St Petersburg plays through while A follows it
            await wait_until(lambda: spb.finished.is_set(), 30, "St Petersburg's calls were served")
            await counts.until(lambda c: c.live.get("msk", 0) > 0 and c.calls.get("spb", 0) == 2, 30,
                               "Moscow's call in progress journaled, St Petersburg's calls saved")
            for pbx, client in anna.items():  # her own PBX's pop, through node B, and never the other's
                pop = await client.wait_for("call.ringing", extension="101", pbx=pbx)
                assert pop["card"]["number"]
            assert {m["pbx"] for m in anna["msk"].of_type("call.ringing")} == {"msk"}
            assert {m["pbx"] for m in anna["spb"].of_type("call.ringing")} == {"spb"}
            assert resyncs(msk) == 1 and resyncs(spb) == 1  # only A ever logged in
            # Each PBX is followed by one node (the metric says which); the node standing by is ready for panel
            # traffic all the same (its /readyz does not wait for PBXs another node follows).
            assert await following(http_a) == {"msk": 1, "spb": 1, "ready": 1}
            assert await following(http_b) == {"msk": 0, "spb": 0, "ready": 1}
            node_a.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            await node_a.wait()
            await wait_until(lambda: resyncs(msk) == 2 and resyncs(spb) == 2, 30, "node B took both PBXs over")
            takeover = time.monotonic() - killed_at
            assert takeover < 10 * UNIT, f"the takeover took {takeover:.1f} s"
            assert await following(http_b) == {"msk": 1, "spb": 1, "ready": 1}
            msk.resume()
            await wait_until(lambda: msk.finished.is_set(), 30, "Moscow's calls were served")
            await counts.until(lambda c: c.calls.get("msk", 0) == 3 and not c.live, 30, "every call saved")
            # The login made on A, which is gone, still works on B: sessions are kept in the store.
            listed = await browser.get(f"http://127.0.0.1:{http_b}/api/calls", params={"pbx": "msk"})
            assert listed.status_code == 200 and len(listed.json()["calls"]) == 3
            for client in anna.values():
                await client.close()
        finally:
            await browser.aclose()
            if node_a.returncode is None:
                node_a.kill()
                await node_a.wait()
            if node_b is not None:
                err = await stop_node(node_b)
        assert "took its lease over" in err
    rows: list[dict[str, Any]] = json.loads(cti("calls", "--config", str(config_b), "--format", "json").stdout)
    by_pbx = {pbx: [r for r in rows if r["pbx"] == pbx] for pbx in ("msk", "spb")}
    assert compare_with_truth(by_pbx["msk"], [c for t in MSK for c in load_truth(t)]) == []
    assert compare_with_truth(by_pbx["spb"], [c for t in SPB for c in load_truth(t)]) == []
    straddled = [r["linkedid"] for r in by_pbx["msk"] if not r["complete"]]
    assert straddled == [load_truth(MSK[0])[0]["linkedid"]]  # the call in progress at the kill, and only it
    assert all(r["complete"] for r in by_pbx["spb"])
    assert len({(r["pbx"], r["linkedid"]) for r in rows}) == len(rows) == 5  # none doubled


async def test_a_node_that_loses_its_lease_stops_following_until_it_holds_it_again(tmp_path: Path) -> None:
    """The database connection holding a PBX's lease drops (here: terminated by the database, as a network cut or
    a failover does) while a call talks: the node stops reading that PBX at once (another node may follow it
    now), takes the lease again when it is free, rebuilds from the journaled events and resyncs; the call is
    journaled once, incomplete, and the rest of the trace as the truth says."""
    url = await cluster().fresh_database()
    events = load_trace(MSK[0]).events
    talking = next(i for i, e in enumerate(events) if e.message.get("Event") == "BridgeEnter")
    async with ReplayPbx(MSK, speed=0) as pbx:
        pbx.pause()
        config = node_config(tmp_path / "a", {"msk": pbx.address[1]}, url, free_port())
        counts = Counts(url)
        async with RunningDaemon(load_config(config)) as running:
            link = running.daemon.links["msk"]
            await wait_until(lambda: resyncs(pbx) == 1, 30, "the daemon follows the PBX")
            pbx.advance(talking + 1)
            await counts.until(lambda c: c.live.get("msk", 0) > 0, 30, "the call's events journaled")
            first = link.client
            conn = await asyncpg.connect(url)
            try:
                cut = await conn.fetchval("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                          "WHERE application_name = 'cti-companion lease pbx:msk'")
            finally:
                await conn.close()
            assert cut == 1
            await wait_until(lambda: link.leases_taken == 2 and resyncs(pbx) == 2, 30, "the lease taken again")
            assert first is not None and not first.connected and link.client is not first  # the old session ended
            pbx.resume()
            await wait_until(lambda: pbx.finished.is_set(), 30, "the trace was served")
            await counts.until(lambda c: c.calls.get("msk", 0) == 3 and not c.live, 30, "every call saved")
    rows: list[dict[str, Any]] = json.loads(cti("calls", "--config", str(config), "--format", "json").stdout)
    assert compare_with_truth(rows, [c for t in MSK for c in load_truth(t)]) == []
    assert [r["linkedid"] for r in rows if not r["complete"]] == [load_truth(MSK[0])[0]["linkedid"]]


async def test_two_daemons_on_one_sqlite_file_never_both_follow_its_pbx(tmp_path: Path) -> None:
    """A second ``cti run`` started by mistake on the same SQLite file (or the demo beside the daemon) used to
    follow the PBX too and journal every call twice; now it stands by (the lease is a lock file beside the
    store) and takes over when the first one stops."""
    async with ReplayPbx(MSK[:1], speed=0) as pbx:
        pbx.pause()
        config = write_pbxs_config(tmp_path, {"msk": pbx.address[1]})
        config.write_text(config.read_text(encoding="utf-8") + "\n[cluster]\nlease_retry = 0.2\n", encoding="utf-8")
        settings = load_config(config)
        first = RunningDaemon(settings)
        async with first, RunningDaemon(settings) as second:
            await wait_until(lambda: resyncs(pbx) == 1, 30, "the first daemon follows the PBX")
            assert first.daemon.links["msk"].following and not second.daemon.links["msk"].following
            await first.stop()
            await wait_until(lambda: resyncs(pbx) == 2, 30, "the second daemon took the PBX over")
            assert second.daemon.links["msk"].following
            pbx.resume()
            await wait_until(lambda: pbx.finished.is_set(), 30, "the trace was served")
            await wait_until(lambda: not second.daemon.links["msk"].book.calls, 30, "the call ended")
    rows: list[dict[str, Any]] = json.loads(cti("calls", "--config", str(config), "--format", "json").stdout)
    assert compare_with_truth(rows, load_truth(MSK[0])) == []
