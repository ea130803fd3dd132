"""A warning repeated on every request writes one line a minute, and the next line says how many it held back."""

from __future__ import annotations

import logging

import pytest

from companion.throttled_warning import ThrottledWarning


def test_held_back_lines_are_counted_in_the_next_one(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    log = logging.getLogger("tests.throttled")
    warn = ThrottledWarning(log, "failure(s)", interval=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="tests.throttled"):
        try:
            raise ConnectionError("refused")
        except ConnectionError:
            warn("CRM %s down: %s", "bitrix24", "refused", exc_info=True)
        for _ in range(41):
            now[0] += 1
            warn("CRM %s down: %s", "bitrix24", "refused")
        now[0] += 60
        warn("CRM %s down: %s", "bitrix24", "timed out")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["CRM bitrix24 down: refused",
                     "CRM bitrix24 down: timed out (41 more failure(s) not logged since the last line)"]
    assert caplog.records[0].exc_info and not caplog.records[1].exc_info, "the traceback once, with the first line"
    assert warn.unlogged == 0


def test_a_percent_sign_in_a_value_is_logged_as_it_is(caplog: pytest.LogCaptureFixture) -> None:
    warn = ThrottledWarning(logging.getLogger("tests.throttled"), "problem(s)")
    with caplog.at_level(logging.WARNING, logger="tests.throttled"):
        warn("subscriber %s failed", "crm-%s-100%")
    assert [r.getMessage() for r in caplog.records] == ["subscriber crm-%s-100% failed"]
