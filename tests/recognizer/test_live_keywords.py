"""Keyword lists matched on a call's finals as they come (``recognizer/live_keywords.py``): the stems and phrases of
``cti/keywords.py``, a phrase cut by a pause, a list for one side, each list once per call, the words' times."""

from __future__ import annotations

from cti.keywords import KeywordList
from cti.live import Lane, LiveResult, LiveWord
from recognizer.live_keywords import LiveKeywordHit, LiveKeywordWatch

LISTS = (
    KeywordList("complaint", ("жалоба", "верните деньги", "refund")),
    KeywordList("competitors", ("автомир",), speaker="customer"),
)


def final(lane: Lane, *words: tuple[str, float, float], partial: bool = False) -> LiveResult:
    live = tuple(LiveWord(text, start, end, 1.0) for text, start, end in words)
    return LiveResult(lane, not partial, " ".join(w.text for w in live), live, live[0].start, live[-1].end)


def test_a_final_flags_a_list_by_its_stem_with_the_words_times() -> None:
    watch = LiveKeywordWatch(LISTS)
    hits = watch.final(final("customer", ("я", 5.0, 5.2), ("напишу", 5.2, 5.6), ("жалобу", 5.6, 6.1)))
    assert hits == [LiveKeywordHit("complaint", "жалоба", "customer", 5.6, 6.1, ("жалобу",))]


def test_a_phrase_cut_by_a_pause_matches_across_two_finals_of_one_side() -> None:
    watch = LiveKeywordWatch(LISTS)
    assert watch.final(final("customer", ("верните", 10.0, 10.5))) == []
    assert watch.final(final("agent", ("минуту", 10.8, 11.2))) == []  # the other side between them
    hits = watch.final(final("customer", ("деньги", 12.0, 12.4), ("пожалуйста", 12.4, 13.0)))
    assert hits == [LiveKeywordHit("complaint", "верните деньги", "customer", 10.0, 12.4, ("верните", "деньги"))]


def test_a_phrase_is_one_sides_and_a_list_for_the_customer_ignores_the_agent() -> None:
    watch = LiveKeywordWatch(LISTS)
    assert watch.final(final("customer", ("верните", 1.0, 1.4))) == []
    assert watch.final(final("agent", ("деньги", 1.5, 1.9))) == []
    assert watch.final(final("agent", ("в", 2.0, 2.1), ("автомире", 2.1, 2.8))) == []
    hits = watch.final(final("customer", ("автомир", 3.0, 3.6)))
    assert [(h.list, h.speaker, h.start) for h in hits] == [("competitors", "customer", 3.0)]


def test_each_list_is_reported_once_per_call_and_partials_are_not_matched() -> None:
    watch = LiveKeywordWatch(LISTS)
    assert watch.final(final("customer", ("refund", 1.0, 1.5), partial=True)) == []
    assert [h.list for h in watch.final(final("customer", ("refunds", 1.0, 1.5)))] == ["complaint"]
    assert watch.final(final("customer", ("жалоба", 3.0, 3.5))) == []
    assert watch.reported == {"complaint"}
    assert [h.list for h in watch.final(final("mixed", ("автомир", 4.0, 4.5)))] == []  # a mixed lane is nobody's
    assert [h.list for h in LiveKeywordWatch(LISTS[:1]).final(final("mixed", ("жалоба", 4.0, 4.5)))] == ["complaint"]
