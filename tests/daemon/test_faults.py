"""The daemon under faults: a hostile value, a step of the core that raises, a locked database, a shutdown.

The product rule: the journal and the missed-call register stay right under any fault. Here over the real
parts: the replay PBX on loopback TCP, a real SQLite file (locked by a second, real connection), the daemon's
own TaskGroup. A bad event costs at most that event: never the connection, never the daemon.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path

import pytest

from asterisk.connection import AmiClient
from asterisk.messages import AmiMessage, action
from asterisk.replay import ReplayPbx
from asterisk.settings import AmiSettings
from companion.daemon import Daemon
from cti.agents import AgentBoard
from cti.effects import AgentStateChanged, CallEnded, Effect
from store import open_store
from tests.daemon.conftest import UNIT, RunningDaemon, journal, settings_for, wait_until, write_config
from tests.traces import TRACES, compare_with_truth, load_messages, load_truth, trace_dirs

TRACE = {p.name[:2]: p for p in trace_dirs()}


def spoilt_copy(tmp: Path, trace: Path, event: str, key: str, value: str) -> Path:
    """A copy of ``trace`` whose every ``event`` has ``key`` set to ``value`` (what the PBX would send)."""
    folder = tmp / f"spoilt-{trace.name}"
    folder.mkdir()
    lines = []
    for line in (trace / "ami.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        frame = item.get("msg")
        if isinstance(frame, list) and [event] == [v for k, v in frame if k == "Event"]:
            item["msg"] = [[k, value if k == key else v] for k, v in frame]
        lines.append(json.dumps(item, ensure_ascii=False))
    (folder / "ami.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name in ("truth.json", "cdr.csv"):
        (folder / name).write_bytes((trace / name).read_bytes())
    return folder


@pytest.mark.parametrize(("key", "value"), [("Cause", "²"), ("Cause", "9" * 30), ("Timestamp", "nan")],
                         ids=["superscript-two", "thirty-digits", "nan-time"])
async def test_a_hostile_hangup_from_the_pbx_costs_the_call_nothing(tmp_path: Path, key: str, value: str) -> None:
    """Every ``Hangup`` of a real call carries a hostile value: the call is journaled as it happened, over one
    connection, and the daemon counts no failure. (``Cause: ²`` used to make the model skip the Hangups: the
    call never ended; 30 digits made its row unsavable; a ``nan`` time made it unshowable.)"""
    trace = spoilt_copy(tmp_path, TRACE["01"], "Hangup", key, value)
    async with ReplayPbx([trace], speed=0) as pbx:
        _, port = pbx.address
        config = write_config(tmp_path, port)
        async with RunningDaemon(settings_for(tmp_path, port)) as running:
            await wait_until(lambda: pbx.finished.is_set() and not running.daemon.book.calls, 20, "the call ended")
            assert running.daemon.client is not None and running.daemon.client.connections == 1
            assert running.daemon.events_failed == 0
    rows = journal(config)
    assert compare_with_truth(rows, load_truth(trace)) == []
    (row,) = rows
    assert row["hangup_cause"] == (16 if key == "Timestamp" else None)


class _BrokenBoard(AgentBoard):
    """The agent board with a bug on one kind of event: what the fuzz of the core guards against, made certain."""

    def apply(self, msg: AmiMessage) -> list[AgentStateChanged]:
        if msg.event in ("Hangup", "DeviceStateChange"):
            raise RuntimeError(f"a bug on {msg.event}")
        return super().apply(msg)


async def test_a_step_of_the_core_that_raises_costs_only_that_step(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A step of the core raising on some events (here the agent board, on every ``Hangup``) costs that step's
    part of those events: the calls are still journaled right, the connection and the daemon go on, and the
    failures are counted for an admin (``GET /api/health``) and logged with one traceback."""
    traces = [TRACE["01"], TRACE["08"], TRACE["11"]]
    async with ReplayPbx(traces, speed=0) as pbx:
        _, port = pbx.address
        config = write_config(tmp_path, port)
        running = RunningDaemon(settings_for(tmp_path, port))
        running.daemon.link.agents = _BrokenBoard(running.daemon.agents.config)
        async with running:
            await wait_until(lambda: pbx.finished.is_set() and not running.daemon.book.calls, 20, "the calls ended")
            daemon = running.daemon
            assert daemon.client is not None and daemon.client.connections == 1 and daemon.client.connected
            health = daemon.health()
    rows = journal(config)
    for trace in traces:
        assert compare_with_truth([r for r in rows if r["linkedid"] in {t["linkedid"] for t in load_truth(trace)}],
                                  load_truth(trace)) == []
    assert health.events_failed == daemon.events_failed > 0
    assert caplog.text.count("Traceback") == 1 and "the agent board raised on" in caplog.text


async def test_a_locked_database_while_reading_is_paused_stops_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process holds the database's write lock while the store is behind and reading is paused: the
    daemon waits (logged, counted), keeps its connection, and once the lock is released every call that ended
    meanwhile is saved. (The flush behind the pause used to raise "database is locked" and end the daemon.)"""
    traces = [TRACE[k] for k in ("07", "10", "13", "29", "31", "36")]
    async with ReplayPbx(traces, speed=0, loop=True) as pbx:
        _, port = pbx.address
        config = write_config(tmp_path, port)
        settings = settings_for(tmp_path, port)
        # A store that commits every 2 s unless forced, and calls 100 unwritten items a backlog.
        settings = settings.model_copy(update={"store": settings.store.model_copy(
            update={"max_pending": 100, "flush_interval": 2.0, "batch_size": 100_000})})
        ended: list[Effect] = []
        async with RunningDaemon(settings) as running:
            daemon = running.daemon
            daemon.subscribe(lambda e: ended.append(e) if isinstance(e, CallEnded) else None)
            other = sqlite3.connect(tmp_path / "journal.sqlite", isolation_level=None)
            try:
                other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
                await wait_until(lambda: daemon.store_failures >= 1, 60, "committing the backlog failed")
                assert running.task is not None and not running.task.done(), "the daemon must keep running"
                assert daemon.backlogged is not None and daemon.client is not None and daemon.client.reading_paused
                calls_while_locked = len(ended)
            finally:
                other.execute("COMMIT")
                other.close()
            pauses = daemon.store_pauses
            await wait_until(lambda: daemon.store_pauses > pauses and len(ended) > calls_while_locked, 60,
                             "reading resumed and the store fell behind again")
            assert daemon.client.connections == 1
            assert daemon.health().store.failures == daemon.store_failures >= 1
            # The stop comes next. A replay at speed 0 that loops, left running once the daemon has logged off,
            # would serve events to nobody as fast as this one event loop allows and starve the store's SQLite
            # thread of the GIL (its commits took tens of seconds). A real PBX is another process: hold it.
            pbx.pause()
    assert "cannot commit the" in caplog.text and "database is locked" in caplog.text
    rows = journal(config)
    assert len(rows) == len({r["linkedid"] for r in rows}) == len(ended)  # every call that ended, once


async def test_a_variable_asked_while_the_daemon_shuts_down_is_not_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Events the AMI session still delivers while the daemon's TaskGroup shuts down (another task failed) may
    ask for a variable (a call found up at connect wants its recording's name): it is not asked, and nothing
    raises, so the other effects of that event and every later call are still saved."""
    settings = settings_for(tmp_path, 1)
    daemon = Daemon(settings)
    messages = [m if m.event != "SuccessfulAuth" else
                AmiMessage([("Event", "CtiConnected"), ("PbxTime", m.get("Timestamp"))], m.received_at)
                for m in load_messages(TRACES / "25-resync-midcall")]

    async def fails() -> None:
        raise RuntimeError("another task of the group failed")

    async with open_store(settings.store, region=settings.pbx.default_region) as store:
        daemon.store = store
        with caplog.at_level(logging.DEBUG, logger="companion.daemon"), pytest.raises(ExceptionGroup) as failed:
            async with asyncio.TaskGroup() as tg:
                daemon._tasks = tg
                tg.create_task(fails())
                try:
                    await asyncio.sleep(60)
                except asyncio.CancelledError:  # the group is shutting down: the session still delivers events
                    for msg in messages:
                        daemon.on_message(msg)
                    raise
        assert failed.group_contains(RuntimeError, match="another task")
        await store.flush()
        saved = await store.count_calls()
    assert saved == len(load_truth(TRACES / "25-resync-midcall"))
    assert daemon.events_failed == 0 and not daemon._asking
    assert "not started" in caplog.text


async def test_a_hook_on_an_actions_answer_that_raises_costs_neither_the_answer_nor_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The daemon feeds a ``Getvar`` answer to the model from a hook run inside the read: if that raised, the
    exception left ``data_received`` and asyncio closed the connection. Now it is logged, the action is
    answered, and the same connection reads on."""
    async with ReplayPbx([TRACE["01"]], speed=0) as pbx:
        _, port = pbx.address
        seen: list[AmiMessage] = []
        client = AmiClient(AmiSettings(port=port, secret="cti-secret"), seen.append)
        session = asyncio.create_task(client.run())
        try:
            await client.wait_connected(5 * UNIT)

            def broken(_answer: AmiMessage) -> None:
                raise RuntimeError("a bug in the hook")

            answer = await client.send_action(action("Ping"), on_response=broken, timeout=5 * UNIT)
            assert answer.response.response == "Success"
            await wait_until(lambda: pbx.finished.is_set() and any(m.event == "Hangup" for m in seen), 20,
                             "the trace was read on the same connection")
            assert client.connected and client.connections == 1
        finally:
            session.cancel()
            await asyncio.gather(session, return_exceptions=True)
    assert "the hook for the answer to Ping failed" in caplog.text
