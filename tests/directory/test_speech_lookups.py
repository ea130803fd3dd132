"""Speech-driven identification against the real directory: the sample directory (examples/contacts.csv) in each
store, what a customer says read into lookups, the store's answers, and the one contact offered (or none), the way
the daemon wires cti/speech_identify.py (its module docstring)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.contacts_csv import read_contacts
from cti.directory import Contact
from cti.speech_identify import LOOKUP_LIMIT, Lookup, Offer, SurnameIndex, hear, identify, lookups, surname_of
from cti.spoken_forms import heard_words
from store.repository import Store
from tests.store.conftest import IMPLEMENTATIONS

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contacts.csv"


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s = await IMPLEMENTATIONS[request.param](tmp_path)()
    try:
        await s.add_contacts(read_contacts(SAMPLE.read_bytes()).contacts)
        yield s
    finally:
        await s.close()


async def _offer(store: Store, *said: str) -> Offer | None:
    """What the daemon does on a final result: the index of the directory's surnames, each side's words heard, the
    lookups asked of the store, the answers ranked."""
    names = [c.name for c in await store.list_contacts(limit=10_000)]
    index = SurnameIndex(s for s in map(surname_of, names) if s)
    heard = [hear(heard_words(text, 0.9), "customer", index) for text in said]
    answers: dict[Lookup, list[Contact]] = {
        lookup: await store.find_contacts(lookup.query, limit=LOOKUP_LIMIT) for lookup in lookups(heard)}
    return identify(heard, lambda lookup: answers.get(lookup, []))


async def test_a_dictated_plate_brings_up_its_owner(store: Store) -> None:
    offer = await _offer(store, "у меня тойота камри, номер а сто двадцать три вэ эс, регион семьсот семьдесят семь")
    assert offer is not None and offer.name == "Иванов Пётр Сергеевич"
    assert offer.heard == ("А 123 ВС 777",)


async def test_a_plate_without_its_region_and_in_english_letters(store: Store) -> None:
    offer = await _offer(store, "kilo four five six oscar papa")
    assert offer is not None and offer.name == "Сидорова Ольга Викторовна"
    assert [e.kind for e in offer.evidence] == ["partial_plate"]


async def test_a_dictated_number_brings_up_its_owner(store: Store) -> None:
    offer = await _offer(store, "перезвоните мне на восемь девятьсот три пятьсот пятьдесят пять шестьдесят шесть "
                                "семьдесят семь")
    assert offer is not None and offer.name == "Сидорова Ольга Викторовна"


async def test_a_surname_alone_offers_nobody_and_with_a_doubtful_plate_it_does(store: Store) -> None:
    assert await _offer(store, "это Зайцева") is None
    assert await _offer(store, "ха сто тридцать один ха ха") is not None  # the plate alone, heard well
    doubtful = "ха сто тридцать один ха ха"
    names = [c.name for c in await store.list_contacts(limit=10_000)]
    index = SurnameIndex(s for s in map(surname_of, names) if s)
    heard = [hear(heard_words(doubtful, 0.4), "customer", index),
             hear(heard_words("запишите на Зайцеву", 0.9), "customer", index)]
    answers = {lookup: await store.find_contacts(lookup.query, limit=LOOKUP_LIMIT) for lookup in lookups(heard)}
    assert identify(heard[:1], lambda lookup: answers.get(lookup, [])) is None
    offer = identify(heard, lambda lookup: answers.get(lookup, []))
    assert offer is not None and offer.name == "Зайцева Марина Львовна"
    assert {e.kind for e in offer.evidence} == {"partial_plate", "surname"}


async def test_what_the_sample_calls_say_offers_nobody(store: Store) -> None:
    """The speech set's call: a Kia Rio of 2018 and a number the directory does not have."""
    assert await _offer(store, "Здравствуйте, я хотел бы записаться на замену масла. Киа Рио, две тысячи "
                               "восемнадцатого года. Хорошо, запишите меня, пожалуйста. Восемь девятьсот "
                               "шестнадцать пятьсот пятьдесят пять двадцать два тридцать три.") is None
