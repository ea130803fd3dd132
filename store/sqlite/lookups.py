"""The screen-pop's reads (``caller_facts``), on the lookup lane: never queued behind a listing.

Each part is one indexed, LIMITed query, so a caller with 10,000 past calls costs the same as a new one: their
newest calls are two index walks of ``last_calls`` rows (caller side, called side), not a read and sort of their
whole history (issue 10: p50 79 ms, p99 214 ms for callers with 5-15k calls before this).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from cti.records import DEFAULT_PBX, CallRecord, MissedEntry
from store.listing import pbx_set
from store.repository import CallerFacts
from store.sqlite import rows
from store.sqlite.directory import DirectoryOps
from store.sqlite.journal import CallFilter, calls_query
from store.sqlite.register import missed_query


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

        # Sent together: the lane's thread runs them back to back, one trip through the event loop for all.
        found, attached, last, missed = await asyncio.gather(
            self._find_contacts(number, contacts, lane),
            self._contact_of_call(linkedid, pbx, lane) if linkedid is not None else no_contact(),
            self._select_few(sql, params, rows.record_from_row, lane) if last_calls > 0 else _empty_calls(),
            self._select_few(missed_sql, missed_params, rows.missed_from_row, lane) if open_missed > 0
            else _empty_missed(),
        )
        return CallerFacts(contacts=tuple(found), attached=attached, last_calls=tuple(last),
                           open_missed=tuple(missed))


async def _empty_calls() -> list[CallRecord]:
    return []


async def _empty_missed() -> list[MissedEntry]:
    return []
