"""The reconnect back-off: capped low (the PBX's return is noticed within seconds), jittered, and never a hammer.

Issue 12 ("PBX health in every view"): with the old 30 s cap a PBX back after a restart stayed "lost" in the panel
for up to half a minute. The cap is 5 s by default now; the two rules that made the back-off safe are kept: the
jitter (many daemons do not reconnect in step) and a PBX that accepts the login and drops us at once is not
hammered (the back-off goes on growing, it starts again from ``reconnect_min`` only after a session that lasted).
"""

from __future__ import annotations

import itertools
import statistics

from asterisk.connection import AmiClient
from asterisk.settings import AmiSettings
from tests.conftest import ReplayFactory

from .conftest import UNIT, Recorder, ami_settings, running, trace, until


def test_the_default_cap_is_a_few_seconds_and_the_delays_are_jittered() -> None:
    settings = AmiSettings(secret="x")
    assert settings.reconnect_max == 5.0
    client = AmiClient(settings, lambda msg: None)
    delays = [client._next_delay() for _ in range(200)]
    # Doubling from 0.5 s: 0.5, 1, 2, 4, then the cap; each within ±20 % and never outside [min, max].
    assert all(settings.reconnect_min <= d <= settings.reconnect_max for d in delays)
    assert 0.5 <= delays[0] <= 0.6
    assert 0.8 <= delays[1] <= 1.2
    at_cap = delays[10:]
    assert all(4.0 <= d <= 5.0 for d in at_cap), "the cap is reached and kept"
    assert statistics.pstdev(at_cap) > 0.05, "the jitter is kept at the cap (daemons do not reconnect in step)"


async def test_a_pbx_that_drops_us_right_after_the_login_is_not_hammered(
    replay_pbx: ReplayFactory, recorder: Recorder
) -> None:
    """Every session ends at once: the attempts keep growing apart up to the cap instead of starting again from
    ``reconnect_min`` after each successful login."""
    pbx = await replay_pbx([trace("01-direct-answered")], speed=0)
    low, high = 0.05 * UNIT, 0.4 * UNIT
    client = AmiClient(ami_settings(pbx, reconnect_min=low, reconnect_max=high), recorder)
    logins: list[float] = []

    def drop_after_login(msg: object) -> None:
        # The PBX drops the session as soon as it is logged in (in the read that carries the login's answer).
        if client.connections > len(logins):
            logins.append(recorder.messages[-1].received_at)
            pbx.drop_connections()

    recorder.hook = drop_after_login
    async with running(client, wait=False):
        await until(lambda: len(logins) >= 6, 10)
    gaps = [b - a for a, b in itertools.pairwise(logins)]
    # Each gap is at least 80 % of its back-off step (0.05, 0.1, 0.2, 0.4, 0.4 ... units): never back to the floor.
    floors = [0.8 * min(high, low * 2**i) for i in range(len(gaps))]
    assert all(gap >= floor for gap, floor in zip(gaps, floors, strict=True)), f"hammered: gaps {gaps}"
    assert gaps[-1] >= 0.8 * high
