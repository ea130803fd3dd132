"""One call the database cannot hold costs only itself: the writer logs and drops it, saves the others, goes on."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from store.repository import Store
from tests.conftest import UNIT
from tests.store.builders import T0, make_call


async def test_a_number_beyond_64_bits_drops_that_call_only_and_the_writer_goes_on(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    writer = asyncio.create_task(store.run_writer())
    huge = dataclasses.replace(make_call("huge", started_at=T0 + 1), hangup_cause=10**25)  # a PBX's bogus Cause
    with caplog.at_level(logging.WARNING, logger="store"):
        for record in (make_call("before", started_at=T0), huge, make_call("after", started_at=T0 + 2)):
            store.stage_call(record, None, ())
        async with asyncio.timeout(5 * UNIT):
            while store.pending_count:
                await asyncio.sleep(0.01)
    assert not writer.done(), "the writer task is still running"
    store.stage_call(make_call("later", started_at=T0 + 3), None, ())
    await store.flush()
    assert [c.linkedid for c in await store.list_calls()] == ["before", "after", "later"]
    assert any("dropped" in r.getMessage() and "huge" in r.getMessage() for r in caplog.records)
    writer.cancel()
    await asyncio.wait([writer])
