"""One daemon follows several PBXs (``[[pbxs]]``): each on its own connection, into one journal, kept apart.

Both replay PBXs serve the *same* traces, so every linkedid, channel name and extension of one PBX is also one
of the other's: the hardest case for keeping PBXs apart (two real PBXs collide more rarely, but they do). Each
PBX's journal must still match truth.json, a drop of one PBX's connection must cost the other nothing, and a
restart must rebuild each PBX's calls in progress from that PBX's own events.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from asterisk.messages import action
from asterisk.replay import ReplayPbx, load_trace
from companion.config import load_config
from tests.cli_runner import cti
from tests.daemon.conftest import (
    QUICK_RECONNECT,
    RunningDaemon,
    journal,
    resyncs,
    wait_until,
    write_pbxs_config,
)
from tests.traces import compare_with_truth, load_truth, trace_dirs

TRACES = {p.name[:2]: p for p in trace_dirs()}
#: A queue call answered, a queue call abandoned (a missed entry), an internal call.
PICKED = [TRACES["07"], TRACES["08"], TRACES["18"]]


def truth_of(traces: list[Path]) -> list[dict[str, Any]]:
    return [call for trace in traces for call in load_truth(trace)]


def of_pbx(rows: list[dict[str, Any]], pbx: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["pbx"] == pbx]


async def test_two_pbxs_with_the_same_linkedids_are_journaled_apart(tmp_path: Path) -> None:
    async with ReplayPbx(PICKED, speed=0) as msk, ReplayPbx(PICKED, speed=0) as spb:
        config = write_pbxs_config(tmp_path, {"msk": msk.address[1], "spb": spb.address[1]})
        async with RunningDaemon(load_config(config)) as running:
            await wait_until(lambda: msk.finished.is_set() and spb.finished.is_set(), 30, "both replays finished")
            await wait_until(lambda: not any(link.book.calls for link in running.daemon.links.values()), 10,
                             "every call of both PBXs ended")
    rows = journal(config)
    truth = truth_of(PICKED)
    assert len(rows) == 2 * len(truth)
    assert compare_with_truth(of_pbx(rows, "msk"), truth) == []
    assert compare_with_truth(of_pbx(rows, "spb"), truth) == []
    # The CLI narrows the journal and the register to one PBX.
    spb_only = json.loads(cti("calls", "--config", str(config), "--format", "json", "--pbx", "spb").stdout)
    assert [r["linkedid"] for r in spb_only] == [r["linkedid"] for r in of_pbx(rows, "spb")]
    assert {r["pbx"] for r in spb_only} == {"spb"}
    missed = json.loads(cti("missed", "--config", str(config), "--format", "json").stdout)
    assert sorted(m["pbx"] for m in missed) == ["msk", "spb"]  # the abandoned call, once per PBX
    assert len({m["linkedid"] for m in missed}) == 1
    unknown = cti("calls", "--config", str(config), "--pbx", "nsk", check=False)
    assert unknown.returncode == 2 and "nsk" in unknown.stderr and "msk" in unknown.stderr


async def test_one_pbx_dropping_costs_the_other_nothing(tmp_path: Path) -> None:
    """SPb's connection drops in its longest quiet moment: it reconnects and resyncs on its own, Moscow's link is
    never touched (one login, one resync), and both journals match truth.json."""
    loaded = load_trace(TRACES["07"])
    times = [e.t for e in loaded.events]
    cut = max(range(1, len(times) - 1), key=lambda i: times[i + 1] - times[i])
    async with ReplayPbx([loaded], speed=0) as msk, ReplayPbx([loaded], speed=0) as spb:
        spb.pause()
        config = write_pbxs_config(tmp_path, {"msk": msk.address[1], "spb": spb.address[1]},
                                   extra_ami=QUICK_RECONNECT)
        async with RunningDaemon(load_config(config)) as running:
            links = running.daemon.links
            spb_client = links["spb"].client
            assert spb_client is not None
            await wait_until(lambda: resyncs(spb) >= 1, 10, "the daemon resynced SPb")
            assert spb.advance(cut + 1) == cut + 1
            await spb_client.send_action(action("Ping"))  # answered after every event before it: all read
            spb.drop_connections()
            await wait_until(lambda: spb_client.connections == 2 and resyncs(spb) >= 2, 10, "SPb resynced")
            spb.resume()
            await wait_until(lambda: msk.finished.is_set() and spb.finished.is_set(), 30, "both replays finished")
            await wait_until(lambda: not any(link.book.calls for link in links.values()), 10, "every call ended")
            msk_client = links["msk"].client
            assert msk_client is not None and msk_client.connections == 1 and resyncs(msk) == 1
    rows = journal(config)
    truth = load_truth(TRACES["07"])
    assert compare_with_truth(of_pbx(rows, "msk"), truth) == []
    assert compare_with_truth(of_pbx(rows, "spb"), truth) == []
    assert all(r["complete"] for r in of_pbx(rows, "msk"))


async def test_a_restart_rebuilds_each_pbx_from_its_own_events(tmp_path: Path) -> None:
    """The daemon stops while a call of the same linkedid rings on both PBXs; Moscow's call is then answered
    and ends while the daemon is down, SPb's goes on. After the restart each PBX's resync settles its own call:
    Moscow's ended (incomplete), SPb's still in progress, never one mistaken for the other."""
    loaded = load_trace(TRACES["07"])
    async with ReplayPbx([loaded], speed=0) as msk, ReplayPbx([loaded], speed=0) as spb:
        msk.pause()
        spb.pause()
        config = write_pbxs_config(tmp_path, {"msk": msk.address[1], "spb": spb.address[1]},
                                   extra_ami=QUICK_RECONNECT)
        settings = load_config(config)
        first_newchannel = next(i for i, e in enumerate(loaded.events) if e.message.get("Event") == "Newchannel")
        async with RunningDaemon(settings) as running:
            await wait_until(lambda: resyncs(msk) >= 1 and resyncs(spb) >= 1, 10, "both PBXs resynced")
            for pbx in (msk, spb):
                pbx.advance(first_newchannel + 1)
            links = running.daemon.links
            await wait_until(lambda: all(link.book.calls for link in links.values()), 10, "a call on each PBX")
            linkedid = next(iter(links["msk"].book.calls))
            assert linkedid in links["spb"].book.calls  # the same linkedid on both
        # Down: Moscow's trace plays to its end (the call is answered and ends), SPb's stays where it was.
        msk.resume()
        await wait_until(lambda: msk.finished.is_set(), 30, "Moscow's replay finished while the daemon was down")
        async with RunningDaemon(settings) as running:
            links = running.daemon.links
            await wait_until(lambda: resyncs(msk) >= 2 and resyncs(spb) >= 2, 10, "both PBXs resynced again")
            await wait_until(lambda: not links["msk"].book.calls, 10, "Moscow's call settled as ended")
            assert linkedid in links["spb"].book.calls  # SPb's goes on: its channel is still up there
            spb.resume()
            await wait_until(lambda: spb.finished.is_set(), 30, "SPb's replay finished")
            await wait_until(lambda: not links["spb"].book.calls, 10, "SPb's call ended")
    rows = journal(config)
    assert [(r["pbx"], r["linkedid"], r["complete"]) for r in rows if r["linkedid"] == linkedid] in (
        [("msk", linkedid, False), ("spb", linkedid, False)], [("spb", linkedid, False), ("msk", linkedid, False)])


def test_check_config_and_users_name_the_pbxs(tmp_path: Path) -> None:
    """``cti check-config`` says which PBXs the daemon will follow; an agent of a site with several PBXs is
    created for one of them (101 is a phone of one PBX), an admin for all or some."""
    config = str(write_pbxs_config(tmp_path, {"msk": 5038, "spb": 5039}))
    out = cti("check-config", "--config", config).stdout
    assert "PBXs msk cti@127.0.0.1:5038, spb cti@127.0.0.1:5039" in out
    password = "correct horse battery\n"
    vague = cti("users", "add", "anna", "--role", "agent", "--extension", "101", "--config", config,
                "--password-stdin", input=password, check=False)
    assert vague.returncode == 2 and "give --pbx" in vague.stderr and "msk, spb" in vague.stderr
    typo = cti("users", "add", "anna", "--role", "agent", "--extension", "101", "--pbx", "nsk", "--config", config,
               "--password-stdin", input=password, check=False)
    assert typo.returncode == 2 and "'nsk'" in typo.stderr
    cti("users", "add", "anna", "--role", "agent", "--extension", "101", "--pbx", "spb", "--config", config,
        "--password-stdin", input=password)
    cti("users", "add", "boss", "--role", "admin", "--config", config, "--password-stdin", input=password)
    listed = {u["name"]: u["pbxs"] for u in json.loads(cti("users", "list", "--config", config, "--format",
                                                           "json").stdout)}
    assert listed == {"anna": "spb", "boss": "*"}
    # Anna moves to Moscow; the boss is limited to St Petersburg; an agent cannot belong to every PBX.
    assert "anna now belongs to msk" in cti("users", "pbx", "anna", "--pbx", "msk", "--config", config).stdout
    cti("users", "pbx", "boss", "--pbx", "spb", "--config", config)
    everywhere = cti("users", "pbx", "anna", "--pbx", "all", "--config", config, check=False)
    assert everywhere.returncode == 2 and "one of msk, spb" in everywhere.stderr
    nobody = cti("users", "pbx", "olga", "--pbx", "msk", "--config", config, check=False)
    assert nobody.returncode == 1 and "olga" in nobody.stderr
    listed = {u["name"]: u["pbxs"] for u in json.loads(cti("users", "list", "--config", config, "--format",
                                                           "json").stdout)}
    assert listed == {"anna": "msk", "boss": "spb"}
