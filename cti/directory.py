"""The client directory's domain: contacts, vehicles, what a search box query means, and the caller card.

Pure: no I/O and no clock. The store keeps the rows and answers indexed lookups with the keys computed
here (``name_key``) and in ``cti.phones`` / ``cti.plates``; :func:`build_card` turns what it found into
the card an agent sees when the phone rings. What a VIN and a model year may be is decided here once, for
every edge that takes them (the CSV import, the JSON API, a CRM's answer).

"Repeat" means a previous call from or to the number within ``repeat_days`` (default 180); anyone else
is "new", whether the directory knows them or not; a withheld number is "unknown".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .makes import makes_meant
from .phones import is_withheld, normalize_number
from .plates import plate_key
from .records import CallRecord, MissedEntry

ContactKind = Literal["private", "corporate", "partner", "employee"]
CONTACT_KINDS: tuple[ContactKind, ...] = ("private", "corporate", "partner", "employee")
CardStatus = Literal["unknown", "new", "repeat"]


def name_key(name: str) -> str:
    """Folded for prefix search: lower case, ё→е, one space between words (``Пётр`` finds ``петр``)."""
    return " ".join(name.lower().replace("ё", "е").split())


# -- what a vehicle's VIN and model year may be (the CSV import and the JSON API both check these) -------------

#: A VIN: 17 letters and digits, without I, O and Q (ISO 3779), compared in upper case.
VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}", re.ASCII)
#: The model years the directory accepts.
FIRST_YEAR, LAST_YEAR = 1900, 2100
_YEAR_TEXT = re.compile(r"[0-9]{1,4}", re.ASCII)


def valid_vin(text: str) -> bool:
    """Whether ``text`` is a VIN, in either case (``xw8zzz61zbg123456`` is one)."""
    return VIN.fullmatch(text.upper()) is not None


def valid_year(year: int) -> bool:
    return FIRST_YEAR <= year <= LAST_YEAR


def read_year(text: str) -> int | None:
    """The model year written in ``text`` (ASCII digits, within the bounds), else None.

    ASCII digits only: ``str.isdigit`` also says yes to ``²``, which ``int`` then refuses, and to thousands of
    digits, which ``int`` refuses as too long.
    """
    if not _YEAR_TEXT.fullmatch(text):
        return None
    year = int(text)
    return year if valid_year(year) else None


@dataclass(frozen=True, slots=True)
class Vehicle:
    make: str | None = None
    model: str | None = None
    year: int | None = None
    plate: str | None = None
    vin: str | None = None
    id: int | None = None
    contact_id: int | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    name: str
    kind: ContactKind = "private"
    phones: tuple[str, ...] = ()
    email: str | None = None
    notes: str | None = None
    external_id: str | None = None
    vehicles: tuple[Vehicle, ...] = ()
    id: int | None = None


# -- what a search box query means -----------------------------------------------------------------------

QueryKind = Literal["number", "plate", "plate_number", "name"]
_DIGITS_ONLY = re.compile(r"^\+?[\d\s()\-]+$")


@dataclass(frozen=True, slots=True)
class Query:
    """What a search box query means. A ``name`` query finds, in this order: the names that start with ``key``
    (surname first), the names with a word that starts with it (``ромашка`` finds «ООО Ромашка»), then the
    owners of a car of one of ``makes`` (the car makes the text spells: ``тойота``, ``toyota``, ``ещнщеф``).
    A make is also a name query because a make can be a name too («Лада», «Форд»)."""

    kind: QueryKind
    key: str
    makes: tuple[str, ...] = ()


def parse_query(text: str, region: str = "RU") -> Query | None:
    """One search box for everything: ``8 916 123-45-67`` is a number, ``123`` the digits of a plate,
    ``а123вс`` / ``A123BC77`` a plate, anything else a name or a word of one, and a car make when it spells
    one in Russian or English, in either keyboard layout (``cti/makes.py``)."""
    text = text.strip()
    if not text:
        return None
    if _DIGITS_ONLY.match(text):
        digits = re.sub(r"\D", "", text)
        if len(digits) == 3:
            return Query("plate_number", digits)
        key = normalize_number(text, region)
        return Query("number", key) if key else None
    if any(ch.isdigit() for ch in text):
        plate = plate_key(text)
        if plate is not None:
            return Query("plate", plate.full)
    key = name_key(text)
    return Query("name", key, makes_meant(text)) if key else None


# -- the caller card --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Card:
    number: str | None  # normalised caller number; None when withheld
    withheld: bool
    status: CardStatus
    contacts: tuple[Contact, ...] = ()  # most often one; several when a number is shared (a family car)
    last_calls: tuple[CallRecord, ...] = ()
    open_missed: tuple[MissedEntry, ...] = ()
    sources: tuple[str, ...] = field(default=())  # "local", "crm"

    @property
    def contact(self) -> Contact | None:
        return self.contacts[0] if self.contacts else None


def is_repeat(earlier: Iterable[float], now: float, repeat_days: float) -> bool:
    """"Repeat": something earlier (a call from or to the number; in the contact register, also an earlier contact
    of the client) at most ``repeat_days`` before ``now``. The caller card and the contact register both ask this."""
    return any(now - at <= repeat_days * 86400 for at in earlier)


def build_card(number: str | None, *, region: str, contacts: Sequence[Contact], last_calls: Sequence[CallRecord],
               open_missed: Sequence[MissedEntry], now: float, repeat_days: float,
               current_linkedid: str | None = None, sources: Sequence[str] = ("local",)) -> Card:
    """The card for a ringing call: who it is, their cars, their last calls and open missed calls."""
    if is_withheld(number):
        return Card(number=None, withheld=True, status="unknown")
    earlier = [c for c in last_calls if c.linkedid != current_linkedid]
    status: CardStatus = "repeat" if is_repeat((c.started_at for c in earlier), now, repeat_days) else "new"
    return Card(number=normalize_number(number, region), withheld=False, status=status,
                contacts=tuple(contacts), last_calls=tuple(earlier), open_missed=tuple(open_missed),
                sources=tuple(sources))
