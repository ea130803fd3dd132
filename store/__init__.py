"""The store: the journal, the register, users, the directory, behind one interface (``store.repository.Store``).

``open_store(settings, region=...)`` is the one way in for the daemon, the panel, the CLI and the benchmarks:
it opens the store's implementation (SQLite today; a PostgreSQL store would be a sibling package, chosen
here from the settings), typed as the interface, so nothing outside ``store/`` names an implementation.
"""

from __future__ import annotations

from store.opening import Opening
from store.repository import Store
from store.settings import StoreSettings


def open_store(settings: StoreSettings, *, region: str) -> Opening[Store]:
    """Open the store the settings describe: ``store = await open_store(...)`` or ``async with open_store(...)``.

    ``region`` is how national numbers are read (``[pbx] default_region``). Raises ``StoreError`` when the store
    cannot be used, ``MigrationError`` when its schema cannot be brought up to date.
    """

    async def opened() -> Store:
        from store.sqlite import SqliteStore  # imported here: the chosen backend's driver only

        return await SqliteStore.from_settings(settings, region=region)

    return Opening(opened)


__all__ = ["Opening", "Store", "StoreSettings", "open_store"]
