"""Contacts from and to CSV, the way 1C and spreadsheets write them.

Reading: UTF-8 (with or without BOM) or Windows-1251, found by trying UTF-8 first; ``;``, ``,`` or tab as
separator, found by ``csv.Sniffer``; column names in English or Russian (``ФИО``, ``Телефон``, ``Госномер``
...), in any order. One row is a contact with at most one vehicle; rows with the same ``code`` (1C's
code), or else the same name and first phone, are one contact with several vehicles. Several phones in
one cell are separated by commas (or semicolons in a comma-separated file).

Every row is checked before anything is saved; :func:`read_contacts` returns the contacts and the
problems, each with its line number, and the CLI imports nothing while there is one. A file that is not
such a table at all (UTF-16, a byte that is no known encoding, a quote never closed) raises
:class:`CsvError` with the line to look at: a quote left open would otherwise swallow the rest of the file
into one name.

Writing goes through :func:`cti.safe_text.csv_cell` (no cell starts a spreadsheet formula), and reading
undoes it with :func:`cti.safe_text.csv_value`, so an export imported back is the same directory.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TextIO

from .directory import CONTACT_KINDS, Contact, ContactKind, Vehicle, read_year, valid_vin
from .phones import normalize_number
from .plates import plate_key
from .safe_text import csv_cell, csv_value

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
    """The text and the encoding it was in: the one given, else UTF-8 if it decodes, else cp1251.

    Raises:
        CsvError: UTF-16 (Excel's "Unicode text"; every ASCII letter has a NUL byte beside it, so it would
            read as one garbled column), NUL bytes, or a byte neither UTF-8 nor cp1251 has (0x98).
    """
    if encoding is not None:
        try:
            return data.decode(encoding), encoding
        except LookupError:
            raise CsvError(f"unknown encoding {encoding!r} (utf-8 or cp1251)") from None
        except UnicodeDecodeError as exc:
            raise CsvError(f"line {_line_at(data, exc.start)}: byte 0x{data[exc.start]:02x} is not {encoding} "
                           "text") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_utf16(data[:4096]):
        raise CsvError("the file is UTF-16: save as UTF-8 or Windows-1251 (in Excel: 'CSV UTF-8', not "
                       "'Unicode text')")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise CsvError(f"line {_line_at(data, nul)}: a NUL byte: this is not a text file")
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1251"), "cp1251"
    except UnicodeDecodeError as exc:
        raise CsvError(f"line {_line_at(data, exc.start)}: byte 0x{data[exc.start]:02x} is neither UTF-8 nor "
                       "Windows-1251 text: save the file as UTF-8 (or give --encoding)") from None


def _looks_utf16(head: bytes) -> bool:
    """UTF-16 without a byte-order mark: NUL bytes (the high byte of every digit, separator and Latin
    letter; a Cyrillic letter has none), nearly all at even or nearly all at odd offsets. A stray NUL is not."""
    even, odd = head[0::2].count(0), head[1::2].count(0)
    return (even + odd) * 16 >= len(head) and max(even, odd) >= 0.9 * (even + odd)


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


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
    if not valid_delimiter(delimiter):
        raise CsvError(f"the separator must be one character other than a quote or a line break, not {delimiter!r}")
    rows = _records(text, delimiter)
    _, header = next(rows)
    columns = _header_map(header)
    result = ReadResult(encoding=used, delimiter=delimiter)
    by_identity: dict[tuple[str, ...], int] = {}
    for line, cells in rows:
        if on_row is not None:
            on_row()
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


def valid_delimiter(delimiter: str) -> bool:
    """Whether the csv module can split on it without confusing it with quoting or line ends."""
    return len(delimiter) == 1 and delimiter not in '"\r\n\x00'


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """The file's records, each with the line it starts on.

    The reader is strict: a quote never closed is an error at the end of the file (or as soon as the value
    it opened outgrows the csv module's field limit) instead of a last record holding the rest of the
    file; the error names the line where that record, and so the quote, began.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    try:
        for cells in reader:
            yield start, cells
            start = reader.line_num + 1
    except csv.Error as exc:
        if "end of data" in str(exc) or "field limit" in str(exc):
            raise CsvError(f"line {start}: a quote opened here is never closed (the rest of the file would be one "
                           'value): close it, or write a quote inside a value as ""') from None
        raise CsvError(f"line {start}: {exc} (a quote inside a quoted value is written as \"\")") from None


def _row(cells: list[str], columns: dict[str, int], line: int, delimiter: str,
         region: str) -> tuple[Contact | None, list[RowProblem]]:
    def cell(column: str) -> str:
        index = columns.get(column)
        return csv_value(cells[index]).strip() if index is not None and index < len(cells) else ""

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
        year = read_year(year_text)
        if year is None:
            problems.append(RowProblem(line, "year", f"{year_text[:40]!r} is not a year"))
    if plate and plate_key(plate) is None:
        problems.append(RowProblem(line, "plate", f"{plate!r} is not a licence plate"))
    if vin and not valid_vin(vin):
        problems.append(RowProblem(line, "vin", f"{vin!r} is not a VIN (17 letters and digits, no I, O, Q)"))
    return Vehicle(make=make or None, model=model or None, year=year, plate=plate or None, vin=vin or None)


def write_contacts(contacts: Iterable[Contact], out: TextIO, *, delimiter: str = ";", header: bool = True) -> int:
    """One row per vehicle (a contact without one: one row), columns :data:`EXPORT_COLUMNS`; rows written.
    ``header=False`` continues a file written page by page. No cell starts a spreadsheet formula
    (:func:`cti.safe_text.csv_cell`); :func:`read_contacts` reads the values back as they were."""
    if not valid_delimiter(delimiter):
        raise ValueError(f"not a usable separator: {delimiter!r}")
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
            writer.writerow([csv_cell(value) for value in base + car])
            rows += 1
    return rows
