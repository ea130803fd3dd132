"""«Это …?»: the one contact what was said in a call's first seconds points to, or none (cti/speech_identify.py).

The directory here is a small list searched the way the store searches (a plate by its key, in any region when the
region was not said; a number by its normalised form; a name by prefix): tests/directory/test_speech_lookups.py runs
the same questions against the real stores.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from cti.directory import Contact, Vehicle, name_key
from cti.live import LiveResult, LiveWord
from cti.phones import normalize_number
from cti.plates import plate_key
from cti.speech_identify import (
    GOOD,
    Heard,
    Lookup,
    Offer,
    SurnameIndex,
    hear,
    identify,
    lookups,
    name_has_family,
    surname_of,
    words_in_window,
)
from cti.spoken_forms import HeardWord, heard_words

IVANOV = Contact(id=1, name="Иванов Пётр Сергеевич", phones=("8 916 123-45-67",),
                 vehicles=(Vehicle(make="Toyota", plate="А123ВС777"),))
IVANOVA = Contact(id=2, name="Иванова Мария", phones=("8 916 123-45-67",),  # the family's number
                  vehicles=(Vehicle(make="Kia", plate="О777ОО77"),))
PETROV = Contact(id=3, name="Петров Иван Николаевич", phones=("8 916 123-00-05",),
                 vehicles=(Vehicle(make="Lada", plate="Е555КХ50"),))
PETROVA = Contact(id=4, name="Петрова Анна", phones=("8 903 555-66-77",), vehicles=(Vehicle(plate="К456ОР199"),))
PETROVSKY = Contact(id=5, name="Петровский Олег", phones=("8 926 777-00-11",))
SMITH = Contact(id=6, name="John Smith", phones=("+44 7911 123456",), vehicles=(Vehicle(plate="С909СС177"),))
SIDORENKO = Contact(id=7, name="Сидоренко Ольга", phones=("8 916 000-13-13",),
                    vehicles=(Vehicle(plate="М789ТХ750"), Vehicle(plate="М789ТХ50")))  # one base, two regions
KUZNETSOVA = Contact(id=8, name="Кузнецова Елена Петровна", phones=("8 916 123-45-67",))  # their daughter
DIRECTORY = (IVANOV, IVANOVA, PETROV, PETROVA, PETROVSKY, SMITH, SIDORENKO, KUZNETSOVA)
SURNAMES = SurnameIndex(s for s in (surname_of(c.name) for c in DIRECTORY) if s)


def find(lookup: Lookup) -> list[Contact]:
    """The directory's answer, searched as the store searches it."""
    query = lookup.query
    if query.kind == "number":
        return [c for c in DIRECTORY if any(normalize_number(p) == query.key for p in c.phones)]
    if query.kind == "plate":
        wanted = plate_key(query.key)
        assert wanted is not None

        def matches(plate: str | None) -> bool:
            key = plate_key(plate or "")
            return key is not None and key.base == wanted.base and (wanted.region is None or key.full == wanted.full)
        return [c for c in DIRECTORY if any(matches(v.plate) for v in c.vehicles)]
    return [c for c in DIRECTORY if name_key(c.name).startswith(query.key)]


def customer(text: str, conf: float = 0.95) -> Heard:
    return hear(heard_words(text, conf), "customer", SURNAMES)


def agent(text: str, conf: float = 0.95) -> Heard:
    return hear(heard_words(text, conf), "agent", SURNAMES)


def offered(*heard: Heard) -> Offer | None:
    return identify(heard, find)


# -- one strong fact ------------------------------------------------------------------------------------------------


def test_a_plate_heard_well_offers_its_owner() -> None:
    offer = offered(customer("у меня тойота, номер а сто двадцать три вэ эс семьсот семьдесят семь"))
    assert offer is not None
    assert (offer.contact_id, offer.name) == (1, "Иванов Пётр Сергеевич")
    assert offer.heard == ("А 123 ВС 777",)
    [why] = offer.evidence
    assert (why.kind, why.key, why.speaker, why.shared) == ("plate", "A123BC777", "customer", 1)


def test_a_phone_number_heard_well_offers_its_owner() -> None:
    offer = offered(customer("запишите восемь девятьсот шестнадцать сто двадцать три ноль ноль ноль пять"))
    assert offer is not None and offer.contact_id == 3
    assert offer.heard == ("8 916 123 0 0 0 5",)


def test_a_plate_without_its_region_finds_the_one_car_with_it() -> None:
    offer = offered(customer("е пятьсот пятьдесят пять ка ха"))
    assert offer is not None and offer.contact_id == 3
    assert [e.kind for e in offer.evidence] == ["partial_plate"]


def test_one_owner_of_two_cars_with_the_same_base_is_still_one_contact() -> None:
    offer = offered(customer("эм семьсот восемьдесят девять тэ ха"))
    assert offer is not None and offer.contact_id == 7


def test_an_english_speaker_is_found_by_a_plate_or_a_number() -> None:
    by_plate = offered(customer("my plate is charlie nine oh nine charlie charlie one seven seven"))
    by_number = offered(customer("call me on plus four four seven nine one one one two three four five six"))
    assert by_plate is not None and by_plate.contact_id == 6
    assert by_number is not None and by_number.contact_id == 6


# -- not enough -----------------------------------------------------------------------------------------------------


def test_nothing_heard_or_nothing_found_offers_nobody() -> None:
    assert offered() is None
    assert offered(customer("здравствуйте, я хотел бы записаться на ремонт")) is None
    assert offered(customer("номер а сто двадцать три вэ эс семьдесят семь")) is None  # region 77: no such car
    assert offered(customer("восемь девятьсот шестнадцать девятьсот девяносто девять ноль ноль ноль один")) is None


def test_a_surname_alone_is_never_enough() -> None:
    assert offered(customer("моя фамилия Петрова")) is None
    assert offered(customer("это Смит, John Smith")) is None
    assert offered(customer("Сидоренко")) is None  # one contact, and still only a word


def test_a_number_two_contacts_share_offers_neither() -> None:
    assert offered(customer("восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь")) is None


def test_a_doubtful_plate_alone_is_not_enough() -> None:
    offer = offered(customer("а сто двадцать три вэ эс семьсот семьдесят семь", conf=GOOD - 0.1))
    assert offer is None


def test_two_contacts_each_with_a_strong_fact_tie() -> None:
    """A plate of one and a number of another: which one is calling is the agent's question, not ours."""
    heard = customer("машина а сто двадцать три вэ эс семьсот семьдесят семь, телефон восемь девятьсот "
                     "шестнадцать сто двадцать три ноль ноль ноль пять")
    assert offered(heard) is None


# -- a surname and another fact -------------------------------------------------------------------------------------


def test_a_surname_tells_apart_the_family_sharing_a_number() -> None:
    offer = offered(customer("это Кузнецова, восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят "
                             "семь"))
    assert offer is not None and offer.contact_id == 8
    assert {e.kind for e in offer.evidence} == {"phone", "surname"}
    assert set(offer.heard) == {"8 916 123 45 67", "кузнецова"}


def test_a_surname_husband_and_wife_share_tells_nothing_apart() -> None:
    """«Иванова» is Иванова Мария, or Иванов Пётр in the genitive («запишите на Иванова»): still a tie."""
    assert offered(customer("это Иванова, восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят "
                            "семь")) is None


def test_a_surname_in_another_case_confirms_a_doubtful_plate() -> None:
    doubtful = customer("а сто двадцать три вэ эс семьсот семьдесят семь", conf=0.4)
    assert offered(doubtful) is None
    offer = offered(doubtful, customer("запишите на Иванова Петра"))
    assert offer is not None and offer.contact_id == 1
    assert [e.kind for e in offer.evidence] == ["plate", "surname"]


def test_a_plate_outweighs_a_surname_of_someone_else() -> None:
    offer = offered(customer("я Петров, машина а сто двадцать три вэ эс семьсот семьдесят семь"))
    assert offer is not None and offer.contact_id == 1


def test_a_surname_matches_only_its_own_family() -> None:
    """«Петрову» is Петров's and Петрова's, not Петровский's (whom the name search by prefix also finds), and
    «Петра» (the first name) is nobody's surname."""
    heard = customer("для Петрову и для Петра")
    [surname] = heard.surnames
    assert surname.said == "петрову" and set(surname.surnames) == {"Петров", "Петрова"}
    offer = offered(heard, customer("восемь девятьсот двадцать шесть семьсот семьдесят семь ноль ноль одиннадцать",
                                    conf=0.4))
    assert offer is None  # Петровский's number, heard badly: his surname was not said


def test_the_agent_repeating_the_plate_back_is_the_same_fact() -> None:
    said = "а сто двадцать три вэ эс семьсот семьдесят семь"
    offer = offered(customer(said), agent(f"{said}, верно?"))
    assert offer is not None and offer.contact_id == 1
    assert offer.heard == ("А 123 ВС 777",)


def test_a_plate_and_a_number_of_the_same_contact_are_surer_than_either() -> None:
    plate = customer("о семьсот семьдесят семь о о семьдесят семь", conf=0.7)
    number = customer("восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь", conf=0.7)
    one = offered(plate)
    both = offered(plate, number)
    assert one is not None and both is not None and one.contact_id == both.contact_id == 2
    assert both.confidence > one.confidence
    assert [e.kind for e in both.evidence] == ["plate", "phone"]


# -- the pieces the daemon wires --------------------------------------------------------------------------------------


def test_lookups_are_asked_once_each_in_the_order_heard() -> None:
    heard = [customer("Петрова, а сто двадцать три вэ эс, восемь девятьсот три пятьсот пятьдесят пять шестьдесят "
                      "шесть семьдесят семь"), agent("а сто двадцать три вэ эс, Петрова")]
    assert lookups(heard) == (Lookup("plate", "A123BC"), Lookup("phone", "79035556677"),
                              Lookup("surname", "петров"))
    assert [lookup.query.kind for lookup in lookups(heard)] == ["plate", "number", "name"]


def test_contacts_without_an_id_are_not_offered() -> None:
    nameless = Contact(name="Иванов Пётр", vehicles=(Vehicle(plate="А123ВС777"),))
    heard = customer("а сто двадцать три вэ эс семьсот семьдесят семь")
    assert identify([heard], lambda lookup: [nameless]) is None


def test_the_words_of_the_first_half_minute_of_final_results_per_lane() -> None:
    def result(lane: str, final: bool, *words: tuple[str, float]) -> LiveResult:
        live = tuple(LiveWord(text, start, start + 0.3, 0.9) for text, start in words)
        return LiveResult(lane, final, " ".join(w.text for w in live), live, live[0].start, live[-1].end)  # type: ignore[arg-type]

    results = [result("customer", True, ("а", 5.0), ("сто", 5.4)),
               result("customer", False, ("двадцать", 6.0)),  # a partial: replaced by the final below
               result("agent", True, ("да", 5.2)),
               result("customer", True, ("двадцать", 6.0), ("три", 29.9), ("вэ", 30.1))]
    lanes = words_in_window(results)
    assert [w.text for w in lanes["customer"]] == ["а", "сто", "двадцать", "три"]
    assert [w.text for w in lanes["agent"]] == ["да"]


def test_surnames_of_directory_names() -> None:
    assert [surname_of(n) for n in ("Иванов Пётр Сергеевич", "John Smith", "ООО Ромашка", "ИП Петров И. С.",
                                    "Ли", "Madonna")] == ["Иванов", "Smith", None, "Петров", None, "Madonna"]


@pytest.mark.parametrize(("said", "family"), [
    ("Петров", "петров"), ("Петрова", "петров"), ("Петрову", "петров"), ("Петровой", "петров"),
    ("Петровым", "петров"), ("Сидоренко", "сидоренко"), ("Smiths", "smith"),
    ("Петра", None), ("Пётр", None), ("Сидоренку", None), ("Петровскому", "петровск"),
])
def test_a_surname_in_any_case_and_nothing_else(said: str, family: str | None) -> None:
    assert SURNAMES.family_of(said) == family


def test_a_found_name_counts_by_its_surname_only() -> None:
    assert name_has_family("Петрова Анна", "петров") and name_has_family("ИП Петров И. С.", "петров")
    assert not name_has_family("Петровский Олег", "петров")
    assert not name_has_family("Зайцева Марина Львовна", SURNAMES.family_of("Марин") or "марин")  # a first name
    assert not name_has_family("ООО Петров и партнёры", "петров")


def test_words_with_low_confidence_make_a_surname_less_sure() -> None:
    [heard] = SURNAMES.heard([HeardWord("Иванову", 0.3)])
    assert heard.confidence == 0.3 and heard.family == "иванов"


def test_ranking_never_depends_on_the_order_things_were_heard() -> None:
    first = customer("это Кузнецова")
    second = customer("восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь")
    one, other = offered(first, second), offered(second, first)
    assert one is not None and other is not None and one.contact_id == other.contact_id == 8


def _ids(found: Sequence[Contact]) -> list[int | None]:
    return [c.id for c in found]


def test_the_test_directory_answers_as_the_store_does() -> None:
    """The double above stays honest: a region-less plate finds every region, a number any form."""
    assert _ids(find(Lookup("plate", "M789TX"))) == [7]
    assert _ids(find(Lookup("plate", "A123BC77"))) == []
    assert _ids(find(Lookup("phone", "79161234567"))) == [1, 2, 8]
    assert _ids(find(Lookup("surname", "петров"))) == [3, 4, 5]
