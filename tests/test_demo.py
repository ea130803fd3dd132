"""``cti demo`` end to end, as a first-time user meets it: one real process on free ports in its own folder.

The config file it writes works for the CLI (``cti calls --since today`` lists the demo's calls, re-dated to now),
the sample contacts are imported once, the terminal prints the lab's time zone, and a pause from the panel reaches
the agent board as paused, because the live replay answers ``QueuePause`` as Asterisk does.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from cti.contacts_csv import read_contacts
from tests.cli_runner import cti
from tests.conftest import UNIT
from tests.daemon.conftest import CTI
from tests.traces import REPO
from tests.ui_bridge.wsclient import WsClient

SAMPLE = REPO / "examples" / "contacts.csv"


class DemoProcess:
    """``cti demo`` as a child process whose printed lines are read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, *args: str) -> DemoProcess:
        proc = await asyncio.create_subprocess_exec(
            *CTI, "demo", *args, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "COLUMNS": "250"})
        return cls(proc)

    async def line(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first printed line (seen or to come) that ``pattern`` matches."""
        regex = re.compile(pattern)
        for seen in self.lines:
            if m := regex.search(seen):
                return m
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout * UNIT):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    err = await self.proc.stderr.read() if self.proc.stderr else b""
                    raise AssertionError(f"the demo ended before {pattern!r}:\n{''.join(self.lines)}\n{err.decode()}")
                text = raw.decode()
                self.lines.append(text)
                if m := regex.search(text):
                    return m

    async def stop(self) -> str:
        """Ctrl+C, as a user stops it; everything it printed."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(self.proc.communicate(), 60 * UNIT)
        assert self.proc.returncode == 0, err.decode()
        return "".join(self.lines) + out.decode()


async def test_the_demo_gives_the_cli_a_config_the_calls_of_today_the_sample_contacts_and_a_working_pause(
        tmp_path: Path) -> None:
    folder = tmp_path / "my-demo"
    demo = await DemoProcess.start("01-direct", "--speed", "4", "--http-port", "0", "--folder", str(folder))
    try:
        await demo.line(r"times in Europe/Moscow")
        await demo.line(r"Sample contacts from .*contacts\.csv: \d+ imported")
        url = (await demo.line(r"Web panel: (http://127\.0\.0\.1:\d+)/"))[1]
        env = SimpleNamespace(url=url, ws_url=url.replace("http", "ws") + "/ws",
                              users={"anna": ("demo-101", "agent", "101", None)})
        anna = await WsClient.connect(env, "anna")  # type: ignore[arg-type]
        try:
            await anna.wait_for("state", timeout=30)
            reply = await anna.request({"type": "queue.pause", "queue": "support", "reason": "обед"}, timeout=30)
            assert reply["type"] == "reply", reply
            board = await anna.wait_for("agent.state", timeout=30, extension="101", paused=True)
            assert board["state"] in ("paused", "in_call", "ringing") and board["paused_reason"] == "обед"
            assert board["paused_queues"] == ["support"]
        finally:
            await anna.close()
        printed = await demo.line(r"call #1\s+(\d\d:\d\d:\d\d) inbound\s+79161234567")
    finally:
        out = await demo.stop()
    config = folder / "cti.toml"
    assert f"Config file for the CLI: {config}" in out

    listed: list[dict[str, Any]] = json.loads(
        cti("calls", "--config", str(config), "--since", "today", "--format", "json").stdout)
    call = next(c for c in listed if c["caller"] == "79161234567")
    started = datetime.fromisoformat(call["started_at"])
    assert abs((started - datetime.now(started.tzinfo)).total_seconds()) < 600 * UNIT, "re-dated to now"
    moscow = started.astimezone(ZoneInfo("Europe/Moscow"))
    assert printed[1] == moscow.strftime("%H:%M:%S"), "the terminal prints the configured zone's time"
    assert (folder / "journal.sqlite").is_file()

    # A second run on the same folder adds calls, not contacts.
    again = await DemoProcess.start("01-direct", "--once", "--speed", "0", "--http-port", "0", "--folder", str(folder))
    await again.line(r"Sample contacts from .*: already in the directory")
    await again.line(r"call\(s\) in the journal")
    await again.stop()
    exported = cti("contacts", "export", "--config", str(config)).stdout.splitlines()
    sample = read_contacts(SAMPLE.read_bytes())
    rows = sum(max(1, len(c.vehicles)) for c in sample.contacts)
    assert len(exported) == 1 + rows, "each sample contact once, one row per car"
    later = json.loads(cti("calls", "--config", str(config), "--since", "today", "--format", "json").stdout)
    assert len([c for c in later if c["caller"] == "79161234567"]) > len(
        [c for c in listed if c["caller"] == "79161234567"]), "the second run's call has ids of its own"


def test_the_sample_contacts_are_the_callers_of_the_traces() -> None:
    """Every inbound caller of the shared traces is in the sample directory, with a car where it is a person."""
    from tests.traces import TRACES

    sample = read_contacts(SAMPLE.read_bytes())
    assert not sample.problems
    phones = {re.sub(r"\D", "", p).replace("8", "7", 1) if re.sub(r"\D", "", p).startswith("8") else re.sub(
        r"\D", "", p) for c in sample.contacts for p in c.phones}
    for truth in sorted(TRACES.glob("*/truth.json")):
        for call in json.loads(truth.read_text())["calls"]:
            if call["direction"] == "inbound" and call["caller"]:
                assert call["caller"] in phones, (truth.parent.name, call["caller"])
    assert sum(c.kind == "corporate" for c in sample.contacts) >= 2
    assert any(c.notes for c in sample.contacts) and any(c.email for c in sample.contacts)


def test_demo_help_lists_the_logins() -> None:
    from companion.demo_logins import DEMO_LOGINS

    out = cti("demo", "--help").stdout
    for name, (password, _role, _ext) in DEMO_LOGINS.items():
        assert re.search(rf"{name}\s+/\s+{password}", out), name
    assert sys.executable  # the help needs no demo to run
