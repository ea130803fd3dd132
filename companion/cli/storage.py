"""The store opened for one command, and its failures as one line with exit status 1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from companion.config import Settings

from .errors import fail

if TYPE_CHECKING:
    from store.repository import Store

T = TypeVar("T")


def with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """``work`` on the store, in an event loop of its own that ends with the command.

    A store that cannot be opened or used, an entry not found: one line, exit 1. ``work`` may print as it
    reads (a listing streams its rows while the store is open).
    """
    from store import open_store
    from store.migrate import MigrationError
    from store.repository import StoreError

    async def go() -> T:
        async with open_store(settings.store, region=settings.pbx.default_region) as store:
            return await work(store)

    try:
        return asyncio.run(go())
    except (StoreError, MigrationError) as exc:
        fail(str(exc), 1)
