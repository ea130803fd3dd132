"""The journal's and the register's listing methods, backend-neutral: filters in, a page or a keyset stream out.

Why one module: ``list_calls``, ``iter_calls``, ``iter_call_rows``, ``list_missed``, ``iter_missed`` and the
agents' misses are the same on SQLite and PostgreSQL: build the query (``store/listing.py``), read one page or
stream keyset pages, map the rows. A backend's ``JournalReads`` / ``RegisterOps`` mixes these in and gives only
what differs: its ``calls_query`` (the statement's shape), how it reads rows (``_listed``, ``_streamed``), its
row makers (``_rows``), its dialect. ``iter_call_pages`` stays in each backend: the SQLite one is tuned (a page
read ahead, in one step of SQLite: ``store/sqlite/journal.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

from cti.records import AgentMiss, CallRecord, MissedEntry
from store.listing import CallFilter, CallPlace, Dialect, Query, pbx_set
from store.repository import DEFAULT_PAGE_SIZE, CallKey, CallRow, MissedKey

T = TypeVar("T")
Page = Callable[[T | None, int], Query]


class RowMakers(Protocol):
    """A backend's ``rows`` module: a stored row (``sqlite3.Row``, ``asyncpg.Record``) → a record."""

    def record_from_row(self, row: Any, /) -> CallRecord: ...

    def missed_from_row(self, row: Any, /) -> MissedEntry: ...

    def agent_miss_from_row(self, row: Any, /) -> AgentMiss: ...


class ListingBackend:
    """What a backend gives the listing methods: its rows, how it reads one page, how it streams pages."""

    region: str
    _rows: ClassVar[RowMakers]

    async def _listed(self, sql: str, params: dict[str, Any], convert: Callable[[Any], T],
                      few: int | None) -> list[T]:
        """One page of rows (``few``: its LIMIT, when it has one)."""
        raise NotImplementedError

    def _streamed(self, page: Page[T], convert: Callable[[Any], T], limit: int | None,
                  page_size: int) -> AsyncIterator[T]:
        """Keyset pages: ``page(last, n)`` is the query for the ``n`` rows after ``last`` (None: the first)."""
        raise NotImplementedError


class JournalListing(ListingBackend):
    """``list_calls``, ``iter_calls``, ``iter_call_rows`` over the backend's ``_calls_query``."""

    def _calls_query(self, f: CallFilter, *, newest_first: bool = False, after: CallPlace | None = None,
                     limit: int | None = None, offset: int = 0) -> Query:
        raise NotImplementedError

    def iter_call_pages(
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
        raise NotImplementedError

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
        pbxs: Collection[str] | None = None,
    ) -> list[CallRecord]:
        f = CallFilter(since, until, number, agent, direction, outcome, pbx_set(pbxs))
        sql, params = self._calls_query(
            f, newest_first=newest_first, limit=limit, offset=offset,
            after=(after.started_at, after.linkedid, after.pbx) if after is not None else None)
        return await self._listed(sql, params, self._rows.record_from_row, limit)

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
        pbxs: Collection[str] | None = None,
    ) -> AsyncIterator[CallRecord]:
        f = CallFilter(since, until, number, agent, direction, outcome, pbx_set(pbxs))

        def page(last: CallRecord | None, n: int) -> Query:
            after = (last.started_at, last.linkedid, last.pbx) if last is not None else None
            return self._calls_query(f, newest_first=newest_first, after=after, limit=n)

        async for record in self._streamed(page, self._rows.record_from_row, limit, page_size):
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
        pbxs: Collection[str] | None = None,
    ) -> AsyncIterator[CallRow]:
        async for page in self.iter_call_pages(since=since, until=until, number=number, agent=agent,
                                               direction=direction, outcome=outcome, limit=limit,
                                               page_size=page_size, pbxs=pbxs):
            for row in page:
                yield row  # type: ignore[misc]  # fields=None: every row is a CallRow


class RegisterListing(ListingBackend):
    """``list_missed``, ``iter_missed``, ``list_agent_misses``, ``iter_agent_misses`` in the backend's dialect."""

    _dialect: ClassVar[Dialect]

    async def list_missed(
        self,
        *,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: MissedKey | None = None,
        pbxs: Collection[str] | None = None,
    ) -> list[MissedEntry]:
        sql, params = self._dialect.missed_query(region=self.region, status=status, since=since, until=until,
                                                 number=number, limit=limit, offset=offset, pbxs=pbxs,
                                                 after=(after.missed_at, after.id) if after is not None else None)
        return await self._listed(sql, params, self._rows.missed_from_row, limit)

    async def iter_missed(
        self,
        *,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        pbxs: Collection[str] | None = None,
    ) -> AsyncIterator[MissedEntry]:
        chosen = pbx_set(pbxs)

        def page(last: MissedEntry | None, n: int) -> Query:
            after = (last.missed_at, last.id or 0) if last is not None else None
            return self._dialect.missed_query(region=self.region, status=status, since=since, until=until,
                                              number=number, after=after, limit=n, pbxs=chosen)

        async for entry in self._streamed(page, self._rows.missed_from_row, limit, page_size):
            yield entry

    async def list_agent_misses(
        self, *, agent: str | None = None, since: float | None = None, until: float | None = None,
        pbxs: Collection[str] | None = None,
    ) -> list[AgentMiss]:
        sql, params = self._dialect.agent_misses_query(agent=agent, since=since, until=until, pbxs=pbxs)
        return await self._listed(sql, params, self._rows.agent_miss_from_row, None)

    async def iter_agent_misses(
        self, *, agent: str | None = None, since: float | None = None, until: float | None = None,
        page_size: int = DEFAULT_PAGE_SIZE, pbxs: Collection[str] | None = None,
    ) -> AsyncIterator[AgentMiss]:
        chosen = pbx_set(pbxs)

        # AgentMiss carries no id: the page's last row id travels beside it.
        def page(last: tuple[AgentMiss, int] | None, n: int) -> Query:
            after = (last[0].rang_at, last[1]) if last is not None else None
            return self._dialect.agent_misses_query(agent=agent, since=since, until=until, after=after, limit=n,
                                                    pbxs=chosen)

        def convert(row: Any) -> tuple[AgentMiss, int]:
            return self._rows.agent_miss_from_row(row), int(row["id"])

        async for miss, _ in self._streamed(page, convert, None, page_size):
            yield miss
