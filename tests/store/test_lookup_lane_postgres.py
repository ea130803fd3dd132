"""No read may stall the live path, on PostgreSQL too: a card is looked up while slow reads hold every connection
of the general reader pool.

The PostgreSQL twin of ``test_lookup_lane.py`` (which holds SQLite's reader inside an SQL function). Here every
connection of the store's reader pool is held inside a real query that waits for an advisory lock the test owns,
and a listing queues behind them for a connection; the card must still come, from the lookup pool. No timing in
the proof: the listing cannot finish before the lock is let go, the card must.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from cti.directory import Contact
from store.postgres import PostgresStore
from store.postgres.lanes import READER_CONNECTIONS
from tests.conftest import UNIT
from tests.postgres import cluster
from tests.store.builders import make_call, missed_for
from ui_bridge.cards import CardService
from ui_bridge.settings import DirectorySettings

LOCK = 4242


async def test_a_card_lookup_does_not_wait_for_reads_holding_every_reader() -> None:
    url = await cluster().fresh_database()
    yesterday = time.time() - 86400  # a repeat caller: they called within [directory] repeat_days
    async with PostgresStore.open(url) as store:
        for i in range(30):
            record = make_call(f"past-{i:02d}", caller="+7 916 123 45 67", started_at=yesterday + i)
            store.stage_call(record, missed_for(record), ())
        await store.flush()
        await store.add_contacts([Contact(name="Иванов Пётр", phones=("89161234567",))])

        holder = await asyncpg.connect(url)
        await holder.execute("SELECT pg_advisory_lock($1)", LOCK)
        slow = [asyncio.create_task(store.lanes.reader.fetchval("SELECT pg_advisory_xact_lock_shared($1)", LOCK))
                for _ in range(READER_CONNECTIONS)]
        listing = None
        try:
            async with asyncio.timeout(10 * UNIT):  # every reader connection is inside its query, waiting
                while await holder.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                            "AND NOT granted") < READER_CONNECTIONS:
                    await asyncio.sleep(0.01 * UNIT)
            listing = asyncio.create_task(store.list_calls(agent="101", newest_first=True, limit=50))

            cards = CardService(DirectorySettings(last_calls=5), lambda: store, "RU")
            async with asyncio.timeout(2 * UNIT):
                card = await cards.card_for("8 (916) 123-45-67", linkedid="ringing-now")

            assert card.status == "repeat" and card.contact is not None and card.contact.name == "Иванов Пётр"
            assert [c.linkedid for c in card.last_calls] == ["past-29", "past-28", "past-27", "past-26", "past-25"]
            assert len(card.open_missed) == 30
            assert not listing.done() and not any(t.done() for t in slow)  # the panel's read still waits
        finally:
            await holder.execute("SELECT pg_advisory_unlock($1)", LOCK)
            await holder.close()
        async with asyncio.timeout(10 * UNIT):
            await asyncio.gather(*slow)
            assert await listing == []
