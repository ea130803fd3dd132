"""How the PostgreSQL store reads the shared listing methods' rows (``store/listing_reads.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar, TypeVar

from store.listing_reads import ListingBackend, Page, RowMakers
from store.postgres import rows
from store.postgres.base import PostgresBase

T = TypeVar("T")


class PostgresListing(PostgresBase, ListingBackend):
    """A page is one query on the reader pool (asyncpg fetches it whole); streams by keyset."""

    _rows: ClassVar[RowMakers] = rows

    async def _listed(self, sql: str, params: dict[str, Any], convert: Callable[[Any], T],
                      few: int | None) -> list[T]:
        return await self._select(sql, params, convert)

    def _streamed(self, page: Page[T], convert: Callable[[Any], T], limit: int | None,
                  page_size: int) -> AsyncIterator[T]:
        return self._keyset(page, convert, limit, page_size)
