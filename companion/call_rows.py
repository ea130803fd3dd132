"""A journal listing (``store.repository.CallRow``) as ``cti calls`` prints it: JSON, CSV, a table, a page at a time.

Why not ``CallRecord.to_json()`` and the generic writers: a month's export is 150,000 rows, and building a dict per
row, walking it with type checks, and converting three times per row through ``datetime`` cost 70-90 µs a row
(11,000 rows/s). Here each format is built straight from the row's tuple, with the columns' types known, and local
times come from :class:`LocalTimes`. The text is byte for byte what the generic path writes
(``tests/test_call_rows.py`` compares both): the same keys and order as ``to_json``, the same rounding, the
same neutralising of outside text (``cti.safe_text``).

Each page the store hands over (``iter_call_pages``) is first written in one piece: one ``%`` template per row, the
page's text checked once for what would need more care (a cell a terminal or a spreadsheet would act on, a CSV cell
needing quotes, a table cell wider than its column or not one terminal cell per character) and written in one
call. A page that fails a check is written row by row through the careful path, which handles anything; the checks
only decide which of two ways gives the same bytes. A table reads only the 14 fields it shows (:data:`TABLE_FIELDS`).

The rows come as the store keeps them (``iter_call_pages(stored=True)``): plain tuples, each list field the JSON
text of its list, rewritten for a page at a time by :mod:`companion.list_text` instead of decoded and encoded again
(a list not in the usual form sends its page down the careful path, which decodes it: :func:`call_row`); flags 0/1.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import AsyncIterable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache
from operator import itemgetter
from typing import Any, TextIO

from companion.list_text import JOINED, JSON, NotPlain, column, items, kept
from companion.output import CALL_COLUMNS, CsvWriter, Format, JsonWriter, TableWriter, cell, json_value, writer
from companion.threads import quick_thread_switches
from cti.records import iso_time
from cti.safe_text import CSV_MAY_QUOTE, csv_cell, json_for_terminal, terminal_text
from store.repository import CallRow

#: Pages of a listing, each row the tuple of the fields asked for (None: every field) as the store keeps them:
#: ``Store.iter_call_pages(fields=fields, stored=True)`` with the listing's filters bound.
Pages = Callable[[Sequence[str] | None], AsyncIterable[Sequence[tuple[Any, ...]]]]

#: The header of a CSV export and the keys of a JSON object: ``CallRecord.to_json``'s keys, in its order.
CALL_ROW_KEYS: tuple[str, ...] = CallRow._fields
#: Where the list fields and the flags are in a row of every field.
_LISTS_AT = tuple(CALL_ROW_KEYS.index(k) for k in ("agents_rung_not_answered", "recordings", "agents_answered",
                                                   "linkedids"))
_FLAGS_AT = (CALL_ROW_KEYS.index("answered"), CALL_ROW_KEYS.index("complete"))


def call_row(stored: Sequence[Any]) -> CallRow:
    """A row of every field as the store keeps it (``iter_call_pages(stored=True)``) as a :class:`CallRow`: the
    lists decoded, the flags as bools. What the careful path formats."""
    values = list(stored)
    for i in _LISTS_AT:
        values[i] = items(values[i])
    for i in _FLAGS_AT:
        values[i] = bool(values[i])
    return CallRow._make(values)


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

    def formatter(self, quote: str = "", none: str | None = None) -> Callable[[float | None], str | None]:
        """:meth:`iso` as a function, its text between two ``quote``s and ``none`` for no time: a time as a JSON value
        (``'"'``, ``"null"``) or a CSV cell (``""``, ``""``), at about two thirds of ``iso``'s cost (no attribute
        look-up, no second step to quote it). Its own minutes are kept, quoted."""
        slow = self.iso

        def careful(epoch: float | None) -> str | None:
            text = slow(epoch)
            return none if text is None else quote + text + quote

        if self.tz is None:
            return careful
        heads: dict[int, tuple[str, str] | None] = {}
        minute_of, two, three, last = self._minute, _TWO, _THREE, _LAST_EPOCH

        def iso(epoch: float | None) -> str | None:
            if epoch is None:
                return none
            if 0 <= epoch < last:
                sec = int(epoch)
                micro = round((epoch - sec) * 1e6)
                if micro < 1_000_000:  # else the next second: left to iso()
                    minute = sec // 60
                    try:
                        head = heads[minute]
                    except KeyError:
                        if len(heads) >= _MINUTES_KEPT:
                            heads.clear()
                        found = minute_of(minute)
                        head = heads[minute] = (quote + found[0], found[1] + quote) if found is not None else None
                    if head is not None:
                        return f"{head[0]}{two[sec % 60]}.{three[micro // 1000]}{head[1]}"
            return careful(epoch)

        return iso

    def table(self, epoch: float) -> str:
        """``iso(epoch)`` as a table shows it (``2026-11-24 09:15:07``: ``output.cell`` of the ISO text).

        Kept apart from :meth:`iso` for the agent listing: its calls are spread over a year, nearly one minute
        each, so a minute's text is rarely reused; here the offset is looked up per UTC hour and the text is the
        local day's (kept) and the time of day's, from tables.
        """
        if self.tz is not None and 0 <= epoch < _LAST_EPOCH:
            sec = int(epoch)
            if (epoch - sec) * 1e6 >= 999_999.5:  # the microseconds round up to the next second (``iso``'s carry)
                sec += 1
            hour = sec // 3600
            found = self._hours[hour] if hour in self._hours else self._hour(hour)
            if found is not None:
                day, rest = divmod(sec + found[0], 86400)
                day_text = self._days.get(day)
                if day_text is None:
                    if len(self._days) >= _MINUTES_KEPT:
                        self._days.clear()
                    day_text = self._days[day] = (_EPOCH + timedelta(days=day)).isoformat()
                return day_text + _CLOCK[rest // 60] + _TWO[rest % 60]
        text = self.iso(epoch)
        assert text is not None
        return text[:19].replace("T", " ")

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
#: `` HH:MM:`` of each minute of a day, as a table shows a time.
_CLOCK = tuple(f" {h:02d}:{m:02d}:" for h in range(24) for m in range(60))
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
     hangup_cause, hangup_cause_txt, hung_up_by, recordings, agents_answered, complete, linkedids, pbx) = row
    iso = times.iso
    return _JSON_TEMPLATE % (
        _jtext(linkedid), _jtext(direction), _jtext(caller), _jtext(caller_name), _jtext(called),
        _jflag(answered), _jtext(answered_by), _jtext(missed_reason), _jseconds(talk_seconds),
        _jtext(transferred_to), _jlist(rung), _jtext(recording), _jtext(iso(started_at)), _jtext(iso(answered_at)),
        _jtext(iso(ended_at)), _jtext(outcome), _jseconds(ring_seconds), _jtext(queue), _jtext(did),
        json_value(hangup_cause), _jtext(hangup_cause_txt), _jtext(hung_up_by), _jlist(recordings),
        _jlist(agents_answered), _jflag(complete), _jlist(linkedids), _jtext(pbx),
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
     hangup_cause, hangup_cause_txt, hung_up_by, recordings, agents_answered, complete, linkedids, pbx) = row
    iso = times.iso
    cells = (
        linkedid, direction, caller, caller_name, called, answered, answered_by, missed_reason,
        round(talk_seconds, 3), transferred_to, _clist(rung), recording, iso(started_at), iso(answered_at),
        iso(ended_at), outcome, round(ring_seconds, 3), queue, did, hangup_cause, hangup_cause_txt, hung_up_by,
        _clist(recordings), _clist(agents_answered), complete, _clist(linkedids), pbx,
    )
    # Every text cell through csv_cell, as csv_row does; the first-character test inline, as most pass it.
    return [csv_cell(v) if v.__class__ is str and v[:1] in CSV_MAY_QUOTE else v for v in cells]


def _in_pieces(lines: list[str], rows: Sequence[Any], shaped: Callable[[str], bool],
               write_plain: Callable[[str, int], bool], careful: Callable[[Any], None]) -> None:
    """Write a page's ``lines`` (one per row, each ending in a newline) in as few pieces as its rows allow.

    ``shaped(line)`` is a cheap test that a line has the usual shape (a table line its length, a CSV line its
    commas): the other rows go through ``careful``; each run of shaped lines between them is offered whole to
    ``write_plain(text, lines)``, which writes it when it passes the full check and says whether it did; a run
    that does not is offered line by line."""
    start = 0
    for i, line in enumerate(lines):
        if not shaped(line):
            if start < i:
                _run(lines[start:i], rows[start:i], write_plain, careful)
            careful(rows[i])
            start = i + 1
    if start < len(lines):
        _run(lines[start:] if start else lines, rows[start:] if start else rows, write_plain, careful)


def _run(lines: list[str], rows: Sequence[Any], write_plain: Callable[[str, int], bool],
         careful: Callable[[Any], None]) -> None:
    if write_plain("".join(lines), len(lines)):
        return
    for line, row in zip(lines, rows, strict=True):
        if not write_plain(line, 1):
            careful(row)


#: One CSV line of a row, every cell ``%s`` (a value's ``str``, as the csv module writes anything but text and None).
_CSV_LINE = ",".join(["%s"] * len(CALL_ROW_KEYS)) + "\n"
_CSV_COMMAS = len(CALL_ROW_KEYS) - 1


def csv_lines(page: Sequence[tuple[Any, ...]], times: LocalTimes) -> list[str] | None:
    """Each stored row's CSV line (with its newline) as ``CsvWriter.write_cells(csv_cells(call_row(row)))`` writes
    it when the row is plain (see :func:`csv_plain`); None when a value is of another type than the store gives
    or a list's text is not the usual form (:mod:`companion.list_text`)."""
    ctime = times.formatter("", "")
    flag = _CSV_FLAG
    lines: list[str] = []
    append = lines.append
    try:
        agents = kept(_agent_lists(page), JOINED, _JOINED_AGENTS)
        for (linkedid, direction, caller, caller_name, called, answered, answered_by, missed_reason, talk_seconds,
             transferred_to, rung, recording, started_at, answered_at, ended_at, outcome, ring_seconds, queue, did,
             hangup_cause, hangup_cause_txt, hung_up_by, _, agents_answered, complete, _, pbx), recordings, linkedids \
                in zip(page, column(map(_RECORDINGS, page), JOINED), column(map(_LINKEDIDS, page), JOINED),
                       strict=True):
            # None as "", answered and complete as bools (str), the seconds as floats (str is repr), hangup_cause
            # as an int: what the csv module writes for them.
            append(_CSV_LINE % (
                linkedid or "", direction or "", caller or "", caller_name or "", called or "", flag[answered],
                answered_by or "", missed_reason or "", round(talk_seconds, 3), transferred_to or "", agents[rung],
                recording or "", ctime(started_at), ctime(answered_at), ctime(ended_at), outcome or "",
                round(ring_seconds, 3), queue or "", did or "", "" if hangup_cause is None else hangup_cause,
                hangup_cause_txt or "", hung_up_by or "", recordings, agents[agents_answered], flag[complete],
                linkedids, pbx))
    except (TypeError, KeyError, NotPlain):  # missing seconds, a flag not 0 or 1, a list to decode
        return None
    return lines


#: A stored flag as the csv module writes the bool it stands for (a bool is its own key: ``True == 1``).
_CSV_FLAG = {0: "False", 1: "True"}
#: A stored flag as JSON.
_JSON_FLAG = {0: "false", 1: "true"}
#: The lists of agents (rung without answering, answering) seen so far, rewritten (``list_text.kept``).
_JOINED_AGENTS: dict[str, str] = {}
_JSON_AGENTS: dict[str, str] = {}
_RECORDINGS, _LINKEDIDS = itemgetter(CALL_ROW_KEYS.index("recordings")), itemgetter(CALL_ROW_KEYS.index("linkedids"))
_RUNG_AT, _ANSWERING_AT = CALL_ROW_KEYS.index("agents_rung_not_answered"), CALL_ROW_KEYS.index("agents_answered")


def _agent_lists(page: Sequence[tuple[Any, ...]]) -> list[Any]:
    """The page's lists of agents, both fields."""
    return [*map(itemgetter(_RUNG_AT), page), *map(itemgetter(_ANSWERING_AT), page)]


#: What ``csv_cell`` might prefix (a formula start, or a quote before one: ``CSV_MAY_QUOTE``), in UTF-8: a cell
#: starting with it at the text's start, after a comma, at a line's start.
_FORMULA_BYTES = b"(?:" + b"|".join(re.escape(c.encode()) for c in sorted(CSV_MAY_QUOTE)) + b")"
_CSV_FORMULA_FIRST_B = re.compile(_FORMULA_BYTES)
_CSV_FORMULA_AFTER_COMMA_B = re.compile(b"," + _FORMULA_BYTES)
_CSV_FORMULA_AT_LINE_B = re.compile(b"\n" + _FORMULA_BYTES)


def csv_plain(data: bytes, lines: int) -> bool:
    """Whether ``data``, the UTF-8 of that many lines from :func:`csv_lines`, is what the careful path writes for
    their rows: no cell that ``csv_cell`` might change (a formula start, a quote first) or the csv module would
    quote (a comma, a double quote, a line break). Searched as bytes: several times faster than text in Cyrillic."""
    return (data.count(b",") == _CSV_COMMAS * lines and data.count(b"\n") == lines and b'"' not in data
            and b"\r" not in data and not _CSV_FORMULA_FIRST_B.match(data)
            and not _CSV_FORMULA_AFTER_COMMA_B.search(data)
            and not _CSV_FORMULA_AT_LINE_B.search(data, 0, len(data) - 1))


def csv_shaped(line: str) -> bool:
    """A line from :func:`csv_lines` with one comma per cell boundary: a cell holding a comma (an Asterisk cause
    text, ``User alerting, no answer``) is quoted by the csv module, so that row takes the careful path."""
    return line.count(",") == _CSV_COMMAS


def json_objects(page: Sequence[tuple[Any, ...]], times: LocalTimes) -> list[str] | None:
    """Each stored row's JSON object at the array's nesting, as :func:`json_object` writes its ``call_row`` but
    before ``json_for_terminal`` (see :func:`json_plain_encoded`); None when a value is of another type than the
    store gives or a list's text is not the usual form (:mod:`companion.list_text`)."""
    jtime = times.formatter('"', "null")
    enc, flag = _encode, _JSON_FLAG
    objects: list[str] = []
    append = objects.append
    seconds = 0.0
    try:
        agents = kept(_agent_lists(page), JSON, _JSON_AGENTS)
        for (linkedid, direction, caller, caller_name, called, answered, answered_by, missed_reason, talk_seconds,
             transferred_to, rung, recording, started_at, answered_at, ended_at, outcome, ring_seconds, queue, did,
             hangup_cause, hangup_cause_txt, hung_up_by, _, agents_answered, complete, _, pbx), recordings, linkedids \
                in zip(page, column(map(_RECORDINGS, page), JSON), column(map(_LINKEDIDS, page), JSON),
                       strict=True):
            seconds += talk_seconds + ring_seconds
            append(_JSON_TEMPLATE % (
                enc(linkedid), enc(direction), "null" if caller is None else enc(caller),
                "null" if caller_name is None else enc(caller_name), "null" if called is None else enc(called),
                flag[answered], "null" if answered_by is None else enc(answered_by),
                "null" if missed_reason is None else enc(missed_reason), round(talk_seconds, 3),
                "null" if transferred_to is None else enc(transferred_to), agents[rung],
                "null" if recording is None else enc(recording), jtime(started_at), jtime(answered_at),
                jtime(ended_at),
                enc(outcome), round(ring_seconds, 3), "null" if queue is None else enc(queue),
                "null" if did is None else enc(did),
                hangup_cause if hangup_cause.__class__ is int else json_value(hangup_cause),
                "null" if hangup_cause_txt is None else enc(hangup_cause_txt),
                "null" if hung_up_by is None else enc(hung_up_by), recordings, agents[agents_answered],
                flag[complete], linkedids, enc(pbx)))
    except (TypeError, KeyError, NotPlain):  # text that is not, seconds that are not a number, a list to decode
        return None
    # The seconds went out as %s: JSON for an int or a finite float, not for inf or nan (Infinity, NaN, which the
    # careful path writes); any of them makes the sum infinite or nan.
    return objects if math.isfinite(seconds) else None


def json_plain_encoded(data: bytes) -> bool:
    """Whether objects from :func:`json_objects`, ``data`` their UTF-8, need no ``json_for_terminal``: no DEL, C1
    control, bidi mark or line separator. Each is looked for by a lead byte first (a byte search, many times
    faster than a text one), and text in Cyrillic has none of them but ``\\xe2`` (the number sign)."""
    return not (b"\x7f" in data or (b"\xc2" in data and _C1_UTF8.search(data))
                or (b"\xd8" in data and b"\xd8\x9c" in data) or (b"\xe2" in data and _MARKS_UTF8.search(data)))


#: U+0080-U+009F; U+200E, U+200F, U+2028, U+2029, U+202A-U+202E, U+2066-U+2069 (``cti.safe_text``'s JSON set).
_C1_UTF8 = re.compile(b"\xc2[\x80-\x9f]")
_MARKS_UTF8 = re.compile(b"\xe2(?:\x80[\x8e\x8f\xa8-\xae]|\x81[\xa6-\xa9])")


class _Sink:
    """Where a page goes: ``out``'s UTF-8 byte buffer when it has one that takes bytes as they are (the page was
    encoded once for its checks: no second encoding), else ``out`` as text. Text already written to ``out`` is
    flushed first, so the order stays."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.buffer: Any = None
        buffer = getattr(out, "buffer", None)
        try:
            utf8 = codecs.lookup(out.encoding).name == "utf-8" and out.errors == "strict"
        except (AttributeError, LookupError, TypeError):
            utf8 = False
        if buffer is not None and utf8:
            self.buffer = buffer

    def write(self, text: str, data: bytes) -> None:
        if self.buffer is None:
            self.out.write(text)
        else:
            self.out.flush()
            self.buffer.write(data)


#: The fields a table shows (``output.CALL_COLUMNS``' keys, in its order): all a table reads of a call.
TABLE_FIELDS: tuple[str, ...] = tuple(key for key, _ in CALL_COLUMNS)
#: Where ``outcome`` is in a row of :data:`TABLE_FIELDS` (a missed call's row is red on a colour terminal).
_TABLE_OUTCOME = TABLE_FIELDS.index("outcome")
#: Where the list of agents rung is in it.
_TABLE_RUNG = TABLE_FIELDS.index("agents_rung_not_answered")
#: The columns of seconds, printed to a tenth.
_TABLE_SECONDS = frozenset(i for i, key in enumerate(TABLE_FIELDS) if key in ("ring_seconds", "talk_seconds"))
#: The columns of text, whose value ``output.cell`` shows as a time when it looks like an ISO one.
_TABLE_ISO_RULE = frozenset(i for i, key in enumerate(TABLE_FIELDS)
                            if key not in ("started_at", "agents_rung_not_answered") and i not in _TABLE_SECONDS)


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


def table_cells(row: tuple[Any, ...], times: LocalTimes) -> list[str]:
    """A stored row of :data:`TABLE_FIELDS` as its cells under ``output.CALL_COLUMNS``, escaped for a terminal."""
    (started_at, direction, caller, caller_name, called, queue, outcome, answered_by, missed_reason, ring_seconds,
     talk_seconds, transferred_to, rung, linkedid) = row
    return [
        _text_cell(times.iso(started_at)), _text_cell(direction), _text_cell(caller), _text_cell(caller_name),
        _text_cell(called), _text_cell(queue), _text_cell(outcome), _text_cell(answered_by),
        _text_cell(missed_reason), _seconds_cell(ring_seconds), _seconds_cell(talk_seconds),
        _text_cell(transferred_to), terminal_text(cell(list(items(rung)))), _text_cell(linkedid),
    ]


#: Characters rich itself counts as one cell without looking them up (``rich.cells._SINGLE_CELL_UNICODE_RANGES``),
#: none of them a control: any other character in a table's text is looked up once (:func:`_one_cell`).
_OTHER_THAN_SIMPLE = re.compile("[^\n\x20-\x7e\xa0-\xac\xae-\u02ff\u0370-\u0482\u2500-\u25fc\u2800-\u28ff]")


@cache
def _one_cell(char: str) -> bool:
    """Whether ``char`` is one terminal cell of plain text: ``terminal_text`` leaves it, rich's ``cell_len`` counts
    it as 1, and it is not the joiner or the selector that change their neighbour's width."""
    from rich.cells import get_character_cell_size

    return terminal_text(char) == char and char not in "\u200d\ufe0f" and get_character_cell_size(char) == 1


def _plain_cells(text: str) -> bool:
    """Whether every character of ``text`` but its newlines is one terminal cell of plain text: then each of its
    cells has ``terminal_text(t) == t`` and ``cell_len(t) == len(t)``. Distinct characters are few (Cyrillic names,
    a number sign): each is looked up once."""
    return all(map(_one_cell, set(_OTHER_THAN_SIMPLE.findall(text))))


class TablePages:
    """Prints pages of :data:`TABLE_FIELDS` rows into a :class:`TableWriter`, a page's usual lines in one piece.

    The writer takes the first rows (its sample) one by one and fixes the widths; after that the line of a row is
    one ``%`` template (every cell padded to its column). It is the line ``TableWriter`` prints for that row when it
    is exactly as long as the header (no cell wider than its column), has no character that is not one cell of
    plain text (:func:`_plain_cells`) and no text shaped like an ISO time in a column wide enough for one; a page
    is checked as a whole, and when it fails, line by line: a row that fails goes through the writer.
    """

    def __init__(self, target: TableWriter, times: LocalTimes) -> None:
        self.target = target
        self.times = times
        self.template = ""
        self.length = 0
        self.iso_at: tuple[int, ...] = ()

    def write(self, page: Sequence[tuple[Any, ...]]) -> None:
        target = self.target
        start = 0
        while target.sample is not None and start < len(page):
            self._careful(page[start])
            start += 1
        if start == len(page):
            return
        rows = page[start:] if start else page
        lines = self._lines(rows) if not target.styled else None
        if lines is None:
            for row in rows:
                self._careful(row)
            return
        _in_pieces(lines, rows, self._shaped, self._write_plain, self._careful)

    def _careful(self, row: tuple[Any, ...]) -> None:
        self.target.write_cells(table_cells(row, self.times), row[_TABLE_OUTCOME] == "missed")

    def _lines(self, rows: Sequence[tuple[Any, ...]]) -> list[str] | None:
        if not self.template:
            widths = self.target.widths
            specs = [f"%-{w}.1f" if i in _TABLE_SECONDS else f"%-{w}s" for i, w in enumerate(widths)]
            self.template = "│ " + " │ ".join(specs) + " │\n"
            self.length = sum(widths) + 3 * len(widths) + 2  # with the newline
            # output.cell cuts a value longer than 19 with a "T" at 10 to a time: only a column that wide can hold
            # one; where its 11th character falls in a line.
            self.iso_at = tuple(2 + sum(widths[:i]) + 3 * i + 10 for i, w in enumerate(widths)
                                if i in _TABLE_ISO_RULE and w > 19)
        template, clock = self.template, self.times.table
        lines: list[str] = []
        append = lines.append
        try:
            agents = kept(map(itemgetter(_TABLE_RUNG), rows), JOINED, _JOINED_AGENTS)
            for (started_at, direction, caller, caller_name, called, queue, outcome, answered_by, missed_reason,
                 ring_seconds, talk_seconds, transferred_to, rung, linkedid) in rows:
                append(template % (
                    clock(started_at), direction or "", caller or "", caller_name or "", called or "", queue or "",
                    outcome or "", answered_by or "", missed_reason or "", round(ring_seconds, 3),
                    round(talk_seconds, 3), transferred_to or "", agents[rung], linkedid or ""))
        except (TypeError, NotPlain):  # a value of an unexpected type, a list to decode
            return None
        return lines

    def _shaped(self, line: str) -> bool:
        return len(line) == self.length

    def _write_plain(self, text: str, lines: int) -> bool:
        """Write ``text``, that many lines of :meth:`_lines`, if it is what the writer prints for their rows."""
        step = self.length
        if (len(text) == lines * step and text.count("\n") == lines and _plain_cells(text)
                and not any("T" in text[at::step] for at in self.iso_at)):
            self.target.out.write(text)
            return True
        return False


async def print_calls(pages: Pages, fmt: Format, tz: tzinfo | None, out: TextIO | None = None) -> int:
    """Print a journal listing, page by page, as ``output.stream`` prints the records' ``to_json(tz)``; how many
    calls there were. ``pages(fields)`` reads the listing (:data:`Pages`: stored rows of those fields).

    While it prints, the store's thread gets the GIL quickly (``companion/threads.py``): it reads the next page
    while this one is formatted, and needs the GIL for a moment to start the query (then SQLite gathers the page
    without it). With the default 5 ms switch interval it waited out most of a page's formatting (a page of a
    table is 5 ms), and the reading barely overlapped the printing.
    """
    with quick_thread_switches():
        return await _print_calls(pages, fmt, tz, out)


async def _print_calls(pages: Pages, fmt: Format, tz: tzinfo | None, out: TextIO | None) -> int:
    times = LocalTimes(tz)
    count = 0
    target = writer(fmt, CALL_COLUMNS, "Call journal", out)
    if isinstance(target, JsonWriter):
        sink = _Sink(target.out)
        async for rows in pages(None):
            if not rows:
                continue
            objects = json_objects(rows, times)
            text = ",\n ".join(objects) if objects is not None else ""
            data = text.encode()
            if objects is None or not json_plain_encoded(data):
                text = ",\n ".join([json_object(call_row(row), times) for row in rows])
                data = text.encode()
            head = target.element_prefix()
            sink.write(head + text, head.encode() + data)
            count += len(rows)
    elif isinstance(target, CsvWriter):
        csv_writer = target
        whole = target.writes_text_as_is()
        sink = _Sink(target.out)

        def csv_careful(row: tuple[Any, ...]) -> None:
            csv_writer.write_cells(CALL_ROW_KEYS, csv_cells(call_row(row), times))

        def csv_write_plain(text: str, lines: int) -> bool:
            data = text.encode()
            if csv_plain(data, lines):
                sink.write(text, data)
                return True
            return False

        async for rows in pages(None):
            lines = csv_lines(rows, times) if whole else None
            if lines is None:
                for row in rows:
                    csv_careful(row)
                count += len(rows)
                continue
            target.write_lines(CALL_ROW_KEYS, "")  # the header, if first
            _in_pieces(lines, rows, csv_shaped, csv_write_plain, csv_careful)
            count += len(rows)
    else:
        assert isinstance(target, TableWriter)
        table = TablePages(target, times)
        async for page in pages(TABLE_FIELDS):
            table.write(page)
            count += len(page)
    target.close()
    return count
