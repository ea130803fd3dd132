"""The reports' day counts (SQLite's 0014, PostgreSQL's 0009): their zone, their rebuild, the statements reading them.

Why they exist: over a year (a million answered calls, a million and a half contacts) counting rows costs what
grouping them costs, and SQLite groups by sorting: 1-3.5 s a report (``docs/benchmarks.md``, "reports"). The day
counts hold each local day's figures, kept by triggers in the same transaction as the rows they count (whatever
code writes the rows), so a year's report reads 365 days of counts and stays exactly what counting the rows gives.

**The day is the site's.** A day count belongs to a zone: ``report_zone`` holds that zone's spans of constant UTC
offset from 1970 to 2100 (``cti.reports.offset_spans``), each row naming the zone. The store is told its zone
(``keep_report_days``: the daemon at start, from ``[http] timezone``'s zone); a zone other than the one kept makes
the counts again from the rows, in one transaction. A store never told its zone (as the migrations leave it) keeps
no counts, and its reports count rows, as does a report asked in another zone than the one kept or over a period with
no whole day in it. Narrowed to an agent, the contact statistics and the funnel count that agent's rows (the counts by
kind and by employee hold no agent; an agent's contacts are a fiftieth of the period's, read off their own index).

**What a report reads** (``store/reports.py``): the whole days of its period from the counts, and the pieces of the
period before the first midnight and after the last from the rows, both folded by the same ``cti/reports.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

from cti.reports import WholeDays, offset_spans
from store.listing import pbx_condition, pbx_set

#: The spans kept: from the epoch to 2100-01-01 (a row outside is not counted, and a report there counts rows).
ZONE_START = 0.0
ZONE_END = 4102444800.0

#: The day-count tables, each with its rebuild per span of the zone (``{day}``: a column's local day at
#: ``:offset``; ``:since``/``:until``: the span). A day cut by an offset change is counted from two spans, so every
#: rebuild adds to what is there (``ON CONFLICT ... DO UPDATE``).
TABLES = ("report_answered", "report_contact_agents", "report_contact_employees", "report_contact_kinds",
          "report_missed", "report_agent_misses")

_STAGES = ("sum(CASE WHEN request_at IS NOT NULL OR booking_at IS NOT NULL OR visit_at IS NOT NULL THEN 1 ELSE 0 END), "
           "sum(CASE WHEN booking_at IS NOT NULL OR visit_at IS NOT NULL THEN 1 ELSE 0 END), "
           "sum(CASE WHEN visit_at IS NOT NULL THEN 1 ELSE 0 END)")
_IN_SPAN = "{column} >= :since AND {column} < :until"


def _add(table: str, keys: str, values: str) -> str:
    return f"ON CONFLICT ({keys}) DO UPDATE SET " + ", ".join(f"{v} = {table}.{v} + excluded.{v}"
                                                              for v in values.split(", "))


def rebuild_sql(day: str) -> list[str]:
    """The statements that count one span's rows into the day counts; ``day``: the dialect's day of ``{column}``."""

    def d(column: str) -> str:
        return day.format(column=column)

    out = [
        "INSERT INTO report_answered (day, pbx, agent, answered, registered) "
        f"SELECT {d('started_at')}, pbx, coalesce(answered_by, ''), count(*), "
        "sum(CASE WHEN EXISTS (SELECT 1 FROM contact_calls cc WHERE cc.linkedid = calls.linkedid "
        "AND cc.pbx = calls.pbx) THEN 1 ELSE 0 END) FROM calls "
        f"WHERE direction = 'inbound' AND outcome = 'answered' AND {_IN_SPAN.format(column='started_at')} "
        "GROUP BY 1, 2, 3 "
        + _add("report_answered", "day, pbx, agent", "answered, registered"),
        "INSERT INTO report_contact_agents (day, pbx, agent, is_repeat, contacts, phone, request, booking, visit) "
        f"SELECT {d('at')}, coalesce(pbx, ''), coalesce(agent, ''), is_repeat, count(*), "
        f"sum(CASE WHEN channel = 'phone' THEN 1 ELSE 0 END), {_STAGES} FROM contact_register "
        f"WHERE {_IN_SPAN.format(column='at')} GROUP BY 1, 2, 3, 4 "
        + _add("report_contact_agents", "day, pbx, agent, is_repeat", "contacts, phone, request, booking, visit"),
        "INSERT INTO report_contact_employees (day, pbx, employee, is_repeat, contacts, request, booking, visit) "
        f"SELECT {d('at')}, coalesce(pbx, ''), coalesce(employee, ''), is_repeat, count(*), {_STAGES} "
        f"FROM contact_register WHERE {_IN_SPAN.format(column='at')} GROUP BY 1, 2, 3, 4 "
        + _add("report_contact_employees", "day, pbx, employee, is_repeat", "contacts, request, booking, visit"),
        "INSERT INTO report_missed (day, pbx, reason, closed_by, n) "
        f"SELECT {d('missed_at')}, pbx, reason, coalesce(closed_by, ''), count(*) FROM missed "
        f"WHERE {_IN_SPAN.format(column='missed_at')} GROUP BY 1, 2, 3, 4 "
        + _add("report_missed", "day, pbx, reason, closed_by", "n"),
        "INSERT INTO report_agent_misses (day, pbx, agent, reason, n) "
        f"SELECT {d('rang_at')}, pbx, agent, reason, count(*) FROM agent_misses "
        f"WHERE {_IN_SPAN.format(column='rang_at')} GROUP BY 1, 2, 3, 4 "
        + _add("report_agent_misses", "day, pbx, agent, reason", "n"),
    ]
    for dimension in ("channel", "client_kind", "reason"):
        out.append(
            "INSERT INTO report_contact_kinds (day, pbx, dimension, value, is_repeat, n) "
            f"SELECT {d('at')}, coalesce(pbx, ''), '{dimension}', coalesce({dimension}, ''), is_repeat, count(*) "
            f"FROM contact_register WHERE {_IN_SPAN.format(column='at')} GROUP BY 1, 2, 4, 5 "
            + _add("report_contact_kinds", "day, pbx, dimension, value, is_repeat", "n"))
    return out


def zone_key(tz: tzinfo | None) -> str | None:
    """The name a zone is kept under (``Europe/Moscow``); None for a zone with no name (a fixed offset, the machine's
    local time): no day counts are kept in it."""
    key = getattr(tz, "key", None)
    return key if isinstance(key, str) and key else None


def zone_spans(tz: tzinfo) -> list[tuple[float, float, int]]:
    """The zone's spans of constant offset, 1970-2100."""
    return offset_spans(ZONE_START, ZONE_END, tz)


#: The zone the counts are kept in (None: none kept).
KEPT_ZONE = "SELECT zone FROM report_zone LIMIT 1"
ZONE_ROW = "INSERT INTO report_zone (since, until, utc_offset, zone) VALUES (:since, :until, :offset, :zone)"


def clear_sql() -> list[str]:
    """Forget the zone and every count (before a rebuild in another zone)."""
    return ["DELETE FROM report_zone", *(f"DELETE FROM {t}" for t in TABLES)]


def spans_with_rows(spans: Sequence[tuple[float, float, int]], bounds: Sequence[tuple[float | None, float | None]]
                    ) -> list[tuple[float, float, int]]:
    """The spans some row falls in (``bounds``: each table's first and last time), the only ones a rebuild reads."""
    lows = [lo for lo, _ in bounds if lo is not None]
    highs = [hi for _, hi in bounds if hi is not None]
    if not lows:
        return []
    first, last = min(lows), max(highs)
    return [s for s in spans if s[1] > first and s[0] <= last]


BOUNDS = [
    "SELECT min(started_at) AS lo, max(started_at) AS hi FROM calls",
    "SELECT min(at) AS lo, max(at) AS hi FROM contact_register",
    "SELECT min(missed_at) AS lo, max(missed_at) AS hi FROM missed",
    "SELECT min(rang_at) AS lo, max(rang_at) AS hi FROM agent_misses",
]


# -- reading ---------------------------------------------------------------------------------------------------------


def _where(days: WholeDays, pbxs: tuple[str, ...] | None, params: dict[str, Any], agent: str | None = None) -> str:
    params["first"], params["end"] = days.first, days.end
    clauses = ["day >= :first", "day < :end"]
    chosen = pbx_set(pbxs)
    if chosen is not None:
        clauses.append(pbx_condition("pbx", chosen, params))
    if agent is not None:
        clauses.append("agent = :agent")
        params["agent"] = agent
    return " AND ".join(clauses)


def answered_sql(days: WholeDays, pbxs: tuple[str, ...] | None, agent: str | None = None
                 ) -> tuple[str, dict[str, Any]]:
    """The answered inbound calls and how many are registered, by (day, pbx, agent): the rows ``registered`` folds."""
    params: dict[str, Any] = {}
    return (f"SELECT day, pbx, agent, answered, registered FROM report_answered "
            f"WHERE {_where(days, pbxs, params, agent)} "
            "AND answered <> 0", params)


def phone_contacts_sql(days: WholeDays, pbxs: tuple[str, ...] | None, agent: str | None = None
                       ) -> tuple[str, dict[str, Any]]:
    """The phone contacts by (day, pbx, agent)."""
    params: dict[str, Any] = {}
    return (f"SELECT day, pbx, agent, sum(phone) AS n FROM report_contact_agents "
            f"WHERE {_where(days, pbxs, params, agent)} "
            "GROUP BY day, pbx, agent HAVING sum(phone) <> 0", params)


def contact_kinds_sql(days: WholeDays, pbxs: tuple[str, ...] | None) -> tuple[str, dict[str, Any]]:
    """The contacts by (day, dimension, value, primary/repeat), every PBX asked for together."""
    params: dict[str, Any] = {}
    return (f"SELECT day, dimension, value, is_repeat, sum(n) AS n FROM report_contact_kinds "
            f"WHERE {_where(days, pbxs, params)} GROUP BY day, dimension, value, is_repeat HAVING sum(n) <> 0", params)


def funnel_agents_sql(days: WholeDays, pbxs: tuple[str, ...] | None) -> tuple[str, dict[str, Any]]:
    """The funnel's counts by (pbx, agent, primary/repeat) over the days."""
    params: dict[str, Any] = {}
    return (f"SELECT pbx, agent, is_repeat, sum(contacts) AS contacts, sum(request) AS request, "
            f"sum(booking) AS booking, sum(visit) AS visit FROM report_contact_agents "
            f"WHERE {_where(days, pbxs, params)} GROUP BY pbx, agent, is_repeat HAVING sum(contacts) <> 0", params)


def funnel_employees_sql(days: WholeDays, pbxs: tuple[str, ...] | None) -> tuple[str, dict[str, Any]]:
    """The funnel's counts by (employee, primary/repeat) over the days."""
    params: dict[str, Any] = {}
    return (f"SELECT employee, is_repeat, sum(contacts) AS contacts, sum(request) AS request, "
            f"sum(booking) AS booking, sum(visit) AS visit FROM report_contact_employees "
            f"WHERE {_where(days, pbxs, params)} GROUP BY employee, is_repeat HAVING sum(contacts) <> 0", params)


def missed_sql(days: WholeDays, pbxs: tuple[str, ...] | None, agent: str | None = None
               ) -> list[tuple[str, dict[str, Any]]]:
    """The register's entries by (reason, how closed: '' open; an entry has no agent) and the agents' misses by
    (pbx, agent, reason)."""
    entries: dict[str, Any] = {}
    misses: dict[str, Any] = {}
    return [
        (f"SELECT reason, closed_by, sum(n) AS n FROM report_missed WHERE {_where(days, pbxs, entries)} "
         "GROUP BY reason, closed_by HAVING sum(n) <> 0", entries),
        (f"SELECT pbx, agent, reason, sum(n) AS n FROM report_agent_misses WHERE {_where(days, pbxs, misses, agent)} "
         "GROUP BY pbx, agent, reason HAVING sum(n) <> 0", misses),
    ]
