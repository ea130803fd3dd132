"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from asterisk.replay import ReplayPbx

ReplayFactory = Callable[..., Awaitable[ReplayPbx]]


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
