"""The panel's journal and missed-call register page through a long history in a real browser.

The journal shows 50 calls a page; "next" follows the server's cursor, so calls saved while someone pages do
not push a row of one page onto the next (with offset paging the first rows of page 2 were the last of page
1 again). The register loads every open entry, page after page, not only the first 200.
"""

from __future__ import annotations

import time

from playwright.async_api import Browser, Page, expect

from tests.browser.panel_browser import TRANSFER_TRACE, log_in, new_page, t
from tests.panel_env import PanelEnv, panel_env
from tests.store.builders import make_call, missed_for

JOURNAL_PAGE = 50  # ui_bridge/static/journal.js
HISTORY = 230  # five journal pages (the last one short), more than one register page of 200


async def seed_history(env: PanelEnv) -> list[str]:
    """HISTORY missed calls a minute apart over the last hours, each open in the register; newest first."""
    now = time.time()
    calls = [make_call(f"1790000000.{i:03d}", caller=f"7916555{i:04d}", started_at=now - 3600 - 60 * i)
             for i in range(HISTORY)]
    for record in calls:
        env.store.stage_call(record, missed_for(record), ())
    await env.store.flush()
    return [c.linkedid for c in calls]


async def shown_rows(page: Page) -> list[str]:
    rows = page.locator(f'{t("journal-table")} {t("journal-row")}')
    return await rows.evaluate_all("rows => rows.map(r => r.dataset.linkedid)")


async def test_paging_the_journal_forward_shows_every_call_once_while_new_calls_are_saved(browser: Browser) -> None:
    async with panel_env([TRANSFER_TRACE]) as env:
        # The PBX is held: its recorded call, older than the seeded history, would otherwise end mid-test on a
        # slow machine and rightly land on the journal's last page, which the test counts.
        env.replay.pause()
        history = await seed_history(env)
        page, log = await new_page(browser)
        await log_in(page, env, "admin")
        status, forward, back = page.locator(t("journal-status")), page.locator(t("journal-next")), \
            page.locator(t("journal-prev"))
        await expect(status).to_have_text(f"1–{JOURNAL_PAGE}")
        await expect(back).to_be_disabled()

        # The register has every open entry, beyond its first page of 200.
        await expect(page.locator(t("missed-row"))).to_have_count(HISTORY)
        await expect(page.locator(t("missed-count"))).to_have_text(str(HISTORY))

        # Calls end while the admin reads page 1: three newer ones land on top of the journal.
        seen = await shown_rows(page)
        newer = [make_call(f"1799999999.{i}", caller=f"7903000000{i}", answered=True, answered_by="101",
                           started_at=time.time() - i) for i in range(3)]
        for record in newer:
            env.store.stage_call(record, None, ())
        await env.store.flush()

        shown = JOURNAL_PAGE
        while shown < HISTORY:
            await forward.click()
            last = min(shown + JOURNAL_PAGE, HISTORY)
            await expect(status).to_have_text(f"{shown + 1}–{last}")
            seen += await shown_rows(page)
            shown = last
        await expect(forward).to_be_disabled()
        assert seen == history, "every call once, newest first, none pushed onto the next page"

        # Back to the first page: it starts again from the top, with the newer calls.
        for _ in range(HISTORY // JOURNAL_PAGE):
            await back.click()
        await expect(status).to_have_text(f"1–{JOURNAL_PAGE}")
        await expect(back).to_be_disabled()
        await expect(page.locator(f'{t("journal-table")} {t("journal-row")}').first).to_have_attribute(
            "data-linkedid", newer[0].linkedid)
        top = await shown_rows(page)
        assert top[:3] == [c.linkedid for c in newer] and top[3:] == history[:JOURNAL_PAGE - 3]
        assert not log.unexpected_errors()
