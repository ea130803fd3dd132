"""The daemon against a PBX that misbehaves, and a daemon that is killed: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import sqlite3
from asyncio.subprocess import DEVNULL, PIPE
from pathlib import Path

import pytest

from asterisk.connection import AmiClient
from asterisk.messages import AmiMessage
from asterisk.replay import ReplayPbx, load_trace
from companion.config import AmiSettings
from cti.effects import CallAnswered, CallEnded, Effect
from tests.daemon.conftest import (
    CTI,
    QUICK_RECONNECT,
    UNIT,
    RunningDaemon,
    cti,
    journal,
    leg_event,
    resyncs,
    serve_through,
    settings_for,
    wait_until,
    write_config,
)
from tests.traces import REPO, compare_with_truth, load_truth, trace_dirs

TRACES = {p.name[:2]: p for p in trace_dirs()}


#: The recorded call's answer: the PBX is taken there at once (``serve_through``) and held.
ANSWER = "DialEnd"


def answered(msg: AmiMessage) -> bool:
    """The ``DialEnd`` of the leg that answered."""
    return msg.event == ANSWER and msg.get("DialStatus") == "ANSWER"


def events_of(trace: Path) -> list[AmiMessage]:
    return [e.message for e in load_trace(trace).events]


async def test_dropped_connection_mid_call_resyncs_without_loss_or_duplicate(tmp_path: Path) -> None:
    """The PBX link drops while a call is up; after the reconnect the call ends once, correctly.

    The PBX is held from the answer until the daemon has resynced (a reconnect within the call's quiet talk), so
    what is checked is the resync of a known call, not which events a loaded machine happened to lose."""
    trace = TRACES["13"]
    async with ReplayPbx([trace], speed=0) as pbx:
        _, port = pbx.address
        pbx.pause()
        config = write_config(tmp_path, port)
        async with RunningDaemon(settings_for(tmp_path, port, extra_ami=QUICK_RECONNECT)) as running:
            await serve_through(pbx, events_of(trace), answered, "the answer")
            await running.wait_for_effect(CallAnswered)
            pbx.drop_connections()
            await wait_until(lambda: running.daemon.client is not None and running.daemon.client.connections >= 2
                             and resyncs(pbx) >= 2, 10, "the daemon reconnected and resynced")
            pbx.resume()
            await wait_until(lambda: pbx.finished.is_set() and not running.daemon.book.calls, 30, "the call ended")
    rows = journal(config)
    assert compare_with_truth(rows, load_truth(trace)) == []
    assert [r["linkedid"] for r in rows] == ["1795479510.36"]


async def test_call_that_ends_while_disconnected_is_closed_by_the_resync(tmp_path: Path) -> None:
    """The PBX goes on while the daemon is away; the resync ends the call it no longer lists."""
    trace = TRACES["01"]
    async with ReplayPbx([trace], speed=0) as pbx:  # it goes on while nobody is connected, as Asterisk does
        _, port = pbx.address
        pbx.pause()
        config = write_config(tmp_path, port)
        async with RunningDaemon(settings_for(tmp_path, port, extra_ami=QUICK_RECONNECT)) as running:
            events = events_of(trace)
            await serve_through(pbx, events, answered, "the answer")
            await running.wait_for_effect(CallAnswered)
            pbx.drop_connections()
            # The rest of the call, the hang-up with it, happens while nobody is connected: lost, as on Asterisk.
            pbx.advance(len(events) - pbx.position)
            assert pbx.finished.is_set()
            await wait_until(lambda: not running.daemon.book.calls, 20, "the resync ended the call")
    (row,) = journal(config)
    assert row["linkedid"] == "1795479242.0" and row["answered_by"] == "103"
    assert row["complete"] is False  # its end was not seen, only inferred: the journal says so
    assert row["ended_at"] is not None


def _live_rows(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM live_events").fetchone()[0])
    except sqlite3.Error:
        return 0


async def test_sigkill_mid_call_then_restart_completes_the_call(tmp_path: Path) -> None:
    """``cti run`` is SIGKILLed during a call; a new ``cti run`` finishes the journal, exactly once.

    Then SIGTERM stops the second daemon cleanly (exit status 0) with everything flushed.
    """
    trace = TRACES["13"]
    async with ReplayPbx([trace], speed=0) as pbx:
        _, port = pbx.address
        pbx.pause()  # served below at the test's pace, so the kill and the outage fall where the test says
        config = write_config(tmp_path, port, extra_ami=QUICK_RECONNECT)
        db = tmp_path / "journal.sqlite"
        events = events_of(trace)
        first = await asyncio.create_subprocess_exec(*CTI, "run", "--config", str(config), cwd=REPO,
                                                     stdout=DEVNULL, stderr=DEVNULL)
        try:
            # Kill once the call is being transferred (anna hung up, 104 rings) and its events are committed.
            await serve_through(pbx, events, leg_event("DialBegin", "PJSIP/104-"), "the transfer ringing 104",
                                timeout=30)
            await wait_until(lambda: _live_rows(db) >= 10, 30, "events of the call were committed")
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        assert first.returncode == -signal.SIGKILL
        # While no daemon runs, 104 answers: the restart learns it from the PBX, not from events.
        await serve_through(pbx, events, leg_event("BridgeEnter", "PJSIP/trunk-"), "104 talking")
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 0  # still in progress
        second = await asyncio.create_subprocess_exec(*CTI, "run", "--config", str(config), cwd=REPO,
                                                      stdout=DEVNULL, stderr=PIPE)
        try:
            await wait_until(lambda: resyncs(pbx) >= 2, 30, "the second daemon listened and resynced")
            pbx.resume()
            await wait_until(lambda: pbx.finished.is_set(), 60, "the trace was served")
            await wait_until(lambda: _live_rows(db) == 0, 20, "the call was saved")
        finally:
            second.send_signal(signal.SIGTERM)
            _, err_bytes = await asyncio.wait_for(second.communicate(), 20 * UNIT)
        err = err_bytes.decode()
        assert second.returncode == 0, err
        assert "Traceback" not in err
    rows = journal(config)
    assert compare_with_truth(rows, load_truth(trace)) == []
    # It lived through the outage (issue 10, class 8): not complete, and what the PBX can tell is recovered.
    (row,), (truth,) = rows, load_truth(trace)
    assert row["complete"] is False
    assert row["recording"] == truth["recording"]
    assert abs(row["talk_seconds"] - truth["talk_seconds"]) <= 5


async def test_wrong_secret_is_reported_and_retried_with_back_off(tmp_path: Path) -> None:
    """A wrong AMI secret: a clear error, retries spaced out, no crash, a clean stop on SIGTERM."""
    async with ReplayPbx([TRACES["01"]], speed=1) as pbx:
        _, port = pbx.address
        config = write_config(tmp_path, port, secret="wrong")
        proc = await asyncio.create_subprocess_exec(*CTI, "run", "--config", str(config), cwd=REPO,
                                                    stdout=DEVNULL, stderr=PIPE)

        def logins() -> list[float]:
            return [a.message.received_at for a in pbx.received_actions if a.message.action == "Login"]

        # Six attempts: the back-off up to its cap (0.1 s, 0.2, 0.4, 0.8, then 1 s), the daemon alive all along.
        await wait_until(lambda: len(logins()) >= 6 or proc.returncode is not None, 20, "the daemon retried")
        assert proc.returncode is None, "the daemon must keep running and retrying"
        proc.send_signal(signal.SIGTERM)
        _, err_bytes = await asyncio.wait_for(proc.communicate(), 20 * UNIT)
        err = err_bytes.decode()
    attempts = logins()
    assert len(attempts) >= 6, "the daemon retried"
    # The test config's back-off runs 0.1 s, 0.2, 0.4 … capped at 1 s, each ±20 %; a loaded machine only
    # stretches the gaps. Each gap is at least 80 % of its step (less a margin for the connect itself).
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    floors = [0.8 * min(1.0, 0.1 * 2**i) - 0.05 for i in range(len(gaps))]
    assert all(gap >= floor for gap, floor in zip(gaps, floors, strict=True)), f"back-off not kept: gaps {gaps}"
    assert "Authentication failed" in err and "secret" in err
    assert "Traceback" not in err
    assert proc.returncode == 0


def test_bad_config_names_file_field_and_problem(tmp_path: Path) -> None:
    """No traceback and no half-started daemon: the file, the field, what is wrong; exit status 2."""
    cases = {
        "port": ('[ami]\nport = "five"\nsecret = "x"\n', "ami.port"),
        "unknown": ('[ami]\nsecret = "x"\nhots = "pbx"\n', "ami.hots"),
        "toml": ("[ami\n", "not valid TOML"),
        "regex": ('[ami]\nsecret = "x"\n[pbx]\nagent_pattern = "1(\\\\d"\n', "pbx.agent_pattern"),
        "secret": ("[ami]\nhost = \"pbx\"\n", "secret"),
        "pbx id": ('[ami]\nsecret = "x"\n[pbx]\nid = "Москва"\n', "pbx.id: a PBX id is 1-16 characters"),
        "twice": ('[[pbxs]]\nid = "msk"\n[pbxs.ami]\nsecret = "x"\n[[pbxs]]\nid = "msk"\n[pbxs.ami]\nsecret = "y"\n',
                  "two PBXs with the id 'msk'"),
        "both": ('[ami]\nsecret = "x"\n[[pbxs]]\nid = "msk"\n[pbxs.ami]\nsecret = "x"\n',
                 "give either [[pbxs]] or [ami], not both"),
        "no ami": ('[[pbxs]]\nid = "msk"\n', "pbxs.0.ami: Field required"),
        "follow": ('[ami]\nsecret = "x"\n[cluster]\nfollow = ["spb"]\n',
                   "[cluster] follow: no PBX 'spb' in this file (its PBXs: main)"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        proc = cti("run", "--config", str(path), check=False)
        assert proc.returncode == 2, (name, proc.stderr)
        assert str(path) in proc.stderr and expected in proc.stderr, (name, proc.stderr)
        assert "Traceback" not in proc.stderr
    missing = cti("run", "--config", str(tmp_path / "nope.toml"), check=False)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    env_secret = tmp_path / "env.toml"
    env_secret.write_text('[ami]\nsecret_env = "CTI_TEST_NO_SUCH_VAR"\n', encoding="utf-8")
    proc = cti("check-config", "--config", str(env_secret), check=False)
    assert proc.returncode == 2 and "CTI_TEST_NO_SUCH_VAR is not set" in proc.stderr


async def test_missed_register_listing_and_manual_close(tmp_path: Path) -> None:
    """An abandoned queue call lands in the register; an admin closes it with a comment."""
    trace = TRACES["08"]
    async with ReplayPbx([trace], speed=0) as pbx:
        _, port = pbx.address
        config = write_config(tmp_path, port)
        async with RunningDaemon(settings_for(tmp_path, port)) as running:
            await wait_until(lambda: pbx.finished.is_set() and not running.daemon.book.calls, 20, "call ended")
    (entry,) = json.loads(cti("missed", "--config", str(config), "--format", "json").stdout)
    assert entry["caller"] == "79990001122" and entry["reason"] == "abandoned" and entry["status"] == "open"
    assert entry["agents_rung"] == ["101", "102", "105"]
    out = cti("missed", "close", str(entry["id"]), "--comment", "called back from a mobile", "--config",
              str(config)).stdout
    assert "closed" in out
    assert json.loads(cti("missed", "--config", str(config), "--format", "json").stdout) == []
    (closed,) = json.loads(cti("missed", "--config", str(config), "--status", "closed", "--format", "json").stdout)
    assert closed["closed_by"] == "manual" and closed["comment"] == "called back from a mobile"
    (shown,) = json.loads(cti("missed", "show", str(entry["id"]), "--config", str(config), "--format",
                              "json").stdout)
    assert [h["action"] for h in shown["history"]] == ["opened", "closed"]
    again = cti("missed", "close", str(entry["id"]), "--comment", "x", "--config", str(config), check=False)
    assert again.returncode == 1 and "already closed" in again.stderr
    unknown = cti("missed", "close", "999", "--comment", "x", "--config", str(config), check=False)
    assert unknown.returncode == 1 and "#999" in unknown.stderr
    csv_out = cti("calls", "--config", str(config), "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("linkedid,direction,caller") and len(csv_out) == 2
    table = cti("calls", "--config", str(config), "--outcome", "missed").stdout
    assert "79990001122" in table and "abandoned" in table
    # Time filters: dates, times with a zone, nonsense refused with a clear message.
    def count(*args: str) -> int:
        return len(json.loads(cti("calls", "--config", str(config), "--format", "json", *args).stdout))
    assert count("--since", "2020-01-01") == 1 and count("--until", "2020-01-01") == 0
    assert count("--number", "8 999 000-11-22") == 1 and count("--number", "+7 999 000 1123") == 0
    assert count("--agent", "105") == 1 and count("--direction", "outbound") == 0
    bad = cti("calls", "--config", str(config), "--since", "last tuesday", check=False)
    assert bad.returncode == 2 and "cannot read the time" in bad.stderr


async def test_daemon_started_during_a_call_asks_the_pbx_for_its_recording(tmp_path: Path) -> None:
    """A call already up at connect: the resync rebuilds it and a Getvar fetches its file name."""
    trace = TRACES["01"]
    async with ReplayPbx([trace], speed=0) as pbx:
        _, port = pbx.address
        pbx.pause()
        # Another AMI session watches the call start, then leaves; the call goes on (the daemon starts at once).
        seen: list[AmiMessage] = []
        other = asyncio.create_task(AmiClient(AmiSettings(port=port, secret="cti-secret"), seen.append).run())
        await serve_through(pbx, events_of(trace), answered, "the answer")
        await wait_until(lambda: any(m.get("DialStatus") == "ANSWER" for m in seen), 20, "the call is up")
        other.cancel()
        await asyncio.gather(other, return_exceptions=True)
        config = write_config(tmp_path, port)
        async with RunningDaemon(settings_for(tmp_path, port)) as running:
            await wait_until(lambda: resyncs(pbx) >= 2, 10, "the daemon listened and resynced")
            pbx.resume()
            await wait_until(lambda: pbx.finished.is_set() and not running.daemon.book.calls, 30, "the call ended")
    getvars = [a.message for a in pbx.received_actions if a.message.action == "Getvar"]
    assert any(g.get("Variable") == "MIXMONITOR_FILENAME" for g in getvars)
    (row,) = journal(config)
    (truth,) = load_truth(trace)
    assert row["complete"] is False and row["answered_by"] == "103"
    assert row["recording"] == truth["recording"]
    assert truth["talk_seconds"] - 1 <= row["talk_seconds"] <= truth["talk_seconds"] + 4


async def test_store_backlog_pauses_reading_and_loses_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """When the store falls behind, the daemon stops reading the PBX until it catches up: memory
    stays bounded, and every call still reaches the journal."""
    traces = [TRACES[k] for k in ("07", "10", "13", "29", "31", "36")]
    async with ReplayPbx(traces, speed=0, loop=True) as pbx:
        _, port = pbx.address
        config = write_config(tmp_path, port)
        settings = settings_for(tmp_path, port)
        # A store that commits only every 10 s unless forced, and calls 100 unwritten items a backlog.
        settings = settings.model_copy(update={"store": settings.store.model_copy(
            update={"max_pending": 100, "flush_interval": 10.0, "batch_size": 100_000})})
        ended: list[Effect] = []
        async with RunningDaemon(settings) as running:
            running.daemon.subscribe(lambda e: ended.append(e) if isinstance(e, CallEnded) else None)
            await wait_until(lambda: running.daemon.store_pauses >= 2, 60, "the store fell behind twice")
    assert "writes behind: pausing AMI reading" in caplog.text
    rows = journal(config)
    assert len(rows) == len(ended) >= 200  # every call that ended was saved


async def test_clean_stop_mid_call_then_start_completes_the_call(tmp_path: Path) -> None:
    """SIGTERM's path during a call: the calls in progress are journaled, the next start finishes them."""
    trace = TRACES["21"]
    async with ReplayPbx([trace], speed=0) as pbx:
        _, port = pbx.address
        pbx.pause()  # taken to the answer, and held there until the second daemon listens
        config = write_config(tmp_path, port)
        async with RunningDaemon(settings_for(tmp_path, port)) as first:
            await serve_through(pbx, events_of(trace), answered, "the answer")
            await first.wait_for_effect(CallAnswered)
        assert _live_rows(tmp_path / "journal.sqlite") > 0
        async with RunningDaemon(settings_for(tmp_path, port)) as second:
            assert second.daemon.book.calls, "the call in progress was rebuilt from the journal"
            await wait_until(lambda: resyncs(pbx) >= 2, 10, "the second daemon listened and resynced")
            pbx.resume()
            await wait_until(lambda: pbx.finished.is_set() and not second.daemon.book.calls, 30, "the call ended")
    rows = journal(config)
    assert compare_with_truth(rows, load_truth(trace)) == []
