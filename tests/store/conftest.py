"""The contract suite runs against every ``Store`` implementation listed in ``IMPLEMENTATIONS``.

Each implementation gives an ``open_store(**options)`` that opens (or reopens) one fresh backing
database per test: SQLite uses a real file in the test's temporary directory; PostgreSQL a database of its
own in the test process's throwaway cluster (``tests/postgres.py``), made on the first open and reopened after.
Tests that are about one backend's own machinery (SQLite's file, WAL, lanes and query plans) open that backend
directly instead of taking these fixtures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from store.postgres import PostgresStore
from store.repository import Store
from store.sqlite import SqliteStore
from tests.postgres import cluster

OpenStore = Callable[..., Coroutine[Any, Any, Store]]


def _sqlite(tmp_path: Path) -> OpenStore:
    async def open_store(**options: Any) -> Store:
        return await SqliteStore.open(tmp_path / "cti.sqlite", **options)

    return open_store


def _postgres(tmp_path: Path) -> OpenStore:
    url: str | None = None

    async def open_store(**options: Any) -> Store:
        nonlocal url
        if url is None:
            url = await cluster().fresh_database()
        return await PostgresStore.open(url, **options)

    return open_store


IMPLEMENTATIONS: dict[str, Callable[[Path], OpenStore]] = {"sqlite": _sqlite, "postgresql": _postgres}


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
