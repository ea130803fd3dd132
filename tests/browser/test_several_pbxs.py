"""The panel of a site with two PBXs, in a real browser: the same call (same linkedid, same agent 101) ringing on
both PBXs is two rows for the network's admin, each named by its PBX and hung up on its own PBX; an agent of one
PBX sees only her PBX's call, with no PBX names (she has one PBX)."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.browser.panel_browser import log_in, new_page, t
from tests.daemon.conftest import leg_event
from tests.ui_bridge.two_pbxs import USERS, two_pbxs

TRANSFER = "13-blind-transfer-redirect"  # 79160001313 → DID 74950000101 → agent 101 answers


async def test_the_same_call_on_two_pbxs_is_two_rows_each_acted_on_at_its_own_pbx(browser: Browser) -> None:
    async with two_pbxs([TRANSFER]) as pbxs:
        env = pbxs.env
        boss, boss_log = await new_page(browser)
        await log_in(boss, env, "boss", USERS["boss"][0])
        anna, anna_log = await new_page(browser)
        await log_in(anna, env, "anna-spb", USERS["anna-spb"][0])
        for pbx in ("msk", "spb"):
            await pbxs.serve_through(pbx, leg_event("BridgeEnter", "PJSIP/101-"), "anna's answer")

        rows = boss.locator(t("board-row"))
        await expect(rows).to_have_count(2)
        linkedids = {await row.get_attribute("data-linkedid") for row in await rows.all()}
        assert len(linkedids) == 1  # the same linkedid on both PBXs: still two calls
        spb_row = boss.locator(f'{t("board-row")}[data-pbx="spb"]')
        await expect(spb_row.locator(t("pbx-name"))).to_have_text("PBX SPB")
        await expect(boss.locator(f'{t("board-row")}[data-pbx="msk"]').locator(t("pbx-name"))).to_have_text(
            "PBX MSK")

        # Anna of St Petersburg: her call only, and no PBX names (she belongs to one PBX).
        await expect(anna.locator(t("call-pop"))).to_have_count(1)
        await expect(anna.locator(t("call-pop"))).to_have_attribute("data-pbx", "spb")
        await expect(anna.locator(t("pop-pbx"))).to_have_count(0)

        # The boss hangs up St Petersburg's call: the action goes to that PBX, never to Moscow's.
        hangup = spb_row.locator(t("board-hangup"))
        await hangup.click()
        await expect(hangup).to_have_text("Точно?")  # the button asks once before it acts
        await hangup.click()
        # It stays armed for 3 s: on a loaded machine the check above may outlast that, and the click arms it again.
        for _ in range(3):
            if await hangup.text_content() != "Точно?":
                break
            await hangup.click()
        await env.wait_for(lambda: bool(pbxs.actions("spb", "Hangup")), 5, "a Hangup action on spb")
        assert pbxs.actions("msk", "Hangup") == []
        assert not boss_log.unexpected_errors() and not anna_log.unexpected_errors()
