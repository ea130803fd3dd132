"""The cluster's primitives (``store.cluster.Cluster``) on PostgreSQL: leases as advisory locks, the bus as
LISTEN/NOTIFY. A part of ``PostgresStore`` (a mixin over ``PostgresBase``), as the other parts are.

Why PostgreSQL itself: every node already reaches it, so a lease or a message needs no other service to deploy,
secure and watch, and a node that loses the database loses its leases with it (it could not write for them
anyway). ``leases.py`` and ``bus.py`` say how, and what is lost when. Their connections are opened on first use,
so a store that never takes a lease or subscribes (the CLI) opens none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from store.cluster import Lease, Subscription
from store.postgres.base import PostgresBase
from store.postgres.bus import PgBus
from store.postgres.leases import PgLeases


@dataclass(frozen=True, slots=True)
class _Parts:
    leases: PgLeases
    bus: PgBus


class ClusterOps(PostgresBase):
    """``try_lease``, ``publish``, ``subscribe``; ``_close_cluster`` when the store closes."""

    _cluster_parts: _Parts | None = None

    def _cluster(self) -> _Parts:
        self._check_open()
        if self._cluster_parts is None:
            self._cluster_parts = _Parts(PgLeases(self.url), PgBus(self.url))
        return self._cluster_parts

    async def try_lease(self, name: str) -> Lease | None:
        return await self._cluster().leases.try_lease(name)

    async def publish(self, channel: str, payload: str) -> None:
        await self._cluster().bus.publish(channel, payload)

    async def subscribe(self, channel: str, callback: Callable[[str], None]) -> Subscription:
        return await self._cluster().bus.subscribe(channel, callback)

    async def _close_cluster(self) -> None:
        """Give up the leases (their ``lost`` set) and close the bus: after the last write, so that a node taking
        over a lease finds everything its former holder committed."""
        parts = self._cluster_parts
        if parts is not None:
            try:
                await parts.leases.close()
            finally:
                await parts.bus.close()
