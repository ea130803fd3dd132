"""The value an opener returns: ``await`` it for the store, or ``async with`` it to have it closed at the end.

Generic over the store's type, so ``store.open_store`` hands out an ``Opening[Store]`` (the interface) while a
backend's own ``open`` may give its concrete type to its own tests.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar


class _Closable(Protocol):
    async def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)


class Opening(Generic[S]):
    """``store = await opening`` (the caller closes it), or ``async with opening as store:`` (closed on exit)."""

    def __init__(self, opener: Callable[[], Coroutine[Any, Any, S]]) -> None:
        self._opener = opener
        self._store: S | None = None

    def __await__(self) -> Generator[Any, None, S]:
        return self._opener().__await__()

    async def __aenter__(self) -> S:
        self._store = await self._opener()
        return self._store

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._store is not None:
            await self._store.close()
