"""The typed values an agent enters while following a script: each checked and normalised by one pure function.

An agent types what a caller says, in a hurry, in whichever alphabet and keyboard layout happens to be on. Each
type reuses the project's one rule for its concept: a phone goes through ``cti/phones.py``, a plate through
``cti/plates.py``, a make through the make directory (``cti/makes.py``: «Шкода», «Skoda» and «Ылщвф» are all
Skoda). A value that cannot be read gets a short error naming what was expected; none raises.

Text is the caller's and the agent's, and hostile input is normal: it is kept as data (markup stays literal text:
the panel shows it through text nodes), control characters are dropped, line breaks become spaces unless the
field is ``multiline``, and anything longer than the field's limit is refused, never cut silently.

Dates and times are wall-clock times in the site's zone (``tz``); a ``datetime`` is stored as ISO 8601 with its
offset, so it names one instant whatever reads it later.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..makes import find_makes
from ..phones import MAX_EXTENSION_LENGTH, normalize_number
from ..plates import display_plate, plate_key
from .model import Employee, FieldSpec, JsonValue

#: A one-line text field's default limit, and the most any text field may allow (a multiline note's default).
TEXT_LIMIT = 200
MULTILINE_LIMIT = 2000
#: A phone, plate or make longer than this is not one: refused before any parsing.
SHORT_LIMIT = 64
#: How far ahead a date or a reminder may be (a typo of a year is refused, not scheduled for 2062).
MAX_AHEAD = timedelta(days=366)
#: The earliest date a field accepts.
EARLIEST = date(2000, 1, 1)

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_RELATIVE = re.compile(r"^\+\s*(\d{1,4})\s*(m|min|мин|h|ч|d|д)$", re.IGNORECASE)
_UNIT = {"m": 60, "min": 60, "мин": 60, "h": 3600, "ч": 3600, "d": 86400, "д": 86400}
_RU_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})(?:\.(\d{4}))?$")
_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})$")
_NUMBER = re.compile(r"^[+-]?\d{1,12}(?:[.,]\d{1,6})?$")


@dataclass(frozen=True, slots=True)
class FieldContext:
    """What a value is read against: the moment, the site's zone and phone region, the employee lists."""

    now: float
    tz: str = "UTC"
    region: str = "RU"
    employees: Mapping[str, tuple[Employee, ...]] | None = None


@dataclass(frozen=True, slots=True)
class Read:
    """A value read: ``value`` when good (None when an optional field is left empty), else ``error``."""

    value: JsonValue = None
    error: str | None = None


def _bad(error: str) -> Read:
    return Read(error=error)


@lru_cache(maxsize=32)
def zone(tz: str) -> ZoneInfo:
    """The site's zone; an unknown name is the edge's configuration error, caught when the config is checked."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def clean_text(value: str, *, multiline: bool = False) -> str:
    """Text as data: lone surrogates made ``�``, line ends unified (or made spaces), control characters dropped."""
    value = value.encode("utf-8", "replace").decode("utf-8")
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.replace("\t", " ")
    if not multiline:
        value = value.replace("\n", " ")
    return _CONTROL.sub("", value).strip()


def text_limit(spec: FieldSpec) -> int:
    default = MULTILINE_LIMIT if spec.multiline else TEXT_LIMIT
    return min(spec.max_length or default, MULTILINE_LIMIT)


def read_text(raw: object, *, limit: int = TEXT_LIMIT, multiline: bool = False) -> Read:
    if not isinstance(raw, str):
        return _bad("expected text")
    if len(raw) > limit * 4:  # refused before cleaning: a 100 kB paste is not worth walking
        return _bad(f"too long: at most {limit} characters")
    text = clean_text(raw, multiline=multiline)
    if len(text) > limit:
        return _bad(f"too long: at most {limit} characters")
    return Read(text or None)


def read_phone(raw: object, region: str = "RU") -> Read:
    """A client's number, as E.164 digits (``79161234567``); an internal extension is not a client's number."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or len(raw) > SHORT_LIMIT:
        return _bad("expected a phone number")
    if not raw.strip():
        return Read(None)
    if re.search(r"[^\d\s()+\-.]", raw):
        return _bad(f"{raw.strip()!r} is not a phone number")
    number = normalize_number(raw, region)
    if number is None or len(number) <= MAX_EXTENSION_LENGTH or len(number) > 15:
        return _bad(f"{raw.strip()!r} is not a phone number")
    return Read(number)


def read_plate(raw: object) -> Read:
    """A licence plate, as printed on it (``А 123 ВС 777``): typed in either alphabet, any case, any spacing."""
    if not isinstance(raw, str) or len(raw) > SHORT_LIMIT:
        return _bad("expected a licence plate")
    if not raw.strip():
        return Read(None)
    key = plate_key(raw)
    if key is None or len(key.full) > 12 or not any(ch.isdigit() for ch in key.full):
        return _bad(f"{raw.strip()!r} is not a licence plate")
    return Read(display_plate(raw))


def read_make(raw: object) -> Read:
    """A car make, as the make directory names it (``Шкода``/``Skoda``/``Ылщвф`` → ``Skoda``).

    A prefix that leaves one make is that make (``тойо``); one that leaves several is refused with them listed. A
    make the directory does not know is kept as typed (tidied): the directory is not every make there is.
    """
    if not isinstance(raw, str) or len(raw) > SHORT_LIMIT:
        return _bad("expected a car make")
    text = " ".join(clean_text(raw).split())
    if not text:
        return Read(None)
    matches = find_makes(text)
    if matches and matches[0].exact:
        return Read(matches[0].make)
    if len(matches) == 1:
        return Read(matches[0].make)
    if matches:
        names = ", ".join(m.make for m in matches[:5])
        return _bad(f"{text!r} may be {names}: type more letters")
    return Read(text)


def _local(day: date, at: time, tz: str) -> datetime:
    return datetime.combine(day, at, tzinfo=zone(tz))


def _today(ctx: FieldContext) -> date:
    return datetime.fromtimestamp(ctx.now, zone(ctx.tz)).date()


def _parse_date(text: str, ctx: FieldContext) -> date | None:
    match = _RU_DATE.match(text)
    try:
        if match:
            day, month, year = match.groups()
            return date(int(year) if year else _today(ctx).year, int(month), int(day))
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
    except ValueError:
        return None
    return None


def _parse_time(text: str) -> time | None:
    match = _TIME.match(text)
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    return time(hour, minute) if hour < 24 and minute < 60 else None


def _check_day(day: date, ctx: FieldContext, future: bool) -> str | None:
    today = _today(ctx)
    if day < EARLIEST or day > today + MAX_AHEAD:
        return f"{day.isoformat()} is out of range"
    if future and day < today:
        return f"{day.isoformat()} is in the past"
    return None


def read_date(raw: object, ctx: FieldContext, *, future: bool = False) -> Read:
    """A day: ``2026-03-10``, ``10.03.2026`` or ``10.03`` (this year), stored as ``2026-03-10``."""
    if not isinstance(raw, str) or len(raw) > SHORT_LIMIT:
        return _bad("expected a date")
    text = raw.strip()
    if not text:
        return Read(None)
    day = _parse_date(text, ctx)
    if day is None:
        return _bad(f"{text!r} is not a date (10.03.2026 or 2026-03-10)")
    problem = _check_day(day, ctx, future)
    return _bad(problem) if problem else Read(day.isoformat())


def read_time(raw: object) -> Read:
    """A time of day: ``15:00``, ``9.30``, stored as ``15:00``."""
    if not isinstance(raw, str) or len(raw) > SHORT_LIMIT:
        return _bad("expected a time")
    text = raw.strip()
    if not text:
        return Read(None)
    at = _parse_time(text)
    if at is None:
        return _bad(f"{text!r} is not a time (15:30)")
    return Read(at.strftime("%H:%M"))


def read_datetime(raw: object, ctx: FieldContext, *, future: bool = False) -> Read:
    """A moment: ``+90m``/``+2h``/``+1d`` from now, ``15:30`` (today), ``10.03.2026 15:30``, ``2026-03-10T15:30``
    (an offset may be given); stored as ISO 8601 with the zone's offset, to the minute."""
    if not isinstance(raw, str) or len(raw) > SHORT_LIMIT:
        return _bad("expected a date and time")
    text = raw.strip()
    if not text:
        return Read(None)
    moment = _parse_moment(text, ctx)
    if moment is None:
        return _bad(f"{text!r} is not a date and time (+2h, 15:30, 10.03.2026 15:30)")
    instant = moment.timestamp()
    if future and instant < ctx.now - 60:
        return _bad(f"{text!r} is in the past")
    if instant > ctx.now + MAX_AHEAD.total_seconds() or moment.date() < EARLIEST:
        return _bad(f"{text!r} is out of range")
    return Read(moment.astimezone(zone(ctx.tz)).replace(second=0, microsecond=0).isoformat())


def _parse_moment(text: str, ctx: FieldContext) -> datetime | None:
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        return datetime.fromtimestamp(ctx.now + amount * _UNIT[unit], zone(ctx.tz))
    at = _parse_time(text)
    if at is not None:
        return _local(_today(ctx), at, ctx.tz)
    parts = text.replace("T", " ", 1).split()
    if len(parts) == 2:
        day, clock = _parse_date(parts[0], ctx), _parse_time(parts[1])
        if day is not None and clock is not None:
            return _local(day, clock, ctx.tz)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone(ctx.tz))
    return parsed


def moment_epoch(value: str) -> float:
    """The instant of a stored ``datetime`` value (always written with its offset by :func:`read_datetime`)."""
    return datetime.fromisoformat(value).timestamp()


def read_number(raw: object, spec: FieldSpec) -> Read:
    """A number: ``3``, ``2,5`` or ``2.5``; within the field's bounds; an integer where the field says so."""
    if isinstance(raw, bool):
        return _bad("expected a number")
    if isinstance(raw, str):
        text = raw.strip().replace(" ", "")
        if not text:
            return Read(None)
        if not _NUMBER.match(text):
            return _bad(f"{raw.strip()[:20]!r} is not a number")
        raw = float(text.replace(",", "."))
    if not isinstance(raw, int | float) or not math.isfinite(raw) or abs(raw) > 1e12:
        return _bad("expected a number")
    if spec.integer:
        if raw != int(raw):
            return _bad("expected a whole number")
        raw = int(raw)
    if spec.minimum is not None and raw < spec.minimum:
        return _bad(f"at least {spec.minimum:g}")
    if spec.maximum is not None and raw > spec.maximum:
        return _bad(f"at most {spec.maximum:g}")
    return Read(raw)


def find_employee(employee_id: str, lists: Mapping[str, tuple[Employee, ...]],
                  list_name: str | None = None) -> Employee | None:
    """The employee with this id, in one list or (``list_name`` None) in any."""
    names = [list_name] if list_name is not None else list(lists)
    for name in names:
        for employee in lists.get(name, ()):
            if employee.id == employee_id:
                return employee
    return None


def employee_value(employee: Employee) -> JsonValue:
    return {"id": employee.id, "name": employee.name, "extension": employee.extension}


def read_employee(raw: object, list_name: str, ctx: FieldContext) -> Read:
    """An employee of the named list, picked by id; stored with their name and extension as they were then."""
    if not isinstance(raw, str) or len(raw) > SHORT_LIMIT:
        return _bad("expected an employee")
    if not raw.strip():
        return Read(None)
    employee = find_employee(raw.strip(), ctx.employees or {}, list_name)
    if employee is None:
        return _bad(f"{raw.strip()!r} is not in the list {list_name!r}")
    return Read(employee_value(employee))


def read_field(spec: FieldSpec, raw: object, ctx: FieldContext) -> Read:
    """One field's value read by its type; a required field left empty is an error."""
    if raw is None:
        read = Read(None)
    elif spec.type == "text":
        read = read_text(raw, limit=text_limit(spec), multiline=spec.multiline)
    elif spec.type == "phone":
        read = read_phone(raw, ctx.region)
    elif spec.type == "plate":
        read = read_plate(raw)
    elif spec.type == "make":
        read = read_make(raw)
    elif spec.type == "date":
        read = read_date(raw, ctx, future=spec.future)
    elif spec.type == "time":
        read = read_time(raw)
    elif spec.type == "datetime":
        read = read_datetime(raw, ctx, future=spec.future)
    elif spec.type == "employee":
        read = read_employee(raw, spec.list or "", ctx)
    else:
        read = read_number(raw, spec)
    if read.error is None and read.value is None and spec.required:
        return _bad("required")
    return read
