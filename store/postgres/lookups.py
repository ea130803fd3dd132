"""The screen-pop's reads (``caller_facts``) on the lookup pool: never queued behind a listing.

Each part is one indexed, LIMITed query (the caller's newest calls: two index walks of ``last_calls`` rows), and
the parts run at once on the pool's connections, so a card costs the slowest part, not their sum.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from cti.records import DEFAULT_PBX, CallRecord, MissedEntry
from store.listing import pbx_set
from store.postgres import rows
from store.postgres.directory import DirectoryOps
from store.postgres.journal import CallFilter, calls_query
from store.postgres.register import missed_query
from store.repository import CallerFacts


class CallerLookupOps(DirectoryOps):
    """The ``store.repository.CallerLookups`` concern."""

    async def caller_facts(self, number: str, *, linkedid: str | None = None, last_calls: int = 6,
                           contacts: int = 5, open_missed: int = 50, pbx: str = DEFAULT_PBX,
                           pbxs: Collection[str] | None = None) -> CallerFacts:
        lane = self.lanes.lookup
        chosen = pbx_set(pbxs)
        sql, params = calls_query(CallFilter(number=number, pbxs=chosen), region=self.region, newest_first=True,
                                  limit=max(last_calls, 0))
        missed_sql, missed_params = missed_query(region=self.region, status="open", number=number,
                                                 limit=max(open_missed, 0), pbxs=chosen)

        async def no_contact() -> None:
            return None

        async def no_calls() -> list[CallRecord]:
            return []

        async def no_missed() -> list[MissedEntry]:
            return []

        found, attached, last, missed = await asyncio.gather(
            self._find_contacts(number, contacts, lane),
            self._contact_of_call(linkedid, pbx, lane) if linkedid is not None else no_contact(),
            self._select(sql, params, rows.record_from_row, lane) if last_calls > 0 else no_calls(),
            self._select(missed_sql, missed_params, rows.missed_from_row, lane) if open_missed > 0 else no_missed(),
        )
        return CallerFacts(contacts=tuple(found), attached=attached, last_calls=tuple(last),
                           open_missed=tuple(missed))
