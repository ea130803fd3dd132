"""The register a team shares, in real Chromium: two supervisors (two browser contexts) and a QA user.

One supervisor takes a number to call it back; the other sees "Перезванивает Администратор" at once, and a claim
from a page that had not heard of it yet is refused naming who has it; QA sees the register, the claim included,
without a single control; the call-back reaching the customer (a replayed outbound call to the number) releases
the claim and the row leaves every register.
"""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, Locator, Page, expect

from store.repository import User
from tests.browser.panel_browser import log_in, new_page, shown, t
from tests.panel_env import PanelEnv, panel_env
from tests.store.builders import T0, make_call, missed_for
from ui_bridge.auth import hash_password

CALL_BACK = "16-click-to-call-answered"  # agent 101 calls 89161234567, who answers
NUMBER = "79161234567"
OTHER = "84957770033"
OTHER_KEY = "74957770033"  # as the register keys it (cti.phones)
BOSS_PASSWORD = "boss-password-1"


async def seed(env: PanelEnv) -> None:
    """A second supervisor, and the register: the number missed twice (written two ways), another caller once."""
    env.users["boss"] = (BOSS_PASSWORD, "admin", None, "Ирина Волкова")
    await env.store.add_user(User(name="boss", role="admin", display_name="Ирина Волкова",
                                  password_hash=await asyncio.to_thread(hash_password, BOSS_PASSWORD)))
    for linkedid, caller, at in (("m1", "8 916 123-45-67", T0), ("m2", "+7 (916) 123-45-67", T0 + 60),
                                 ("m3", OTHER, T0 + 90)):
        record = make_call(linkedid, caller=caller, started_at=at, missed_reason="abandoned")
        env.store.stage_call(record, missed_for(record), [])
    await env.store.flush()


def row_of(page: Page, number: str) -> Locator:
    return page.locator(f'{t("missed-row")}[data-number="{number}"]')


async def test_two_supervisors_claiming_the_same_number_the_second_sees_it_taken(browser: Browser) -> None:
    async with panel_env([CALL_BACK], speed=0) as env:
        await seed(env)
        admin, admin_log = await new_page(browser)
        boss, boss_log = await new_page(browser)
        qa, qa_log = await new_page(browser)
        await log_in(admin, env, "admin")
        await log_in(boss, env, "boss", BOSS_PASSWORD)
        await log_in(qa, env, "qa")

        # One row per caller: the two calls of the number are one row, "×2", with its first time.
        for page in (admin, boss, qa):
            await expect(page.locator(t("missed-row"))).to_have_count(2)
        mine = row_of(admin, NUMBER)
        await expect(mine).to_contain_text(shown(NUMBER))
        await expect(mine.locator(t("missed-times"))).to_have_text("×2")
        await mine.locator(t("missed-expand")).click()
        await expect(admin.locator(t("missed-entry"))).to_have_count(2)

        # Admin takes it: Boss's page says so at once and her button is off.
        await mine.locator(t("missed-claim-button")).click()
        await expect(mine.locator(t("missed-claim"))).to_have_text("Перезванивает Администратор")
        await expect(mine.locator(t("missed-release"))).to_be_visible()
        theirs = row_of(boss, NUMBER)
        await expect(theirs.locator(t("missed-claim"))).to_have_text("Перезванивает Администратор")
        claim = theirs.locator(t("missed-claim-button"))
        await expect(claim).to_be_disabled()
        await expect(row_of(boss, OTHER_KEY).locator(t("missed-claim-button"))).to_be_enabled()

        # A page that had not heard of the claim yet (its button still on) is refused, naming who has it.
        await claim.evaluate("button => { button.disabled = false; }")
        await claim.click()
        await expect(boss.locator(t("toast")).filter(has_text="Уже перезванивает Администратор")).to_be_visible()
        assert [(c.by, c.number_key) for c in await env.store.list_claims()] == [("admin", NUMBER)]

        # QA reads the register, the claim included, with no control at all.
        await expect(qa.locator(t("missed-register"))).to_have_attribute("data-readonly", "1")
        await expect(row_of(qa, NUMBER).locator(t("missed-claim"))).to_have_text("Перезванивает Администратор")
        await expect(qa.locator(f'{t("missed-register")} button:not({t("missed-expand")})')).to_have_count(0)

        # Agent 101 calls the number back and the customer answers: the claim ends and the row leaves everyone.
        env.start_calls()
        for page in (admin, boss, qa):
            await expect(row_of(page, NUMBER)).to_have_count(0)
            await expect(page.locator(t("missed-row"))).to_have_count(1)
        assert await env.store.list_claims() == []
        for log in (admin_log, boss_log, qa_log):
            assert not log.unexpected_errors(), log.unexpected_errors()
