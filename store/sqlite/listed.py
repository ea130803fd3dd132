"""How the SQLite store reads the shared listing methods' rows (``store/listing_reads.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar, TypeVar

from store.listing_reads import ListingBackend, Page, RowMakers
from store.sqlite import rows
from store.sqlite.base import SqliteBase

T = TypeVar("T")


class SqliteListing(SqliteBase, ListingBackend):
    """A page read whole in one round trip when its LIMIT is small (``_select(few=)``); streams by keyset."""

    _rows: ClassVar[RowMakers] = rows

    async def _listed(self, sql: str, params: dict[str, Any], convert: Callable[[Any], T],
                      few: int | None) -> list[T]:
        return await self._select(sql, params, convert, few=few)

    def _streamed(self, page: Page[T], convert: Callable[[Any], T], limit: int | None,
                  page_size: int) -> AsyncIterator[T]:
        return self._keyset(page, convert, limit, page_size)
