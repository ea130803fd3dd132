"""Reads of the call journal on PostgreSQL: one page (``list_calls``) or a stream, every filter on an index.

The queries are the SQLite store's (``store/sqlite/journal.py``), each driven by the index of its most selective
filter and read in the journal's order (``started_at``, ``linkedid``, ``pbx``): ``call_agents`` for an agent, the
caller's and the called side's indexes merged for a number, else ``(direction|outcome, started_at, linkedid, pbx)``
or ``(started_at, linkedid, pbx)``. Streams are keyset pages, each one short query on the reader pool.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from typing import Any

import asyncpg

from cti.records import DEFAULT_PBX, CallRecord
from store.listing import POSTGRES, CallConditions, CallPlace, pbx_condition, pbx_set
from store.listing import CallFilter as CallFilter  # the filter of ``calls_query``, imported with it
from store.listing_reads import JournalListing
from store.postgres import rows
from store.postgres.listed import PostgresListing
from store.repository import DEFAULT_PAGE_SIZE, CallRow

#: The columns every lean page is read with, for the next page to start after its last row.
ORDER_COLUMNS = ("started_at", "linkedid", "pbx")


def calls_query(f: CallFilter, *, region: str, newest_first: bool = False, after: CallPlace | None = None,
                limit: int | None = None, offset: int = 0,
                columns: Sequence[str] | None = None) -> tuple[str, dict[str, Any]]:
    """The SQL (``:name`` parameters) of one page of the journal (``store.listing.CallConditions``), joined in
    the shapes PostgreSQL's planner serves off the index that should drive.

    ``columns``: only those columns (a listing's), else the whole row."""
    q = CallConditions(POSTGRES, f, region=region, newest_first=newest_first, after=after, limit=limit,
                       offset=offset)

    def select(table: str) -> str:
        return ", ".join(f"{table}.{c}" for c in columns) if columns is not None else f"{table}.*"

    if f.agent is not None:
        where = q.agent_where()
        if f.number is None and f.direction is None and f.outcome is None:
            # Only the agent's own table is filtered: the page is picked off its key first, then its calls are
            # read by theirs, so the plan is one index walk and a page of lookups whatever the planner estimates.
            picked = ("SELECT a.started_at, a.linkedid, a.pbx FROM call_agents a WHERE " + " AND ".join(where)
                      + q.page("a."))
            return (f"SELECT {select('c')} FROM ({picked}) AS a"
                    " JOIN calls c ON c.linkedid = a.linkedid AND c.pbx = a.pbx"
                    f" ORDER BY a.started_at {q.order}, a.linkedid {q.order}, a.pbx {q.order}"), q.params
        return (f"SELECT {select('c')} FROM call_agents a JOIN calls c ON c.linkedid = a.linkedid AND c.pbx = a.pbx "
                "WHERE "
                + " AND ".join(where) + q.page("a.")), q.params
    if f.number is not None:
        both = " UNION ALL ".join(f"SELECT * FROM ({side}) AS side{n}"
                                  for n, side in enumerate(q.number_sides(select("calls"))))
        return f"SELECT * FROM ({both}) AS found" + q.page(""), q.params
    return q.by_time(select("calls")), q.params


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

    def key(self, r: asyncpg.Record) -> CallPlace:
        return r[self.key_at[0]], r[self.key_at[1]], r[self.key_at[2]]


_json_list = json.JSONEncoder(ensure_ascii=False).encode


def _json_text(values: list[str]) -> str:
    """A list field as a stored row of the interface gives it: ``json.dumps(values, ensure_ascii=False)``."""
    return _json_list(values)


class JournalReads(JournalListing, PostgresListing):
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
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        f = CallFilter(since, until, number, agent, direction, outcome, pbx_set(pbxs))
        projection = Projection(fields, stored=stored)
        after: CallPlace | None = None
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

    async def get_call(self, linkedid: str, *, pbx: str = DEFAULT_PBX) -> CallRecord | None:
        found = await self._select("SELECT * FROM calls WHERE pbx = $1 AND linkedid = $2", (pbx, linkedid),
                                   rows.record_from_row)
        return found[0] if found else None

    async def count_calls(self, *, pbxs: Collection[str] | None = None) -> int:
        params: dict[str, Any] = {}
        chosen = pbx_set(pbxs)
        where = "" if chosen is None else " WHERE " + pbx_condition("pbx", chosen, params)
        found = await self._select("SELECT count(*) AS n FROM calls" + where, params, lambda row: int(row["n"]))
        return found[0]
