"""Fixtures for whole-daemon tests: the replay PBX on loopback, a config made from the example.

The config is ``config.example.toml`` with only ``[ami]`` and ``[store]`` changed, as the issue
asks: the example must describe the traces' PBX as it is.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from asterisk.messages import AmiMessage
from asterisk.replay import ReplayPbx
from companion.config import Settings, load_config
from companion.daemon import Daemon
from cti.effects import Effect
from tests.cli_runner import cti
from tests.conftest import UNIT
from tests.traces import REPO

#: The real command line as a child process: only for what needs one (signals, a terminal, the entry point);
#: everything else runs ``cti`` in-process (:func:`tests.cli_runner.cti`).
CTI = [sys.executable, "-m", "companion.cli"]


def write_config(tmp: Path, port: int, *, secret: str = "cti-secret", extra_ami: str = "", http_port: int = 0,
                 http_extra: str = "", directory_extra: str = "", sections: dict[str, str] | None = None) -> Path:
    """config.example.toml with [ami] pointed at ``port``, [store] at a file in ``tmp``, the panel on
    ``http_port`` (0: any free port); ``*_extra``: "key = value" lines set in that section; ``sections``: such lines
    for any section the example has (``{"alerts": "long_wait_seconds = 2"}``)."""
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^port = \d+", f"port = {port}", text, count=1)
    text = re.sub(r"(?m)^port = 8080", f"port = {http_port}", text, count=1)
    text = _set_keys(text, "http", http_extra)
    text = _set_keys(text, "directory", directory_extra)
    for section, lines in (sections or {}).items():
        text = _set_keys(text, section, lines)
    text = re.sub(r'(?m)^secret = ".*"', f'secret = "{secret}"', text, count=1)
    text = re.sub(r'(?m)^path = ".*"', 'path = "journal.sqlite"', text, count=1)
    text = text.replace("reconnect_min = 0.5", "reconnect_min = 0.1").replace("reconnect_max = 5.0",
                                                                               "reconnect_max = 1.0")
    text = _set_keys(text, "ami", extra_ami)
    path = tmp / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def write_pbxs_config(tmp: Path, ports: dict[str, int], **kw: Any) -> Path:
    """:func:`write_config` with several PBXs: the example's ``[ami]`` and ``[pbx]`` become one ``[[pbxs]]`` entry
    per id of ``ports`` (the same dial plan, each its own AMI port), as a site with several PBXs writes it."""
    path = write_config(tmp, 0, **kw)
    text = path.read_text(encoding="utf-8")
    ami_start = text.index("[ami]\n")
    ami_end = text.index("\n[", ami_start) + 1
    ami = text[ami_start + len("[ami]\n"):ami_end]
    pbx_start = text.index("[pbx]\n")
    agents_start = text.index("[pbx.agents]\n")
    pbx = text[pbx_start + len("[pbx]\n"):agents_start]
    agents_end = text.find("\n[", agents_start) + 1 or len(text)  # a section the example puts after the agents stays
    agents = text[agents_start + len("[pbx.agents]\n"):agents_end]
    rest = text[:ami_start] + text[ami_end:pbx_start] + text[agents_end:]
    for pbx_id, port in ports.items():
        rest += (f'\n[[pbxs]]\nid = "{pbx_id}"\nname = "PBX {pbx_id.upper()}"\n{pbx}[pbxs.agents]\n{agents}'
                 f'[pbxs.ami]\n' + re.sub(r"(?m)^port = \d+", f"port = {port}", ami, count=1))
    path.write_text(rest, encoding="utf-8")
    return path


def _set_keys(text: str, section: str, lines: str) -> str:
    """Set ``key = value`` lines in ``[section]`` of a config text: replace the key (or its commented-out
    example) within that section, else add it at the section's top. A section the example leaves commented out
    (``[complaints]``) is added at the end."""
    if lines and f"[{section}]\n" not in text:
        text = text.rstrip("\n") + f"\n\n[{section}]\n"
    start = text.index(f"[{section}]\n") + len(section) + 3
    end = text.find("\n[", start)
    end = len(text) if end < 0 else end + 1
    body = text[start:end]
    for line in lines.splitlines():
        key = line.partition("=")[0].strip()
        body, found = re.subn(rf"(?m)^#? ?{re.escape(key)} = .*$", line.replace("\\", "\\\\"), body, count=1)
        if not found:
            body = line + "\n" + body
    return text[:start] + body + text[end:]


#: ``extra_ami`` for a test that drops the connection on purpose and has nothing to prove about the back-off: the
#: daemon reconnects after 10 ms instead of the test config's 100 ms (test_resilience.py checks the back-off).
QUICK_RECONNECT = "reconnect_min = 0.01"


def settings_for(tmp: Path, port: int, **kw: Any) -> Settings:
    return load_config(write_config(tmp, port, **kw))


#: How often :func:`wait_until` looks again (seconds): the conditions the tests wait for are mostly ready within a
#: few milliseconds (a read, a commit, a reconnect), so a coarse poll would cost each wait more than the wait itself.
POLL_SECONDS = 0.002


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout * UNIT):
        while not predicate():
            await asyncio.sleep(POLL_SECONDS)
    assert predicate(), what


def resyncs(pbx: ReplayPbx) -> int:
    """The daemon's resyncs so far: its last resync action, sent once its events are on (``Events`` answered)."""
    return sum(a.message.action == "QueueStatus" for a in pbx.received_actions)


async def serve_through(pbx: ReplayPbx, events: Sequence[AmiMessage], match: Callable[[AmiMessage], bool],
                        what: str = "the event asked for", *, timeout: float = 10) -> AmiMessage:
    """Serve a held replay (``pbx.pause()``) up to and including the next event ``match`` holds for, at once, and
    return that event; the stream stays held there. ``events`` are the replay's events in order (its traces').

    A test gets the PBX exactly where it wants it (a phone ringing, a call up) without playing the recording's
    seconds in real time, however fast or slow the machine. The daemon must be listening first, or the events
    would be served to nobody (lost): this waits (``timeout`` units at most) for its first resync.
    """
    await wait_until(lambda: resyncs(pbx) >= 1, timeout, "the daemon listened and resynced")
    start = pbx.position
    for i in range(start, len(events)):
        if match(events[i]):
            pbx.advance(i + 1 - start)
            return events[i]
    raise AssertionError(f"{what}: not found in the rest of the trace (from event {start})")


def leg_event(event: str, channel_prefix: str, state: str | None = None) -> Callable[[AmiMessage], bool]:
    """``event`` (``DialBegin``, ``Newstate``, ``BridgeEnter``, ``Hangup``...) on the channel (or, for
    ``DialBegin``/``DialEnd``, the dialled channel) whose name starts with ``channel_prefix`` (``PJSIP/101-``);
    with ``state``, only when the channel is then in that state (``Ringing``)."""
    key = "DestChannel" if event in ("DialBegin", "DialEnd") else "Channel"
    return lambda m: (m.event == event and m.get(key, "").startswith(channel_prefix)
                      and (state is None or m.get("ChannelStateDesc") == state))


class RunningDaemon:
    """A Daemon in a task of the test's own loop; ``stop()`` is the SIGTERM path."""

    def __init__(self, settings: Settings) -> None:
        self.daemon = Daemon(settings)
        self.stop_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RunningDaemon:
        """Once the daemon is up (its store open and migrated, its panel listening): a start that fails raises its
        error at once; a slow one (a loaded machine) is waited for, up to a bound that only catches a hang."""
        self.task = asyncio.create_task(self.daemon.run(self.stop_event))
        ready = asyncio.create_task(self.daemon.ready.wait())
        done, _ = await asyncio.wait([ready, self.task], timeout=60 * UNIT, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if self.task in done:
                self.task.result()  # the start's own error
                raise RuntimeError("the daemon stopped before it was ready")
            self.task.cancel()
            raise TimeoutError(f"the daemon was not ready within {60 * UNIT:g} s")
        return self

    async def wait_for_effect(self, kind: type[Effect], timeout: float = 20) -> Effect:
        """The first effect of this kind the daemon produces from now on."""
        seen: list[Effect] = []
        self.daemon.subscribe(lambda e: seen.append(e) if isinstance(e, kind) else None)
        await wait_until(lambda: bool(seen), timeout, f"a {kind.__name__} effect")
        return seen[0]

    async def stop(self) -> None:
        self.stop_event.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10 * UNIT)

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def journal(config: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(cti("calls", "--config", str(config), "--format", "json").stdout)
    return rows


def epochs(rows: list[dict[str, Any]]) -> dict[str, float]:
    out = {}
    for r in rows:
        out[r["linkedid"] + ":start"] = datetime.fromisoformat(r["started_at"]).timestamp()
        out[r["linkedid"] + ":end"] = datetime.fromisoformat(r["ended_at"] or r["started_at"]).timestamp()
    return out
