"""A listener that raises costs nobody anything: the journal and the other listeners get every effect.

Finding 8 of the security issue: a caller name the terminal journal could not print made the daemon's AMI
sink raise, and the rest of that AMI message's effects (a finished call's journal row among them) were
skipped. The daemon now stages first and hands each effect to each listener on its own.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from asterisk.replay import ReplayPbx
from cti.effects import CallEnded, Effect
from tests.daemon.conftest import RunningDaemon, journal, settings_for, wait_until, write_config
from tests.traces import TRACES, compare_with_truth, load_truth

#: Two traces with several effects per AMI message (a transfer, a queue call).
TRACE_NAMES = ["13-blind-transfer-redirect", "07-queue-ringall-answered", "08-queue-abandon"]


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("name", TRACE_NAMES)
async def test_a_listener_raising_on_every_effect_costs_the_journal_and_other_listeners_nothing(
        name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    trace = TRACES / name
    seen: list[Effect] = []

    def broken(effect: Effect) -> None:
        raise Boom(f"cannot show {type(effect).__name__}")

    async with ReplayPbx([trace], speed=0) as pbx:
        pbx.pause()
        port = pbx.address[1]
        config = write_config(tmp_path, port)
        async with RunningDaemon(settings_for(tmp_path, port)) as running:
            running.daemon.subscribe(broken)
            running.daemon.subscribe(seen.append)
            with caplog.at_level(logging.WARNING, logger="companion.daemon"):
                pbx.resume()
                await wait_until(lambda: pbx.finished.is_set(), 30, "the replay finished")
                await wait_until(lambda: not running.daemon.book.calls, 10, "every call ended")
            failures = getattr(running.daemon, "listener_failures", None)

    truth = load_truth(trace)
    assert compare_with_truth(journal(config), truth) == []
    ended = {e.record.linkedid for e in seen if isinstance(e, CallEnded)}
    assert ended == {c["linkedid"] for c in truth}, "the listener after the broken one missed calls"
    assert failures == len(seen), "every effect the broken listener got was counted as its failure"
    tracebacks = [r for r in caplog.records if r.exc_info and "listener" in r.getMessage()]
    assert len(tracebacks) == 1, "the failing listener is logged once, not once per effect"
