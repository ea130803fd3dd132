"""The directory in the store: a number in any form, a surname prefix, a plate in either alphabet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.directory import Contact, Vehicle
from store.repository import ContactNotFound, Store
from tests.store.conftest import IMPLEMENTATIONS

IVANOV = Contact(name="Иванов Пётр Сергеевич", phones=("8 916 123-45-67", "+7 (495) 111-22-33"),
                 email="ivanov@example.ru", external_id="000123",
                 vehicles=(Vehicle(make="тойота", model="Camry", year=2019, plate="А123ВС 777",
                                   vin="jtnb11hk103456789"),
                           Vehicle(make="ЛАДА", model="Niva", plate="Е001КХ 50")))
IVANOVA = Contact(name="Иванова Мария", phones=("79161234567",), vehicles=(Vehicle(make="kia", plate="о777оо77"),))
ROMASHKA = Contact(name="ООО Ромашка", kind="corporate", phones=("84991112233",),
                   vehicles=(Vehicle(make="ГАЗ", model="Газель", plate="Х123УТ 199"),))


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """The directory's contract: every store implementation (tests/store/conftest.py) runs these tests."""
    s = await IMPLEMENTATIONS[request.param](tmp_path)()
    try:
        await s.add_contacts([IVANOV, IVANOVA, ROMASHKA])
        yield s
    finally:
        await s.close()


@pytest.mark.parametrize("typed", ["8 916 123-45-67", "+7 (916) 1234567", "79161234567", "9161234567",
                                   "8-916-123-45-67"])
async def test_every_form_of_a_number_finds_its_contacts(store: Store, typed: str) -> None:
    found = await store.find_contacts(typed)
    # The number is shared: a husband's and a wife's card both list it.
    assert [c.name for c in found] == ["Иванов Пётр Сергеевич", "Иванова Мария"]


async def test_a_contact_comes_back_with_its_phones_and_vehicles(store: Store) -> None:
    [ivanov] = await store.find_contacts("4951112233")
    assert ivanov.phones == ("8 916 123-45-67", "+7 (495) 111-22-33")
    assert ivanov.external_id == "000123" and ivanov.kind == "private"
    camry, niva = ivanov.vehicles
    assert (camry.make, camry.model, camry.year, camry.plate, camry.vin) == (
        "Toyota", "Camry", 2019, "А123ВС 777", "JTNB11HK103456789")
    assert niva.make == "Lada"
    assert await store.get_contact(ivanov.id or 0) == ivanov


async def test_surname_prefix_ignores_case_and_yo(store: Store) -> None:
    assert [c.name for c in await store.find_contacts("иван")] == ["Иванов Пётр Сергеевич", "Иванова Мария"]
    assert [c.name for c in await store.find_contacts("ИВАНОВА")] == ["Иванова Мария"]
    assert [c.name for c in await store.find_contacts("иванов петр")] == ["Иванов Пётр Сергеевич"]
    assert [c.name for c in await store.find_contacts("ооо ром")] == ["ООО Ромашка"]
    assert await store.find_contacts("Петров") == []


@pytest.mark.parametrize(("typed", "who"), [
    ("A123BC777", "Иванов Пётр Сергеевич"),   # Latin letters for a plate stored in Cyrillic
    ("а123вс", "Иванов Пётр Сергеевич"),      # no region
    ("a 123 bc 77", None),                     # another region: another car
    ("O777OO77", "Иванова Мария"),            # stored in lower-case Cyrillic
    ("x123yt", "ООО Ромашка"),
])
async def test_plates_are_found_in_either_alphabet_with_or_without_region(store: Store, typed: str,
                                                                          who: str | None) -> None:
    found = [c.name for c in await store.find_contacts(typed)]
    assert found == ([who] if who else [])


async def test_the_three_digits_an_agent_hears_find_every_car_with_them(store: Store) -> None:
    assert [c.name for c in await store.find_contacts("123")] == ["Иванов Пётр Сергеевич", "ООО Ромашка"]


@pytest.mark.parametrize("typed", ["тойота", "toyota", "ещнщеф", "Njqjnf"])
async def test_a_make_in_russian_english_or_the_wrong_layout_finds_its_owners(store: Store, typed: str) -> None:
    assert [c.name for c in await store.find_contacts(typed)] == ["Иванов Пётр Сергеевич"]
    assert [c.name for c in await store.find_contacts("киа")] == ["Иванова Мария"]


async def test_names_come_before_the_owners_of_a_make_the_text_also_spells(store: Store) -> None:
    await store.add_contacts([Contact(name="Лада Кузнецова", phones=("89030000001",))])
    assert [c.name for c in await store.find_contacts("лада")] == ["Лада Кузнецова", "Иванов Пётр Сергеевич"]


async def test_a_word_inside_a_name_finds_it_after_the_names_that_start_with_it(store: Store) -> None:
    await store.add_contacts([Contact(name='ЗАО "Вектор"', kind="corporate"), Contact(name="Ромашкин Олег"),
                              Contact(name="Петров-Водкин Кузьма"), Contact(name="100% Авто_Сервис")])
    assert [c.name for c in await store.find_contacts("ромашка")] == ["ООО Ромашка"]
    assert [c.name for c in await store.find_contacts("РОМАШ")] == ["Ромашкин Олег", "ООО Ромашка"]
    assert [c.name for c in await store.find_contacts("вектор")] == ['ЗАО "Вектор"']
    assert [c.name for c in await store.find_contacts("водкин")] == ["Петров-Водкин Кузьма"]
    assert [c.name for c in await store.find_contacts("петр")] == ["Петров-Водкин Кузьма", "Иванов Пётр Сергеевич"]
    assert [c.name for c in await store.find_contacts("сергеевич")] == ["Иванов Пётр Сергеевич"]
    assert await store.find_contacts("омашка") == []  # inside a word is not a word
    # LIKE's wildcards typed in the box are plain characters.
    assert await store.find_contacts("_ектор") == [] and await store.find_contacts("%") == []
    assert [c.name for c in await store.find_contacts("авто_с")] == ["100% Авто_Сервис"]
    assert [c.name for c in await store.find_contacts("ромашка", limit=1)] == ["ООО Ромашка"]


async def test_calls_attach_to_contacts_and_unknown_ids_are_refused(store: Store) -> None:
    [ivanov] = await store.find_contacts("иванов п")
    assert await store.contact_of_call("1795479242.0") is None
    await store.attach_call("1795479242.0", ivanov.id or 0, by="anna")
    assert (await store.contact_of_call("1795479242.0")) == ivanov
    with pytest.raises(ContactNotFound):
        await store.attach_call("1795479242.0", 99999, by="anna")
    with pytest.raises(ContactNotFound):
        await store.get_contact(99999)


async def test_a_failing_import_leaves_nothing_behind(store: Store) -> None:
    before = await store.count_contacts()

    def contacts() -> list[Contact]:
        good = [Contact(name=f"Клиент {i}", phones=(f"8916000{i:04d}",)) for i in range(25)]
        bad = Contact(name="Дубль", external_id="000123")  # the external id is taken: a UNIQUE violation
        return [*good, bad]

    with pytest.raises(Exception, match=r"(?i)unique"):
        await store.add_contacts(contacts(), chunk_size=10)
    assert await store.count_contacts() == before
    assert await store.find_contacts("клиент") == []
    assert await store.find_contacts("89160000001") == []
