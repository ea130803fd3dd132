"""Plates and phone numbers as people say them, read from a transcript's words (cti/spoken_forms.py).

The exact texts of ../shared/speech (what its recordings say) must give exactly the plates and numbers dictated in
them and nothing else; then the spoken forms one by one, Russian and English, with hesitations, repairs and
look-alike letters; and what must *not* become a candidate: prices, times, mileage, years, a partial number.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cti.live import LiveWord
from cti.plates import plate_key
from cti.spoken_forms import (
    HESITATION,
    REPAIR,
    Candidate,
    HeardWord,
    heard_words,
    parse_spoken,
    parse_text,
)
from cti.transcripts import Word
from tests.conftest import UNIT

SPEECH = Path(__file__).resolve().parents[3] / "shared" / "speech"


def _texts() -> dict[str, str]:
    """Every exact text of the speech set: each utterance (``ru_02``), and each side of each call
    (``call_01_ru.wav:customer`` …), the utterances of a side joined as one lane's words."""
    texts: dict[str, str] = {}
    for line in (SPEECH / "refs.jsonl").read_text(encoding="utf-8").splitlines():
        ref = json.loads(line)
        texts[ref["file"].removesuffix(".wav")] = ref["text"]
    for line in (SPEECH / "calls.jsonl").read_text(encoding="utf-8").splitlines():
        call = json.loads(line)
        for side in ("agent", "customer"):
            texts[f"{call['file']}:{side}"] = " ".join(u["text"] for u in call["utterances"] if u["channel"] == side)
    return texts


TEXTS = _texts()
#: What the set dictates: (plates, phone numbers, runs of digits that are neither). Every other text: nothing.
DICTATED: dict[str, tuple[list[str], list[str], list[str]]] = {
    "ru_02": (["A123BC77"], [], ["123", "77"]),
    "ru_03": ([], ["79161234567"], ["89161234567"]),
    "call_01_ru.wav:customer": ([], ["79165552233"], ["89165552233"]),
    "en_03": ([], [], ["5551234"]),  # seven digits: a local number, not a whole one
    "call_02_en.wav:customer": ([], [], ["4279"]),  # an order number
}


def test_the_speech_set_is_all_here() -> None:
    assert len([k for k in TEXTS if k.startswith(("ru_", "en_", "real_en_"))]) == 34
    assert {"call_01_ru.wav:customer", "call_02_en.wav:customer"} <= TEXTS.keys()


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_each_text_of_the_speech_set_gives_what_it_dictates_and_nothing_else(name: str) -> None:
    found = parse_text(TEXTS[name])
    plates, phones, digits = DICTATED.get(name, ([], [], []))
    assert [c.key for c in found.plates] == plates
    assert [c.key for c in found.phones] == phones
    assert [n.digits for n in found.numbers if not n.quantity] == digits


def test_the_dictated_plate_keeps_its_words_and_shows_in_cyrillic() -> None:
    words = heard_words(TEXTS["ru_02"])
    [plate] = parse_spoken(words).plates
    assert [words[i].text for i in plate.words] == ["а", "сто", "двадцать", "три", "вэ", "эс", "регион", "семьдесят",
                                                    "семь"]
    assert plate.said == "А 123 ВС 77" and not plate.partial and plate.confidence == 1.0
    # The key is the directory's: the same as typed into the search box.
    key = plate_key("а123вс 77")
    assert key is not None and plate.key == key.full


def test_the_dictated_number_keeps_its_words_and_how_it_was_grouped() -> None:
    words = heard_words(TEXTS["ru_03"])
    [phone] = parse_spoken(words).phones
    assert phone.said == "8 916 123 45 67"
    assert " ".join(words[i].text for i in phone.words) == (
        "восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь")


def test_price_mileage_year_and_time_in_the_set_are_quantities() -> None:
    assert [n.quantity for n in parse_text(TEXTS["ru_10"]).numbers] == [True]  # двенадцать тысяч пятьсот рублей
    customer = parse_text(TEXTS["call_01_ru.wav:customer"]).numbers
    assert [n.quantity for n in customer] == [True, False]  # две тысячи восемнадцатого года; the phone number
    agent = parse_text(TEXTS["call_01_ru.wav:agent"]).numbers
    assert [n.quantity for n in agent] == [True]  # в десять утра


# -- Russian -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("said", "key"), [
    ("а сто двадцать три вэ эс семьдесят семь", "A123BC77"),
    ("а один два три ве эс семь семь", "A123BC77"),
    ("а двенадцать три вэ эс семьдесят семь", "A123BC77"),
    ("номер о семьсот семьдесят семь о о девяносто семь", "O777OO97"),
    ("е пятьсот пятьдесят пять ка ха пятьдесят", "E555KX50"),
    ("тэ сто одиннадцать тэ тэ регион семьдесят семь рус", "T111TT77"),
    ("эм двести шестьдесят эм эм семьсот девяносто девять", "M260MM799"),
    ("эн триста двадцать один а эм сто девяносто", "H321AM190"),
    ("у шестьсот шестнадцать у у девяносто девять", "Y616YY99"),
    ("ха сто тридцать один ха ха сто пятьдесят", "X131XX150"),
    ("эр сто пятьдесят эр эр пятьдесят", "P150PP50"),
    ("вэ четыреста четыре е эр семьдесят семь", "B404EP77"),
    ("ка двести пятьдесят ка ка сто девяносто семь", "K250KK197"),
    ("эс девятьсот девять эс эс сто семьдесят семь", "C909CC177"),
    ("а ноль ноль семь вэ эс семьсот семьдесят семь", "A007BC777"),
    ("а ноль ноль один вэ эс семь семь семь", "A001BC777"),
    ("а сто двадцать три вэ эс три семёрки", "A123BC777"),
    ("вэ как Василий сто двадцать три эс как Семён ка как Константин семьдесят семь", "B123CK77"),
    ("как Анна сто двадцать три как Василий как Сергей семьдесят семь", "A123BC77"),
    ("альфа сто двадцать три браво чарли семьдесят семь", "A123BC77"),
    ("а сто двадцать три би си семьдесят семь", "A123BC77"),  # Latin letter names, read in Russian
    ("а сто двадцать три кей икс семьдесят семь", "A123KX77"),
])
def test_russian_plates(said: str, key: str) -> None:
    [plate] = parse_text(said).plates
    assert (plate.key, plate.partial) == (key, False)


@pytest.mark.parametrize(("said", "key"), [
    ("восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь", "79161234567"),
    ("восемь девять один шесть один два три четыре пять шесть семь", "79161234567"),
    ("восемьсот девяносто один шестьсот двенадцать триста сорок пять шестьдесят семь", "79161234567"),
    ("плюс семь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь", "79161234567"),
    ("девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь", "79161234567"),
    ("восемь девятьсот три пятьсот пятьдесят пять шестьдесят шесть семьдесят семь", "79035556677"),
    ("восемь четыреста девяносто девять сто одиннадцать двадцать два тридцать три", "74991112233"),
    ("восемь девятьсот шестнадцать сто двадцать три ноль ноль ноль пять", "79161230005"),
    ("восемь девятьсот шестнадцать сто двадцать пять ноль ноль двадцать шесть", "79161250026"),
    ("восемь девятьсот шестнадцать сто двадцать три сорок пять две семёрки", "79161234577"),
    ("плюс сорок четыре семь девять один один сто двадцать три четыреста пятьдесят шесть", "447911123456"),
])
def test_russian_phone_numbers(said: str, key: str) -> None:
    found = parse_text(said)
    assert [c.key for c in found.phones] == [key]
    assert found.plates == ()


# -- English -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("said", "key"), [
    ("a one two three b c seven seven", "A123BC77"),
    ("alpha one two three bravo charlie seven seven", "A123BC77"),
    ("a one twenty three bee see seventy seven", "A123BC77"),
    ("a one hundred twenty three b as in bravo c as in charlie seven seven seven", "A123BC777"),
    ("a one hundred and twenty three b for bravo c for charlie triple seven", "A123BC777"),
    ("oh seven seven seven oh oh ninety seven", "O777OO97"),
    ("kilo two five oh kay kay one nine seven", "K250KK197"),
    ("x-ray one three one ex ex one fifty", "X131XX150"),
    ("mike two six oh em em seven nine nine", "M260MM799"),
    ("hotel three two one alpha mike one ninety", "H321AM190"),
    ("tango one one one tango tango double seven", "T111TT77"),
    ("yankee six one six why why nine nine", "Y616YY99"),
    ("papa one five oh pee pee five oh", "P150PP50"),
])
def test_english_plates(said: str, key: str) -> None:
    [plate] = parse_text(said).plates
    assert plate.key == key


@pytest.mark.parametrize(("said", "key"), [
    ("eight nine one six one two three four five six seven", "79161234567"),
    ("plus seven nine one six one two three four five six seven", "79161234567"),
    ("plus seven nine sixteen one twenty three forty five sixty seven", "79161234567"),
    ("plus four four seven nine one one one two three four five six", "447911123456"),
    ("plus four four double seven oh oh nine double oh one two three", None),  # Ofcom's fictional range
    ("plus one two one two four five six seven eight nine oh", "12124567890"),
    ("eight nine oh three triple five six six seven seven", "79035556677"),
])
def test_english_phone_numbers(said: str, key: str | None) -> None:
    assert [c.key for c in parse_text(said).phones] == ([key] if key else [])


def test_a_us_number_is_read_from_a_us_region() -> None:
    said = "two one two four five six seven eight nine oh"
    assert [c.key for c in parse_text(said, region="US").phones] == ["12124567890"]
    assert [c.key for c in parse_text(said, region="RU").phones] == []


# -- digits and letters as a recogniser may write them --------------------------------------------------------


@pytest.mark.parametrize(("said", "key"), [
    ("номер А123ВС77", "A123BC77"),
    ("номер а123вс 777", "A123BC777"),
    ("номер A123BC 77", "A123BC77"),  # Latin look-alikes
    ("номер а 123 вс 77", "A123BC77"),
    ("номер а 123 в с 77", "A123BC77"),  # bare letters
])
def test_written_digits_and_letters(said: str, key: str) -> None:
    [plate] = parse_text(said).plates
    assert plate.key == key


def test_written_phone_number() -> None:
    assert [c.key for c in parse_text("мой номер +7 916 123 45 67").phones] == ["79161234567"]
    assert [c.key for c in parse_text("мой номер 8 916 123-45-67").phones] == ["79161234567"]


# -- hesitations, repairs, stutters, repeats ----------------------------------------------------------------------


def test_hesitations_are_skipped_and_lower_the_confidence() -> None:
    [plate] = parse_text("а, э, сто двадцать три, ну, вэ эс, значит, семьдесят семь").plates
    assert plate.key == "A123BC77"
    assert plate.confidence == pytest.approx(HESITATION ** 3, abs=1e-4)
    [phone] = parse_text("восемь, э-э, девятьсот шестнадцать, вот, сто двадцать три сорок пять шестьдесят семь").phones
    assert phone.key == "79161234567" and phone.confidence < 1.0


def test_a_hesitation_before_a_candidate_does_not_count_against_it() -> None:
    [plate] = parse_text("ну э а сто двадцать три вэ эс семьдесят семь").plates
    assert plate.confidence == 1.0


def test_a_repair_drops_the_group_said_before_it() -> None:
    [phone] = parse_text("восемь девятьсот шестнадцать, ой, девятьсот двадцать шесть сто двадцать три "
                         "сорок пять шестьдесят семь").phones
    assert phone.key == "79261234567" and phone.said == "8 926 123 45 67"
    assert phone.confidence == pytest.approx(REPAIR, abs=1e-4)
    [plate] = parse_text("а сто двадцать три эм нет вэ эс семьдесят семь").plates
    assert plate.key == "A123BC77" and plate.confidence < 1.0


def test_a_stutter_counts_once() -> None:
    [plate] = parse_text("а сто сто двадцать три вэ эс семьдесят семь").plates
    assert plate.key == "A123BC77" and plate.confidence < 1.0


def test_a_spelling_that_disagrees_takes_the_word_less_sure() -> None:
    [plate] = parse_text("эм как Николай сто двадцать три вэ эс семьдесят семь").plates
    assert plate.key == "H123BC77" and plate.confidence < 1.0
    [agreed] = parse_text("эн как Николай сто двадцать три вэ эс семьдесят семь").plates
    assert agreed.key == "H123BC77" and agreed.confidence == 1.0


def test_a_number_said_twice_is_one_candidate_and_surer() -> None:
    once = "восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь"
    words = heard_words(f"{once} повторяю {once}", conf=0.7)
    [phone] = parse_spoken(words).phones
    assert phone.key == "79161234567"
    assert phone.confidence == pytest.approx(1 - 0.3 * 0.3, abs=1e-4)
    assert len(phone.words) == 20


def test_the_words_confidence_is_the_candidates() -> None:
    words = [HeardWord(w.text, 0.5 if w.text == "вэ" else 0.9)
             for w in heard_words("а сто двадцать три вэ эс семьдесят семь")]
    [plate] = parse_spoken(words).plates
    assert plate.confidence == pytest.approx((0.9 * 7 + 0.5) / 8, abs=1e-4)


def test_recognisers_words_are_read_as_they_come() -> None:
    """A live result's words and a stored transcript's words are both accepted."""
    said = heard_words("а сто двадцать три вэ эс")
    live = [LiveWord(w.text, i * 0.4, i * 0.4 + 0.3, 0.95) for i, w in enumerate(said)]
    stored = [Word("customer", w.text, w.start, w.end, w.conf) for w in live]
    for words in (live, stored):
        [plate] = parse_spoken(words).plates
        assert (plate.key, plate.partial, plate.confidence) == ("A123BC", True, 0.95)


# -- partial plates and what is no candidate -----------------------------------------------------------------------


def test_a_plate_without_its_region_is_a_partial_candidate() -> None:
    [plate] = parse_text("номер а сто двадцать три вэ эс, машина тойота").plates
    assert (plate.key, plate.partial, plate.said) == ("A123BC", True, "А 123 ВС")
    [one_digit] = parse_text("а сто двадцать три вэ эс семь").plates  # a region of one digit is no region
    assert (one_digit.key, one_digit.partial) == ("A123BC", True)


def test_the_region_stops_where_a_phone_number_begins() -> None:
    found = parse_text("а сто двадцать три вэ эс семьдесят семь восемь девятьсот шестнадцать сто двадцать три "
                       "сорок пять шестьдесят семь")
    assert [c.key for c in found.plates] == ["A123BC77"]
    assert [c.key for c in found.phones] == ["79161234567"]


@pytest.mark.parametrize("said", [
    "пробег сто двадцать тысяч",
    "пробег сто двадцать тысяч километров",
    "стоимость двенадцать тысяч пятьсот рублей",
    "это будет стоить восемь девятьсот пятьдесят рублей",
    "машина две тысячи восемнадцатого года",
    "приезжайте в десять тридцать утра",
    "в восемь девятнадцать утра восьмого числа",
    "миллион двести тысяч триста сорок пять шестьдесят семь",
    "it costs eight hundred ninety one dollars",
    "the mileage is one hundred twenty thousand miles",
    "a hundred and twenty three thousand four hundred fifty six seven eight nine",
])
def test_quantities_are_neither_phone_numbers_nor_plates(said: str) -> None:
    found = parse_text(said)
    assert found.candidates == ()
    assert all(n.quantity for n in found.numbers)


@pytest.mark.parametrize("said", [
    "девятьсот шестнадцать сто двадцать три",  # part of a number
    "восемь девятьсот шестнадцать сто двадцать три сорок пять",  # one group short
    "восемь шестьсот шестьдесят шесть сто двадцать три сорок пять шестьдесят семь",  # no such range
    "один два три четыре пять шесть семь восемь девять ноль один",  # an American number, not dialled from here
    "номер заказа четыре два семь девять",
])
def test_a_partial_or_impossible_number_is_no_candidate(said: str) -> None:
    assert parse_text(said).phones == ()


def test_a_number_inside_a_longer_run_of_digits_is_found_less_sure() -> None:
    [phone] = parse_text("восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь восемьдесят").phones
    assert phone.key == "79161234567" and phone.confidence < 1.0
    assert phone.said == "8 916 123 45 67"


@pytest.mark.parametrize("said", [
    "бэ сто двадцать три вэ эс семьдесят семь",  # Б is on no plate
    "а сто двадцать три вэ семьдесят семь",  # one series letter
    "а двадцать вэ эс семьдесят семь",  # two digits
    "а сто двадцать три четыре вэ эс семьдесят семь",  # four digits
    "а тысяча двести три вэ эс семьдесят семь",  # a quantity
    "сто двадцать три вэ эс семьдесят семь",  # no first letter
    "у меня сто двадцать три лошадиные силы",
    "я сдал её в ремонт в понедельник",
    "как дела, а у вас как",
])
def test_no_plate(said: str) -> None:
    assert parse_text(said).plates == ()


def test_nothing_in_nothing() -> None:
    assert parse_spoken([]).candidates == ()
    assert parse_text("   ,,,  ").candidates == ()
    assert parse_spoken([HeardWord("", 0.9), HeardWord("---", 0.9)]).candidates == ()


def test_hostile_words_are_just_words() -> None:
    """Markup, huge digit runs, other scripts: no candidate, no error."""
    words = ["<script>", "9" * 5000, "١٢٣", "²", "\u0301", "a" * 10000, "+", "+" * 3]
    found = parse_spoken([HeardWord(w, 2.0) for w in words] + heard_words("а сто двадцать три вэ эс"))
    assert [c.key for c in found.candidates] == ["A123BC"]
    assert all(0.0 <= c.confidence <= 1.0 for c in found.candidates)


def test_a_long_transcript_parses_in_time_linear_in_its_words() -> None:
    """Every final result of a call's first half-minute is parsed again with the words before it: the parse must
    stay cheap however dense the numbers and letters are (a bound, not a benchmark)."""
    dense = heard_words("а сто двадцать три вэ эс семьдесят семь восемь девятьсот шестнадцать сто двадцать три "
                        "сорок пять шестьдесят семь э ну один два три четыре пять шесть семь восемь девять ноль", 0.9)
    words = dense * 200  # ~6,000 words: far more than half a minute holds
    started = time.process_time()
    found = parse_spoken(words)
    assert time.process_time() - started < 2.0 * UNIT
    assert {c.key for c in found.candidates} == {"A123BC77", "79161234567"}


def test_candidate_is_a_plain_value() -> None:
    one = Candidate("plate", "A123BC77", "А 123 ВС 77", (0, 1), 0.9)
    assert one == Candidate("plate", "A123BC77", "А 123 ВС 77", (0, 1), 0.9) and not one.partial
