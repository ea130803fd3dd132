"""The AMI connection drops at every event of every shared trace, the PBX goes on, and the journal is still right.

Asterisk does not replay what it sent while a client was away: the events of the outage are lost, and the
daemon learns the state at its reconnect from ``CoreShowChannels``/``QueueStatus``. Two sweeps, both against
``truth.json`` with the rules of :mod:`tests.outage` (exact fields, what the PBX cannot tell derived from the
trace's own events):

* **in process, every index** ``k`` of every trace (3,100+ cases per outage length, a few seconds in all): the
  model fed the trace with the events ``[k, j)`` lost, the snapshot made at the reconnect by the replay PBX's own
  state code (run once per trace: :func:`tests.outage.replay_with_outage` reads its moments). Two outage lengths:
  one TCP read (the smallest loss) and 2 recorded seconds (a reconnect).
* **over real TCP** (replay PBX, the real ``Daemon``, panoramisk, SQLite, the journal read back): at every index
  where a channel changes state (``Newstate``, ``DialBegin``/``DialEnd``, ``BridgeEnter``, ``Hangup``,
  ``Pickup``, the transfers, ``QueueCallerAbandon``), that is before every recorded read holding such an event
  (about 250 cases). Not every index: each case costs a daemon start, a reconnect and a stop (about 0.05 s on a
  quiet 2-core machine with the panel off and a 10 ms back-off), and every index of every trace (3,100+ cases)
  would add about 2.5 minutes to the suite; a read where no channel changes state loses nothing the snapshot does
  not give back, and the in-process sweep drops there too. This sweep shows the real connection, store and
  ``Getvar`` path do what the model does. The panel is off here (``[http] enabled = false``): it is one
  subscriber of the pipeline, which cannot change the journal (tests/security/test_listener_isolation.py), and
  its server's stop alone would cost each case another 0.1 s; test_journal_traces.py replays every trace with it
  on.
  The drop is made with the stream paused, the outage's events served to nobody (``ReplayPbx.advance``), then
  the stream resumed once the daemon has resynced: the loss is exactly ``[k, j)``, however loaded the machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asterisk.messages import action
from asterisk.replay import ReplayPbx, Trace, load_trace
from tests.daemon.conftest import QUICK_RECONNECT, RunningDaemon, resyncs, settings_for, wait_until
from tests.outage import Outcome, check, one_read, replay_with_outage, seconds
from tests.traces import load_truth, trace_dirs

TRACES = trace_dirs()
#: Event kinds at which a channel changes state: where the real-TCP sweep drops the connection.
STATE_CHANGES = ("Newstate", "DialBegin", "DialEnd", "BridgeEnter", "Hangup", "Pickup", "BlindTransfer",
                 "AttendedTransfer", "QueueCallerAbandon")
WINDOWS = {"one-read": one_read, "2s": seconds(2.0)}


@pytest.mark.parametrize("window", WINDOWS, ids=str)
@pytest.mark.parametrize("folder", TRACES, ids=lambda p: p.name)
def test_model_after_a_drop_at_every_index(folder: Path, window: str) -> None:
    """Every index k: the events [k, j) are lost, the snapshot at the reconnect reconciles, the journal holds."""
    trace = load_trace(folder)
    truth = load_truth(folder)
    failures = {}
    for k in range(len(trace.events) + 1):
        got = replay_with_outage(trace, k, WINDOWS[window])
        problems = check(trace, truth, got)
        if problems:
            failures[f"k={k} lost [{got.k}, {got.j})"] = problems
    assert failures == {}


def _tcp_cases() -> list[tuple[Path, int]]:
    cases = []
    for folder in TRACES:
        events = load_trace(folder).events
        for k, event in enumerate(events):
            if event.message.event in STATE_CHANGES:
                while k > 0 and events[k - 1].t == events[k].t:
                    k -= 1  # the replay serves whole recorded reads: the drop comes before the read holding it
                if (folder, k) not in cases:
                    cases.append((folder, k))
    return cases


async def _drop_over_tcp(trace: Trace, k: int, tmp_path: Path) -> Outcome:
    """The real daemon on the replay PBX, the connection dropped before event k, one read lost."""
    times = [e.t for e in trace.events]
    j = one_read([e.message for e in trace.events], times, k)
    got = Outcome(k=k, j=j)
    async with ReplayPbx([trace], speed=0) as pbx:
        _, port = pbx.address
        pbx.pause()
        settings = settings_for(tmp_path, port, extra_ami=QUICK_RECONNECT, http_extra="enabled = false")
        async with RunningDaemon(settings) as running:
            client = running.daemon.client
            assert client is not None
            await wait_until(lambda: client.connections == 1, 10, "the daemon connected")
            # Logged in is not listening: the daemon logs in with events off, adds its filters, then turns them
            # on; events served before that are dropped by the PBX (lost before k). Its resync comes after.
            await wait_until(lambda: resyncs(pbx) >= 1, 10, "the daemon listened and resynced")
            assert pbx.advance(k) == k
            await client.send_action(action("Ping"))  # answered after every event before it: all read
            pbx.drop_connections()
            pbx.advance(j - k)  # the outage: served to nobody
            await wait_until(lambda: client.connections == 2, 10, "the daemon reconnected")
            await wait_until(lambda: resyncs(pbx) >= 2, 10, "the daemon resynced")
            pbx.resume()
            await wait_until(lambda: pbx.finished.is_set(), 10, "the replay finished")
            await wait_until(lambda: not running.daemon.book.calls, 20, "every call ended")
            store = running.daemon.store
            assert store is not None
            await store.flush()
            got.records = [r async for r in store.iter_calls()]
    return got


@pytest.mark.parametrize(("folder", "k"), _tcp_cases(), ids=lambda v: v.name if isinstance(v, Path) else str(v))
async def test_daemon_after_a_drop_over_tcp(folder: Path, k: int, tmp_path: Path) -> None:
    """The real daemon, dropped at k with one read lost: the journal read back from the store holds."""
    trace = load_trace(folder)
    got = await _drop_over_tcp(trace, k, tmp_path)
    assert check(trace, load_truth(folder), got) == []
