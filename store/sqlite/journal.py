"""Reads of the call journal: one page (``list_calls``) or a stream (``iter_calls``), every filter on an index.

Each listing is driven by the index that serves its most selective filter, read in the journal's order
(``started_at``, ``linkedid``), so a page costs the rows it returns, never the history behind them:

* an agent: ``call_agents`` (agent, started_at, linkedid, pbx), joined to the calls it names;
* a number: the caller's and the called side's indexes, (key, started_at, linkedid, pbx) each, merged;
* else the time range, with the direction or the outcome when given: (direction|outcome, started_at, linkedid,
  pbx).

Every index ends with the PBX, the order's last tie-break, so a ``pbxs`` filter is checked in the index.

A stream is paged by keyset: the next page starts after the last row of the previous one (no OFFSET, which
would read every skipped row again). ``tests/store/test_listing_plans.py`` checks with ``EXPLAIN QUERY PLAN`` that
no listing scans the calls table.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from typing import Any

from cti.records import DEFAULT_PBX, CallRecord
from store.listing import SQLITE, CallConditions, CallPlace, pbx_condition, pbx_set
from store.listing import CallFilter as CallFilter  # the filter of ``calls_query``, imported with it
from store.listing_reads import JournalListing
from store.repository import DEFAULT_PAGE_SIZE
from store.sqlite import rows
from store.sqlite.listed import SqliteListing
from store.sqlite.listing_rows import Projection, call_row, select_list


def calls_query(f: CallFilter, *, region: str, newest_first: bool = False, after: CallPlace | None = None,
                limit: int | None = None, offset: int = 0, lean: bool = False,
                projection: Projection | None = None) -> tuple[str, dict[str, Any]]:
    """The SQL (and its parameters) of one page of the journal (``store.listing.CallConditions``), joined in
    the shapes SQLite's planner keeps to the index that should drive.

    ``lean``: only the columns of a listing row (``listing_rows.LISTING_COLUMNS``), not the whole row;
    ``projection``: only its columns."""
    q = CallConditions(SQLITE, f, region=region, newest_first=newest_first, after=after, limit=limit, offset=offset)
    select: Callable[[str], str] | None = projection.select_list if projection is not None else (
        select_list if lean else None)
    columns = select("") if select is not None else "*"
    if f.agent is not None:
        where = q.agent_where()
        # CROSS JOIN: SQLite keeps the tables in this order, so the agent's index drives and gives the order.
        return (f"SELECT {select('c') if select is not None else 'c.*'} FROM call_agents a CROSS JOIN calls c "
                "ON c.linkedid = a.linkedid AND c.pbx = a.pbx WHERE " + " AND ".join(where) + q.page("a.")), q.params
    if f.number is not None:
        both = " UNION ALL ".join(f"SELECT * FROM ({side})" for side in q.number_sides(columns))
        return f"SELECT * FROM ({both})" + q.page(""), q.params
    return q.by_time(columns), q.params


def gathered(sql: str) -> str:
    """``sql``, a page of the journal in its order, read whole by SQLite's first step (rows sorted again, by
    ``+started_at, +linkedid, +pbx``, which no index serves: SQLite gathers the page before it returns a row).

    Why: Python's ``sqlite3`` releases the GIL around each step of a query, and takes it again to build each
    row. While the caller holds the GIL printing the previous page (a page of JSON is 15 ms), a query whose
    every step finds one row gets one row per GIL switch interval (5 ms); gathered, the B-tree walks of the
    whole page (most of its cost: an agent's calls are spread over the year's file) run in that one step
    beside the printing, and the rows are then built in one go when the caller waits. The extra sort of a
    page already in order costs about 1 µs a row, in the reader's thread."""
    return f"SELECT * FROM ({sql}) ORDER BY +started_at, +linkedid, +pbx"


class JournalReads(JournalListing, SqliteListing):
    """``iter_call_pages``, ``get_call``, ``count_calls``; the other listings are ``JournalListing``'s."""

    def _calls_query(self, f: CallFilter, *, newest_first: bool = False, after: CallPlace | None = None,
                     limit: int | None = None, offset: int = 0) -> tuple[str, dict[str, Any]]:
        return calls_query(f, region=self.region, newest_first=newest_first, after=after, limit=limit,
                           offset=offset)

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
        pbxs: Collection[str] | None = None,
    ) -> AsyncIterator[Sequence[tuple[Any, ...]]]:
        # Keyset pages as ``iter_calls``; the next page is asked for before this one is handed out, and read in
        # one step of SQLite (``gathered``), so that SQLite walks its B-trees without the GIL while the caller
        # formats this page. Memory holds two pages.
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        f = CallFilter(since, until, number, agent, direction, outcome, pbx_set(pbxs))
        projection = Projection(fields, stored=stored) if fields is not None or stored else None
        reader = self.lanes.reader

        async def fetch(after: CallPlace | None, n: int) -> tuple[list[Any], CallPlace | None]:
            self._check_open()
            sql, params = calls_query(f, region=self.region, after=after, limit=n, lean=True, projection=projection)
            cursor = await reader.execute(gathered(sql), params)  # the whole page read by this first step
            cursor.row_factory = None  # plain tuples, not ``sqlite3.Row``s: they are handed out as they are
            found: list[tuple[Any, ...]] = await cursor.fetchall()  # type: ignore[assignment]
            # The cursor is left to be dropped: fetched to its end, its statement is already reset.
            if projection is None:
                page: list[Any] = [call_row(r) for r in found]
                return page, ((page[-1].started_at, page[-1].linkedid, page[-1].pbx) if page else None)
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

    async def get_call(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> CallRecord | None:
        found = await self._select_few("SELECT * FROM calls WHERE pbx = ? AND linkedid = ?", (pbx, linkedid),
                                       rows.record_from_row)
        return found[0] if found else None

    async def count_calls(self, *, pbxs: Collection[str] | None = None) -> int:
        params: dict[str, Any] = {}
        chosen = pbx_set(pbxs)
        where = "" if chosen is None else " WHERE " + pbx_condition("pbx", chosen, params)
        found = await self._select_few("SELECT count(*) AS n FROM calls" + where, params, lambda row: int(row["n"]))
        return found[0]
