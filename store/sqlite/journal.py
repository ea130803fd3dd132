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

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cti.phones import normalize_number
from cti.records import CallRecord
from store.repository import DEFAULT_PAGE_SIZE, CallKey
from store.sqlite import rows
from store.sqlite.base import SqliteBase


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
                limit: int | None = None, offset: int = 0) -> tuple[str, dict[str, Any]]:
    """The SQL (and its parameters) of one page of the journal: the rows matching ``f`` after the row whose
    (started_at, linkedid) is ``after``, in the journal's order, at most ``limit`` of them after ``offset``."""
    params: dict[str, Any] = {"limit": -1 if limit is None else limit, "offset": offset}
    sign, order = ("<", "DESC") if newest_first else (">", "ASC")

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
        return ("SELECT c.* FROM call_agents a CROSS JOIN calls c ON c.linkedid = a.linkedid WHERE "
                + " AND ".join(where) + page.format(t="a.")), params
    if f.number is not None:
        params["inner"] = -1 if limit is None else limit + offset
        branches = []
        # The called side leaves out the calls the caller side has: UNION ALL, no duplicate to weed out.
        for match in (side("calls.caller"), f"{side('calls.called')} AND NOT coalesce({side('calls.caller')}, 0)"):
            where = [match, *common("calls", "calls")]
            branches.append(f"SELECT * FROM (SELECT * FROM calls WHERE {' AND '.join(where)} "
                            f"ORDER BY started_at {order}, linkedid {order} LIMIT :inner)")
        return f"SELECT * FROM ({' UNION ALL '.join(branches)})" + page.format(t=""), params
    where = common("calls", "calls")
    return ("SELECT * FROM calls" + (" WHERE " + " AND ".join(where) if where else "") + page.format(t="")), params


class JournalReads(SqliteBase):
    """``list_calls``, ``iter_calls``, ``get_call``, ``count_calls``."""

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

    async def get_call(self, linkedid: str) -> CallRecord | None:
        found = await self._select_few("SELECT * FROM calls WHERE linkedid = ?", (linkedid,), rows.record_from_row)
        return found[0] if found else None

    async def count_calls(self) -> int:
        found = await self._select_few("SELECT count(*) AS n FROM calls", (), lambda row: int(row["n"]))
        return found[0]
