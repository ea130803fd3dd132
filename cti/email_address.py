"""An e-mail address typed by a person or sent by another system, checked before it is kept or written to.

Why a check of our own and not a looser one: an address is put into a mail's ``To:`` header by the mailer
(``companion/mailer.py``). A CR or LF in it would start a header of the sender's choosing (``Bcc:``); a second ``@``
or a comma would send the mail somewhere else too. So the check is strict: one ``@``; a local part of the
RFC 5322 *dot-atom* (letters, digits and ``!#$%&'*+/=?^_`{|}~-``, dots between them, no quoted strings, no
comments); a domain of at least two labels of letters, digits and hyphens (no hyphen at a label's ends; letters of
any script, as ``почта.рф``, checked through their IDNA form); no spaces, no control characters, no brackets. The
lengths are SMTP's (RFC 5321 4.5.3.1: 64 for the local part, 255 for the domain, 254 in all). What passes is what
an SMTP server takes in ``RCPT TO`` without quoting.
"""

from __future__ import annotations

import re

#: RFC 5322 3.2.3 ``atext``, and the dot-atom made of it (no leading, trailing or doubled dot).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
#: A domain label in its ASCII (IDNA) form.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
MAX_LENGTH = 254
MAX_LOCAL = 64


class BadEmail(ValueError):
    """The text is not an address this program sends to; the message says why (in English, for logs and the CLI)."""


def check_email(text: str) -> str:
    """The address in ``text`` (spaces around it dropped, the domain in lower case), or ``BadEmail``."""
    address = text.strip()
    if not address:
        raise BadEmail("an e-mail address is empty")
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c.isspace() for c in address):
        raise BadEmail("an e-mail address has no spaces, line breaks or control characters")
    if address.count("@") != 1:
        raise BadEmail(f"{address!r} is not an e-mail address: it needs exactly one @")
    local, domain = address.split("@")
    if not local or len(local) > MAX_LOCAL or not _LOCAL.fullmatch(local):
        raise BadEmail(f"{address!r}: the part before @ is 1-{MAX_LOCAL} Latin letters, digits or "
                       "!#$%&'*+/=?^_`{|}~- with single dots between them")
    domain = domain.lower()
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise BadEmail(f"{address!r}: the part after @ is not a domain name") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise BadEmail(f"{address!r}: the part after @ must be a domain name such as example.ru")
    if len(ascii_domain) > 255 or len(local) + 1 + len(ascii_domain) > MAX_LENGTH:
        raise BadEmail(f"{address!r} is longer than an e-mail address may be ({MAX_LENGTH} characters)")
    return f"{local}@{domain}"
