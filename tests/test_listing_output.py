"""`cti calls` and `cti missed` print rows as they are read: the same output as the whole list would give, without
holding the list (issue 10: a year of calls as a table took 108 s and 452 MB)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from companion.output import CALL_COLUMNS, TABLE_SAMPLE, Format, stream
from cti.safe_text import json_for_terminal
from store import StoreSettings, open_store
from tests.cli_runner import cti
from tests.daemon.conftest import write_config
from tests.store.builders import T0, make_call, missed_for

#: More calls than a page of the store (500) and than a table's sample, so every seam is crossed.
CALLS = 1_234


def journal_of(tmp: Path, calls: int = CALLS) -> str:
    """A journal of ``calls`` calls, every third answered, the rest missed (with register entries)."""
    config = write_config(tmp, 5038)

    async def fill() -> None:
        async with open_store(StoreSettings(path=tmp / "journal.sqlite"), region="RU") as store:
            for i in range(calls):
                answered = i % 3 == 0
                record = make_call(f"{1795479242 + i}.{i:04d}", started_at=T0 + 60 * i, answered=answered,
                                   answered_by="101" if answered else None, caller=f"7916{i:07d}",
                                   caller_name="Иванов Пётр " + "очень " * (i // 1000) + "длинное имя",
                                   agents_rung_not_answered=() if answered else ("102", "105"))
                store.stage_call(record, None if answered else missed_for(record), ())

    asyncio.run(fill())
    return str(config)


async def every_call(config: str) -> list[dict[str, Any]]:
    from companion.config import load_config

    settings = load_config(Path(config))
    async with open_store(StoreSettings(path=settings.store.path), region="RU") as store:
        return [r.to_json(settings.pbx.tzinfo()) for r in await store.list_calls()]


def test_json_and_csv_listings_are_the_whole_journal_in_the_usual_format(tmp_path: Path) -> None:
    config = journal_of(tmp_path)
    expected = asyncio.run(every_call(config))
    assert len(expected) == CALLS
    printed = cti("calls", "--config", config, "--format", "json").stdout
    assert printed == json_for_terminal(json.dumps(expected, ensure_ascii=False, indent=1)) + "\n"

    rows = list(csv.DictReader(io.StringIO(cti("calls", "--config", config, "--format", "csv").stdout)))
    assert [r["linkedid"] for r in rows] == [r["linkedid"] for r in expected]
    assert rows[1]["agents_rung_not_answered"] == "102;105" and list(rows[0]) == list(expected[0])

    missed = json.loads(cti("missed", "--config", config, "--format", "json").stdout)
    assert [m["linkedid"] for m in missed] == [r["linkedid"] for r in expected if r["outcome"] == "missed"]
    assert len(json.loads(cti("calls", "--config", config, "--format", "json", "--limit", "501").stdout)) == 501


def test_a_long_table_keeps_its_columns_when_later_rows_are_wider(tmp_path: Path) -> None:
    """The widths come from the first rows; a longer name later folds inside its cell, and every line of the
    table is as wide as its header, so the columns stay aligned down to the last call."""
    config = journal_of(tmp_path)
    table = cti("calls", "--config", config).stdout.splitlines()
    assert table[0].startswith("Call journal")
    border = table[1]
    assert border.startswith("┏") and all(len(line) == len(border) for line in table[1:]), "columns not aligned"
    body = "\n".join(table)
    assert all(f"{1795479242 + i}.{i:04d}" in body for i in range(CALLS)), "a call is missing"
    assert "очень" not in "\n".join(table[:TABLE_SAMPLE]) and "очень" in body  # the long names come later...
    longer = CALLS - 1000
    assert len(table) == 1 + 3 + CALLS + longer + 1  # ...and take two lines each: title, head, rows, bottom
    assert table[-1].startswith("└")


async def rows_while_watching(out: io.StringIO, seen: list[str], count: int) -> AsyncIterator[dict[str, Any]]:
    """``count`` journal rows; before each, what had been printed so far is noted in ``seen``."""
    for i in range(count):
        seen.append(out.getvalue())
        yield {"linkedid": f"call-{i}", "caller": "79161234567", "outcome": "missed" if i % 2 else "answered"}


async def test_every_format_prints_while_the_rows_still_come() -> None:
    """Constant memory: a row is written (a table's after its first sample) before the next one is read."""
    for fmt, ahead in ((Format.json, 1), (Format.csv, 1), (Format.table, TABLE_SAMPLE)):
        out, seen = io.StringIO(), []
        assert await stream(rows_while_watching(out, seen, 3 * TABLE_SAMPLE), fmt, CALL_COLUMNS, "Calls", out) == (
            3 * TABLE_SAMPLE)
        for i in range(ahead, 3 * TABLE_SAMPLE):
            assert f"call-{i - ahead}" in seen[i], (fmt, i)
        assert f"call-{3 * TABLE_SAMPLE - 1}" not in seen[-1]


async def test_nothing_to_list_still_prints_the_frame() -> None:
    async def nothing() -> AsyncIterator[dict[str, Any]]:
        return
        yield

    for fmt, expected in ((Format.json, "[]\n"), (Format.csv, ",".join(k for k, _ in CALL_COLUMNS) + "\n")):
        out = io.StringIO()
        await stream(nothing(), fmt, CALL_COLUMNS, "Calls", out)
        assert out.getvalue() == expected
    out = io.StringIO()
    await stream(nothing(), Format.table, CALL_COLUMNS, "Calls", out)
    assert out.getvalue().endswith("┘\n(nothing matches)\n") and "Linkedid" in out.getvalue()
