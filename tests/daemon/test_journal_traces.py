"""Every recorded trace, replayed over TCP into the daemon, gives the journal truth.json describes.

The replay PBX serves the trace on a loopback port; the daemon (config.example.toml with only
[ami] and [store] changed) connects, logs in, resyncs and follows the calls; then ``cti calls
--format json`` — the interface other tools rely on — is compared with ``truth.json`` field by field
and with Asterisk's own ``cdr.csv``. A trace folder added later is picked up with no code change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asterisk.messages import action
from asterisk.replay import ReplayPbx, load_trace
from tests.daemon.conftest import (
    QUICK_RECONNECT,
    RunningDaemon,
    epochs,
    journal,
    resyncs,
    settings_for,
    wait_until,
    write_config,
)
from tests.traces import compare_with_cdr, compare_with_truth, load_cdr, load_truth, trace_dirs


async def replay_trace(trace: Path, tmp_path: Path, **replay: object) -> Path:
    """Replay one trace into a fresh daemon until every call ended; return the config used."""
    async with ReplayPbx([trace], speed=0, **replay) as pbx:  # type: ignore[arg-type]
        _, port = pbx.address
        config = write_config(tmp_path, port)
        async with RunningDaemon(settings_for(tmp_path, port)) as running:
            await wait_until(lambda: pbx.finished.is_set(), 30, "the replay finished")
            await wait_until(lambda: not running.daemon.book.calls, 10, "every call ended")
    return config


@pytest.mark.parametrize("trace", trace_dirs(), ids=lambda p: p.name)
async def test_journal_matches_truth_and_cdr(trace: Path, tmp_path: Path) -> None:
    config = await replay_trace(trace, tmp_path)
    rows = journal(config)
    assert compare_with_truth(rows, load_truth(trace)) == []
    assert compare_with_cdr(rows, load_cdr(trace), epoch=epochs(rows)) == []
    for row in rows:  # ISO 8601 with an offset, and an outcome from the documented set
        assert row["started_at"][-6] in "+-" and row["outcome"] in ("answered", "missed", "failed")


@pytest.mark.parametrize("chunk_size", [1, 7])
async def test_cyrillic_names_survive_any_tcp_chunking(chunk_size: int, tmp_path: Path) -> None:
    """1-byte and random-size writes cut UTF-8 letters in two; the journal's names stay whole."""
    traces = {p.name[:2]: p for p in trace_dirs()}
    for key in ("07", "23"):
        sub = tmp_path / f"{key}-{chunk_size}"
        sub.mkdir()
        config = await replay_trace(traces[key], sub, chunk_size=chunk_size, chunk_seed=3)
        rows = journal(config)
        assert compare_with_truth(rows, load_truth(traces[key])) == []
        assert rows[0]["caller_name"] in ("Кузьмин Алексей", "Иванов Пётр")


@pytest.mark.parametrize("trace", trace_dirs(), ids=lambda p: p.name)
async def test_connection_dropped_mid_trace_changes_nothing(trace: Path, tmp_path: Path) -> None:
    """Drop the AMI connection in the longest quiet moment of every trace (a call ringing or talking) and reconnect
    within it: after the resync the journal still matches truth.json field by field, as if nothing had happened (a
    call that lived through the drop is ``complete: false``; tests/daemon/test_drop_every_index.py drops at every
    index, with the events of the outage lost).

    The stream is held from the drop until the daemon has resynced: the quiet moment holds no event, so nothing
    the PBX does is lost, however long the reconnect takes on a loaded machine (at real speed the reconnect had to
    beat the next event: 1.5 s of replay per trace).
    """
    loaded = load_trace(trace)
    times = [e.t for e in loaded.events]
    # Cut in the longest quiet moment: after event ``cut``, the longest wait for the next one.
    cut = max(range(1, len(times) - 1), key=lambda i: times[i + 1] - times[i])
    async with ReplayPbx([loaded], speed=0) as pbx:
        _, port = pbx.address
        pbx.pause()
        config = write_config(tmp_path, port, extra_ami=QUICK_RECONNECT)
        async with RunningDaemon(settings_for(tmp_path, port, extra_ami=QUICK_RECONNECT)) as running:
            client = running.daemon.client
            assert client is not None
            await wait_until(lambda: resyncs(pbx) >= 1, 10, "the daemon listened and resynced")
            assert pbx.advance(cut + 1) == cut + 1  # up to the quiet moment
            await client.send_action(action("Ping"))  # answered after every event before it: all read
            pbx.drop_connections()
            await wait_until(lambda: client.connections == 2 and resyncs(pbx) >= 2, 10, "the daemon resynced")
            pbx.resume()
            await wait_until(lambda: pbx.finished.is_set(), 30, "the replay finished")
            await wait_until(lambda: not running.daemon.book.calls, 10, "every call ended")
    rows = journal(config)
    assert compare_with_truth(rows, load_truth(trace)) == []
