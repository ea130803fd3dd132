"""One item the database refuses costs only itself, on every store: the batch is saved one by one around it."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from store.repository import Store
from tests.store.builders import T0, make_call, missed_for


async def test_one_bad_item_does_not_cost_the_rest_of_its_batch(store: Store, caplog: pytest.LogCaptureFixture
                                                                 ) -> None:
    good = [make_call(f"good-{i}", started_at=T0 + i) for i in range(5)]
    bad = make_call("bad", started_at=T0 + 2.5)
    # "closed" with nobody having closed it: the schema refuses it.
    broken_entry = dataclasses.replace(missed_for(bad), status="closed", closed_by=None)
    for record in good[:3]:
        store.stage_call(record, missed_for(record), ())
    store.stage_call(bad, broken_entry, ())
    for record in good[3:]:
        store.stage_call(record, missed_for(record), ())
    with caplog.at_level(logging.WARNING, logger="store"):
        await store.flush()
    assert await store.list_calls() == good
    assert len(await store.list_missed()) == 5
    assert any("dropped call bad and its missed entry" in r.getMessage() for r in caplog.records)
