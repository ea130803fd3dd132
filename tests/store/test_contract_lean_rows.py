"""The lean listing rows (``iter_call_rows``, ``iter_call_pages``), against the interface: the same calls, in the
same order, as ``iter_calls`` with the same filters, each row the record's listing fields and nothing else."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from typing import Any

import pytest

from cti.records import CallRecord
from store.repository import CallRow, Store
from tests.store.builders import T0, make_call
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


#: Items of the list fields that a printer rewriting the stored text must not take for the usual form.
AWKWARD_ITEMS = ('a "quoted" name', "back\\slash", "Иванов №7", "a, b", "line\nbreak", '", "', "")


@pytest.mark.usefixtures("journal")
async def test_stored_pages_hold_the_lists_as_json_text_and_the_flags_as_stored(store: Store) -> None:
    """``iter_call_pages(stored=True)``: the same rows, each list field ``json.dumps(list, ensure_ascii=False)`` to
    the character (the printers rewrite that text without decoding it) and each flag 0/1 or a bool."""
    awkward = [replace(make_call(f"awkward-{i}", started_at=T0 + 5000 + i, answered=True, answered_by="101"),
                       agents_rung_not_answered=(item, "102"), recordings=(item,), agents_answered=("101", item),
                       linkedids=(f"awkward-{i}", item), complete=i % 2 == 0)
               for i, item in enumerate(AWKWARD_ITEMS)]
    for record in awkward:
        store.stage_call(record, None, ())
    await store.flush()
    lists = {"agents_rung_not_answered", "recordings", "agents_answered", "linkedids"}

    def as_stored(record: CallRecord, fields: tuple[str, ...]) -> tuple[Any, ...]:
        return tuple(json.dumps(list(getattr(record, f)), ensure_ascii=False) if f in lists else getattr(record, f)
                     for f in fields)

    def flags_as_bools(row: tuple[Any, ...], fields: tuple[str, ...]) -> tuple[Any, ...]:
        return tuple(bool(v) if f in ("answered", "complete") else v for f, v in zip(fields, row, strict=True))

    for filters in [*FILTERS, {"since": T0 + 5000}]:
        records = [r async for r in store.iter_calls(**filters)]  # type: ignore[arg-type]
        for fields, page_size in ((CallRow._fields, 7), (SOME_FIELDS, 500), (("recordings", "queue"), 3)):
            pages = [page async for page in store.iter_call_pages(
                page_size=page_size, fields=None if fields is CallRow._fields else fields, stored=True,
                **filters)]  # type: ignore[arg-type]
            got = [row for page in pages for row in page]
            assert all(type(row) is tuple and row.__class__ is not CallRow for row in got)
            assert all(f in ("answered", "complete") or v is None or v.__class__ is not bool
                       for row in got for f, v in zip(fields, row, strict=True))
            assert all(v in (0, 1) for row in got for f, v in zip(fields, row, strict=True)
                       if f in ("answered", "complete"))
            assert [flags_as_bools(row, fields) for row in got] == [as_stored(r, fields) for r in records], filters
