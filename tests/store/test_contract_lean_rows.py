"""The lean listing rows (``iter_call_rows``, ``iter_call_pages``), against the interface: the same calls, in the
same order, as ``iter_calls`` with the same filters, each row the record's listing fields and nothing else."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from cti.records import CallRecord
from store.repository import CallRow, Store
from tests.store.test_contract_streams import FILTERS, year_of_calls

SOME_FIELDS = ("started_at", "caller", "agents_answered", "answered", "linkedids", "hangup_cause")


def as_row(record: CallRecord, fields: tuple[str, ...] = CallRow._fields) -> tuple[Any, ...]:
    return tuple(getattr(record, name) for name in fields)


@pytest.fixture
async def journal(store: Store) -> list[CallRecord]:
    calls = year_of_calls()
    for record in calls:
        store.stage_call(record, None, ())
    await store.flush()
    return calls


@pytest.mark.usefixtures("journal")
async def test_lean_rows_and_pages_are_the_records_listing_fields(store: Store) -> None:
    for filters in FILTERS:
        records = [r async for r in store.iter_calls(**filters)]  # type: ignore[arg-type]
        for page_size, limit in itertools.product((1, 7, 500), (None, 5)):
            wanted = records[:limit]
            rows = [r async for r in store.iter_call_rows(page_size=page_size, limit=limit,
                                                          **filters)]  # type: ignore[arg-type]
            assert all(isinstance(r, CallRow) for r in rows)
            assert [tuple(r) for r in rows] == [as_row(r) for r in wanted], (filters, page_size, limit)
            pages = [page async for page in store.iter_call_pages(page_size=page_size, limit=limit,
                                                                   fields=SOME_FIELDS,
                                                                   **filters)]  # type: ignore[arg-type]
            assert all(0 < len(page) <= page_size for page in pages)
            assert [row for page in pages for row in page] == [as_row(r, SOME_FIELDS) for r in wanted]


async def test_an_unknown_field_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="legs"):
        async for _ in store.iter_call_pages(fields=("linkedid", "legs")):
            pass
