"""The live tests' loopback PBX (SIP registrar and caller: ``sip_peer.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.live.sip_peer import FakePbx


@pytest.fixture
async def sip_pbx() -> AsyncIterator[FakePbx]:
    peer = FakePbx()
    await peer.start()
    yield peer
    peer.close()
