"""Contacts from and to CSV, the way 1C and spreadsheets write them.

Reading: UTF-8 (with or without BOM) or Windows-1251, found by trying UTF-8 first; ``;``, ``,`` or tab as
separator, found by ``csv.Sniffer``; column names in English or Russian (``ФИО``, ``Телефон``, ``Госномер``
...), in any order. One row is a contact with at most one vehicle; rows with the same ``code`` (1C's
code), or else the same name and first phone, are one contact with several vehicles. Several phones in
one cell are separated by commas (or semicolons in a comma-separated file).

Every row is checked before anything is saved; :func:`read_contacts` returns the contacts and the
problems, each with its line number, and the CLI imports nothing while there is one.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TextIO

from .directory import CONTACT_KINDS, Contact, ContactKind, Vehicle
from .phones import normalize_number
from .plates import plate_key

#: Canonical column → the names it may have in a file (compared case-insensitively, spaces and dots ignored).
COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("code", "external_id", "код", "кодконтрагента"),
    "name": ("name", "фио", "наименование", "контрагент", "клиент", "имя"),
    "type": ("type", "kind", "тип", "вид", "видконтрагента"),
    "phones": ("phones", "phone", "телефон", "телефоны", "тел"),
    "email": ("email", "e-mail", "почта", "электроннаяпочта"),
    "notes": ("notes", "note", "комментарий", "примечание"),
    "make": ("make", "марка"),
    "model": ("model", "модель"),
    "year": ("year", "год", "годвыпуска"),
    "plate": ("plate", "госномер", "гоcномер", "номер", "регномер", "госрегзнак"),
    "vin": ("vin", "вин"),
}
EXPORT_COLUMNS = ("code", "name", "type", "phones", "email", "notes", "make", "model", "year", "plate", "vin")
KIND_NAMES: dict[str, ContactKind] = {
    "private": "private", "частное лицо": "private", "физлицо": "private", "физ. лицо": "private",
    "физическое лицо": "private", "corporate": "corporate", "юрлицо": "corporate", "юр. лицо": "corporate",
    "юридическое лицо": "corporate", "организация": "corporate", "partner": "partner", "партнер": "partner",
    "партнёр": "partner", "employee": "employee", "сотрудник": "employee",
}
_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")


class CsvError(Exception):
    """The file cannot be read as a contacts table at all (the message says why)."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    column: str
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}: {self.problem}"


@dataclass
class ReadResult:
    contacts: list[Contact] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    rows: int = 0
    encoding: str = "utf-8"
    delimiter: str = ";"

    @property
    def vehicles(self) -> int:
        return sum(len(c.vehicles) for c in self.contacts)


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The text and the encoding it was in: the one given, else UTF-8 if it decodes, else cp1251."""
    if encoding is not None:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise CsvError(f"not {encoding} text: {exc}") from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1251"), "cp1251"


def _fold(name: str) -> str:
    return re.sub(r"[\s._]", "", name.strip().lower().replace("ё", "е"))


def _header_map(header: list[str]) -> dict[str, int]:
    known = {_fold(alias): column for column, aliases in COLUMNS.items() for alias in aliases}
    out: dict[str, int] = {}
    for index, name in enumerate(header):
        column = known.get(_fold(name))
        if column is not None and column not in out:
            out[column] = index
    if "name" not in out:
        raise CsvError(f"no name column (expected one of: {', '.join(COLUMNS['name'])}); the header is {header}")
    return out


def read_contacts(data: bytes, *, encoding: str | None = None, delimiter: str | None = None,
                  region: str = "RU", on_row: Callable[[], None] | None = None) -> ReadResult:
    """Parse and check a whole file. ``on_row()`` is called once per line read (for a progress bar)."""
    text, used = decode(data, encoding)
    if not text.strip():
        raise CsvError("the file is empty")
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=";,\t").delimiter
        except csv.Error:
            delimiter = ";"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader)
    columns = _header_map(header)
    result = ReadResult(encoding=used, delimiter=delimiter)
    by_identity: dict[tuple[str, ...], int] = {}
    for cells in reader:
        if on_row is not None:
            on_row()
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        result.rows += 1
        contact, problems = _row(cells, columns, line, delimiter, region)
        if problems or contact is None:
            result.problems.extend(problems)
            continue
        identity = (("code", contact.external_id) if contact.external_id
                    else ("name", contact.name.lower(), normalize_number(contact.phones[0], region) or "")
                    if contact.phones else ("line", str(line)))
        index = by_identity.get(identity)
        if index is None:
            by_identity[identity] = len(result.contacts)
            result.contacts.append(contact)
        else:
            known = result.contacts[index]
            phones = known.phones + tuple(p for p in contact.phones if p not in known.phones)
            result.contacts[index] = replace(known, phones=phones, vehicles=known.vehicles + contact.vehicles)
    return result


def _row(cells: list[str], columns: dict[str, int], line: int, delimiter: str,
         region: str) -> tuple[Contact | None, list[RowProblem]]:
    def cell(column: str) -> str:
        index = columns.get(column)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    problems: list[RowProblem] = []
    name = " ".join(cell("name").split())
    if not name:
        problems.append(RowProblem(line, "name", "empty"))
    kind_text = cell("type").lower()
    kind: ContactKind = "private"
    if kind_text:
        if kind_text in KIND_NAMES:
            kind = KIND_NAMES[kind_text]
        else:
            known = ", ".join(CONTACT_KINDS)
            problems.append(RowProblem(line, "type", f"{cell('type')!r} is not one of {known} (or Russian names)"))
    phones: list[str] = []
    splitter = "[,;]" if delimiter != ";" else ","
    for number in (p.strip() for p in re.split(splitter, cell("phones"))):
        if not number:
            continue
        key = normalize_number(number, region)
        if key is None or not key.isdigit() or not 3 <= len(key) <= 15:
            problems.append(RowProblem(line, "phones", f"{number!r} is not a phone number"))
        else:
            phones.append(number)
    email = cell("email") or None
    if email is not None and ("@" not in email or " " in email):
        problems.append(RowProblem(line, "email", f"{email!r} is not an e-mail address"))
    vehicle = _vehicle(cell, line, problems)
    if problems:
        return None, problems
    return Contact(name=name, kind=kind, phones=tuple(phones), email=email, notes=cell("notes") or None,
                   external_id=cell("code") or None, vehicles=(vehicle,) if vehicle else ()), []


def _vehicle(cell: Callable[[str], str], line: int, problems: list[RowProblem]) -> Vehicle | None:
    make, model, year_text, plate, vin = (cell(c) for c in ("make", "model", "year", "plate", "vin"))
    if not any((make, model, year_text, plate, vin)):
        return None
    year: int | None = None
    if year_text:
        if not year_text.isdigit() or not 1900 <= int(year_text) <= 2100:
            problems.append(RowProblem(line, "year", f"{year_text!r} is not a year"))
        else:
            year = int(year_text)
    if plate and plate_key(plate) is None:
        problems.append(RowProblem(line, "plate", f"{plate!r} is not a licence plate"))
    if vin and not _VIN.match(vin.upper()):
        problems.append(RowProblem(line, "vin", f"{vin!r} is not a VIN (17 letters and digits, no I, O, Q)"))
    return Vehicle(make=make or None, model=model or None, year=year, plate=plate or None, vin=vin or None)


def write_contacts(contacts: Iterable[Contact], out: TextIO, *, delimiter: str = ";", header: bool = True) -> int:
    """One row per vehicle (a contact without one: one row), columns :data:`EXPORT_COLUMNS`; rows written.
    ``header=False`` continues a file written page by page."""
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    if header:
        writer.writerow(EXPORT_COLUMNS)
    rows = 0
    phone_separator = ", "
    for contact in contacts:
        base = [contact.external_id or "", contact.name, contact.kind, phone_separator.join(contact.phones),
                contact.email or "", contact.notes or ""]
        for vehicle in contact.vehicles or (None,):
            car = ["", "", "", "", ""] if vehicle is None else [
                vehicle.make or "", vehicle.model or "", str(vehicle.year or ""), vehicle.plate or "",
                vehicle.vin or ""]
            writer.writerow(base + car)
            rows += 1
    return rows
