"""The reports' SQL, once for both stores: grouped counts the pure ``cti/reports.py`` folds into each report.

Why here and shared: the tables are the same on SQLite and PostgreSQL (the journal, the register, the contact
register), and so is every statement, with named parameters (the PostgreSQL store numbers them). Two things differ
(:class:`ReportDialect`): how a time becomes a day number (SQLite truncates a positive real with ``CAST``, PostgreSQL
``floor``s: its ``CAST`` would round) and that asyncpg wants a float for a ``double precision`` parameter.

Every statement reads an index made for it (SQLite's 0013, PostgreSQL's 0008: ``tests/store/test_report_plans.py``
reads the plans): the answered inbound calls from an index of the calls by direction and outcome in the journal's
order, with the agent and the PBX in it (a month's calls are one range of it, no table row read for the counts); each
call's contact from ``contact_calls``' index on the call; the contacts from one index on their time holding every
column the three contact reports group or filter by; the register and the agents' misses likewise. So a report costs
the rows of its period, never the years behind it, and reads no table rows for its counts.

Counting a year's rows still costs what grouping a million of them costs (SQLite sorts them). So when the store keeps
the day counts in the report's zone (``store/report_days.py``), a period's whole days are read from them and these
statements count only the pieces of the period around them (:func:`build_report`); the figures are the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cti.reports import (
    Report,
    ReportName,
    ReportQuery,
    WholeDays,
    contacts_report,
    funnel_report,
    missed_report,
    offset_spans,
    registered_report,
    whole_days,
)
from store import report_days
from store.listing import pbx_condition, pbx_set

#: Runs one statement with named parameters; the rows read by column name (``sqlite3.Row``, ``asyncpg.Record``).
Run = Callable[[str, dict[str, Any]], Awaitable[Sequence[Any]]]


def _as_given(value: float) -> float:
    return value


@dataclass(frozen=True, slots=True)
class ReportDialect:
    """``day``: the SQL of a column's local day number given ``:offset`` (seconds east of UTC); ``bound``: a time or
    an offset as the driver wants it."""

    day_sql: str
    bound: Callable[[float], float] = _as_given
    #: Whether a statement names the index it reads (SQLite's ``INDEXED BY``): without statistics (the store never
    #: runs ``ANALYZE``) SQLite's planner takes an index with an equality (``calls_outcome``, ``contact_register_
    #: channel``) over the report's own covering index of the period, and reads a table row per call or contact.
    name_indexes: bool = False
    #: Whether the store keeps the day counts (``store/report_days.py``) a report reads for its whole days.
    days: bool = True

    def day(self, column: str) -> str:
        return self.day_sql.format(column=column)

    def table(self, name: str, index: str) -> str:
        return f"{name} INDEXED BY {index}" if self.name_indexes else name


SQLITE_REPORTS = ReportDialect("CAST(({column} + :offset) / 86400 AS INTEGER)", name_indexes=True)
POSTGRES_REPORTS = ReportDialect("floor(({column} + :offset) / 86400)", bound=float)

#: The report indexes (SQLite's 0013, PostgreSQL's 0008) of the answered inbound calls and of the contacts.
INBOUND = "calls_report"
CONTACTS = "contact_register_report"
#: One agent's contacts: their own index (0010's, on (agent, at, id)), a fiftieth of the period's entries to read.
AGENT_CONTACTS = "contact_register_agent"
#: The answered inbound calls: the equalities ``calls_report`` starts with.
ANSWERED_INBOUND = "direction = 'inbound' AND outcome = 'answered'"
#: Whether a call has a contact of the register (``contact_calls``' index on the call).
HAS_CONTACT = "EXISTS (SELECT 1 FROM contact_calls cc WHERE cc.linkedid = calls.linkedid AND cc.pbx = calls.pbx)"


def _contacts_index(query: ReportQuery) -> str:
    return CONTACTS if query.agent is None else AGENT_CONTACTS


def _where(time: str, since: float, until: float, query: ReportQuery, dialect: ReportDialect,
           agent: str | None, params: dict[str, Any]) -> str:
    """The period on ``time``, the PBXs on ``pbx`` and the agent on ``agent`` (a column; None: no agent filter)."""
    params["since"], params["until"] = dialect.bound(since), dialect.bound(until)
    clauses = [f"{time} >= :since", f"{time} < :until"]
    chosen = pbx_set(query.pbxs)
    if chosen is not None:
        clauses.append(pbx_condition("pbx", chosen, params))
    if agent is not None and query.agent is not None:
        clauses.append(f"{agent} = :agent")
        params["agent"] = query.agent
    return " AND ".join(clauses)


def registered_sql(dialect: ReportDialect, query: ReportQuery, span: tuple[float, float, int]
                   ) -> list[tuple[str, dict[str, Any]]]:
    """One span's answered inbound calls by (day, pbx, agent) with how many have a contact, and the phone contacts by
    (day, pbx, agent)."""
    since, until, offset = span
    calls: dict[str, Any] = {"offset": dialect.bound(offset)}
    where = _where("started_at", since, until, query, dialect, "answered_by", calls)
    contacts: dict[str, Any] = {"offset": dialect.bound(offset)}
    cwhere = _where("at", since, until, query, dialect, "agent", contacts)
    return [
        (f"SELECT {dialect.day('started_at')} AS day, pbx, answered_by AS agent, count(*) AS answered, "
         f"sum(CASE WHEN {HAS_CONTACT} THEN 1 ELSE 0 END) AS registered FROM {dialect.table('calls', INBOUND)} "
         f"WHERE {ANSWERED_INBOUND} AND {where} GROUP BY 1, 2, 3", calls),
        (f"SELECT {dialect.day('at')} AS day, pbx, agent, count(*) AS n "
         f"FROM {dialect.table('contact_register', _contacts_index(query))} WHERE channel = 'phone' AND {cwhere} "
         "GROUP BY 1, 2, 3",
         contacts),
    ]


def unregistered_sql(dialect: ReportDialect, query: ReportQuery) -> tuple[str, dict[str, Any]]:
    """The newest answered inbound calls of the period with no contact, read backwards off ``calls_report``."""
    params: dict[str, Any] = {"limit": query.unregistered}
    where = _where("started_at", query.since, query.until, query, dialect, "answered_by", params)
    return (f"SELECT linkedid, pbx, started_at, caller, caller_name, answered_by AS agent, talk_seconds, recording "
            f"FROM {dialect.table('calls', INBOUND)} WHERE {ANSWERED_INBOUND} AND {where} AND NOT {HAS_CONTACT} "
            "ORDER BY started_at DESC, linkedid DESC, pbx DESC LIMIT :limit", params)


def contacts_sql(dialect: ReportDialect, query: ReportQuery, span: tuple[float, float, int]
                 ) -> tuple[str, dict[str, Any]]:
    """One span's contacts by (day, channel, client type, reason, primary/repeat)."""
    since, until, offset = span
    params: dict[str, Any] = {"offset": dialect.bound(offset)}
    where = _where("at", since, until, query, dialect, "agent", params)
    return (f"SELECT {dialect.day('at')} AS day, channel, client_kind, reason, is_repeat, count(*) AS n "
            f"FROM {dialect.table('contact_register', _contacts_index(query))} WHERE {where} GROUP BY 1, 2, 3, 4, 5",
            params)


#: A stage is *reached* when its flag or a later one is set (``cti/reports.py``).
REACHED = {
    "request": "request_at IS NOT NULL OR booking_at IS NOT NULL OR visit_at IS NOT NULL",
    "booking": "booking_at IS NOT NULL OR visit_at IS NOT NULL",
    "visit": "visit_at IS NOT NULL",
}


def funnel_sql(dialect: ReportDialect, query: ReportQuery) -> tuple[str, dict[str, Any]]:
    """The period's contacts by (pbx, agent, employee, primary/repeat), with how many reached each stage."""
    params: dict[str, Any] = {}
    where = _where("at", query.since, query.until, query, dialect, "agent", params)
    stages = ", ".join(f"sum(CASE WHEN {cond} THEN 1 ELSE 0 END) AS {stage}" for stage, cond in REACHED.items())
    return (f"SELECT pbx, agent, employee, is_repeat, count(*) AS contacts, {stages} "
            f"FROM {dialect.table('contact_register', _contacts_index(query))} "
            f"WHERE {where} GROUP BY pbx, agent, employee, is_repeat", params)


#: An employee's name as the newest contact passed to them gave it (their index on (employee, at, id)).
EMPLOYEE_NAME = ("SELECT employee_name FROM contact_register WHERE employee = :employee "
                 "ORDER BY at DESC, id DESC LIMIT 1")


def missed_sql(dialect: ReportDialect, query: ReportQuery) -> list[tuple[str, dict[str, Any]]]:
    """The register's entries by (reason, how closed), the agents' misses by (pbx, agent, reason), and the wait of
    every entry a call-back closed."""
    entries: dict[str, Any] = {}
    ewhere = _where("missed_at", query.since, query.until, query, dialect, None, entries)
    misses: dict[str, Any] = {}
    mwhere = _where("rang_at", query.since, query.until, query, dialect, "agent", misses)
    waits: dict[str, Any] = {}
    wwhere = _where("missed_at", query.since, query.until, query, dialect, None, waits)
    return [
        (f"SELECT reason, closed_by, count(*) AS n FROM {dialect.table('missed', 'missed_report')} WHERE {ewhere} "
         "GROUP BY reason, closed_by", entries),
        (f"SELECT pbx, agent, reason, count(*) AS n FROM {dialect.table('agent_misses', 'agent_misses_report')} "
         f"WHERE {mwhere} GROUP BY pbx, agent, reason", misses),
        (f"SELECT closed_at - missed_at AS wait FROM {dialect.table('missed', 'missed_report')} WHERE {wwhere} "
         "AND closed_by = 'callback'", waits),
    ]


async def _kept_days(run: Run, dialect: ReportDialect, query: ReportQuery) -> WholeDays | None:
    """The whole days the day counts answer for (``store/report_days.py``), or None: the rows answer for all."""
    if not dialect.days:
        return None
    key = report_days.zone_key(query.tz)
    if key is None:
        return None
    days = whole_days(query.since, query.until, query.tz)
    if days is None or days.start < report_days.ZONE_START or days.stop > report_days.ZONE_END:
        return None
    kept = await run(report_days.KEPT_ZONE, {})
    return days if kept and kept[0]["zone"] == key else None


def _pieces(query: ReportQuery, days: WholeDays | None) -> list[ReportQuery]:
    """The parts of the period the rows answer for: all of it, or what lies outside the whole days."""
    if days is None:
        return [query]
    return [replace(query, since=since, until=until)
            for since, until in ((query.since, days.start), (days.stop, query.until)) if since < until]


async def build_report(run: Run, dialect: ReportDialect, name: ReportName, query: ReportQuery) -> Report:
    """Run the report's statements and fold their rows (``cti.reports``): the period's whole days from the day
    counts when they are kept in its zone, the rest from the rows."""
    days = await _kept_days(run, dialect, query)
    if days is not None and query.agent is not None and name in ("contacts", "funnel"):
        days = None  # the counts of contacts by kind and by employee hold no agent: one agent's rows are few
    pieces = _pieces(query, days)
    if name == "registered":
        calls: list[Any] = []
        contacts: list[Any] = []
        for piece in pieces:
            for span in offset_spans(piece.since, piece.until, piece.tz):
                [(calls_sql, calls_params), (contacts_sql_, contacts_params)] = registered_sql(dialect, piece, span)
                calls.extend(await run(calls_sql, calls_params))
                contacts.extend(await run(contacts_sql_, contacts_params))
        if days is not None:
            calls.extend(await run(*report_days.answered_sql(days, query.pbxs, query.agent)))
            contacts.extend(await run(*report_days.phone_contacts_sql(days, query.pbxs, query.agent)))
        total = sum(int(r["answered"]) - int(r["registered"]) for r in calls)
        listed = await run(*unregistered_sql(dialect, query)) if query.unregistered else []
        return registered_report(query, calls, contacts, listed, total)
    if name == "contacts":
        rows: list[Any] = []
        for piece in pieces:
            for span in offset_spans(piece.since, piece.until, piece.tz):
                rows.extend(await run(*contacts_sql(dialect, piece, span)))
        marginals = await run(*report_days.contact_kinds_sql(days, query.pbxs)) if days is not None else []
        return contacts_report(query, rows, marginals)
    if name == "funnel":
        rows = []
        for piece in pieces:
            rows.extend(await run(*funnel_sql(dialect, piece)))
        employee_rows = None
        if days is not None:
            employee_rows = [*rows, *await run(*report_days.funnel_employees_sql(days, query.pbxs))]
            rows.extend(await run(*report_days.funnel_agents_sql(days, query.pbxs)))
        names: dict[str, str | None] = {}
        for employee in sorted({r["employee"] for r in (employee_rows or rows) if r["employee"]}):
            found = await run(EMPLOYEE_NAME, {"employee": employee})
            names[employee] = found[0]["employee_name"] if found else None
        return funnel_report(query, rows, names, employee_rows)
    if name == "missed":
        entries: list[Any] = []
        misses: list[Any] = []
        for piece in pieces:
            [(entries_sql, entries_params), (misses_sql, misses_params), _] = missed_sql(dialect, piece)
            entries.extend(await run(entries_sql, entries_params))
            misses.extend(await run(misses_sql, misses_params))
        if days is not None:
            [(entries_sql, entries_params), (misses_sql, misses_params)] = report_days.missed_sql(
                days, query.pbxs, query.agent)
            entries.extend(await run(entries_sql, entries_params))
            misses.extend(await run(misses_sql, misses_params))
        waits = await run(*missed_sql(dialect, query)[2])
        return missed_report(query, entries, misses, (float(r["wait"]) for r in waits))
    raise ValueError(f"no report {name!r}")
