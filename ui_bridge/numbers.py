"""Phone numbers as people read them: ``+7 916 123-45-67`` or ``8 (916) 123-45-67``, per ``[directory] number_style``.

Numbers are stored, matched and sent exactly as before (``caller``, ``called``, a contact's ``phones``: as the PBX
or the directory gave them; a card's ``number`` normalised by ``cti/phones.py``); the messages and the API rows
that show a number carry its display form next to it (``caller_display``, ``number_display``...), built here, in
one place, so the panel never formats a number itself and every view shows a number the same way.

* ``international``: ``+7 916 123-45-67``, ``+7 495 123-45-67``, ``+1 202-555-0123``;
* ``national``: numbers of ``[pbx] default_region`` as dialled there (``8 (916) 123-45-67``,
  ``8 (495) 123-45-67``), foreign ones still international (``+1 202-555-0123``).

An internal extension (``101``), a withheld number (``anonymous``) and whatever is not a phone number stay as
given: a display form never loses what the PBX said.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

import phonenumbers

from cti.phones import MAX_EXTENSION_LENGTH, is_withheld, normalize_number

NumberStyle = Literal["international", "national"]
NUMBER_STYLES: tuple[NumberStyle, ...] = ("international", "national")
#: What a written phone number may hold: digits, a leading ``+``, spaces, brackets, dashes and dots. Anything
#: else (``доб. 5``, ``sip:101@pbx``) is not only a number: shown as given.
_PHONE_TEXT = re.compile(r"\+?[0-9 ()\-.]+")


@lru_cache(maxsize=65536)  # one per number seen, on the panel's hot path: formatting costs ~30 µs
def display_number(number: str | None, region: str = "RU", style: NumberStyle = "international") -> str | None:
    """The number as people read it in ``style`` (see the module's docstring); None for None."""
    if number is None or is_withheld(number):
        return number
    if not _PHONE_TEXT.fullmatch(number.strip()):
        return number
    key = normalize_number(number, region)
    if key is None or not key.isdigit() or (len(key) <= MAX_EXTENSION_LENGTH and not number.strip().startswith("+")):
        return number  # an extension, or no digits at all
    try:
        parsed = phonenumbers.parse("+" + key, None)
    except phonenumbers.NumberParseException:
        return number
    if not phonenumbers.is_possible_number(parsed):
        return number
    national = style == "national" and phonenumbers.region_code_for_number(parsed) == region
    return phonenumbers.format_number(
        parsed, phonenumbers.PhoneNumberFormat.NATIONAL if national else phonenumbers.PhoneNumberFormat.INTERNATIONAL)


class NumberDisplay:
    """:func:`display_number` with the site's region and style, for the builders of messages and rows."""

    __slots__ = ("region", "style")

    def __init__(self, region: str = "RU", style: NumberStyle = "international") -> None:
        self.region = region
        self.style: NumberStyle = style

    def __call__(self, number: str | None) -> str | None:
        return display_number(number, self.region, self.style)

    def all(self, numbers: list[str] | tuple[str, ...]) -> list[str]:
        """Each of ``numbers`` shown (a contact's phones): as many as given, in their order."""
        return [display_number(n, self.region, self.style) or n for n in numbers]
