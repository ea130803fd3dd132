"""A journal listing row (``store.repository.CallRow``) as ``cti calls`` prints it: JSON, CSV cells, table cells.

Why not ``CallRecord.to_json()`` and the generic writers: a month's export is 150,000 rows, and building a dict per
row, walking it with type checks, and converting three times per row through ``datetime`` cost 70-90 µs a row
(11,000 rows/s). Here each format is built straight from the row's tuple, with the columns' types known, and local
times come from :class:`LocalTimes`. The text is byte for byte what the generic path writes
(``tests/test_listing_output.py`` compares both): the same keys and order as ``to_json``, the same rounding, the
same neutralising of outside text (``cti.safe_text``).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, TextIO

from companion.output import CALL_COLUMNS, CsvWriter, Format, JsonWriter, TableWriter, cell, json_value, writer
from cti.records import iso_time
from cti.safe_text import CSV_MAY_QUOTE, csv_cell, json_for_terminal, terminal_text
from store.repository import CallRow

#: The header of a CSV export and the keys of a JSON object: ``CallRecord.to_json``'s keys, in its order.
CALL_ROW_KEYS: tuple[str, ...] = CallRow._fields


class LocalTimes:
    """``cti.records.iso_time(epoch, tz)`` for many times, at a fraction of its cost.

    The text up to the minute (``2026-11-24T09:15:``) and the offset (``+03:00``) are kept per UTC minute (at most
    :data:`_MINUTES_KEPT` of them), found from the zone's offset, itself looked up once per UTC hour; a time then
    costs its seconds and milliseconds. An hour in which the offset changes, or an offset that is not whole
    minutes, goes through ``datetime`` for every time in it. The microseconds are rounded as
    ``datetime.fromtimestamp`` rounds them (half to even), then cut to milliseconds as ``isoformat`` does.
    """

    def __init__(self, tz: tzinfo | None) -> None:
        self.tz = tz
        self._minutes: dict[int, tuple[str, str] | None] = {}
        self._hours: dict[int, tuple[int, str] | None] = {}
        self._days: dict[int, str] = {}

    def iso(self, epoch: float | None) -> str | None:
        if epoch is None:
            return None
        if self.tz is None or not 0 <= epoch < _LAST_EPOCH:  # the machine's zone, or a year out of 4 digits
            return iso_time(epoch, self.tz)
        sec = int(epoch)
        micro = round((epoch - sec) * 1e6)
        if micro >= 1_000_000:
            sec += 1
            micro -= 1_000_000
        minute, second = divmod(sec, 60)
        try:
            head = self._minutes[minute]
        except KeyError:
            head = self._minute(minute)
        if head is None:
            return iso_time(epoch, self.tz)
        return f"{head[0]}{_TWO[second]}.{_THREE[micro // 1000]}{head[1]}"

    def _minute(self, minute: int) -> tuple[str, str] | None:
        if len(self._minutes) >= _MINUTES_KEPT:
            self._minutes.clear()
            self._days.clear()
        hour = minute // 60
        found = self._hours[hour] if hour in self._hours else self._hour(hour)
        head = None
        if found is not None:
            offset, suffix = found
            day, rest = divmod(minute * 60 + offset, 86400)
            day_text = self._days.get(day)
            if day_text is None:
                day_text = self._days[day] = (_EPOCH + timedelta(days=day)).isoformat()
            hours, minutes = divmod(rest // 60, 60)
            head = f"{day_text}T{_TWO[hours]}:{_TWO[minutes]}:", suffix
        self._minutes[minute] = head
        return head

    def _hour(self, hour: int) -> tuple[int, str] | None:
        """(offset seconds, offset text) valid for the whole UTC hour, or None (the offset changes in it, or is
        not whole minutes)."""
        if len(self._hours) >= _MINUTES_KEPT:
            self._hours.clear()
        start = datetime.fromtimestamp(hour * 3600, UTC).astimezone(self.tz)
        end = datetime.fromtimestamp(hour * 3600 + 3599, UTC).astimezone(self.tz)
        offset, later = start.utcoffset(), end.utcoffset()
        found: tuple[int, str] | None = None
        if offset is not None and offset == later and not offset.microseconds and not offset.seconds % 60:
            found = int(offset.total_seconds()), start.isoformat(timespec="milliseconds")[23:]
        self._hours[hour] = found
        return found


_EPOCH = date(1970, 1, 1)
#: Epochs from the year 10,000 on go through ``datetime`` (which refuses them as it always did).
_LAST_EPOCH = 253_402_214_400
#: How many minutes (and hours) :class:`LocalTimes` keeps before starting over (a month has 43,200 minutes).
_MINUTES_KEPT = 50_000
_TWO = tuple(f"{n:02d}" for n in range(60))
_THREE = tuple(f"{n:03d}" for n in range(1000))

_encode = json.encoder.encode_basestring


def _js(text: str) -> str:
    """A string as JSON, with what a terminal would act on escaped (``json_for_terminal``, here per string: JSON
    text outside its strings is ASCII, so this is the same text, and a printable string, the usual one, is
    skipped at the cost of ``isprintable``)."""
    return _encode(text) if text.isprintable() else json_for_terminal(_encode(text))


def _jtext(value: Any) -> str:
    """A text column (or any value that turns up in one) as JSON."""
    if value is None:
        return "null"
    return _js(value) if value.__class__ is str else json_for_terminal(json_value(value))


def _jlist(values: tuple[str, ...]) -> str:
    if not values:
        return "[]"
    try:
        return "[\n   " + ",\n   ".join(map(_js, values)) + "\n  ]"
    except (TypeError, AttributeError):  # not all text: as the generic writer does it
        return json_for_terminal(json_value(list(values)))


def _jseconds(value: Any) -> str:
    """A duration as ``to_json`` rounds it, as JSON."""
    value = round(value, 3)
    return float.__repr__(value) if value.__class__ is float and math.isfinite(value) else json_value(value)


def _jflag(value: Any) -> str:
    if value is True:
        return "true"
    return "false" if value is False else json_value(value)


def json_object(row: CallRow, times: LocalTimes) -> str:
    """The row as ``json.dumps(record.to_json(tz), ensure_ascii=False, indent=1)`` writes it inside the array,
    through ``json_for_terminal`` (string by string)."""
    (linkedid, direction, caller, caller_name, called, answered, answered_by, missed_reason, talk_seconds,
     transferred_to, rung, recording, started_at, answered_at, ended_at, outcome, ring_seconds, queue, did,
     hangup_cause, hangup_cause_txt, hung_up_by, recordings, agents_answered, complete, linkedids) = row
    iso = times.iso
    return _JSON_TEMPLATE % (
        _jtext(linkedid), _jtext(direction), _jtext(caller), _jtext(caller_name), _jtext(called),
        _jflag(answered), _jtext(answered_by), _jtext(missed_reason), _jseconds(talk_seconds),
        _jtext(transferred_to), _jlist(rung), _jtext(recording), _jtext(iso(started_at)), _jtext(iso(answered_at)),
        _jtext(iso(ended_at)), _jtext(outcome), _jseconds(ring_seconds), _jtext(queue), _jtext(did),
        json_value(hangup_cause), _jtext(hangup_cause_txt), _jtext(hung_up_by), _jlist(recordings),
        _jlist(agents_answered), _jflag(complete), _jlist(linkedids),
    )


#: ``{ "key": %s, ... }`` at the array's nesting (one space per level), the keys JSON-encoded once.
_JSON_TEMPLATE = "{\n  " + ",\n  ".join(
    json_value(key).replace("%", "%%") + ": %s" for key in CALL_ROW_KEYS) + "\n }"


def _clist(values: tuple[str, ...]) -> str:
    return ";".join(map(str, values)) if values else ""


def csv_cells(row: CallRow, times: LocalTimes) -> list[Any]:
    """The row's CSV cells under :data:`CALL_ROW_KEYS` (what ``output.csv_row(record.to_json(tz))`` gives)."""
    (linkedid, direction, caller, caller_name, called, answered, answered_by, missed_reason, talk_seconds,
     transferred_to, rung, recording, started_at, answered_at, ended_at, outcome, ring_seconds, queue, did,
     hangup_cause, hangup_cause_txt, hung_up_by, recordings, agents_answered, complete, linkedids) = row
    iso = times.iso
    cells = (
        linkedid, direction, caller, caller_name, called, answered, answered_by, missed_reason,
        round(talk_seconds, 3), transferred_to, _clist(rung), recording, iso(started_at), iso(answered_at),
        iso(ended_at), outcome, round(ring_seconds, 3), queue, did, hangup_cause, hangup_cause_txt, hung_up_by,
        _clist(recordings), _clist(agents_answered), complete, _clist(linkedids),
    )
    # Every text cell through csv_cell, as csv_row does; the first-character test inline, as most pass it.
    return [csv_cell(v) if v.__class__ is str and v[:1] in CSV_MAY_QUOTE else v for v in cells]


def _text_cell(value: Any) -> str:
    """A text column in a table (what ``output.cell`` then ``terminal_text`` make of it)."""
    if value is None:
        return ""
    if value.__class__ is not str:
        return terminal_text(cell(value))
    if len(value) > 19 and value[10:11] == "T":  # a value shaped like an ISO time is shown as one, as cell() does
        value = value[:19].replace("T", " ")
    return terminal_text(value)


def _seconds_cell(value: Any) -> str:
    value = round(value, 3)
    return f"{value:.1f}" if value.__class__ is float else terminal_text(cell(value))


def table_cells(row: CallRow, times: LocalTimes) -> list[str]:
    """The row's cells under ``output.CALL_COLUMNS``, escaped for a terminal."""
    return [
        _text_cell(times.iso(row.started_at)), _text_cell(row.direction), _text_cell(row.caller),
        _text_cell(row.caller_name), _text_cell(row.called), _text_cell(row.queue), _text_cell(row.outcome),
        _text_cell(row.answered_by), _text_cell(row.missed_reason), _seconds_cell(row.ring_seconds),
        _seconds_cell(row.talk_seconds), _text_cell(row.transferred_to),
        terminal_text(cell(list(row.agents_rung_not_answered))), _text_cell(row.linkedid),
    ]


async def stream_calls(rows: AsyncIterable[CallRow], fmt: Format, tz: tzinfo | None, out: TextIO | None = None) -> int:
    """Print journal rows as they come, as ``output.stream`` prints their ``to_json(tz)``; how many there were."""
    times = LocalTimes(tz)
    count = 0
    target = writer(fmt, CALL_COLUMNS, "Call journal", out)
    if isinstance(target, JsonWriter):
        async for row in rows:
            target.write_object(json_object(row, times), terminal_safe=True)
            count += 1
    elif isinstance(target, CsvWriter):
        async for row in rows:
            target.write_cells(CALL_ROW_KEYS, csv_cells(row, times))
            count += 1
    else:
        assert isinstance(target, TableWriter)
        async for row in rows:
            target.write_cells(table_cells(row, times), row.outcome == "missed")
            count += 1
    target.close()
    return count
