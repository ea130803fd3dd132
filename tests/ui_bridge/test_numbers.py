"""Numbers as people read them (ui_bridge/numbers.py): the display form next to the raw number, per the config."""

from __future__ import annotations

import pytest

from ui_bridge.numbers import NumberDisplay, display_number


@pytest.mark.parametrize(("raw", "international", "national"), [
    ("89161234567", "+7 916 123-45-67", "8 (916) 123-45-67"),          # a mobile, with the trunk prefix
    ("+7 (916) 123-45-67", "+7 916 123-45-67", "8 (916) 123-45-67"),
    ("9161234567", "+7 916 123-45-67", "8 (916) 123-45-67"),           # the bare national ten digits
    ("74951234567", "+7 495 123-45-67", "8 (495) 123-45-67"),          # Moscow
    ("8 (495) 777-00-33", "+7 495 777-00-33", "8 (495) 777-00-33"),
    ("78124445566", "+7 812 444-55-66", "8 (812) 444-55-66"),          # Saint Petersburg
    ("+12025550123", "+1 202-555-0123", "+1 202-555-0123"),            # foreign: international either way
    ("0012025550123", "+1 202-555-0123", "+1 202-555-0123"),
])
def test_a_number_is_shown_in_the_configured_style(raw: str, international: str, national: str) -> None:
    assert display_number(raw, "RU", "international") == international
    assert display_number(raw, "RU", "national") == national
    assert NumberDisplay("RU", "national")(raw) == national


@pytest.mark.parametrize("raw", [
    "101", "1234", "0",                      # internal extensions
    "anonymous", "<unknown>", "", "Restricted",  # withheld
    "abc", "8916abc1234567", "sip:101@pbx", "доб. 5",  # not a phone number
    "123456789012345678",                    # too long for any number
    "+7 916",                                # too short
])
@pytest.mark.parametrize("style", ["international", "national"])
def test_extensions_withheld_numbers_and_garbage_stay_as_given(raw: str, style: str) -> None:
    assert display_number(raw, "RU", style) == raw  # type: ignore[arg-type]


def test_none_stays_none_and_a_list_keeps_its_order_and_length() -> None:
    assert display_number(None) is None
    shown = NumberDisplay("RU", "international").all(("8 916 123-45-67", "102", "anonymous"))
    assert shown == ["+7 916 123-45-67", "102", "anonymous"]
