"""Russian licence plates, normalised so that however an agent types what a customer says, it matches.

A plate such as ``А 123 ВС 77`` (series letter, three digits, two series letters, region) is written with
the 12 Cyrillic letters that look like Latin ones: А В Е К М Н О Р С Т У Х ↔ A B E K M H O P C T Y X.
Agents type them in either alphabet, with spaces, dashes, ``RUS`` or lower case. The key keeps Latin
letters and digits only, so ``а123вс 777``, ``A123BC777`` and ``А-123-ВС-777 RUS`` are the same plate.

The region is optional in a query: :func:`plate_key` splits a standard plate into its ``base``
(``A123BC``) and ``region`` (``777``). The three digits an agent usually hears first are the ``number``
(``123``), for the partial search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Cyrillic letters allowed on Russian plates and the Latin letters they look like.
CYRILLIC_TO_LATIN = str.maketrans("АВЕКМНОРСТУХ", "ABEKMHOPCTYX")
PLATE_LETTERS = "ABEKMHOPCTYX"
_SEPARATORS = re.compile(r"[\s\-_.·/]+")
_STANDARD = re.compile(rf"^([{PLATE_LETTERS}])(\d{{3}})([{PLATE_LETTERS}]{{2}})(\d{{2,3}})?$")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class PlateKey:
    """``full`` is what two plates are compared by; ``base`` and ``number`` serve partial queries."""

    full: str  # A123BC777, or the cleaned text of a non-standard plate
    base: str  # A123BC (no region); for a non-standard plate the same as ``full``
    region: str | None  # 777, or None when not given
    number: str | None  # the three digits, 123


def clean_plate(text: str) -> str:
    """Upper case, Latin look-alikes, no separators, no trailing ``RUS``."""
    cleaned = _SEPARATORS.sub("", text.strip().upper()).translate(CYRILLIC_TO_LATIN)
    if cleaned.endswith("RUS"):
        cleaned = cleaned[:-3]
    return cleaned


def plate_key(text: str) -> PlateKey | None:
    """The key of a plate as typed; None when nothing plate-like is left."""
    cleaned = clean_plate(text)
    if not cleaned or not cleaned.isalnum():
        return None
    match = _STANDARD.match(cleaned)
    if match is None:
        # Other formats (taxi АВ 123 77, trailers, motorcycles) keep their text; their number is the
        # first three digits of the first run of at least three.
        three = next((d[:3] for d in _DIGITS.findall(cleaned) if len(d) >= 3), None)
        return PlateKey(full=cleaned, base=cleaned, region=None, number=three)
    letter, number, series, region = match.groups()
    base = f"{letter}{number}{series}"
    return PlateKey(full=base + (region or ""), base=base, region=region, number=number)


def display_plate(text: str) -> str:
    """The plate as printed on it, in Cyrillic: ``А 123 ВС 777``."""
    key = plate_key(text)
    if key is None:
        return text.strip()
    match = _STANDARD.match(key.full)
    if match is None:
        return key.full
    letter, number, series, region = match.groups()
    to_cyrillic = str.maketrans(PLATE_LETTERS, "АВЕКМНОРСТУХ")
    shown = f"{letter} {number} {series}".translate(to_cyrillic)
    return f"{shown} {region}" if region else shown
