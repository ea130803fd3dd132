"""Licence plates and car makes: what an agent types must find what the directory holds."""

from __future__ import annotations

import pytest

from cti.makes import MAKES, canonical_make, find_makes
from cti.plates import display_plate, plate_key

LOOK_ALIKES = list(zip("АВЕКМНОРСТУХ", "ABEKMHOPCTYX", strict=True))


@pytest.mark.parametrize(("cyrillic", "latin"), LOOK_ALIKES)
def test_every_look_alike_letter_pair_gives_the_same_plate(cyrillic: str, latin: str) -> None:
    stored = plate_key(f"{cyrillic}123{cyrillic}{cyrillic}77")
    typed = plate_key(f"{latin.lower()} 123 {latin}{latin.lower()} 77")
    assert stored is not None and typed is not None
    assert stored == typed
    assert stored.full == f"{latin}123{latin}{latin}77"


def test_spaces_dashes_case_and_rus_are_ignored() -> None:
    keys = {plate_key(t) for t in ("А123ВС777", "а 123 вс 777", "A-123-BC-777", "A123BC 777 RUS", " a123bc777 ")}
    assert len(keys) == 1
    key = keys.pop()
    assert key is not None and (key.full, key.base, key.region, key.number) == ("A123BC777", "A123BC", "777", "123")


def test_the_region_is_optional_in_a_query() -> None:
    key = plate_key("а123вс")
    assert key is not None and key.region is None and key.base == "A123BC" and key.full == "A123BC"
    assert key.base == plate_key("А123ВС 50").base  # type: ignore[union-attr]


def test_non_standard_plates_and_junk() -> None:
    taxi = plate_key("АВ 123 77")
    assert taxi is not None and taxi.full == "AB12377" and taxi.number == "123"
    assert plate_key("") is None and plate_key(" - ") is None and plate_key("???") is None
    assert display_plate("a123bc777") == "А 123 ВС 777"
    assert display_plate("a123bc") == "А 123 ВС"


@pytest.mark.parametrize(("typed", "make"), [
    ("Тойота", "Toyota"), ("toyota", "Toyota"), ("TOYOTA", "Toyota"), ("ещнщеф", "Toyota"), ("Njqjnf", "Toyota"),
    ("тойо", "Toyota"), ("ВАЗ", "Lada"), ("лада", "Lada"), ("kflf", "Lada"), ("Хёндэ", "Hyundai"),
    ("хендай", "Hyundai"), ("Mercedes", "Mercedes-Benz"), ("мерседес бенц", "Mercedes-Benz"),
    ("ьуксувуы", "Mercedes-Benz"), ("land rover", "Land Rover"), ("ЛендРовер", "Land Rover"), ("шкода", "Skoda"),
    ("Škoda", "Skoda"), ("vw", "Volkswagen"), ("фольксваген", "Volkswagen"), ("ащкв", "Ford"),
])
def test_makes_are_found_in_russian_english_and_the_wrong_layout(typed: str, make: str) -> None:
    assert canonical_make(typed) == make
    assert find_makes(typed)[0].make == make


def test_an_ambiguous_prefix_lists_candidates_and_an_unknown_make_is_kept_tidied() -> None:
    candidates = [m.make for m in find_makes("m")]
    assert {"Mazda", "Mercedes-Benz", "Mitsubishi"} <= set(candidates)
    assert canonical_make("m") == "m"
    assert canonical_make("  Moskvich   412 ") == "Moskvich 412"
    assert find_makes("") == [] and find_makes("   ") == []


def test_every_make_finds_itself() -> None:
    for make, aliases in MAKES.items():
        for name in (make, *aliases):
            assert canonical_make(name) == make, name
