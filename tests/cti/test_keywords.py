"""Keyword flags: which lists a transcript matches, on stems, a phrase said by one side in a row (cti/keywords.py)."""

from __future__ import annotations

from cti.keywords import KeywordList, KeywordMatch, keyword_matches, matched_lists
from cti.transcripts import Speaker, Transcript, Word


def _said(*lines: tuple[Speaker, float, str]) -> Transcript:
    """A transcript from (speaker, start, text) lines: each word 0.4 s after the one before."""
    words = [Word(speaker, text, start + 0.4 * i, start + 0.4 * i + 0.3, 0.9)
             for speaker, start, line in lines for i, text in enumerate(line.split())]
    return Transcript(words=tuple(sorted(words, key=lambda w: w.start)), engine="vosk", model="test", duration=60.0)


def test_any_form_of_a_word_flags_the_call() -> None:
    transcript = _said(("agent", 0.0, "здравствуйте автосервис"),
                       ("customer", 3.0, "я хочу оставить жалобу на мастера"))
    lists = [KeywordList("complaint", ("жалоба", "претензия")), KeywordList("competitors", ("автодом",))]
    assert keyword_matches(transcript, lists) == [KeywordMatch("complaint", "жалоба", "customer", 4.2)]
    assert matched_lists(transcript, lists) == ("complaint",)


def test_english_words_match_on_their_stems_too() -> None:
    transcript = _said(("customer", 1.0, "I want my refunds now"))
    assert matched_lists(transcript, [KeywordList("refund", ("refund",))]) == ("refund",)


def test_a_phrase_matches_only_when_its_words_come_one_after_the_other() -> None:
    lists = [KeywordList("money_back", ("верните деньги",))]
    assert matched_lists(_said(("customer", 0.0, "верните мне деньги")), lists) == ()
    assert keyword_matches(_said(("customer", 0.0, "тогда верните деньги пожалуйста")), lists) == [
        KeywordMatch("money_back", "верните деньги", "customer", 0.4)]


def test_a_phrase_is_said_by_one_side_not_across_both() -> None:
    """The agent's «верните» and the customer's «деньги» interleave in time; neither said the phrase."""
    transcript = _said(("agent", 0.0, "верните"), ("customer", 0.2, "деньги"))
    assert matched_lists(transcript, [KeywordList("money_back", ("верните деньги",))]) == ()


def test_a_list_for_one_side_ignores_the_other() -> None:
    transcript = _said(("agent", 0.0, "приносим извинения за жалобу"), ("customer", 5.0, "спасибо до свидания"))
    assert matched_lists(transcript, [KeywordList("complaint", ("жалоба",), speaker="customer")]) == ()
    assert matched_lists(transcript, [KeywordList("complaint", ("жалоба",), speaker="agent")]) == ("complaint",)


def test_each_list_once_at_its_earliest_match_in_the_lists_order() -> None:
    transcript = _said(("customer", 10.0, "у вас дорого в автомире дешевле"), ("agent", 2.0, "это жалоба"),
                       ("customer", 20.0, "пишу жалобу"))
    lists = [KeywordList("competitors", ("автомир", "рольф")), KeywordList("complaint", ("жалоба",))]
    assert keyword_matches(transcript, lists) == [
        KeywordMatch("competitors", "автомир", "customer", 11.6),
        KeywordMatch("complaint", "жалоба", "agent", 2.4),
    ]


def test_case_and_yo_do_not_matter() -> None:
    transcript = _said(("unknown", 0.0, "ЕЩЁ раз"))
    assert matched_lists(transcript, [KeywordList("again", ("еще",))]) == ("again",)


def test_nothing_said_matches_nothing() -> None:
    assert matched_lists(_said(), [KeywordList("complaint", ("жалоба",))]) == ()
