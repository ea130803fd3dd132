"""What the browser tests and ``make_screenshots`` share: Chromium, logging in through the form, and the two
scenarios (an agent's pop and blind transfer; an admin closing a missed call), each of which can leave a
screenshot at the moment worth showing.

Chromium is Debian's (``/usr/bin/chromium``), driven through Playwright's async API; ``playwright install``
is never needed.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Browser, Locator, Page, ViewportSize, WebSocket, async_playwright, expect

from cti.directory import Contact, Vehicle
from tests.conftest import UNIT
from tests.panel_env import USERS, PanelEnv
from tests.store.builders import make_call, missed_for
from tests.traces import TRACES
from ui_bridge.numbers import display_number

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
#: How long a UI step may take (ms): the replay runs at real speed, so events take seconds to arrive.
STEP_MS = int(15_000 * UNIT)
expect.set_options(timeout=STEP_MS)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def t(name: str) -> str:
    """A selector by data-test attribute."""
    return f'[data-test="{name}"]'


@dataclass
class PageLog:
    """What the page did that a test may want to see: console errors, uncaught exceptions, WebSocket frames."""

    errors: list[str] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.on("websocket", self._socket)

    def _socket(self, ws: WebSocket) -> None:
        def received(payload: str | bytes) -> None:
            with suppress(ValueError):
                self.frames.append(json.loads(payload))

        ws.on("framereceived", received)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") == kind]

    def unexpected_errors(self) -> list[str]:
        """Console errors other than the 401s the login page's "am I logged in?" check causes by design."""
        return [e for e in self.errors if "401" not in e]


async def new_page(browser: Browser) -> tuple[Page, PageLog]:
    context = await browser.new_context(viewport=VIEWPORT, locale="ru-RU")
    page = await context.new_page()
    page.set_default_timeout(STEP_MS)
    log = PageLog()
    log.attach(page)
    return page, log


async def log_in(page: Page, env: PanelEnv, name: str, password: str | None = None) -> None:
    """Open the panel, get sent to the login form, log in there, and wait for the live connection."""
    await page.goto(env.url + "/")
    await expect(page).to_have_url(re.compile(re.escape(env.url) + r"/login(\?.*)?$"))
    await page.fill(t("login-name"), name)
    await page.fill(t("login-password"), password if password is not None else USERS[name][0])
    await page.click(t("login-submit"))
    await expect(page).to_have_url(env.url + "/")
    await expect(page.locator(f'{t("conn-status")}[data-status="online"]')).to_be_visible()


def customer_channel(trace: str, agent: str) -> str:
    """The channel that dialled ``agent`` in the recorded trace (``DialBegin`` … ``DestChannel: PJSIP/<agent>-``):
    the customer's, which a blind transfer must redirect."""
    with (TRACES / trace / "ami.jsonl").open(encoding="utf-8") as f:
        for line in f:
            item = json.loads(line)
            msg = item.get("msg")
            if not isinstance(msg, list):
                continue
            headers = dict(msg)
            if headers.get("Event") == "DialBegin" and headers.get("DestChannel", "").startswith(f"PJSIP/{agent}-"):
                return str(headers["Channel"])
    raise LookupError(f"no DialBegin to {agent} in {trace}")


# -- scenarios ---------------------------------------------------------------------------------------------------

TRANSFER_TRACE = "13-blind-transfer-redirect"
TRANSFER_CALLER = "79160001313"
ABANDON_TRACE = "08-queue-abandon"
ABANDON_CALLER = "79990001122"


#: The transfer trace's caller as the directory knows them (another spelling of TRANSFER_CALLER's number).
KNOWN_CALLER = Contact(name="Зайцева Марина Игоревна", phones=("8 (916) 000-13-13",), email="zaitseva@example.ru",
                       vehicles=(Vehicle(make="Kia", model="Rio", year=2018, plate="М 456 ОК 199"),))
#: Someone else, found by a plate typed with Latin letters ("E777KX").
OTHER_CLIENT = Contact(name="Петров Олег", phones=("+7 903 111-22-33",),
                       vehicles=(Vehicle(make="Lada", model="Vesta", plate="Е 777 КХ 77"),))


async def add_known_clients(env: PanelEnv) -> tuple[Contact, Contact]:
    """Put KNOWN_CALLER and OTHER_CLIENT in the directory (before the calls start)."""
    return await env.store.add_contact(KNOWN_CALLER), await env.store.add_contact(OTHER_CLIENT)


async def earlier_calls(env: PanelEnv, caller: str) -> None:
    """Two earlier calls of ``caller`` in the journal: one answered by 102 three days ago, and one missed
    yesterday that is still open in the register."""
    now = time.time()
    answered = make_call("1795000000.1", caller=caller, answered=True, answered_by="102",
                         started_at=now - 3 * 86400 - 5400)
    missed = make_call("1795000000.2", caller=caller, started_at=now - 86400 + 1800)
    env.store.stage_call(answered, None, ())
    env.store.stage_call(missed, missed_for(missed), ())
    await env.store.flush()


def shown(number: str) -> str:
    """A number as the panel shows it (``ui_bridge/numbers.py``, the default style): ``79160001313`` is
    ``+7 916 000-13-13``."""
    return display_number(number) or number


async def search_directory(page: Page, text: str) -> Locator:
    """Type ``text`` in the directory search and return the result rows."""
    await page.fill(t("directory-query"), text)
    await page.click(t("directory-search"))
    await expect(page.locator(t("directory-status"))).to_be_visible()
    return page.locator(t("directory-result"))


async def wait_for_pop(page: Page, caller: str, state: str = "talking") -> Locator:
    """The agent's pop for ``caller`` (as the PBX gives it; the pop shows it formatted), once it is in ``state``."""
    pop = page.locator(t("call-pop")).filter(has=page.locator(t("pop-caller"), has_text=shown(caller)))
    await expect(pop).to_have_count(1)
    await expect(pop).to_have_attribute("data-state", state)
    return pop


async def blind_transfer(page: Page, pop: Locator, target: str) -> None:
    await pop.locator(t("transfer-target")).fill(target)
    await pop.locator(t("transfer-mode")).select_option("blind")
    await pop.locator(t("transfer-submit")).click()
    await expect(page.locator(t("toast")).filter(has_text=f"переводится на {target}")).to_be_visible()


async def wait_for_missed(page: Page, caller: str) -> Locator:
    """The open register's row for ``caller`` (as the PBX gives it; the row shows it formatted)."""
    row = page.locator(t("missed-row")).filter(has_text=shown(caller))
    await expect(row).to_have_count(1)
    return row


async def close_missed(page: Page, row: Locator, comment: str) -> int:
    """Close a register row through the "close with comment" dialog; returns the entry's id."""
    missed_id = int(await row.get_attribute("data-id") or 0)
    await row.locator(t("missed-close")).click()
    dialog = page.locator(t("close-dialog"))
    await expect(dialog).to_be_visible()
    await dialog.locator(t("close-comment")).fill(comment)
    await dialog.locator(t("close-submit")).click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator(f'{t("missed-row")}[data-id="{missed_id}"]')).to_have_count(0)
    return missed_id
