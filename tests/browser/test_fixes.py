"""What users stumbled on, fixed (issue 12), in a real browser against the whole system.

The card shows the contact's notes and e-mail, numbers are shown as people read them; the admin finds a client
by the car's make however it was typed and by a word inside a company's name; an outbound call's customer and
agent stand in the journal's right columns; a backwards date range says so; «Пауза» shows what it did.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from cti.directory import Contact, Vehicle
from tests.browser.panel_browser import (
    KNOWN_CALLER,
    TRANSFER_TRACE,
    log_in,
    new_page,
    search_directory,
    t,
)
from tests.daemon.conftest import leg_event
from tests.panel_env import panel_env

CLICK_TO_CALL = "16-click-to-call-answered"  # anna (101) calls 89161234567, who answers

#: Notes as a CRM or a CSV may carry them: markup that must stay text, line breaks, and more than the card shows.
HOSTILE_NOTES = ('<img src=x onerror="window.__pwned=1">Предпочитает звонки после 18:00.\n'
                 + "Менял масло в ноябре, просил напомнить про шины. " * 6)


async def test_the_pop_shows_the_notes_the_email_and_the_number_in_the_national_style(
        browser: Browser, tmp_path: Path) -> None:
    async with panel_env([TRANSFER_TRACE], directory_extra='number_style = "national"') as env:
        await env.store.add_contact(Contact(name=KNOWN_CALLER.name, phones=KNOWN_CALLER.phones,
                                            email="zaitseva@example.ru", notes=HOSTILE_NOTES,
                                            vehicles=KNOWN_CALLER.vehicles))
        page, log = await new_page(browser)
        await log_in(page, env, "anna")
        await env.serve_through(leg_event("Newstate", "PJSIP/101-", "Ringing"), "anna's phone ringing")
        pop = page.locator(t("call-pop"))
        await expect(pop).to_have_count(1)
        # 79160001313 as the PBX gives it, shown as dialled in Russia; the DID too.
        await expect(pop.locator(t("pop-caller"))).to_have_text("8 (916) 000-13-13")
        await expect(pop.locator(t("pop-called"))).to_have_text("8 (495) 000-01-01")
        await expect(pop.locator(t("card-name"))).to_have_text(KNOWN_CALLER.name)
        await expect(pop.locator(t("card-email"))).to_have_text("zaitseva@example.ru")

        notes = pop.locator(t("card-notes"))
        text = pop.locator(t("card-notes-text"))
        await expect(notes).to_have_attribute("data-clipped", "true")
        clipped = await text.text_content() or ""
        assert clipped.startswith('<img src=x onerror="window.__pwned=1">Предпочитает') and clipped.endswith("…")
        assert len(clipped) < len(HOSTILE_NOTES)
        await page.screenshot(path=str(tmp_path / "card-notes.png"))
        await pop.locator(t("card-notes-more")).click()
        await expect(notes).to_have_attribute("data-clipped", "false")
        assert await text.text_content() == HOSTILE_NOTES.strip()
        await expect(pop.locator(t("card-notes-more"))).to_have_text("Свернуть")
        # The markup in the notes stayed text: no element was made of it and its script never ran.
        await expect(pop.locator("img")).to_have_count(0)
        assert await page.evaluate("window.__pwned") is None
        assert not log.unexpected_errors()


async def test_the_admin_finds_a_make_typed_three_ways_and_a_word_inside_a_company_name(
        browser: Browser, tmp_path: Path) -> None:
    async with panel_env([TRANSFER_TRACE]) as env:
        await env.store.add_contacts([
            Contact(name="Иванов Пётр Сергеевич", phones=("89161234567",),
                    vehicles=(Vehicle(make="Тойота", model="Camry", plate="А 123 ВС 777"),)),
            Contact(name="ООО «Ромашка»", kind="corporate", phones=("84991112233",),
                    vehicles=(Vehicle(make="ГАЗ", model="Газель"),)),
            Contact(name="Сидорова Анна", phones=("89035550011",), vehicles=(Vehicle(make="Kia", model="Rio"),)),
        ])
        page, log = await new_page(browser)
        await log_in(page, env, "admin")
        directory = page.locator(t("directory"))
        await expect(directory).to_be_visible()

        for typed in ("тойота", "toyota", "ещнщеф"):  # Russian, English, English typed on the Russian layout
            results = await search_directory(page, typed)
            await expect(results).to_have_count(1)
            await expect(results.locator(t("directory-name"))).to_have_text("Иванов Пётр Сергеевич")
            await expect(results.locator(t("directory-vehicle"))).to_contain_text("Toyota Camry")
            await expect(results.locator(t("directory-phones"))).to_have_text("+7 916 123-45-67")
            # The admin's search attaches nothing to a call: it has no attach button.
            await expect(results.locator(t("directory-attach"))).to_be_hidden()

        results = await search_directory(page, "ромашка")
        await expect(results).to_have_count(1)
        await expect(results.locator(t("directory-name"))).to_have_text("ООО «Ромашка»")
        await expect(results.locator(t("directory-phones"))).to_have_text("+7 499 111-22-33")
        await page.screenshot(path=str(tmp_path / "admin-directory.png"))
        assert not log.unexpected_errors()


async def test_an_outbound_call_shows_the_customer_under_the_party_and_the_agent_under_the_operator(
        browser: Browser, tmp_path: Path) -> None:
    async with panel_env([CLICK_TO_CALL], speed=0) as env:
        page, log = await new_page(browser)
        await log_in(page, env, "admin")
        env.start_calls()
        row = page.locator(t("journal-row"))
        await expect(row).to_have_count(1)
        await expect(row.locator(t("journal-party"))).to_have_text("+7 916 123-45-67")
        await expect(row.locator(t("journal-agent"))).to_contain_text("101")
        await expect(row.locator(t("journal-agent"))).to_contain_text("Анна Смирнова")
        await expect(row.locator(t("journal-called"))).to_have_text("")
        await expect(row).to_contain_text("исходящий")

        # A date range that runs backwards is refused in the filter itself, saying why.
        await page.fill(t("journal-since"), "2026-11-25")
        await page.fill(t("journal-until"), "2026-11-24")
        await page.click(t("journal-apply"))
        error = page.locator(t("journal-range-error"))
        await expect(error).to_be_visible()
        await expect(error).to_have_text("Дата «с» позже даты «по»: поменяйте их местами")
        await expect(page.locator(t("journal-since"))).to_have_attribute("aria-invalid", "true")
        await expect(row).to_have_count(1)  # the rows on show stay
        await page.fill(t("journal-until"), "2026-11-26")
        await page.click(t("journal-apply"))
        await expect(error).to_be_hidden()
        await page.screenshot(path=str(tmp_path / "journal-outbound.png"))
        assert not log.unexpected_errors()


async def test_pause_shows_its_result_and_its_end_and_a_failure_says_what_failed(
        browser: Browser, tmp_path: Path) -> None:
    # The replay PBX answers QueuePause with Success and sends no event (the live replay does, see
    # asterisk/replay/live.py): what the panel shows here comes from the command's reply.
    async with panel_env([TRANSFER_TRACE]) as env:
        page, log = await new_page(browser)
        await log_in(page, env, "anna")
        state, toggle = page.locator(t("my-state")), page.locator(t("pause-toggle"))
        await expect(toggle).to_have_text("Пауза")
        await page.select_option(t("pause-reason"), "lunch")
        await toggle.click()
        await expect(state).to_have_attribute("data-state", "paused")
        await expect(state).to_have_text("пауза (обед)")
        await expect(toggle).to_have_text("Снять паузу")
        await expect(page.locator(t("pause-reason"))).to_be_hidden()
        await expect(page.locator(t("toast")).filter(has_text="Вы на паузе: обед")).to_be_visible()
        await page.screenshot(path=str(tmp_path / "paused.png"))

        await toggle.click()
        await expect(toggle).to_have_text("Пауза")
        await expect(state).not_to_have_attribute("data-state", "paused")
        await expect(page.locator(t("toast")).filter(has_text="Пауза снята")).to_be_visible()
        actions = [a.message for a in env.replay.received_actions if a.message.action == "QueuePause"]
        assert [a.get("Paused").lower() for a in actions] == ["true", "false"]
        assert actions[0].get("Reason") == "lunch"

        # The PBX gone: the click says what failed, and nothing pretends to be paused.
        await env.replay.close()
        await env.wait_for(lambda: not env.running.daemon.link.connected, 10, "the daemon to lose the PBX")
        await toggle.click()
        failure = page.locator(t("toast")).filter(has_text="Не удалось поставить паузу")
        await expect(failure).to_be_visible()
        await expect(failure).to_contain_text("АТС")
        await expect(toggle).to_have_text("Пауза")
        await expect(state).not_to_have_attribute("data-state", "paused")
        assert not log.unexpected_errors()
