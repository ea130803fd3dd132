"""Reads of the call journal: one page (``list_calls``) or a stream (``iter_calls``), every filter on an index.

Each listing is driven by the index that serves its most selective filter, read in the journal's order
(``started_at``, ``linkedid``), so a page costs the rows it returns, never the history behind them:

* an agent: ``call_agents`` (agent, started_at, linkedid), joined to the calls it names;
* a number: the caller's and the called side's indexes, (key, started_at, linkedid) each, merged;
* else the time range, with the direction or the outcome when given: (direction|outcome, started_at, linkedid).

A stream is paged by keyset: the next page starts after the last row of the previous one (no OFFSET, which
would read every skipped row again). ``tests/store/test_listing_plans.py`` checks with ``EXPLAIN QUERY PLAN`` that
no listing scans the calls table.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cti.phones import normalize_number
from cti.records import CallRecord
from store.repository import DEFAULT_PAGE_SIZE, CallKey, CallRow
from store.sqlite import rows
from store.sqlite.base import SqliteBase
from store.sqlite.listing_rows import Projection, call_row, select_list


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
                limit: int | None = None, offset: int = 0, lean: bool = False,
                projection: Projection | None = None) -> tuple[str, dict[str, Any]]:
    """The SQL (and its parameters) of one page of the journal: the rows matching ``f`` after the row whose
    (started_at, linkedid) is ``after``, in the journal's order, at most ``limit`` of them after ``offset``.

    ``lean``: only the columns of a listing row (``listing_rows.LISTING_COLUMNS``), not the whole row;
    ``projection``: only its columns."""
    params: dict[str, Any] = {"limit": -1 if limit is None else limit, "offset": offset}
    sign, order = ("<", "DESC") if newest_first else (">", "ASC")
    # The bound ``after`` implies is left alone: given both, SQLite seeks the index to one of them only, and a
    # page that seeks to ``since`` scans every row before ``after`` again (a month's export in pages of 500 read
    # 20 million index entries).
    if after is not None and f.since is not None and not newest_first and after[0] >= f.since:
        f = replace(f, since=None)
    if after is not None and f.until is not None and newest_first and after[0] < f.until:
        f = replace(f, until=None)

    def common(t: str, p: str) -> list[str]:
        """Conditions on the order columns of table ``t`` and on the calls table ``p``."""
        where = []
        if f.since is not None:
            where.append(f"{t}.started_at >= :since")
            params["since"] = f.since
        if f.until is not None:
            where.append(f"{t}.started_at < :until")
            params["until"] = f.until
        if after is not None:
            where.append(f"({t}.started_at, {t}.linkedid) {sign} (:after_at, :after_id)")
            params["after_at"], params["after_id"] = after
        if f.direction is not None:
            where.append(f"{p}.direction = :direction")
            params["direction"] = f.direction
        if f.outcome is not None:
            where.append(f"{p}.outcome = :outcome")
            params["outcome"] = f.outcome
        return where

    select: Callable[[str], str] | None = projection.select_list if projection is not None else (
        select_list if lean else None)
    columns = select("") if select is not None else "*"
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
        if f.number is not None:
            where.append(f"({side('c.caller')} OR {side('c.called')})")
        # CROSS JOIN: SQLite keeps the tables in this order, so the agent's index drives and gives the order.
        return (f"SELECT {select('c') if select is not None else 'c.*'} FROM call_agents a CROSS JOIN calls c "
                "ON c.linkedid = a.linkedid WHERE "
                + " AND ".join(where) + page.format(t="a.")), params
    if f.number is not None:
        params["inner"] = -1 if limit is None else limit + offset
        branches = []
        # The called side leaves out the calls the caller side has: UNION ALL, no duplicate to weed out.
        for match in (side("calls.caller"), f"{side('calls.called')} AND NOT coalesce({side('calls.caller')}, 0)"):
            where = [match, *common("calls", "calls")]
            branches.append(f"SELECT * FROM (SELECT {columns} FROM calls WHERE {' AND '.join(where)} "
                            f"ORDER BY started_at {order}, linkedid {order} LIMIT :inner)")
        return f"SELECT * FROM ({' UNION ALL '.join(branches)})" + page.format(t=""), params
    where = common("calls", "calls")
    return (f"SELECT {columns} FROM calls" + (" WHERE " + " AND ".join(where) if where else "")
            + page.format(t="")), params


def gathered(sql: str) -> str:
    """``sql``, a page of the journal in its order, read whole by SQLite's first step (rows sorted again, by
    ``+started_at, +linkedid``, which no index serves: SQLite gathers the page before it returns a row).

    Why: Python's ``sqlite3`` releases the GIL around each step of a query, and takes it again to build each
    row. While the caller holds the GIL printing the previous page (a page of JSON is 15 ms), a query whose
    every step finds one row gets one row per GIL switch interval (5 ms); gathered, the B-tree walks of the
    whole page (most of its cost: an agent's calls are spread over the year's file) run in that one step
    beside the printing, and the rows are then built in one go when the caller waits. The extra sort of a
    page already in order costs about 1 µs a row, in the reader's thread."""
    return f"SELECT * FROM ({sql}) ORDER BY +started_at, +linkedid"


class JournalReads(SqliteBase):
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
        return await self._select(sql, params, rows.record_from_row, few=limit)

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
                yield row  # type: ignore[misc]  # fields=None: every row is a CallRow

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
        # Keyset pages as ``iter_calls``; the next page is asked for before this one is handed out, and read in
        # one step of SQLite (``gathered``), so that SQLite walks its B-trees without the GIL while the caller
        # formats this page. Memory holds two pages.
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        f = CallFilter(since, until, number, agent, direction, outcome)
        projection = Projection(fields, stored=stored) if fields is not None or stored else None
        reader = self.lanes.reader

        async def fetch(after: tuple[float, str] | None, n: int) -> tuple[list[Any], tuple[float, str] | None]:
            self._check_open()
            sql, params = calls_query(f, region=self.region, after=after, limit=n, lean=True, projection=projection)
            cursor = await reader.execute(gathered(sql), params)  # the whole page read by this first step
            cursor.row_factory = None  # plain tuples, not ``sqlite3.Row``s: they are handed out as they are
            found: list[tuple[Any, ...]] = await cursor.fetchall()  # type: ignore[assignment]
            # The cursor is left to be dropped: fetched to its end, its statement is already reset.
            if projection is None:
                page: list[Any] = [call_row(r) for r in found]
                return page, ((page[-1].started_at, page[-1].linkedid) if page else None)
            last = projection.key(found[-1]) if found else None
            return projection.rows(found), last

        left = limit
        n = page_size if left is None else min(page_size, left)
        pending = asyncio.ensure_future(fetch(None, n))
        try:
            while n > 0:
                page, last = await pending
                if left is not None:
                    left -= len(page)
                asked, n = n, 0
                if len(page) == asked:
                    n = page_size if left is None else min(page_size, left)
                if n > 0:
                    pending = asyncio.ensure_future(fetch(last, n))
                    # One turn of the loop: the task sends its query to the reader's thread now, not when the
                    # caller next waits (a task starts only then), so the reading overlaps the printing.
                    await asyncio.sleep(0)
                if page:
                    yield page
        finally:
            pending.cancel()

    async def get_call(self, linkedid: str) -> CallRecord | None:
        found = await self._select_few("SELECT * FROM calls WHERE linkedid = ?", (linkedid,), rows.record_from_row)
        return found[0] if found else None

    async def count_calls(self) -> int:
        found = await self._select_few("SELECT count(*) AS n FROM calls", (), lambda row: int(row["n"]))
        return found[0]
