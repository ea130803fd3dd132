"""Browser tests: a real headless Chromium (Debian's) drives the panel against the whole system on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.browser.panel_browser import CHROMIUM, chromium


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():  # noqa: ASYNC240 - one stat before the test starts
        pytest.fail(f"{CHROMIUM} is not installed: run .ci/setup-debian (Debian's chromium package)")
    async with chromium() as b:
        yield b

