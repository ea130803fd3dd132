"""The daemon's log: its own lines, not one per HTTP request httpx sends (a CRM push sends one per call event)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from companion.cli.loading import setup_logging
from companion.cli.options import LogLevel


@pytest.fixture(autouse=True)
def _logging_put_back() -> Iterator[None]:
    root, httpx = logging.getLogger(), logging.getLogger("httpx")
    handlers, level, httpx_level = root.handlers[:], root.level, httpx.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    httpx.setLevel(httpx_level)


def test_httpx_requests_are_not_logged_at_info_but_are_at_debug() -> None:
    root = logging.getLogger()
    root.handlers[:] = []  # basicConfig configures an unconfigured root only
    setup_logging(LogLevel.info)
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert logging.getLogger("companion.crm.sender").isEnabledFor(logging.INFO)
    root.handlers[:] = []
    logging.getLogger("httpx").setLevel(logging.NOTSET)
    setup_logging(LogLevel.debug)
    assert logging.getLogger("httpx").isEnabledFor(logging.INFO)
