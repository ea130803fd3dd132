"""Call-back reminders in a real browser, against the whole system (replay PBX → daemon → panel), issue 13.

A master (Елена, role ``employee``, extension 105) logs in: her panel is her reminders and nothing else. A reminder
the script left for her (handed over as the script desk hands one) appears at once, not yet due; at its time it is
highlighted (and its tone played); her call button calls the client from her own phone (the Originate reaches the
replay PBX); she closes it with a comment, and it is kept closed by her hand with that comment. The admin's panel
lists it among the overdue reminders once it is escalated, and drops it when she closes it.
"""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.browser.panel_browser import log_in, new_page, t
from tests.conftest import UNIT
from tests.panel_env import panel_env
from tests.ui_bridge.test_reminders import CALLER, remind
from tests.ui_bridge.test_script_desk import TRANSFER, actions, fields


async def test_the_master_sees_the_reminder_at_its_time_calls_the_client_and_closes_it(browser: Browser) -> None:
    async with panel_env([TRANSFER], sections={"reminders": "escalate_after_minutes = 0.05"}) as env:
        page, log = await new_page(browser)
        await log_in(page, env, "elena")
        await expect(page.locator(t("employee-view"))).to_be_visible()
        await expect(page.locator(t("user-name"))).to_have_text("Елена Попова")
        for other in ("pop-area", "journal", "dial-form", "script-area", "alerts"):  # the agent's, admin's: not hers
            await expect(page.locator(t(other))).to_have_count(0)
        admin, admin_log = await new_page(browser)
        await log_in(admin, env, "admin")

        await remind(env, "105", due_in=4 * UNIT)
        reminder = page.locator(t("reminder"))
        await expect(reminder).to_have_count(1)
        await expect(reminder).to_have_attribute("data-due", "false")  # made, not due yet
        await expect(reminder.locator(t("reminder-client"))).to_contain_text("Пётр «Шкода»")
        await expect(reminder.locator(t("reminder-number"))).to_contain_text("916 000-13-13")
        await expect(reminder.locator(t("reminder-note"))).to_contain_text("перезвонить по ремонту")
        await page.locator(t("reminders-mine")).locator("h2").click()  # a first click: the browser may play sound

        await expect(reminder).to_have_attribute("data-due", "true")  # at its time: highlighted
        await expect(reminder.locator(t("reminder-due-mark"))).to_be_visible()
        [due] = log.of_type("reminder.due")
        await expect(page.locator(t("reminder-sound"))).to_have_attribute("data-plays", "1")
        # Overdue: escalated to the admins, on their panel.
        overdue = admin.locator(t("reminders-overdue")).locator(t("reminder"))
        await expect(overdue).to_have_count(1)
        await expect(overdue.locator(t("reminder-employee"))).to_contain_text("Елена Попова (105)")

        await reminder.locator(t("reminder-call")).click()
        await expect(page.locator(t("toast")).last).to_contain_text("Звоним")
        [originate] = actions(env, "Originate")
        assert (fields(originate)["Channel"], fields(originate)["Exten"]) == ("PJSIP/105", CALLER)

        await reminder.locator(t("reminder-comment")).fill("дозвонилась, записала на среду")
        await reminder.locator(t("reminder-close")).click()
        await expect(page.locator(t("reminder"))).to_have_count(0)
        await expect(overdue).to_have_count(0)  # gone from the admins' overdue list too
        [kept] = await env.store.list_reminders(open_only=False)
        assert kept.id == due["reminder"]["id"]
        assert (kept.status, kept.closed_how, kept.closed_by, kept.comment) == (
            "done", "hand", "elena", "дозвонилась, записала на среду")
        assert log.unexpected_errors() == [] and admin_log.unexpected_errors() == []
