"""Fixtures shared by every test folder, and the suite's one time unit.

Every wait in the tests is bounded by a multiple of :data:`UNIT`, as websockets' ``tests/utils.py`` does with
``MS``: ``CTI_TEST_TIME_UNIT=3`` on a loaded or slow machine makes every timeout (and every latency bound a test
asserts) three times longer at once, so a test fails for what it checks, not for the load beside it. A test never
sleeps a fixed time to prove something: it waits on a condition, at most some ``UNIT``\\s.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from asterisk.replay import ReplayPbx

ReplayFactory = Callable[..., Awaitable[ReplayPbx]]

#: The time unit of the whole suite, in seconds (``CTI_TEST_TIME_UNIT``, default 1.0).
UNIT = float(os.environ.get("CTI_TEST_TIME_UNIT", "1.0"))


@pytest.fixture
async def replay_pbx() -> AsyncIterator[ReplayFactory]:
    """``pbx = await replay_pbx([folder], speed=0)``: a replay PBX on a free loopback port, closed after the test."""
    started: list[ReplayPbx] = []

    async def make(traces: list[Path], **options: Any) -> ReplayPbx:
        pbx = ReplayPbx(traces, **options)
        await pbx.start("127.0.0.1", 0)
        started.append(pbx)
        return pbx

    yield make
    for pbx in started:
        await pbx.close()
