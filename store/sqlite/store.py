"""``SqliteStore``: the ``store.repository.Store`` on one SQLite file, composed of its parts.

Each part is a module with one job over ``base.SqliteBase``: ``writer`` (staging, batches, the live journal),
``journal`` (the call journal's reads), ``register`` (the missed-call register and agents' misses), ``users``
(users, tokens, sessions), ``directory`` (contacts), ``lookups`` (the screen-pop's reads on their own lane),
``alerts`` (the supervisor's alerts). ``lanes`` opens the connections; ``rows`` converts rows and records.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from store.complaints import ComplaintOps
from store.crm_outbox import CrmOutboxOps
from store.opening import Opening
from store.outbox import OutboxOps
from store.qa_reviews import QaOps
from store.reminders import ReminderOps
from store.repository import Store
from store.settings import StoreSettings
from store.sqlite.alerts import AlertOps
from store.sqlite.cluster import ClusterOps
from store.sqlite.contact_register import ContactRegisterOps
from store.sqlite.journal import JournalReads
from store.sqlite.lanes import Lanes, open_lanes
from store.sqlite.lookups import CallerLookupOps
from store.sqlite.register import RegisterOps
from store.sqlite.reports import ReportOps
from store.sqlite.script_runs import ScriptRunOps
from store.sqlite.transcripts import TranscriptOps
from store.sqlite.users import UserOps
from store.sqlite.writer import StagedWriter

log = logging.getLogger(__name__)


class SqliteStore(StagedWriter, JournalReads, RegisterOps, UserOps, CallerLookupOps, AlertOps, ScriptRunOps,
                   ContactRegisterOps, ReminderOps, ReportOps, TranscriptOps, QaOps, ComplaintOps, OutboxOps,
                   CrmOutboxOps, ClusterOps):
    """The ``Store`` on one SQLite file. Outside ``store/``, open it with ``store.open_store(settings)``."""

    def __init__(self, path: Path, lanes: Lanes, *, region: str, flush_interval: float, batch_size: int) -> None:
        super().__init__(path, lanes, region=region)
        self._init_staging(flush_interval, batch_size)

    @classmethod
    def open(
        cls, path: str | Path, *, region: str = "RU", flush_interval: float = 0.2, batch_size: int = 500,
        busy_timeout: float = 5.0,
    ) -> Opening[SqliteStore]:
        """Open (creating it if needed) the store file and bring its schema up to date.

        ``region`` is how national numbers are read when matching call-backs (``cti.phones``).
        ``busy_timeout`` is how long a statement waits for another process's write lock (the CLI closing
        an entry while the daemon writes) before failing with "database is locked".
        Raises ``StoreError`` when the file cannot be used, ``MigrationError`` when its schema cannot.
        """
        if flush_interval <= 0 or batch_size < 1 or busy_timeout < 0:
            raise ValueError("flush_interval must be > 0, batch_size >= 1 and busy_timeout >= 0")
        busy_ms = round(busy_timeout * 1000)

        async def opened() -> SqliteStore:
            lanes = await open_lanes(Path(path), busy_ms)
            log.debug("store %s open (region %s)", path, region)
            return cls(Path(path), lanes, region=region, flush_interval=flush_interval, batch_size=batch_size)

        return Opening(opened)

    @classmethod
    def from_settings(cls, settings: StoreSettings, *, region: str = "RU") -> Opening[SqliteStore]:
        """``open()`` with the ``[store]`` section of the configuration."""
        return cls.open(settings.path, region=region, flush_interval=settings.flush_interval,
                        batch_size=settings.batch_size)

    async def close(self) -> None:
        """Commit what is staged, then close the connections (the last close checkpoints the WAL)."""
        if self._closing:
            return
        self._closing = True
        try:
            await self._write_staged()
        finally:
            if self._inflight:
                await asyncio.gather(*self._inflight, return_exceptions=True)
            self._closed = True
            self._wake_writer()
            try:
                await self._close_cluster()  # after the last write: a successor finds it committed
            finally:
                await self.lanes.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


if TYPE_CHECKING:
    def _implements_the_contract(store: SqliteStore) -> Store:
        return store  # mypy checks here that SqliteStore has every method of Store
