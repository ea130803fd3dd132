"""A call's live transcript kept by the store (issue 17: ``keep_live_transcript``), on every store
(tests/store/conftest): kept once, searchable like any other, never over a transcript the call has already, and
replaced by the after-call transcription when that finishes."""

from __future__ import annotations

from cti.transcripts import TranscriptQuery
from store.repository import Store
from tests.store.builders import T0
from tests.store.test_transcripts import said, transcribed


async def test_a_live_transcript_is_kept_once_with_its_flags_and_found_by_search(store: Store) -> None:
    live = said(("agent", "Автосервис слушаю"), ("customer", "хочу оставить жалобу на ремонт"))
    assert await store.keep_live_transcript("live", live, pbx="main", call_started_at=T0, at=T0 + 90,
                                            flags=("complaint",))
    assert await store.get_transcript("live") == live
    assert await store.transcript_flags("live") == ("complaint",)
    [hit] = await store.search_transcripts(TranscriptQuery(text="жалоба"))
    assert (hit.linkedid, hit.speaker) == ("live", "customer")
    # Kept again (a second node, a retry): the first stays.
    assert not await store.keep_live_transcript("live", said(("agent", "другое")), pbx="main", call_started_at=T0,
                                                at=T0 + 91)
    assert await store.get_transcript("live") == live
    assert await store.get_transcript("live", pbx="spb") is None


async def test_the_after_call_transcript_replaces_the_live_one_and_is_never_replaced_by_it(store: Store) -> None:
    await store.keep_live_transcript("both", said(("customer", "живые слова")), pbx="main", call_started_at=T0,
                                     at=T0 + 30, flags=("live",))
    await transcribed(store, "both", said(("customer", "точные слова записи")), flags=("after",))
    transcript = await store.get_transcript("both")
    assert transcript is not None and transcript.text() == "точные слова записи"
    assert await store.transcript_flags("both") == ("after",)
    assert await store.search_transcripts(TranscriptQuery(text="живые")) == []
    # The after-call one finished first (the live one is kept at the call's end, later): it stays.
    await transcribed(store, "first", said(("agent", "запись")), started=T0 + 5)
    assert not await store.keep_live_transcript("first", said(("agent", "живое")), pbx="main",
                                                call_started_at=T0 + 5, at=T0 + 200)
    transcript = await store.get_transcript("first")
    assert transcript is not None and transcript.text() == "запись"
