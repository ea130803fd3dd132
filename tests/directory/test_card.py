"""What a search box query means, and new vs repeat on the card (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cti.directory import Contact, Query, build_card, parse_query
from cti.records import CallRecord

DAY = 86400.0
NOW = 1_795_480_000.0


def call(linkedid: str, days_ago: float) -> CallRecord:
    return CallRecord(linkedid=linkedid, direction="inbound", caller="79161234567", caller_name=None,
                      called="74951234567", answered=True, answered_by="101", missed_reason=None, talk_seconds=30,
                      transferred_to=None, agents_rung_not_answered=(), recording=None,
                      started_at=NOW - days_ago * DAY, answered_at=None, ended_at=None, outcome="answered")


def test_one_search_box_understands_numbers_plates_digits_and_names() -> None:
    assert parse_query("8 916 123-45-67") == Query("number", "79161234567")
    assert parse_query("+7 (916) 1234567") == Query("number", "79161234567")
    assert parse_query("123") == Query("plate_number", "123")
    assert parse_query("а123вс 777") == Query("plate", "A123BC777")
    assert parse_query("A123BC") == Query("plate", "A123BC")
    assert parse_query("  Иванов   Пётр ") == Query("name", "иванов петр")
    assert parse_query("") is None and parse_query("   ") is None


@pytest.mark.parametrize("typed", ["тойота", "Toyota", "ещнщеф", "Njqjnf", "тойо"])
def test_a_make_in_russian_english_or_the_wrong_layout_is_a_name_query_that_also_means_the_make(typed: str) -> None:
    parsed = parse_query(typed)
    assert parsed is not None and parsed.kind == "name" and parsed.makes == ("Toyota",)
    assert parsed.key == typed.lower()  # still a name: «Лада» and «Форд» are names as well as makes


def test_a_name_or_a_short_prefix_means_no_make() -> None:
    assert parse_query("иванов") == Query("name", "иванов")
    assert parse_query("ромашка") == Query("name", "ромашка")
    assert parse_query("сит") == Query("name", "сит")  # Ситников or Citroen: too short to tell
    assert parse_query("лада") == Query("name", "лада", ("Lada",))


def test_repeat_means_a_call_within_the_window_and_the_ringing_call_does_not_count() -> None:
    card = build_card("89161234567", region="RU", contacts=(), last_calls=[call("now", 0)], open_missed=(),
                      now=NOW, repeat_days=180, current_linkedid="now")
    assert card.status == "new" and card.last_calls == () and card.number == "79161234567"
    card = build_card("89161234567", region="RU", contacts=(), last_calls=[call("old", 200), call("recent", 30)],
                      open_missed=(), now=NOW, repeat_days=180)
    assert card.status == "repeat" and [c.linkedid for c in card.last_calls] == ["old", "recent"]
    card = build_card("89161234567", region="RU", contacts=[Contact(name="Иванов")], last_calls=[call("old", 200)],
                      open_missed=(), now=NOW, repeat_days=180)
    assert card.status == "new" and card.contact is not None and card.contact.name == "Иванов"


def test_a_withheld_number_has_an_unknown_card_whatever_is_passed() -> None:
    for number in (None, "", "anonymous", "<unknown>"):
        card = build_card(number, region="RU", contacts=[Contact(name="x")], last_calls=[replace(call("a", 1))],
                          open_missed=(), now=NOW, repeat_days=180)
        assert (card.withheld, card.status, card.number, card.contacts) == (True, "unknown", None, ())
