"""Reads of the call journal on PostgreSQL: one page (``list_calls``) or a stream, every filter on an index.

The queries are the SQLite store's (``store/sqlite/journal.py``), each driven by the index of its most selective
filter and read in the journal's order (``started_at``, ``linkedid``): ``call_agents`` for an agent, the caller's
and the called side's indexes merged for a number, else ``(direction|outcome, started_at, linkedid)`` or
``(started_at, linkedid)``. Streams are keyset pages, each one short query on the reader pool.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from cti.phones import normalize_number
from cti.records import CallRecord
from store.postgres import rows
from store.postgres.base import PostgresBase
from store.repository import DEFAULT_PAGE_SIZE, CallKey, CallRow

#: The columns every lean page is read with, for the next page to start after its last row.
ORDER_COLUMNS = ("started_at", "linkedid")


@dataclass(frozen=True, slots=True)
class CallFilter:
    """The filters of a journal listing (see ``store.repository.Journal.list_calls``)."""

    since: float | None = None
    until: float | None = None
    number: str | None = None
    agent: str | None = None
    direction: str | None = None
    outcome: str | None = None


def calls_query(f: CallFilter, *, region: str, newest_first: bool = False, after: tuple[float, str] | None = None,
                limit: int | None = None, offset: int = 0,
                columns: Sequence[str] | None = None) -> tuple[str, dict[str, Any]]:
    """The SQL (``:name`` parameters) of one page of the journal: the rows matching ``f`` after the row whose
    (started_at, linkedid) is ``after``, in the journal's order, at most ``limit`` of them after ``offset``.

    ``columns``: only those columns (a listing's), else the whole row."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    sign, order = ("<", "DESC") if newest_first else (">", "ASC")
    # The bound ``after`` implies makes the other one useless: leave it out so the index is sought to ``after``.
    if after is not None and f.since is not None and not newest_first and after[0] >= f.since:
        f = replace(f, since=None)
    if after is not None and f.until is not None and newest_first and after[0] < f.until:
        f = replace(f, until=None)

    def common(t: str, p: str) -> list[str]:
        where = []
        if f.since is not None:
            where.append(f"{t}.started_at >= :since")
            params["since"] = float(f.since)
        if f.until is not None:
            where.append(f"{t}.started_at < :until")
            params["until"] = float(f.until)
        if after is not None:
            where.append(f"({t}.started_at, {t}.linkedid) {sign} (:after_at, :after_id)")
            params["after_at"], params["after_id"] = float(after[0]), after[1]
        if f.direction is not None:
            where.append(f"{p}.direction = :direction")
            params["direction"] = f.direction
        if f.outcome is not None:
            where.append(f"{p}.outcome = :outcome")
            params["outcome"] = f.outcome
        return where

    def select(table: str) -> str:
        return ", ".join(f"{table}.{c}" for c in columns) if columns is not None else f"{table}.*"

    key = normalize_number(f.number, region) if f.number is not None else None
    if f.number is not None:
        params["number"] = key if key is not None else f.number

    def side(column: str) -> str:
        """The number on one side of the call: its key, or for a withheld number the text as written."""
        return f"{column}_key = :number" if key is not None else f"({column}_key IS NULL AND {column} = :number)"

    page = f" ORDER BY {{t}}started_at {order}, {{t}}linkedid {order} LIMIT :limit OFFSET :offset"
    if f.agent is not None:
        params["agent"] = f.agent
        where = ["a.agent = :agent", *common("a", "c")]
        if f.number is None and f.direction is None and f.outcome is None:
            # Only the agent's own table is filtered: the page is picked off its key first, then its calls are
            # read by theirs, so the plan is one index walk and a page of lookups whatever the planner estimates.
            picked = ("SELECT a.started_at, a.linkedid FROM call_agents a WHERE " + " AND ".join(where)
                      + page.format(t="a."))
            return (f"SELECT {select('c')} FROM ({picked}) AS a JOIN calls c ON c.linkedid = a.linkedid"
                    f" ORDER BY a.started_at {order}, a.linkedid {order}"), params
        if f.number is not None:
            where.append(f"({side('c.caller')} OR {side('c.called')})")
        return (f"SELECT {select('c')} FROM call_agents a JOIN calls c ON c.linkedid = a.linkedid WHERE "
                + " AND ".join(where) + page.format(t="a.")), params
    if f.number is not None:
        params["inner"] = None if limit is None else limit + offset
        branches = []
        # The called side leaves out the calls the caller side has: UNION ALL, no duplicate to weed out.
        for n, match in enumerate((side("calls.caller"),
                                   f"{side('calls.called')} AND NOT coalesce({side('calls.caller')}, false)")):
            where = [match, *common("calls", "calls")]
            branches.append(f"(SELECT {select('calls')} FROM calls WHERE {' AND '.join(where)} "
                            f"ORDER BY started_at {order}, linkedid {order} LIMIT :inner) AS side{n}")
        both = " UNION ALL ".join(f"SELECT * FROM {branch}" for branch in branches)
        return f"SELECT * FROM ({both}) AS found" + page.format(t=""), params
    where = common("calls", "calls")
    return (f"SELECT {select('calls')} FROM calls" + (" WHERE " + " AND ".join(where) if where else "")
            + page.format(t="")), params


class Projection:
    """Rows of some ``CallRow`` fields (``iter_call_pages(fields=..., stored=...)``): the columns to select, the row
    maker, and where the next page starts (the order columns are selected after the fields when they lack them).

    ``stored``: the lists (``text[]``, which asyncpg hands as lists) as the JSON text the interface promises,
    ``json.dumps(list, ensure_ascii=False)``; the flags are booleans already."""

    __slots__ = ("columns", "key_at", "row", "width")

    def __init__(self, fields: Sequence[str] | None, *, stored: bool = False) -> None:
        if fields is not None:
            unknown = [f for f in fields if f not in rows.LISTING_COLUMNS]
            if unknown or not fields:
                raise ValueError(f"not fields of a listing row: {unknown or 'none given'}")
        chosen = tuple(fields) if fields is not None else rows.LISTING_COLUMNS
        self.width = len(chosen)
        self.columns = chosen + tuple(c for c in ORDER_COLUMNS if c not in chosen)
        self.key_at = tuple(self.columns.index(c) for c in ORDER_COLUMNS)
        lists = tuple(i for i, name in enumerate(chosen) if name in rows.LIST_FIELDS)
        width = self.width
        whole = fields is None and not stored
        as_list: Callable[[Any], Any] = _json_text if stored else tuple

        def row(r: asyncpg.Record) -> tuple[Any, ...]:
            values = list(r)[:width]
            for i in lists:
                values[i] = as_list(values[i])
            return CallRow(*values) if whole else tuple(values)

        self.row: Callable[[asyncpg.Record], tuple[Any, ...]] = row

    def key(self, r: asyncpg.Record) -> tuple[float, str]:
        return r[self.key_at[0]], r[self.key_at[1]]


_json_list = json.JSONEncoder(ensure_ascii=False).encode


def _json_text(values: list[str]) -> str:
    """A list field as a stored row of the interface gives it: ``json.dumps(values, ensure_ascii=False)``."""
    return _json_list(values)


class JournalReads(PostgresBase):
    """``list_calls``, ``iter_calls``, ``iter_call_rows``, ``iter_call_pages``, ``get_call``, ``count_calls``."""

    async def list_calls(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        agent: str | None = None,
        direction: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
        after: CallKey | None = None,
    ) -> list[CallRecord]:
        f = CallFilter(since, until, number, agent, direction, outcome)
        sql, params = calls_query(f, region=self.region, newest_first=newest_first, limit=limit, offset=offset,
                                  after=(after.started_at, after.linkedid) if after is not None else None)
        return await self._select(sql, params, rows.record_from_row)

    async def iter_calls(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        agent: str | None = None,
        direction: str | None = None,
        outcome: str | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[CallRecord]:
        f = CallFilter(since, until, number, agent, direction, outcome)

        def page(last: CallRecord | None, n: int) -> tuple[str, dict[str, Any]]:
            after = (last.started_at, last.linkedid) if last is not None else None
            return calls_query(f, region=self.region, newest_first=newest_first, after=after, limit=n)

        async for record in self._keyset(page, rows.record_from_row, limit, page_size):
            yield record

    async def iter_call_rows(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        agent: str | None = None,
        direction: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[CallRow]:
        async for page in self.iter_call_pages(since=since, until=until, number=number, agent=agent,
                                               direction=direction, outcome=outcome, limit=limit,
                                               page_size=page_size):
            for row in page:
                assert isinstance(row, CallRow)
                yield row

    async def iter_call_pages(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        agent: str | None = None,
        direction: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        fields: Sequence[str] | None = None,
        stored: bool = False,
    ) -> AsyncIterator[Sequence[tuple[Any, ...]]]:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        f = CallFilter(since, until, number, agent, direction, outcome)
        projection = Projection(fields, stored=stored)
        after: tuple[float, str] | None = None
        left = limit
        while left is None or left > 0:
            n = page_size if left is None else min(page_size, left)
            sql, params = calls_query(f, region=self.region, after=after, limit=n, columns=projection.columns)
            found = await self._select(sql, params, lambda r: r)
            if found:
                yield [projection.row(r) for r in found]
            if len(found) < n:
                return
            after = projection.key(found[-1])
            if left is not None:
                left -= len(found)

    async def get_call(self, linkedid: str) -> CallRecord | None:
        found = await self._select("SELECT * FROM calls WHERE linkedid = $1", (linkedid,), rows.record_from_row)
        return found[0] if found else None

    async def count_calls(self) -> int:
        found = await self._select("SELECT count(*) AS n FROM calls", (), lambda row: int(row["n"]))
        return found[0]
