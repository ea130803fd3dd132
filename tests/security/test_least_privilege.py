"""The daemon works with an AMI user that has no ``system`` write class (docs/security.md).

``system`` lets an AMI client restart Asterisk and ``Originate`` into the ``System`` application: shell
commands on the PBX. The daemon needs it only for the ``Filter`` action; with the filters in manager.conf
(``cti ami-user`` prints them) it follows calls and controls them without it. The replay PBX refuses every
action the user's ``write`` classes do not cover, with Asterisk's "Permission denied".
"""

from __future__ import annotations

import configparser
import logging
from pathlib import Path

import pytest

from asterisk.manager_conf import LEAST_WRITE
from asterisk.replay import ReplayPbx
from cti.model import AMI_FILTERS
from tests.daemon.conftest import RunningDaemon, cti, journal, leg_event, settings_for, wait_until, write_config
from tests.panel_env import panel_env
from tests.traces import TRACES, compare_with_truth, load_truth
from tests.ui_bridge.wsclient import WsClient

LEAST = ",".join(LEAST_WRITE)


def test_ami_user_prints_a_manager_conf_section_without_system_and_with_the_daemons_filters(tmp_path: Path) -> None:
    config = write_config(tmp_path, 5038)
    out = cti("ami-user", "--config", str(config)).stdout
    lines = out.splitlines()
    assert [line.partition(" = ")[2] for line in lines if line.startswith("eventfilter = ")] == list(AMI_FILTERS)
    parser = configparser.ConfigParser(strict=False, inline_comment_prefixes=(";",), interpolation=None)
    parser.read_string("\n".join(line for line in lines if not line.startswith("eventfilter")))
    user = parser["cti"]
    assert "system" not in user["write"].split(",")
    assert user["read"] == "call,agent,dialplan"
    assert user["permit"] == "127.0.0.1/255.255.255.255"
    refused = cti("ami-user", "--config", str(config), "--permit", "10.0.0.5\npermit=0.0.0.0", check=False)
    assert refused.returncode == 2 and "not an IPv4 address" in refused.stderr


@pytest.mark.parametrize("use_filters", [False, True], ids=["filters-in-manager-conf", "filter-action-refused"])
async def test_calls_are_followed_by_a_user_without_system(use_filters: bool, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """Calls up at connect (CoreShowChannels, Getvar) and calls seen from their start are journaled right."""
    traces = [TRACES / "25-resync-midcall", TRACES / "13-blind-transfer-redirect"]
    async with ReplayPbx(traces, speed=0, write=LEAST) as pbx:
        port = pbx.address[1]
        filters = f"use_filters = {str(use_filters).lower()}"
        config = write_config(tmp_path, port, extra_ami=filters)
        with caplog.at_level(logging.WARNING):
            async with RunningDaemon(settings_for(tmp_path, port, extra_ami=filters)) as running:
                await wait_until(lambda: pbx.finished.is_set(), 30, "the replay finished")
                await wait_until(lambda: not running.daemon.book.calls, 10, "every call ended")
    sent = {a.message.action for a in pbx.received_actions}
    assert {"CoreShowChannels", "QueueStatus"} <= sent
    assert ("Filter" in sent) == use_filters
    rows = journal(config)
    for trace in traces:
        truth = load_truth(trace)
        mine = [r for r in rows if r["linkedid"] in {c["linkedid"] for c in truth}]
        if trace.name.startswith("25"):  # seen from the middle: only what a resync can know
            assert {r["linkedid"] for r in mine} == {c["linkedid"] for c in truth}
        else:
            assert compare_with_truth(mine, truth) == []
    permission = [r.getMessage() for r in caplog.records if "ermission" in r.getMessage()]
    assert all("Filter" in text for text in permission), f"an action besides Filter was refused: {permission}"
    assert bool(permission) == use_filters, "a refused Filter is logged as a warning, and nothing else is refused"


async def test_call_control_works_for_a_user_without_system() -> None:
    async with panel_env(["13-blind-transfer-redirect"], speed=0, replay_options={"write": LEAST},
                         ami_extra="use_filters = false") as env:
        anna = await WsClient.connect(env, "anna")
        await anna.wait_for("state")
        for request in ({"type": "originate", "number": "89161234567"},
                        {"type": "queue.pause", "queue": "support", "reason": "обед"},
                        {"type": "queue.unpause", "queue": "support"}):
            reply = await anna.request(request)
            assert reply["type"] == "reply", reply
        await env.serve_through(leg_event("BridgeEnter", "PJSIP/101-"), "101 answering")  # and held there
        answered = await anna.wait_for("call.answered", timeout=20, answered_by="101")
        for request in ({"type": "transfer", "linkedid": answered["linkedid"], "target": "104", "mode": "blind"},):
            reply = await anna.request(request)
            assert reply["type"] == "reply", reply
        refused = [a.message.action for a in env.replay.received_actions if a.message.action == "Filter"]
        assert refused == []
        await anna.close()
