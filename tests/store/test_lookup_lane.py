"""No read may stall the live path: a screen-pop's card is looked up while a slow read holds the general reader.

Issue 10: an agent's "my recent calls" held the single reader connection for 5-7 s, and every pop waited behind
it. The card's reads now have their own lane. The slow read here is real SQLite work held open on the general
reader (a query whose SQL function waits until the test lets it go), so the test proves the pop did not queue
behind it, with no timing in the proof: the listing cannot finish before it is released, the card must.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from cti.directory import Contact
from store.sqlite import SqliteStore
from tests.conftest import UNIT
from tests.store.builders import make_call, missed_for
from ui_bridge.cards import CardService
from ui_bridge.settings import DirectorySettings


async def test_a_card_lookup_does_not_wait_for_a_read_in_progress(tmp_path: Path) -> None:
    yesterday = time.time() - 86400  # a repeat caller: they called within [directory] repeat_days
    async with SqliteStore.open(tmp_path / "cti.sqlite") as store:
        for i in range(30):
            record = make_call(f"past-{i:02d}", caller="+7 916 123 45 67", started_at=yesterday + i)
            store.stage_call(record, missed_for(record), ())
        await store.flush()
        await store.add_contacts([Contact(name="Иванов Пётр", phones=("89161234567",))])

        entered, release = threading.Event(), threading.Event()

        def hold() -> int:  # runs on the general reader's thread, inside the query
            entered.set()
            release.wait(timeout=30 * UNIT)
            return 1

        await store.lanes.reader.create_function("hold", 0, hold)
        slow = asyncio.create_task(store.lanes.reader.execute_fetchall("SELECT hold() FROM calls LIMIT 1"))
        listing = None
        try:
            assert await asyncio.to_thread(entered.wait, 10 * UNIT), "the slow read never started"
            listing = asyncio.create_task(store.list_calls(agent="101", newest_first=True, limit=50))

            cards = CardService(DirectorySettings(last_calls=5), lambda: store, "RU")
            async with asyncio.timeout(2 * UNIT):
                card = await cards.card_for("8 (916) 123-45-67", linkedid="ringing-now")

            assert card.status == "repeat" and card.contact is not None and card.contact.name == "Иванов Пётр"
            assert [c.linkedid for c in card.last_calls] == ["past-29", "past-28", "past-27", "past-26", "past-25"]
            assert len(card.open_missed) == 30
            assert not slow.done() and not listing.done()  # the panel's read still waits: the lanes are apart
        finally:
            release.set()
        async with asyncio.timeout(10 * UNIT):
            await slow
            assert await listing == []
