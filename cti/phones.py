"""One phone-number normaliser for the whole project (journal, missed calls, call-back matching).

Russian numbers arrive in many forms: ``8 916 123-45-67``, ``+7 (916) 1234567``, ``79161234567``,
``9161234567``. They are all the same number, and a call-back to any form must close the missed
entry of any other. ``phonenumbers`` does the parsing; short internal extensions stay as they are;
withheld numbers (``anonymous``, empty, ``<unknown>``) have no key at all.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

WITHHELD = frozenset({"", "anonymous", "<unknown>", "unknown", "restricted", "private", "unavailable"})
_NON_DIGITS = re.compile(r"[^\d+]")
#: Numbers this short are internal extensions, not subscriber numbers.
MAX_EXTENSION_LENGTH = 6


def is_withheld(number: str | None) -> bool:
    return number is None or number.strip().lower() in WITHHELD


@lru_cache(maxsize=65536)
def normalize_number(number: str | None, region: str = "RU") -> str | None:
    """E.164 digits without ``+`` (``79161234567``), an extension as is, or None when withheld.

    Russian trunk prefix ``8`` is understood (``89161234567`` -> ``79161234567``), and so is a
    bare 10-digit national number when the region is RU.
    """
    if is_withheld(number):
        return None
    assert number is not None
    cleaned = _NON_DIGITS.sub("", number.strip())
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]  # the international prefix most of the world (and many phones) dial
    digits = cleaned.lstrip("+")
    if not digits:
        return None
    if len(digits) <= MAX_EXTENSION_LENGTH and not cleaned.startswith("+"):
        return digits
    if region == "RU":
        # Fast path for the forms a Russian PBX sends all day (phonenumbers costs ~50 µs a call):
        # +7XXXXXXXXXX / 7XXXXXXXXXX, the trunk prefix 8XXXXXXXXXX, and the bare national 10 digits.
        if len(digits) == 11 and digits[0] == "7":
            return digits
        if len(digits) == 11 and digits[0] == "8" and not cleaned.startswith("+"):
            return "7" + digits[1:]
        if len(digits) == 10 and digits[0] in "3489" and not cleaned.startswith("+"):
            return "7" + digits
    candidate = cleaned if cleaned.startswith("+") else digits
    try:
        parsed = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return digits
    if not phonenumbers.is_possible_number(parsed):
        # 11 digits starting with 7 written without '+' in region RU parse as national; retry as international.
        try:
            parsed = phonenumbers.parse("+" + digits, None)
        except phonenumbers.NumberParseException:
            return digits
        if not phonenumbers.is_possible_number(parsed):
            return digits
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).lstrip("+")
