"""The caller card in the agent's pop, the directory search and "new client in one click", in a real browser.

The caller of the transfer trace (79160001313) is in the directory as "8 (916) 000-13-13": the pop shows
who it is and their car; the agent finds another client by a plate typed in Latin letters and attaches
them to the call; a caller the directory does not know becomes a client from the pop.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Locator, Page, expect

from tests.browser.panel_browser import (
    KNOWN_CALLER,
    OTHER_CLIENT,
    TRANSFER_CALLER,
    TRANSFER_TRACE,
    PageLog,
    add_known_clients,
    earlier_calls,
    log_in,
    new_page,
    search_directory,
    shown,
    t,
    wait_for_pop,
)
from tests.daemon.conftest import leg_event
from tests.panel_env import PanelEnv, panel_env


async def anna_talking(env: PanelEnv, browser: Browser) -> tuple[Page, PageLog, Locator, str]:
    """anna logged in, the transfer trace's call ringing on her phone and the PBX held there (the call stays up)."""
    page, log = await new_page(browser)
    await log_in(page, env, "anna")
    # Held before the recording's own transfer takes the call away from anna.
    await env.serve_through(leg_event("Newstate", "PJSIP/101-", "Ringing"), "anna's phone ringing")
    pop = await wait_for_pop(page, TRANSFER_CALLER, state="ringing")
    linkedid = await pop.get_attribute("data-linkedid")
    assert linkedid
    return page, log, pop, linkedid


async def test_pop_shows_the_known_caller_and_attaches_a_client_found_by_a_latin_plate(
        browser: Browser, tmp_path: Path) -> None:
    async with panel_env([TRANSFER_TRACE]) as env:
        _zaitseva, petrov = await add_known_clients(env)
        await earlier_calls(env, TRANSFER_CALLER)
        page, log, pop, linkedid = await anna_talking(env, browser)

        # The card came with call.ringing: the directory's name, the car with its plate as stored (Cyrillic),
        # her earlier calls (newest first) and the missed one nobody has called back yet.
        await expect(pop.locator(t("card-name"))).to_have_text(KNOWN_CALLER.name)
        await expect(pop.locator(t("card-status"))).to_have_attribute("data-status", "repeat")
        await expect(pop.locator(t("card-status"))).to_have_text("постоянный")
        last = pop.locator(t("card-last-call"))
        await expect(last).to_have_count(2)
        await expect(last.nth(0)).to_contain_text("пропущен")
        await expect(last.nth(1)).to_contain_text("отвечен")
        await expect(last.nth(1)).to_contain_text("102")
        await expect(pop.locator(t("card-open-missed"))).to_have_attribute("data-count", "1")
        vehicle = pop.locator(t("card-vehicle"))
        await expect(vehicle).to_have_count(1)
        await expect(vehicle).to_contain_text("Kia Rio")
        await expect(vehicle).to_contain_text("М 456 ОК 199")
        await expect(pop.locator(t("new-contact"))).to_be_hidden()
        ringing = [f for f in log.of_type("call.ringing") if f["linkedid"] == linkedid]
        assert ringing and ringing[0]["card"]["name"] == KNOWN_CALLER.name

        # The plate typed with Latin letters and no region finds the client stored with Cyrillic ones.
        results = await search_directory(page, "E777KX")
        petrov_row = results.filter(has_text=OTHER_CLIENT.name)
        await expect(petrov_row).to_have_count(1)
        await expect(petrov_row.locator(t("directory-vehicle"))).to_contain_text("Е 777 КХ 77")
        await expect(petrov_row).to_contain_text("+7 903 111-22-33")
        await page.screenshot(path=str(tmp_path / "directory.png"))

        await petrov_row.locator(t("directory-attach")).click()
        await expect(pop.locator(t("card-name"))).to_have_text(OTHER_CLIENT.name)
        await expect(pop.locator(t("card-vehicle"))).to_have_count(1)
        await expect(pop.locator(t("card-vehicle"))).to_contain_text("Е 777 КХ 77")
        # The number's own contact is still on the card, listed after the attached one.
        await expect(pop.locator(t("card-others"))).to_contain_text(KNOWN_CALLER.name)
        await expect(petrov_row.locator(t("directory-attach"))).to_be_disabled()
        attached = await env.store.contact_of_call(linkedid)
        assert attached is not None and attached.id == petrov.id
        await env.wait_for(lambda: any(f["linkedid"] == linkedid for f in log.of_type("call.card")), 5, "call.card")
        card = next(f["card"] for f in log.of_type("call.card") if f["linkedid"] == linkedid)
        assert card["name"] == OTHER_CLIENT.name
        await page.screenshot(path=str(tmp_path / "attached.png"))
        assert not log.unexpected_errors()


async def test_new_client_in_one_click_from_the_callers_number(browser: Browser, tmp_path: Path) -> None:
    async with panel_env([TRANSFER_TRACE]) as env:
        page, log, pop, linkedid = await anna_talking(env, browser)
        await expect(pop.locator(t("card-empty"))).to_have_text("нет в справочнике")
        await expect(pop.locator(t("card-name"))).to_have_count(0)
        await page.screenshot(path=str(tmp_path / "unknown-caller.png"))

        await pop.locator(t("new-contact")).click()
        await expect(pop.locator(t("new-contact-phone"))).to_have_text(shown(TRANSFER_CALLER))
        await pop.locator(t("new-contact-name")).fill("Волкова Ирина")
        await pop.locator(t("new-contact-plate")).fill("а123вс777")
        await pop.locator(t("new-contact-make")).fill("Skoda")
        await page.screenshot(path=str(tmp_path / "new-contact.png"))
        await pop.locator(t("new-contact-save")).click()

        await expect(pop.locator(t("card-name"))).to_have_text("Волкова Ирина")
        await expect(pop.locator(t("card-vehicle"))).to_contain_text("Skoda")
        await expect(pop.locator(t("card-vehicle"))).to_contain_text("123")
        await expect(pop.locator(t("new-contact"))).to_be_hidden()
        attached = await env.store.contact_of_call(linkedid)
        assert attached is not None and attached.name == "Волкова Ирина"
        # Saved with the caller's number: the directory finds her by it now.
        results = await search_directory(page, "8 916 000 13 13")
        await expect(results).to_have_count(1)
        await expect(results).to_contain_text("Волкова Ирина")
        await expect(results.locator(t("directory-attach"))).to_be_disabled()
        assert not log.unexpected_errors()
