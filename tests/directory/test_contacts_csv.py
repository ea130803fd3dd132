"""`cti contacts import/export`: files as 1C and spreadsheets write them, checked row by row, all or nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cti.contacts_csv import read_contacts
from store import StoreSettings, open_store
from tests.cli_runner import cti
from tests.daemon.conftest import write_config

ONE_C_EXPORT = (
    "Код;Наименование;Вид;Телефоны;E-mail;Марка;Модель;Год выпуска;Госномер;VIN\r\n"
    "000123;Иванов Пётр Сергеевич;Частное лицо;8 916 123-45-67, +7 (495) 111-22-33;ivanov@example.ru;"
    "Тойота;Camry;2019;А123ВС 777;JTNB11HK103456789\r\n"
    "000123;Иванов Пётр Сергеевич;Частное лицо;8 916 123-45-67;;ВАЗ;Нива;2012;Е001КХ 50;\r\n"
    "000124;ООО Ромашка;Юрлицо;84991112233;;ГАЗ;Газель;;Х123УТ199;\r\n"
    "000125;Сидорова Анна;;9035550027;;;;;;\r\n"
)


def count(tmp_path: Path) -> tuple[int, list[str]]:
    async def go() -> tuple[int, list[str]]:
        async with open_store(StoreSettings(path=tmp_path / "journal.sqlite"), region="RU") as store:
            return await store.count_contacts(), [c.name for c in await store.find_contacts("A123BC")]

    return asyncio.run(go())


def test_a_cp1251_semicolon_file_from_1c_is_imported_with_its_cars(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, 5038))
    file = tmp_path / "kontragenty.csv"
    file.write_bytes(ONE_C_EXPORT.encode("cp1251"))
    dry = cti("contacts", "import", str(file), "--dry-run", "--config", config)
    assert "4 rows (cp1251, separator ';'): 3 contacts, 3 cars - all rows are fine (dry run" in dry.stdout
    assert count(tmp_path)[0] == 0
    done = cti("contacts", "import", str(file), "--config", config)
    assert "imported 3 contacts" in done.stdout
    total, by_plate = count(tmp_path)
    assert total == 3 and by_plate == ["Иванов Пётр Сергеевич"]  # found by the Latin spelling of its plate

    exported = cti("contacts", "export", "--config", config, "--encoding", "cp1251", "-o", str(tmp_path / "out.csv"))
    assert exported.returncode == 0
    again = read_contacts((tmp_path / "out.csv").read_bytes())
    assert again.encoding == "cp1251" and not again.problems
    ivanov = next(c for c in again.contacts if c.external_id == "000123")
    assert ivanov.phones == ("8 916 123-45-67", "+7 (495) 111-22-33")
    assert [(v.make, v.plate) for v in ivanov.vehicles] == [("Toyota", "А123ВС 777"), ("Lada", "Е001КХ 50")]
    assert {c.kind for c in again.contacts} == {"private", "corporate"}


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, 5038))
    file = tmp_path / "bad.csv"
    file.write_text(
        "name,phone,plate,year,type,email\n"
        "Петров Олег,+7 916 000-00-01,В456ОР 99,2015,private,oleg@example.ru\n"
        ",89160000002,,,,\n"                                  # line 3: no name
        "Кузнецова Мария,call me,,,,\n"                       # line 4: not a number
        "Соколов Дмитрий,89160000004,???,20015,,\n"           # line 5: plate and year
        "Попова Елена,89160000005,,,VIP,elena(at)example\n",  # line 6: type and e-mail
        encoding="utf-8")
    for args in (("--dry-run",), ()):
        proc = cti("contacts", "import", str(file), *args, "--config", config, check=False)
        assert proc.returncode == 1
        for expected in ("line 3: name: empty", "line 4: phones: 'call me' is not a phone number",
                         "line 5: plate: '???' is not a licence plate", "line 5: year: '20015' is not a year",
                         "line 6: type: 'VIP' is not one of", "line 6: email: 'elena(at)example'",
                         "6 problem(s)", "nothing was imported"):
            assert expected in proc.stderr, (expected, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert count(tmp_path)[0] == 0


def test_a_file_without_a_name_column_or_in_an_unknown_encoding_is_a_clear_error(tmp_path: Path) -> None:
    """A file that cannot be used as given is a usage error (status 2); bad rows are status 1."""
    config = str(write_config(tmp_path, 5038))
    file = tmp_path / "x.csv"
    file.write_text("a;b\n1;2\n", encoding="utf-8")
    proc = cti("contacts", "import", str(file), "--config", config, check=False)
    assert proc.returncode == 2 and "no name column" in proc.stderr
    proc = cti("contacts", "import", str(tmp_path / "missing.csv"), "--config", config, check=False)
    assert proc.returncode == 2 and "cannot read" in proc.stderr


def test_importing_the_same_codes_twice_is_refused_whole(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, 5038))
    file = tmp_path / "k.csv"
    file.write_bytes(ONE_C_EXPORT.encode("utf-8-sig"))
    cti("contacts", "import", str(file), "--config", config)
    proc = cti("contacts", "import", str(file), "--config", config, check=False)
    assert proc.returncode == 1 and "nothing was imported" in proc.stderr and "Traceback" not in proc.stderr
    assert count(tmp_path)[0] == 3


def test_an_export_that_cannot_be_encoded_fails_clearly_and_leaves_no_file(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, 5038))
    file = tmp_path / "u.csv"
    file.write_text("name;phone\nОльга 🚗 Белова;89160000001\n", encoding="utf-8")
    cti("contacts", "import", str(file), "--config", config)
    out = tmp_path / "out.csv"
    proc = cti("contacts", "export", "--config", config, "--encoding", "cp1251", "-o", str(out), check=False)
    assert proc.returncode == 2 and "has no cp1251 form" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and not (tmp_path / "out.csv.partial").exists()
    cti("contacts", "export", "--config", config, "-o", str(out))
    assert "Ольга 🚗 Белова" in out.read_text(encoding="utf-8")
