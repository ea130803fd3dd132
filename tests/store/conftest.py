"""The contract suite runs against every ``Store`` implementation listed in ``IMPLEMENTATIONS``.

Each implementation gives an ``open_store(**options)`` that opens (or reopens) one fresh backing
database per test: SQLite uses a real file in the test's temporary directory. A PostgreSQL store joins
by adding an entry that opens a scratch database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from store.repository import Store
from store.sqlite import SqliteStore

OpenStore = Callable[..., Coroutine[Any, Any, Store]]


def _sqlite(tmp_path: Path) -> OpenStore:
    async def open_store(**options: Any) -> Store:
        return await SqliteStore.open(tmp_path / "cti.sqlite", **options)

    return open_store


IMPLEMENTATIONS: dict[str, Callable[[Path], OpenStore]] = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Opens the test's store; every store opened through it is closed at the end of the test."""
    opened: list[Store] = []
    factory = IMPLEMENTATIONS[request.param](tmp_path)

    async def tracked(**options: Any) -> Store:
        store = await factory(**options)
        opened.append(store)
        return store

    yield tracked
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> Store:
    return await open_store()
