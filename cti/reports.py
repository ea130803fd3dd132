"""The reports managers read (issue 13): what each one counts, and its figures folded from the store's grouped rows.

Pure: no I/O, no clock. The store runs the SQL (``store/reports.py``, the same statements on SQLite and PostgreSQL)
and hands each query's rows here; the panel's page, the CSV and ``cti report`` all print the :class:`Report` this
module builds, so their figures cannot differ. The definitions (``docs/contact-script.md``, "Reports"):

* **PBX vs registered** (``registered``): per day and agent, the *answered inbound calls* (journal rows with
  ``direction = inbound`` and ``outcome = answered``, counted for the agent who answered first, ``answered_by``, on
  the day they started), how many of them are *registered* (a contact of the register is linked to the call:
  ``contact_calls``), and the *phone contacts* the agent registered that day (contacts with ``channel = phone``, by
  the contact's start). Then the answered inbound calls with no contact, newest first, each with its recording and
  what the panel's "register now" sends (a ``script.start`` with channel ``phone`` and the call's ``linkedid``: the
  contact it registers is linked to the call, which then leaves this list).
* **Contact statistics** (``contacts``): the contacts of the period by day and by ISO week (Monday), and by client
  type, channel, reason and primary vs repeat (``repeat``: the caller card's rule when the contact was saved).
* **The funnel** (``funnel``): contact → request → booking → visit, for primary and repeat clients, per agent and per
  employee (the one the contact was passed to). A contact *reached* a stage when that flag or a later one is set (a
  walk-in visit without a booking reached the booking stage too), so each stage is at most the one before it; the
  conversion is a stage's count over the previous stage's. The contacts are those that *began* in the period, whenever
  their stages were set (a cohort: a booking made next month counts for this month's contact).
* **Missed calls** (``missed``): the register's entries missed in the period by reason and by how they were closed
  (called back, the customer called again, by hand, still open); each agent's misses (their phone rang, they did not
  take the call) by reason; and the *time to call back*: for entries closed by a call-back (an answered outbound call
  to the number: ``closed_by = callback``), ``closed_at - missed_at``, its median and 90th percentile (nearest rank).

Days are calendar days in the site's time zone: the store groups by ``floor((t + offset) / 86400)`` over spans of
the period in which the zone's offset is constant (:func:`offset_spans`: one span a year in Moscow, three around two
daylight-saving changes), so a day is exact whatever the zone. A period's whole days (:func:`whole_days`) may come
from the day counts the store keeps in the site's zone instead (``store/report_days.py``): the same figures, folded
here the same way.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from itertools import pairwise
from typing import Any, Literal, TextIO

from .records import iso_time
from .safe_text import csv_cells

ReportName = Literal["registered", "contacts", "funnel", "missed"]
REPORTS: tuple[ReportName, ...] = ("registered", "contacts", "funnel", "missed")
#: The funnel's stages, in order (the first is the contact itself).
FUNNEL: tuple[str, ...] = ("contacts", "request", "booking", "visit")
#: The longest period a report covers (a year and a bit: a leap year, a period given in local days).
MAX_PERIOD_SECONDS = 367 * 86400
#: Answered inbound calls with no contact listed at most (the rest are counted; the list is newest first).
MAX_UNREGISTERED = 1000
DAY = 86400


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """What a report covers: ``since`` inclusive, ``until`` exclusive (epoch seconds), days in ``tz``; the PBXs
    (None: every PBX), one agent's extension (None: every agent); ``unregistered``: how many answered calls with no
    contact the ``registered`` report lists."""

    since: float
    until: float
    tz: tzinfo | None = None
    pbxs: tuple[str, ...] | None = None
    agent: str | None = None
    unregistered: int = 100

    def __post_init__(self) -> None:
        if not (math.isfinite(self.since) and math.isfinite(self.until)) or self.since >= self.until:
            raise ValueError("a report's period ends after it begins")
        if self.until - self.since > MAX_PERIOD_SECONDS:
            raise ValueError("a report covers at most a year")
        if isinstance(self.pbxs, str):
            raise TypeError("pbxs is a collection of PBX ids, not one id")
        if not 0 <= self.unregistered <= MAX_UNREGISTERED:
            raise ValueError(f"unregistered: 0-{MAX_UNREGISTERED} calls")


# -- days in the site's zone ----------------------------------------------------------------------------------------


def _offset(moment: float, tz: tzinfo | None) -> int:
    offset = datetime.fromtimestamp(moment, tz).astimezone(tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def offset_spans(since: float, until: float, tz: tzinfo | None) -> list[tuple[float, float, int]]:
    """``[since, until)`` cut where ``tz``'s UTC offset changes: (start, end, offset in seconds) each. A local day is
    then ``floor((t + offset) / 86400)`` inside a span. Changes are looked for a day apart and pinned to the second
    (a zone changes its offset at most a few times a year, never twice in a day)."""
    spans: list[tuple[float, float, int]] = []
    start, current = since, _offset(since, tz)
    probe = since
    while probe < until:
        edge = min(probe + DAY, until - 0.5)
        if edge > probe and _offset(edge, tz) != current:
            lo, hi = probe, edge
            while hi - lo > 0.5:
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if _offset(mid, tz) == current else (lo, mid)
            boundary = float(math.floor(hi))
            if boundary <= lo or _offset(boundary, tz) == current:
                boundary = hi
            spans.append((start, boundary, current))
            start, current = boundary, _offset(boundary, tz)
            probe = boundary
            continue
        probe = min(probe + DAY, until)
    spans.append((start, until, current))
    return [s for s in spans if s[0] < s[1]]


def local_day(moment: float, tz: tzinfo | None) -> int:
    """The number of ``moment``'s day in ``tz`` (days since 1970-01-01): what the store groups by."""
    return math.floor((moment + _offset(moment, tz)) / DAY)


def day_start(number: int, tz: tzinfo | None) -> float:
    """The first moment of day ``number`` in ``tz``: its midnight (a midnight a clock change skips: the change)."""
    day = day_of(number)
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


@dataclass(frozen=True, slots=True)
class WholeDays:
    """The whole days ``[first, end)`` (day numbers) inside a period, from ``start`` to ``stop`` (moments): the
    store counts those from its day counts and the rest of the period, ``[since, start)`` and ``[stop, until)``,
    from the rows."""

    first: int
    end: int
    start: float
    stop: float


def whole_days(since: float, until: float, tz: tzinfo | None) -> WholeDays | None:
    """The whole days of ``tz`` inside ``[since, until)``; None when there is none, or when the zone's clock goes
    back over a midnight inside the period (a day would then be two pieces: counting the rows is exact)."""
    first = local_day(since, tz)
    if day_start(first, tz) != since:
        first += 1
    end = local_day(until, tz)
    if first >= end:
        return None
    start, stop = day_start(first, tz), day_start(end, tz)
    spans = offset_spans(start, stop, tz)
    for (_, edge, before), (_, _, after) in pairwise(spans):
        if math.floor((edge - 0.5 + before) / DAY) > math.floor((edge + after) / DAY):
            return None
    if local_day(start, tz) != first or not since <= start < stop <= until:
        return None
    return WholeDays(first, end, start, stop)


def day_of(number: int) -> date:
    """The date of day ``number`` (days since 1970-01-01, as the store groups them)."""
    return date(1970, 1, 1) + timedelta(days=int(number))


def week_of(day: date) -> date:
    """The Monday of ``day``'s ISO week: what the weekly dynamics group by."""
    return day - timedelta(days=day.weekday())


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (the smallest value with at least ``share`` of the values at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# -- what every report is ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    """One table of a report: what the CLI prints, the CSV writes and the panel draws. ``columns``: (key, title)."""

    name: str
    title: str
    columns: tuple[tuple[str, str], ...]
    rows: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Report:
    """A report's figures: its name, the query it answers, the totals and its tables (in the order they print)."""

    name: ReportName
    query: ReportQuery
    totals: Mapping[str, Any]
    tables: tuple[Table, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)

    def to_json(self) -> dict[str, Any]:
        """The report as the API and ``cti report --format json`` give it: the period in ISO 8601 (site's zone)."""
        q = self.query
        out: dict[str, Any] = {
            "report": self.name, "since": iso_time(q.since, q.tz), "until": iso_time(q.until, q.tz),
            "pbxs": list(q.pbxs) if q.pbxs is not None else None, "agent": q.agent, "totals": dict(self.totals),
        }
        for t in self.tables:
            out[t.name] = [dict(r) for r in t.rows]
        out.update(self.extra)
        return out


def write_report_csv(report: Report, out: TextIO, *, delimiter: str = ";") -> int:
    """The report as CSV, as 1C and a Russian Excel open it (``;``, CRLF): each table under a line with its name,
    its header, its rows, and an empty line; the rows written."""
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["report", report.name, "since", iso_time(report.query.since, report.query.tz),
                     "until", iso_time(report.query.until, report.query.tz)])
    count = 0
    for t in report.tables:
        writer.writerow([])
        writer.writerow([t.name])
        writer.writerow([key for key, _ in t.columns])
        for row in t.rows:
            writer.writerow(csv_cells(row, (key for key, _ in t.columns)))
            count += 1
    return count


# -- PBX vs registered ---------------------------------------------------------------------------------------------

REGISTERED_COLUMNS = (("day", "Day"), ("pbx", "PBX"), ("agent", "Agent"), ("answered", "Answered inbound"),
                      ("registered", "Registered"), ("unregistered", "Not registered"),
                      ("phone_contacts", "Phone contacts"))
AGENT_COLUMNS = REGISTERED_COLUMNS[1:]
UNREGISTERED_COLUMNS = (("started_at", "Started"), ("pbx", "PBX"), ("agent", "Agent"), ("caller", "Caller"),
                        ("caller_name", "Name"), ("talk_seconds", "Talk s"), ("recording", "Recording"),
                        ("linkedid", "Linkedid"))


def registered_report(query: ReportQuery, calls: Iterable[Mapping[str, Any]], contacts: Iterable[Mapping[str, Any]],
                      unregistered: Iterable[Mapping[str, Any]], unregistered_total: int) -> Report:
    """From the store's rows: ``calls`` (day, pbx, agent, answered, registered), ``contacts`` (day, pbx, agent, n: the
    phone contacts), ``unregistered`` (the newest answered inbound calls with no contact)."""
    cells: dict[tuple[int, str, str], dict[str, int]] = {}

    def cell(day: int, pbx: str | None, agent: str | None) -> dict[str, int]:
        return cells.setdefault((int(day), pbx or "", agent or ""),
                                {"answered": 0, "registered": 0, "phone_contacts": 0})

    for r in calls:
        c = cell(r["day"], r["pbx"], r["agent"])
        c["answered"] += int(r["answered"])
        c["registered"] += int(r["registered"])
    for r in contacts:
        cell(r["day"], r["pbx"], r["agent"])["phone_contacts"] += int(r["n"])
    days: list[dict[str, Any]] = []
    agents: dict[tuple[str, str], dict[str, Any]] = {}
    totals: dict[str, Any] = {"answered": 0, "registered": 0, "unregistered": 0, "phone_contacts": 0}
    for (day, pbx, agent), c in sorted(cells.items()):
        row: dict[str, Any] = {"day": day_of(day).isoformat(), "pbx": pbx or None, "agent": agent or None, **c,
               "unregistered": c["answered"] - c["registered"]}
        days.append(row)
        a = agents.setdefault((pbx, agent), {"pbx": pbx or None, "agent": agent or None, "answered": 0,
                                             "registered": 0, "unregistered": 0, "phone_contacts": 0})
        for key in totals:
            a[key] += row[key]
            totals[key] += row[key]
    totals["registered_share"] = _rate(totals["registered"], totals["answered"])
    listed = tuple({
        "started_at": iso_time(r["started_at"], query.tz), "pbx": r["pbx"], "agent": r["agent"],
        "caller": r["caller"], "caller_name": r["caller_name"], "talk_seconds": _seconds(r["talk_seconds"]),
        "recording": r["recording"], "linkedid": r["linkedid"],
        "register": {"type": "script.start", "channel": "phone", "number": r["caller"], "linkedid": r["linkedid"],
                     "pbx": r["pbx"]},
    } for r in unregistered)
    return Report("registered", query, totals, (
        Table("days", "Answered inbound calls vs registered contacts, by day and agent", REGISTERED_COLUMNS,
              tuple(days)),
        Table("agents", "By agent", AGENT_COLUMNS, tuple(agents[k] for k in sorted(agents))),
        Table("unregistered", "Answered inbound calls with no contact", UNREGISTERED_COLUMNS, listed),
    ), {"unregistered_total": unregistered_total})


# -- contact statistics ----------------------------------------------------------------------------------------------

COUNT_COLUMNS = (("contacts", "Contacts"), ("primary", "Primary"), ("repeat", "Repeat"))


def contacts_report(query: ReportQuery, rows: Iterable[Mapping[str, Any]],
                    marginals: Iterable[Mapping[str, Any]] = ()) -> Report:
    """From the store's rows (day, channel, client_kind, reason, is_repeat, n: contacts counted from their rows) and
    its day counts (``marginals``: day, dimension (channel, client_kind or reason), value, is_repeat, n: each contact
    counted once per dimension, ``store/report_days.py``): the contacts by day, week, client type, channel, reason and
    primary vs repeat. A contact has exactly one channel, so the channel's counts are also the day's and the totals."""
    by: dict[str, dict[Any, dict[str, int]]] = {k: {} for k in ("day", "week", "client_kind", "channel", "reason")}
    totals: dict[str, Any] = {"contacts": 0, "primary": 0, "repeat": 0}
    counted: list[tuple[int, bool, dict[str, Any]]] = []
    for r in rows:
        day = day_of(r["day"])
        counted.append((int(r["n"]), bool(r["is_repeat"]), {
            "day": day.isoformat(), "week": week_of(day).isoformat(), "client_kind": r["client_kind"] or "",
            "channel": r["channel"], "reason": r["reason"] or ""}))
    for r in marginals:
        dim, value = r["dimension"], r["value"] or ""
        if dim == "channel":
            day = day_of(r["day"])
            counted.append((int(r["n"]), bool(r["is_repeat"]), {
                "day": day.isoformat(), "week": week_of(day).isoformat(), "channel": value}))
        else:
            counted.append((int(r["n"]), bool(r["is_repeat"]), {dim: value}))
    for n, repeat, values in counted:
        if "channel" in values:
            totals["contacts"] += n
            totals["repeat" if repeat else "primary"] += n
        for dim, key in values.items():
            c = by[dim].setdefault(key, {"contacts": 0, "primary": 0, "repeat": 0})
            c["contacts"] += n
            c["repeat" if repeat else "primary"] += n
    titles = {"day": ("days", "By day", "Day"), "week": ("weeks", "By week (Monday)", "Week"),
              "client_kind": ("client_kinds", "By client type", "Client type"),
              "channel": ("channels", "By channel", "Channel"), "reason": ("reasons", "By reason", "Reason")}
    tables: list[Table] = []
    for dim, (name, title, head) in titles.items():
        counts = by[dim]
        order = sorted(counts) if dim in ("day", "week") else sorted(counts, key=lambda k: (-counts[k]["contacts"], k))
        rows_out = tuple({dim: k or None, **counts[k]} for k in order)
        tables.append(Table(name, title, ((dim, head), *COUNT_COLUMNS), rows_out))
    totals["repeat_share"] = _rate(totals["repeat"], totals["contacts"])
    return Report("contacts", query, totals, tuple(tables))


def with_reason_titles(report: Report, titles: Mapping[str, str]) -> Report:
    """The contacts report with each reason's title beside its id (``reason_title``: the script option's label, from
    ``titles``; the id itself when it has none), in the JSON and as a CSV column. Titles come from the script versions
    the store keeps (``store/reason_titles.py``), not from SQL."""
    tables = []
    for t in report.tables:
        if t.name == "reasons":
            rows = tuple({**r, "reason_title": titles.get(r["reason"], r["reason"]) if r.get("reason") else None}
                         for r in t.rows)
            t = Table(t.name, t.title, (t.columns[0], ("reason_title", "Reason title"), *t.columns[1:]), rows)
        tables.append(t)
    return Report(report.name, report.query, report.totals, tuple(tables), report.extra)


# -- the funnel ----------------------------------------------------------------------------------------------------

FUNNEL_COLUMNS = (("contacts", "Contacts"), ("request", "Request"), ("booking", "Booking"), ("visit", "Visit"),
                  ("request_rate", "→ request"), ("booking_rate", "→ booking"), ("visit_rate", "→ visit"))


def _stages(counts: Mapping[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {s: counts.get(s, 0) for s in FUNNEL}
    for before, stage in pairwise(FUNNEL):
        out[f"{stage}_rate"] = _rate(out[stage], out[before])
    return out


def funnel_report(query: ReportQuery, rows: Iterable[Mapping[str, Any]], names: Mapping[str, str | None],
                  employee_rows: Iterable[Mapping[str, Any]] | None = None) -> Report:
    """From the store's rows (pbx, agent, employee, is_repeat, contacts, request, booking, visit: each stage
    *reached*, see the module's docstring) and the employees' names (by id): the funnel for primary and repeat
    clients, per agent, per employee. ``employee_rows`` (pbx, employee, is_repeat and the stages): the employees'
    counts apart, when ``rows`` carry no employee (the day counts keep agents and employees in two tables,
    ``store/report_days.py``); None: from ``rows``."""
    clients: dict[str, dict[str, int]] = {}
    agents: dict[tuple[str, str, str], dict[str, int]] = {}
    employees: dict[tuple[str, str], dict[str, int]] = {}
    listed = list(rows)
    for r in listed:
        kind = "repeat" if r["is_repeat"] else "primary"
        for target in (clients.setdefault("all", {}), clients.setdefault(kind, {}),
                       agents.setdefault((r["pbx"] or "", r["agent"] or "", kind), {})):
            for s in FUNNEL:
                target[s] = target.get(s, 0) + int(r[s])
    for r in (listed if employee_rows is None else employee_rows):
        target = employees.setdefault((r["employee"] or "", "repeat" if r["is_repeat"] else "primary"), {})
        for s in FUNNEL:
            target[s] = target.get(s, 0) + int(r[s])
    kinds = tuple({"clients": k, **_stages(clients.get(k, {}))} for k in ("all", "primary", "repeat"))
    per_agent = tuple({"pbx": pbx or None, "agent": agent or None, "clients": kind, **_stages(c)}
                      for (pbx, agent, kind), c in sorted(agents.items()))
    per_employee = tuple({"employee": emp or None, "employee_name": names.get(emp) if emp else None,
                          "clients": kind, **_stages(c)} for (emp, kind), c in sorted(employees.items()))
    return Report("funnel", query, _stages(clients.get("all", {})), (
        Table("clients", "Primary and repeat clients", (("clients", "Clients"), *FUNNEL_COLUMNS), kinds),
        Table("agents", "By agent", (("pbx", "PBX"), ("agent", "Agent"), ("clients", "Clients"), *FUNNEL_COLUMNS),
              per_agent),
        Table("employees", "By employee (passed to)", (("employee", "Employee"), ("employee_name", "Name"),
                                                       ("clients", "Clients"), *FUNNEL_COLUMNS), per_employee),
    ))


# -- missed calls ----------------------------------------------------------------------------------------------------

CLOSINGS = ("callback", "called_again", "manual", "open")
MISSED_COLUMNS = (("reason", "Reason"), ("missed", "Missed"), ("callback", "Called back"),
                  ("called_again", "Called again"), ("manual", "Closed by hand"), ("open", "Open"))


def missed_report(query: ReportQuery, entries: Iterable[Mapping[str, Any]], misses: Iterable[Mapping[str, Any]],
                  waits: Iterable[float]) -> Report:
    """From the store's rows: ``entries`` (reason, closed_by or None when open, n), ``misses`` (pbx, agent, reason,
    n: agents' misses) and ``waits`` (``closed_at - missed_at`` of each entry closed by a call-back)."""
    reasons: dict[str, dict[str, int]] = {}
    totals: dict[str, Any] = {"missed": 0, **{c: 0 for c in CLOSINGS}}
    for r in entries:
        closing = r["closed_by"] if r["closed_by"] in CLOSINGS else "open"
        c = reasons.setdefault(r["reason"], {"missed": 0, **{k: 0 for k in CLOSINGS}})
        n = int(r["n"])
        for target in (c, totals):
            target["missed"] += n
            target[closing] += n
    agents: dict[tuple[str, str], dict[str, Any]] = {}
    for r in misses:
        a = agents.setdefault((r["pbx"] or "", r["agent"] or ""), {"misses": 0, "reasons": {}})
        a["misses"] += int(r["n"])
        a["reasons"][r["reason"]] = a["reasons"].get(r["reason"], 0) + int(r["n"])
    per_agent = tuple({"pbx": pbx or None, "agent": agent or None, "misses": a["misses"],
                       "reasons": "; ".join(f"{k}: {v}" for k, v in sorted(a["reasons"].items())),
                       "by_reason": dict(sorted(a["reasons"].items()))}
                      for (pbx, agent), a in sorted(agents.items(), key=lambda kv: (-kv[1]["misses"], kv[0])))
    times = [float(w) for w in waits]
    totals["agent_misses"] = sum(a["misses"] for a in agents.values())
    totals["callback_count"] = len(times)
    totals["callback_median_seconds"] = _seconds(statistics.median(times)) if times else None
    totals["callback_p90_seconds"] = _seconds(percentile(times, 0.9))
    totals["called_back_share"] = _rate(totals["callback"], totals["missed"])
    return Report("missed", query, totals, (
        Table("reasons", "Missed calls by reason", MISSED_COLUMNS,
              tuple({"reason": k, **reasons[k]} for k in sorted(reasons, key=lambda k: (-reasons[k]["missed"], k)))),
        Table("agents", "Agents' misses", (("pbx", "PBX"), ("agent", "Agent"), ("misses", "Misses"),
                                           ("reasons", "Reasons")), per_agent),
    ))
