"""``PostgresStore``: the ``store.repository.Store`` on a PostgreSQL database, composed of its parts.

A sibling of ``store/sqlite/``, part for part: ``writer`` (staging, batches, the live journal), ``journal``,
``register``, ``users``, ``directory``, ``lookups`` (the screen-pop's reads on a pool of their own); ``lanes``
opens the pools and migrates; ``rows`` converts rows and records. Several processes may share one database
(daemons, panel nodes, the CLI): every write is a transaction of its own, and the migrations take a lock.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import TYPE_CHECKING, Self

from store.opening import Opening
from store.postgres.alerts import AlertOps
from store.postgres.cluster import ClusterOps
from store.postgres.complaints import ComplaintOps, OutboxOps
from store.postgres.contact_register import ContactRegisterOps
from store.postgres.crm_outbox import CrmOutboxOps
from store.postgres.journal import JournalReads
from store.postgres.lanes import Lanes, open_lanes, shown
from store.postgres.lookups import CallerLookupOps
from store.postgres.register import RegisterOps
from store.postgres.reports import ReportOps
from store.postgres.script_runs import ScriptRunOps
from store.postgres.transcripts import TranscriptOps
from store.postgres.users import UserOps
from store.postgres.writer import StagedWriter
from store.qa_reviews import QaOps
from store.reminders import ReminderOps
from store.repository import Store
from store.settings import StoreSettings

log = logging.getLogger(__name__)


class PostgresStore(StagedWriter, JournalReads, RegisterOps, UserOps, CallerLookupOps, AlertOps,
                    ScriptRunOps, ContactRegisterOps, ReminderOps, ReportOps, TranscriptOps, QaOps, ComplaintOps,
                    OutboxOps, CrmOutboxOps, ClusterOps):
    """The ``Store`` on PostgreSQL. Outside ``store/``, open it with ``store.open_store(settings)``."""

    def __init__(self, url: str, lanes: Lanes, *, region: str, flush_interval: float, batch_size: int) -> None:
        super().__init__(url, lanes, region=region)
        self._init_staging(flush_interval, batch_size)

    @classmethod
    def open(cls, url: str, *, region: str = "RU", flush_interval: float = 0.2, batch_size: int = 500,
             connect_timeout: float = 10.0) -> Opening[PostgresStore]:
        """Connect to the database at ``url`` (``postgresql://user@host/db``) and bring its schema up to date.

        Raises ``StoreError`` when the database cannot be reached or used, ``MigrationError`` when its schema
        cannot.
        """
        if flush_interval <= 0 or batch_size < 1 or connect_timeout <= 0:
            raise ValueError("flush_interval must be > 0, batch_size >= 1 and connect_timeout > 0")

        async def opened() -> PostgresStore:
            lanes = await open_lanes(url, connect_timeout=connect_timeout)
            log.debug("store %s open (region %s)", shown(url), region)
            return cls(url, lanes, region=region, flush_interval=flush_interval, batch_size=batch_size)

        return Opening(opened)

    @classmethod
    def from_settings(cls, settings: StoreSettings, *, region: str = "RU") -> Opening[PostgresStore]:
        """``open()`` with the ``[store]`` section of the configuration (its ``url``)."""
        return cls.open(settings.url, region=region, flush_interval=settings.flush_interval,
                        batch_size=settings.batch_size)

    async def close(self) -> None:
        """Commit what is staged, then close the pools."""
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
    def _implements_the_contract(store: PostgresStore) -> Store:
        return store  # mypy checks here that PostgresStore has every method of Store
