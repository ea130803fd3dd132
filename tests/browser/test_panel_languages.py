"""The panel in Russian and in English, in a real browser: what a user reads is in one language only.

A centre whose default is English (``[http] language = "en"``): the login page opens in English, its RU / EN switch
and the top bar's switch change the language and the browser keeps the choice. The agent's view (a pop with the
caller's card, the directory, recent calls) and the admin's (the supervisor's figures, the call board, the agents,
the register, the journal) and the wallboard are read as a user would: every text on the page, with the titles,
placeholders and labels of its elements. Data is data (a caller's name, a plate, a queue's name: whatever the
server sent under a data field is taken out first); what is left must hold no Cyrillic in English and no Latin
word in Russian but the product's name and the switch's own RU / EN.
"""

from __future__ import annotations

import asyncio
import re
from contextlib import suppress
from typing import Any

from playwright.async_api import Browser, Page, Response, expect

from tests.browser.panel_browser import (
    TRANSFER_CALLER,
    TRANSFER_TRACE,
    PageLog,
    add_known_clients,
    earlier_calls,
    new_page,
    t,
    wait_for_pop,
)
from tests.daemon.conftest import UNIT, leg_event
from tests.panel_env import USERS, PanelEnv, panel_env

CYRILLIC = re.compile(r"[А-Яа-яЁё]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
#: Latin words a Russian page may show: the product's name, the language switch, and the names of a file format
#: and a kind of system Russian has no other word for («Скачать CSV», «CRM» over the CRM push's block).
RUSSIAN_MAY_SHOW = {"CTI", "Companion", "RU", "EN", "CSV", "CRM"}
#: The fields of the server's messages and answers that carry data (names, numbers, queues, notes), not words of
#: the panel: their values may show in either language as they are.
DATA_KEYS = {
    "name", "display_name", "caller_name", "by_name", "contact_name", "queue", "queues", "paused_queues", "email",
    "notes", "plate", "make", "model", "vin", "comment", "by", "acknowledged_by", "subject", "caller", "called",
    "caller_display", "called_display", "number", "number_display", "phones", "phones_display", "answered_by",
    "agents_answered", "agents_rung", "transferred_to", "extension", "pbx", "id", "linkedid",
}
#: Everything a user reads: text (not of scripts), the document's title, and the titles, placeholders and labels of
#: elements (a toast's title is the server's text for whoever debugs, on purpose: not read here).
READ_PAGE = """() => {
  const out = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (parent && parent.closest("script, style, noscript")) continue;
    if (node.textContent.trim()) out.push(node.textContent.trim());
  }
  for (const el of document.querySelectorAll("[title], [placeholder], [aria-label]")) {
    if (el.closest('[data-test="toast"]')) continue;
    for (const attr of ["title", "placeholder", "aria-label"]) {
      const value = el.getAttribute(attr);
      if (value && value.trim()) out.push(value.trim());
    }
  }
  return out;
}"""


class Data:
    """The data values the server sent this page (WebSocket frames, API answers), to take out of what it shows."""

    def __init__(self, log: PageLog) -> None:
        self.log = log
        self.answers: list[Any] = []
        #: Answers whose body is still being read: on a loaded machine the page may show an answer's data before
        #: its body reaches this side, and that data must not be taken for the panel's own words.
        self.reading = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def attach(self, page: Page) -> None:
        async def answered(response: Response) -> None:
            if "/api/" in response.url and "json" in (response.headers.get("content-type") or ""):
                self.reading += 1
                self.idle.clear()
                try:
                    with suppress(Exception):  # a body already gone (a redirect, a closed page): no data in it
                        self.answers.append(await response.json())
                finally:
                    self.reading -= 1
                    if not self.reading:
                        self.idle.set()

        page.on("response", answered)

    async def settled(self) -> None:
        async with asyncio.timeout(10 * UNIT):
            await self.idle.wait()

    def values(self) -> list[str]:
        found: set[str] = {"CTI Companion"}
        for user in USERS.values():
            if user[3]:
                found.add(user[3])

        def walk(item: Any, data: bool = False) -> None:
            if isinstance(item, dict):
                for key, value in item.items():
                    walk(value, data or key in DATA_KEYS)
            elif isinstance(item, list):
                for value in item:
                    walk(value, data)
            elif data and isinstance(item, str) and item.strip():
                found.add(item.strip())

        walk(self.log.frames)
        walk(self.answers)
        return sorted(found, key=len, reverse=True)  # the longest first: "Анна Смирнова" before "Анна"


async def interface_texts(page: Page, data: Data) -> list[str]:
    """What the page shows, with the data taken out: only the panel's own words are left."""
    shown = await page.evaluate(READ_PAGE)
    await data.settled()  # the answers whose data is on the page are all read
    values = data.values()
    out = []
    for text in shown:
        for value in values:
            text = text.replace(value, " ")
        out.append(text)
    return out


async def assert_english(page: Page, data: Data, where: str) -> None:
    russian = [text for text in await interface_texts(page, data) if CYRILLIC.search(text)]
    assert not russian, f"{where}: Russian in the English panel: {russian}"


async def assert_russian(page: Page, data: Data, where: str) -> None:
    latin = [text for text in await interface_texts(page, data)
             if set(LATIN_WORD.findall(text)) - RUSSIAN_MAY_SHOW]
    assert not latin, f"{where}: Latin words in the Russian panel: {latin}"


async def open_page(browser: Browser) -> tuple[Page, PageLog, Data]:
    page, log = await new_page(browser)  # the browser itself prefers Russian (ru-RU)
    data = Data(log)
    data.attach(page)
    return page, log, data


async def log_in_as(page: Page, env: PanelEnv, name: str) -> None:
    await page.fill(t("login-name"), name)
    await page.fill(t("login-password"), USERS[name][0])
    await page.click(t("login-submit"))
    await expect(page).to_have_url(env.url + "/")
    await expect(page.locator(f'{t("conn-status")}[data-status="online"]')).to_be_visible()


async def test_agent_and_admin_views_speak_one_language_each(browser: Browser) -> None:
    async with panel_env([TRANSFER_TRACE], http_extra='language = "en"') as env:
        await add_known_clients(env)
        await earlier_calls(env, TRANSFER_CALLER)

        # The agent: the centre's default is English, on the login page too.
        agent, agent_log, agent_data = await open_page(browser)
        await agent.goto(env.url + "/")
        await expect(agent).to_have_url(re.compile(re.escape(env.url) + r"/login$"))
        await expect(agent.locator(t("login-submit"))).to_have_text("Log in")
        await expect(agent.locator("html")).to_have_attribute("lang", "en")
        await assert_english(agent, agent_data, "the login page")
        await log_in_as(agent, env, "anna")
        await env.serve_through(leg_event("Newstate", "PJSIP/101-", "Ringing"), "anna's phone ringing")
        pop = await wait_for_pop(agent, TRANSFER_CALLER, state="ringing")
        await expect(pop.locator(t("call-state"))).to_have_text("Incoming call")
        await expect(pop.locator(t("card-status"))).to_have_text("regular")
        await expect(agent.locator(t("card-last-call"))).to_have_count(2)
        await expect(agent.locator(t("recent-table"))).to_be_visible()
        await assert_english(agent, agent_data, "the agent's view")

        # The admin: RU on the login page, kept for the panel.
        admin, admin_log, admin_data = await open_page(browser)
        await admin.goto(env.url + "/login")
        await admin.click(t("lang-ru"))
        await expect(admin.locator(t("login-submit"))).to_have_text("Войти")
        await assert_russian(admin, admin_data, "the login page")
        await log_in_as(admin, env, "admin")
        await expect(admin.locator(t("board-row"))).to_have_count(1)
        await expect(admin.locator(t("missed-row"))).to_have_count(1)
        await expect(admin.locator(t("journal-row")).first).to_be_visible()
        await expect(admin.locator(t("sv-pbx"))).to_have_count(1)
        await expect(admin.locator(t("logout"))).to_have_text("Выйти")
        await assert_russian(admin, admin_data, "the admin's view")

        # The agent switches to Russian in the top bar; the admin to English.
        await agent.click(t("lang-ru"))
        pop = await wait_for_pop(agent, TRANSFER_CALLER, state="ringing")
        await expect(pop.locator(t("call-state"))).to_have_text("Входящий звонок")
        await expect(agent.locator(t("card-last-call"))).to_have_count(2)
        await expect(agent.locator(t("recent-table"))).to_be_visible()
        await assert_russian(agent, agent_data, "the agent's view")

        await admin.click(t("lang-en"))
        await expect(admin.locator(t("logout"))).to_have_text("Log out")
        await expect(admin.locator(f'{t("conn-status")}[data-status="online"]')).to_be_visible()
        await expect(admin.locator(t("board-row"))).to_have_count(1)
        await expect(admin.locator(t("missed-row"))).to_have_count(1)
        await expect(admin.locator(t("journal-row")).first).to_be_visible()
        await expect(admin.locator(t("sv-pbx"))).to_have_count(1)
        await assert_english(admin, admin_data, "the admin's view")

        # The wallboard follows the choice too; ?lang= (a link) overrides it for one page.
        await admin.goto(env.url + "/wallboard")
        await expect(admin.locator(t("wb-pbx"))).to_have_count(1)
        await assert_english(admin, admin_data, "the wallboard")
        await admin.goto(env.url + "/wallboard?lang=ru")
        await expect(admin.locator(t("wb-pbx"))).to_have_count(1)
        await assert_russian(admin, admin_data, "the wallboard")

        assert not agent_log.unexpected_errors() and not admin_log.unexpected_errors()
