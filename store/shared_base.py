"""What both stores' bases do the same way: keyset streams, and transactions shielded from a cancelled caller.

``store/sqlite/base.py`` and ``store/postgres/base.py`` differ in how they run a query and a transaction; how a
listing is cut into pages and how a transaction outlives the caller's cancellation is written once, here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
P = TypeVar("P")


async def keyset(select: Callable[[str, P, int], Awaitable[list[T]]], page: Callable[[T | None, int], tuple[str, P]],
                 limit: int | None, page_size: int) -> AsyncIterator[T]:
    """Stream a listing a page at a time: ``page(last, n)`` is the query for the ``n`` rows after ``last`` (None:
    from the start), ``select(sql, params, n)`` runs it. Memory holds one page; each page is one short indexed
    query that holds no connection between pages (not a snapshot: rows committed meanwhile beyond it come too)."""
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    last: T | None = None
    left = limit
    while left is None or left > 0:
        n = page_size if left is None else min(page_size, left)
        sql, params = page(last, n)
        rows = await select(sql, params, n)
        for row in rows:
            yield row
        if len(rows) < n:
            return
        last = rows[-1]
        if left is not None:
            left -= len(rows)


class Shielded:
    """Runs each transaction as a task of its own behind ``asyncio.shield``: a cancelled caller (the daemon
    shutting down) never leaves half a transaction; ``_inflight`` lets ``close()`` wait for them."""

    _inflight: set[asyncio.Task[Any]]

    async def _shielded(self, work: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(work)
        self._inflight.add(task)
        task.add_done_callback(self._task_done)
        return await asyncio.shield(task)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._inflight.discard(task)
        if not task.cancelled():
            task.exception()  # whoever awaited it got the error; don't warn "never retrieved" if nobody did
