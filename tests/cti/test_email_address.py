"""cti.email_address: what is kept as an address, and what could add a header or a recipient to a mail."""

from __future__ import annotations

import pytest

from cti.email_address import BadEmail, check_email


@pytest.mark.parametrize(("typed", "kept"), [
    ("anna@example.ru", "anna@example.ru"),
    ("  Anna.Smirnova+complaints@Example.RU ", "Anna.Smirnova+complaints@example.ru"),
    ("o'neil@mail.co.uk", "o'neil@mail.co.uk"),
    ("service@почта.рф", "service@почта.рф"),
    ("Service@ПОЧТА.РФ", "Service@почта.рф"),
    ("x@sub-domain.example-1.com", "x@sub-domain.example-1.com"),
])
def test_an_address_is_kept_with_its_domain_in_lower_case(typed: str, kept: str) -> None:
    assert check_email(typed) == kept


@pytest.mark.parametrize(("typed", "says"), [
    ("", "empty"),
    ("anna@example.ru\r\nBcc: all@example.ru", "line breaks"),
    ("anna@example.ru\nX-Evil: 1", "line breaks"),
    ("anna smirnova@example.ru", "no spaces"),
    ("anna@example.ru,boss@example.ru", "exactly one @"),
    ("anna@example.ru, boss@example.ru", "no spaces"),
    ("anna", "exactly one @"),
    ("a@b@example.ru", "exactly one @"),
    ("@example.ru", "before @"),
    (".anna@example.ru", "before @"),
    ("an..na@example.ru", "before @"),
    ('"anna"@example.ru', "before @"),
    ("anna<boss@example.ru>@example.ru", "exactly one @"),
    ("анна@example.ru", "before @"),
    ("anna@localhost", "domain name"),
    ("anna@-example.ru", "domain name"),
    ("anna@example..ru", "domain name"),
    ("anna@192.168.0.1", "domain name"),
    ("anna@[127.0.0.1]", "domain name"),
    ("anna@exa_mple.ru", "domain name"),
    ("a" * 65 + "@example.ru", "before @"),
    ("anna@" + "a" * 250 + ".ru", "domain"),
])
def test_what_could_change_where_a_mail_goes_is_refused(typed: str, says: str) -> None:
    with pytest.raises(BadEmail, match=says):
        check_email(typed)
