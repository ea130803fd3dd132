"""The store: the journal, the register, users, the directory, behind one interface (``store.repository.Store``).

``open_store(settings, region=...)`` is the one way in for the daemon, the panel, the CLI and the benchmarks:
it opens the store's implementation the settings choose (``store/sqlite/`` for the file at ``[store] path``,
``store/postgres/`` when ``[store] url`` names a PostgreSQL database), typed as the interface, so nothing outside
``store/`` names an implementation. Only the chosen backend's driver is imported.
"""

from __future__ import annotations

from store.opening import Opening
from store.repository import Store, StoreError
from store.settings import StoreSettings


def open_store(settings: StoreSettings, *, region: str) -> Opening[Store]:
    """Open the store the settings describe: ``store = await open_store(...)`` or ``async with open_store(...)``.

    ``region`` is how national numbers are read (``[pbx] default_region``). Raises ``StoreError`` when the store
    cannot be used, ``MigrationError`` when its schema cannot be brought up to date.
    """

    async def opened() -> Store:
        if settings.backend == "postgresql":
            try:
                import asyncpg  # noqa: F401  # the driver of the postgresql extra
            except ImportError:
                raise StoreError(
                    "a PostgreSQL store ([store] url) needs the asyncpg driver: "
                    "pip install 'cti-companion[postgresql]'") from None
            from store.postgres import PostgresStore

            return await PostgresStore.from_settings(settings, region=region)
        from store.sqlite import SqliteStore  # imported here: the chosen backend's driver only

        return await SqliteStore.from_settings(settings, region=region)

    return Opening(opened)


__all__ = ["Opening", "Store", "StoreSettings", "open_store"]
