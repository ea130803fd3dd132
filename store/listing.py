"""The journal's and the register's listing queries, backend-neutral: filters → WHERE clauses and parameters.

Why one module: the filters (since/until/number/agent/direction/outcome, status), the keyset bound ``after`` and
the journal's order are the same on SQLite and PostgreSQL, and so is every condition built from them; only the
dialect differs (how "no limit" is written, how a boolean ``false`` is, whether a time bound must be a float
for the driver) and, for the journal, how the conditions are joined into one statement (each backend's
planner wants its own shape: ``store/sqlite/journal.py``, ``store/postgres/journal.py``). Parameters are named
(``:since``); the PostgreSQL store numbers them (``store/postgres/params.py``).

PBXs: ``pbxs`` None adds no condition at all (a single site's listings are exactly what they were); given, one
``pbx IN (...)`` on the table whose index drives, where ``pbx`` is the last column of every journal index (the
order's last tie-break), so the condition is checked in the index. The journal's keyset is (started_at,
linkedid, pbx): the same linkedid may start at the same instant on two PBXs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any

from cti.phones import normalize_number

Query = tuple[str, dict[str, Any]]
#: A place in the journal's order: (started_at, linkedid, pbx).
CallPlace = tuple[float, str, str]


def pbx_set(pbxs: Collection[str] | None) -> tuple[str, ...] | None:
    """``pbxs`` as the filters keep it: None (every PBX), else each PBX once, sorted (a stable statement)."""
    if pbxs is None:
        return None
    if isinstance(pbxs, str):  # a PBX id where a collection belongs: its characters would be taken for PBXs
        raise TypeError("pbxs is a collection of PBX ids, not one id")
    return tuple(sorted(set(pbxs)))


def pbx_condition(column: str, pbxs: tuple[str, ...], params: dict[str, Any]) -> str:
    """``column`` is one of ``pbxs``: one named parameter per PBX (a handful), the same SQL on both backends; no
    PBX at all matches nothing."""
    if not pbxs:
        return "1 = 0"
    names = []
    for i, pbx in enumerate(pbxs):
        params[f"pbx{i}"] = pbx
        names.append(f":pbx{i}")
    return f"{column} IN ({', '.join(names)})"


@dataclass(frozen=True, slots=True)
class CallFilter:
    """The filters of a journal listing (see ``store.repository.Journal.list_calls``)."""

    since: float | None = None
    until: float | None = None
    number: str | None = None
    agent: str | None = None
    direction: str | None = None
    outcome: str | None = None
    pbxs: tuple[str, ...] | None = None  # ``pbx_set``: None, every PBX


def _as_given(value: float) -> float:
    return value


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the backends in a listing's SQL.

    ``no_limit``: a LIMIT that takes every row (SQLite ``-1``, PostgreSQL ``NULL``); ``false``: a false boolean
    in ``coalesce`` (SQLite ``0``); ``bound``: a time bound as the driver wants it (asyncpg a float for a
    ``double precision``, even a whole one)."""

    no_limit: int | None
    false: str
    bound: Callable[[float], float] = _as_given

    def limit(self, n: int | None) -> int | None:
        return self.no_limit if n is None else n

    # -- the register --------------------------------------------------------------------------------------

    def missed_query(self, *, region: str, status: str | None = None, since: float | None = None,
                     until: float | None = None, number: str | None = None, after: tuple[float, int] | None = None,
                     limit: int | None = None, offset: int = 0, pbxs: Collection[str] | None = None) -> Query:
        """One page of the register in its order (missed_at, id), after the entry whose (missed_at, id) is
        ``after``. Served by (status, missed_at), (caller_key, status, missed_at), (caller_key, missed_at) or
        (missed_at), each ending with the id, so every page is read in order straight off an index."""
        where: list[str] = []
        params: dict[str, Any] = {"limit": self.limit(limit), "offset": offset}
        self._time_range("missed_at", _lower_bound(since, after), until, where, params)
        if status is not None:
            where.append("status = :status")
            params["status"] = status
        if number is not None:
            key = normalize_number(number, region)
            if key is not None:
                where.append("caller_key = :number")
                params["number"] = key
            else:  # a withheld number has no key; match it as written
                where.append("caller_key IS NULL AND caller = :number")
                params["number"] = number
        chosen = pbx_set(pbxs)
        if chosen is not None:
            where.append(pbx_condition("pbx", chosen, params))
        self._after("(missed_at, id)", after, where, params)
        sql = "SELECT * FROM missed" + (" WHERE " + " AND ".join(where) if where else "")
        return sql + " ORDER BY missed_at, id LIMIT :limit OFFSET :offset", params

    def agent_misses_query(self, *, agent: str | None, since: float | None, until: float | None,
                           after: tuple[float, int] | None = None, limit: int | None = None,
                           pbxs: Collection[str] | None = None) -> Query:
        """Agents' misses by (rang_at, id), served by (agent, rang_at) or (rang_at); ``pbxs``: of those PBXs (agent
        101 of one PBX is not agent 101 of another)."""
        where: list[str] = []
        params: dict[str, Any] = {"limit": self.limit(limit)}
        self._time_range("rang_at", _lower_bound(since, after), until, where, params)
        if agent is not None:
            where.append("agent = :agent")
            params["agent"] = agent
        chosen = pbx_set(pbxs)
        if chosen is not None:
            where.append(pbx_condition("pbx", chosen, params))
        self._after("(rang_at, id)", after, where, params)
        sql = "SELECT * FROM agent_misses" + (" WHERE " + " AND ".join(where) if where else "")
        return sql + " ORDER BY rang_at, id LIMIT :limit", params

    def _time_range(self, column: str, since: float | None, until: float | None,
                    where: list[str], params: dict[str, Any]) -> None:
        if since is not None:
            where.append(f"{column} >= :since")
            params["since"] = self.bound(since)
        if until is not None:
            where.append(f"{column} < :until")
            params["until"] = self.bound(until)

    def _after(self, key: str, after: tuple[float, int] | None, where: list[str], params: dict[str, Any]) -> None:
        if after is not None:
            where.append(f"{key} > (:after_at, :after_id)")
            params["after_at"], params["after_id"] = self.bound(after[0]), after[1]


def _lower_bound(since: float | None, after: tuple[float, int] | None) -> float | None:
    """``since``, or None when the page's ``after`` already starts at or beyond it: given both, SQLite seeks its
    index to one bound only, and a page that sought to ``since`` re-read every entry before ``after``."""
    return None if after is not None and since is not None and after[0] >= since else since


SQLITE = Dialect(no_limit=-1, false="0")
POSTGRES = Dialect(no_limit=None, false="false", bound=float)


class CallConditions:
    """The parts of one journal page's SQL: the rows matching a filter after the row whose (started_at,
    linkedid, pbx) is ``after``, in the journal's order, at most ``limit`` of them after ``offset``. A backend joins
    them into its statement (``calls_query`` in ``store/sqlite/journal.py``, ``store/postgres/journal.py``)."""

    __slots__ = ("after", "dialect", "filter", "key", "limit", "offset", "order", "params", "sign")

    def __init__(self, dialect: Dialect, f: CallFilter, *, region: str, newest_first: bool = False,
                 after: CallPlace | None = None, limit: int | None = None, offset: int = 0) -> None:
        self.dialect = dialect
        self.after = after
        self.limit = limit
        self.offset = offset
        self.params: dict[str, Any] = {"limit": dialect.limit(limit), "offset": offset}
        self.sign, self.order = ("<", "DESC") if newest_first else (">", "ASC")
        # The bound ``after`` implies is left alone: given both, SQLite seeks the index to one of them only, and
        # a page that seeks to ``since`` scans every row before ``after`` again (a month's export in pages of
        # 500 read 20 million index entries); PostgreSQL seeks to ``after`` the same way.
        if after is not None and f.since is not None and not newest_first and after[0] >= f.since:
            f = replace(f, since=None)
        if after is not None and f.until is not None and newest_first and after[0] < f.until:
            f = replace(f, until=None)
        self.filter = f
        self.key = normalize_number(f.number, region) if f.number is not None else None
        if f.number is not None:
            self.params["number"] = self.key if self.key is not None else f.number

    def common(self, t: str, p: str) -> list[str]:
        """Conditions on the order columns of table ``t`` and on the calls table ``p``."""
        f, params, bound = self.filter, self.params, self.dialect.bound
        where = []
        if f.since is not None:
            where.append(f"{t}.started_at >= :since")
            params["since"] = bound(f.since)
        if f.until is not None:
            where.append(f"{t}.started_at < :until")
            params["until"] = bound(f.until)
        if self.after is not None:
            where.append(f"({t}.started_at, {t}.linkedid, {t}.pbx) {self.sign} (:after_at, :after_id, :after_pbx)")
            params["after_at"] = bound(self.after[0])
            params["after_id"], params["after_pbx"] = self.after[1], self.after[2]
        if f.pbxs is not None:
            where.append(pbx_condition(f"{t}.pbx", f.pbxs, params))
        if f.direction is not None:
            where.append(f"{p}.direction = :direction")
            params["direction"] = f.direction
        if f.outcome is not None:
            where.append(f"{p}.outcome = :outcome")
            params["outcome"] = f.outcome
        return where

    def side(self, column: str) -> str:
        """The number on one side of the call: its key, or for a withheld number the text as written."""
        return (f"{column}_key = :number" if self.key is not None
                else f"({column}_key IS NULL AND {column} = :number)")

    def page(self, t: str) -> str:
        """The order and the page's bounds, on the order columns of ``t`` (``"a."``, or ``""``)."""
        return (f" ORDER BY {t}started_at {self.order}, {t}linkedid {self.order}, {t}pbx {self.order}"
                " LIMIT :limit OFFSET :offset")

    def agent_where(self) -> list[str]:
        """An agent's listing: ``call_agents a`` (the agent and the order) joined to ``calls c``."""
        self.params["agent"] = self.filter.agent
        where = ["a.agent = :agent", *self.common("a", "c")]
        if self.filter.number is not None:
            where.append(f"({self.side('c.caller')} OR {self.side('c.called')})")
        return where

    def number_sides(self, columns: str) -> list[str]:
        """A number's listing: one page of each side off its own index, to be merged by the backend. The called
        side leaves out the calls the caller side has: UNION ALL, no duplicate to weed out."""
        self.params["inner"] = self.dialect.limit(None if self.limit is None else self.limit + self.offset)
        caller, called = self.side("calls.caller"), self.side("calls.called")
        return [f"SELECT {columns} FROM calls WHERE {' AND '.join([match, *self.common('calls', 'calls')])} "
                f"ORDER BY started_at {self.order}, linkedid {self.order}, pbx {self.order} LIMIT :inner"
                for match in (caller, f"{called} AND NOT coalesce({caller}, {self.dialect.false})")]

    def by_time(self, columns: str) -> str:
        """Neither an agent nor a number: the time range, with the direction or the outcome when given."""
        where = self.common("calls", "calls")
        return (f"SELECT {columns} FROM calls" + (" WHERE " + " AND ".join(where) if where else "")
                + self.page(""))
