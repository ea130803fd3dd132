"""`cti calls` reads lean rows and formats them itself (issue 10: 11,000 rows/s was too slow for a month's export):
what it prints must stay exactly what the records' ``to_json`` printed through the generic writers, and its local
times exactly ``iso_time``'s, in any zone, across daylight-saving changes."""

from __future__ import annotations

import io
import random
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from companion.call_rows import LocalTimes, print_calls
from companion.output import CALL_COLUMNS, Format, stream
from cti.records import LegRecord, iso_time
from store import StoreSettings, open_store
from tests.store.builders import T0, make_call, missed_for

ZONES = ("Europe/Moscow", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu",
         "Australia/Lord_Howe", "America/St_Johns", "UTC", "Pacific/Chatham")


def _offset(tz: ZoneInfo, epoch: float) -> Any:
    return datetime.fromtimestamp(epoch, tz).utcoffset()


def test_local_times_are_iso_time_in_every_zone_and_across_clock_changes() -> None:
    rng = random.Random(10)
    for name in ZONES:
        tz = ZoneInfo(name)
        epochs: list[float] = [0.0, 0.0005, 0.9999995, 1.0000005, T0, T0 + 0.0015, T0 + 59.9995, 4102444799.9999]
        epochs += [rng.uniform(0, 4_102_444_800) for _ in range(3000)]  # 1970 to 2100
        for year in (1991, 2021, 2026):  # every second of each hour in which the clock changes
            start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
            for hour in range(start, start + 366 * 86400, 3600):
                if _offset(tz, hour) != _offset(tz, hour + 3600):
                    epochs += [second + rng.random() for second in range(hour - 2, hour + 3602)]
        epochs += [-1.5, -86400.25, 253_402_200_000.5]  # before 1970, the last day of year 9999
        times = LocalTimes(tz)
        as_json, as_cell = times.formatter('"', "null"), times.formatter("", "")
        for epoch in epochs:
            text = iso_time(epoch, tz)
            assert times.iso(epoch) == text, (name, epoch)
            assert times.table(epoch) == f"{text}"[:19].replace("T", " "), (name, epoch)  # as output.cell shows it
            assert as_json(epoch) == f'"{text}"' and as_cell(epoch) == text, (name, epoch)
    assert LocalTimes(None).iso(T0) == iso_time(T0, None)
    assert LocalTimes(None).formatter("'", "-")(T0) == f"'{iso_time(T0, None)}'"
    assert LocalTimes(ZoneInfo("UTC")).iso(None) is None
    assert LocalTimes(ZoneInfo("UTC")).formatter('"', "null")(None) == "null"


#: Values a caller or an author controls, each one a trap for one of the formats.
NASTY = ["=HYPERLINK(\"http://x\")", "+7 916 123-45-67", "-5", "'=1+1", "@SUM(A1)", "Иванов \x1b[31mПётр",
         "a\u202eb", "tab\there", "line\nbreak", "quote \" and \\ back", "100%", "%s %d", "x" * 40, "T" * 30,
         "2026-11-24T09:15:00x", "\x7f", "\x9b31m", "", "\uff1dcmd", "a, b", "cr\rhere",
         "=1,2", "漢字テスト", "e\u0301", "a\u200db", "☺\ufe0f", "inf", "nan", "ООО Доставка №88", "№",
         "1793485796.528704T1x", "'plain"]
#: What most rows hold: names in Cyrillic (with the number sign), ordinary numbers, times, no character to escape.
PLAIN = ["Иванов Пётр", "ООО Автопарк №87", "Petrov Ivan", "Müller-Lüdenscheidt", "support-rr", "O'Neil"]


def _plain(i: int) -> bool:
    """Blocks of plain rows between rows of traps, so that pages of both kinds meet at every seam."""
    return (i // 150) % 2 == 1


def _calls() -> list[Any]:
    calls = []
    for i in range(700):  # more than a page of 500
        text = PLAIN[i % len(PLAIN)] if _plain(i) else NASTY[i % len(NASTY)]
        answered = i % 3 == 0
        call = make_call(f"{1795479242 + i}.{i}", started_at=T0 + 37.3 * i + (i % 7) / 7, answered=answered,
                         answered_by="101" if answered else None, caller=text if i % 5 == 0 else f"7916{i:07d}",
                         caller_name=None if i % 4 == 0 else text, called=None if i % 11 == 0 else "74951234567",
                         direction=("inbound", "outbound", "internal")[i % 3])
        legs = (LegRecord(f"{i}.1", "PJSIP/101-1", "agent", "101", None, call.started_at, None, None, "ended", 16,
                          "Normal"),)
        calls.append(replace(
            call, agents_rung_not_answered=() if answered else ("102", text), queue=text if i % 6 == 0 else None,
            transferred_to=text if i % 9 == 0 else None,
            # Brackets in a list's items: its stored text is not rewritten as text (``companion.list_text``).
            recordings=(text, "r.wav") if i % 8 == 0 else ("[a]", "b]", "[]") if i % 8 == 4 and not _plain(i) else (),
            hangup_cause=16 if i % 2 else None, hangup_cause_txt=text if i % 10 == 0 else None,
            ring_seconds=(i % 13) * 1.23456, talk_seconds=(i % 17) * 10.0004999, complete=i % 19 != 0, legs=legs,
            linkedids=(call.linkedid, text) if i % 12 == 0 else (call.linkedid,)))
    return calls


async def test_the_lean_listing_prints_what_the_records_printed(tmp_path: Path) -> None:
    async with open_store(StoreSettings(path=tmp_path / "j.sqlite"), region="RU") as store:
        for call in _calls():
            store.stage_call(call, missed_for(call) if call.outcome == "missed" else None, ())
        await store.flush()
        filters: list[dict[str, Any]] = [
            {}, {"agent": "102"}, {"agent": "101", "since": T0 + 3000}, {"number": "79160000001"},
            {"number": "+7 916 123-45-67"}, {"direction": "outbound", "until": T0 + 20000}, {"outcome": "missed"},
            {"limit": 501}, {"since": T0 + 1000, "until": T0 + 9000},
        ]
        for tz_name in ("Europe/Moscow", "America/New_York"):
            tz = ZoneInfo(tz_name)
            for f in filters:
                for fmt in Format:
                    expected, got = io.StringIO(), io.StringIO()
                    records = (r.to_json(tz) async for r in store.iter_calls(**f))
                    n = await stream(records, fmt, CALL_COLUMNS, "Call journal", expected)
                    assert await print_calls(lambda fields, f=f: store.iter_call_pages(  # type: ignore[misc]
                        **f, page_size=64, fields=fields, stored=True), fmt, tz, got) == n
                    assert got.getvalue() == expected.getvalue(), (tz_name, f, fmt)
                    assert n > 0, f


async def test_printing_leaves_the_thread_switch_interval_as_it_found_it(tmp_path: Path) -> None:
    """A listing shortens Python's switch interval while it prints (the store's reader thread starts the next
    page's query sooner), and gives it back even when the output fails."""
    import sys

    import pytest

    async with open_store(StoreSettings(path=tmp_path / "j.sqlite"), region="RU") as store:
        for call in _calls()[:10]:
            store.stage_call(call, None, ())
        await store.flush()
        before = sys.getswitchinterval()

        class Full(io.StringIO):
            def write(self, text: str) -> int:
                raise OSError(28, "No space left on device")

        for out in (io.StringIO(), Full()):
            try:
                await print_calls(lambda fields: store.iter_call_pages(fields=fields, stored=True), Format.json,
                                  None, out)
            except OSError:
                assert isinstance(out, Full)
            assert sys.getswitchinterval() == pytest.approx(before)


async def test_a_page_starts_where_the_last_one_ended_not_at_the_ranges_start(tmp_path: Path) -> None:
    """Given both ``since`` and the previous page's last row, SQLite seeks its index to one bound only: a page
    that sought to ``since`` re-read every row before it (a month's export read 20 million index entries)."""
    from store.repository import CallKey, MissedKey
    from store.sqlite.journal import CallFilter, calls_query

    async with open_store(StoreSettings(path=tmp_path / "j.sqlite"), region="RU") as store:
        calls = _calls()
        for call in calls:
            store.stage_call(call, missed_for(call) if call.outcome == "missed" else None, ())
        await store.flush()
        for f, newest_first in ((CallFilter(since=T0 + 100), False), (CallFilter(until=T0 + 20000), True),
                                (CallFilter(since=T0 + 100, agent="101"), False)):
            for lean in (False, True):
                sql, params = calls_query(f, region="RU", newest_first=newest_first, after=(T0 + 5000, "x", "main"),
                                          limit=10, lean=lean)
                steps = [str(r[3]) for r in await store.lanes.reader.execute_fetchall(  # type: ignore[attr-defined]
                    "EXPLAIN QUERY PLAN " + sql, params)]
                assert any("(started_at,linkedid,pbx)" in s for s in steps), steps
        # A place given by a caller before the range's start does not widen the range.
        early = CallKey(T0 - 1000, "0")
        got = await store.list_calls(since=T0 + 100, after=early, limit=5)
        assert [c.linkedid for c in got] == [c.linkedid for c in calls if c.started_at >= T0 + 100][:5]
        late = CallKey(T0 + 10**6, "0")
        got = await store.list_calls(until=T0 + 200, after=late, newest_first=True)
        assert [c.linkedid for c in got] == [c.linkedid for c in reversed(calls) if c.started_at < T0 + 200]
        missed = await store.list_missed()
        got_missed = await store.list_missed(since=T0 + 100, after=MissedKey(T0 - 1000, 0), limit=5)
        assert got_missed == [m for m in missed if m.missed_at >= T0 + 100][:5]
        streamed = [m async for m in store.iter_missed(since=T0 + 100, page_size=7)]
        assert streamed == [m for m in missed if m.missed_at >= T0 + 100]


def _text_file(path: Path) -> TextIO:
    """A file as ``cti calls > FILE`` has it on stdout: text over a byte buffer, UTF-8, strict."""
    return open(path, "w", encoding="utf-8", newline="")


async def test_a_listing_into_a_file_is_the_same_text(tmp_path: Path) -> None:
    """Into a file (or a pipe) a page goes out as the bytes its checks were made on; the same text as elsewhere."""
    async with open_store(StoreSettings(path=tmp_path / "j.sqlite"), region="RU") as store:
        for call in _calls():
            store.stage_call(call, missed_for(call) if call.outcome == "missed" else None, ())
        await store.flush()
        tz = ZoneInfo("Europe/Moscow")
        for fmt in Format:
            expected = io.StringIO()
            records = (r.to_json(tz) async for r in store.iter_calls())
            await stream(records, fmt, CALL_COLUMNS, "Call journal", expected)
            path = tmp_path / f"out.{fmt}"
            with _text_file(path) as out:
                await print_calls(lambda fields: store.iter_call_pages(page_size=100, fields=fields, stored=True),
                                  fmt, tz, out)
            assert path.read_bytes() == expected.getvalue().encode(), fmt


async def test_pages_of_some_fields_hold_those_fields_of_the_rows(tmp_path: Path) -> None:
    """``iter_call_pages(fields=...)`` reads only what a printer shows, and pages on as ``iter_call_rows`` does, even
    when the fields leave out the journal's order (``started_at``, ``linkedid``)."""
    import pytest

    async with open_store(StoreSettings(path=tmp_path / "j.sqlite"), region="RU") as store:
        for call in _calls():
            store.stage_call(call, missed_for(call) if call.outcome == "missed" else None, ())
        await store.flush()
        rows = [r async for r in store.iter_call_rows(agent="102")]
        assert len(rows) > 100
        for fields in (("caller", "agents_rung_not_answered", "answered"), ("linkedids", "complete", "started_at"),
                       ("queue",)):
            pages = [p async for p in store.iter_call_pages(agent="102", page_size=37, fields=fields, limit=150)]
            assert [len(p) for p in pages] == [37, 37, 37, 37, 2]
            assert [r for p in pages for r in p] == [tuple(getattr(r, f) for f in fields) for r in rows[:150]]
        whole = [r for p in [p async for p in store.iter_call_pages(agent="102", page_size=37)] for r in p]
        assert whole == rows
        with pytest.raises(ValueError, match="legs"):
            async for _ in store.iter_call_pages(fields=("caller", "legs")):
                pass
