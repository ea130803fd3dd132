"""Write the panel's screenshots for the docs: ``python -m tests.browser.make_screenshots [out_dir]``.

Same system and same steps as the browser tests (``tests/browser/panel_browser.py``), with a few more
recorded calls played first (faster than real time) so the tables are not empty:

* ``agent-panel.png``: anna (101) talking to 79160001313, the pop with the caller's card (a known client
  and her car, her earlier calls, one missed call not called back yet) and call control; the directory
  searched by the plate's digits; her earlier call in "my recent calls";
* ``admin-panel.png``: the live call board with that call (and the client's name from the directory), the
  agents, the missed-call register with the abandoned queue call, and the journal.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from playwright.async_api import Browser, expect

from tests.browser.panel_browser import (
    ABANDON_CALLER,
    TRANSFER_CALLER,
    TRANSFER_TRACE,
    add_known_clients,
    chromium,
    earlier_calls,
    log_in,
    new_page,
    search_directory,
    shown,
    t,
    wait_for_missed,
    wait_for_pop,
)
from tests.panel_env import panel_env
from tests.traces import REPO

OUT = REPO / "docs" / "screenshots"
#: Replay speed: fast enough to be quick, slow enough for the pop to be seen talking before the transfer.
SPEED = 2.0


async def agent_panel(browser: Browser, path: Path) -> None:
    async with panel_env(["11-ringgroup-answered", TRANSFER_TRACE], speed=SPEED) as env:
        await add_known_clients(env)
        await earlier_calls(env, TRANSFER_CALLER)
        page, _log = await new_page(browser)
        await log_in(page, env, "anna")
        env.start_calls()
        # The first call (a ring group answered by 101) ends up in "my recent calls".
        await expect(page.locator(t("recent-calls")).locator(t("journal-row"))).to_have_count(1, timeout=30_000)
        pop = await wait_for_pop(page, TRANSFER_CALLER, state="talking")
        env.replay.pause()
        await expect(pop.locator(t("card-vehicle"))).to_have_count(1)
        await expect(pop.locator(t("card-last-call"))).to_have_count(2)
        await expect(await search_directory(page, "456")).to_have_count(1)
        await pop.locator(t("transfer-target")).fill("104")
        await page.wait_for_timeout(2_200)  # let the conversation timer tick
        await page.screenshot(path=str(path))


async def admin_panel(browser: Browser, path: Path) -> None:
    traces = ["07-queue-ringall-answered", "08-queue-abandon", TRANSFER_TRACE]
    async with panel_env(traces, speed=SPEED) as env:
        await add_known_clients(env)
        page, _log = await new_page(browser)
        await log_in(page, env, "admin")
        env.start_calls()
        await wait_for_missed(page, ABANDON_CALLER)
        row = page.locator(t("board-row")).filter(has_text=shown(TRANSFER_CALLER))
        await expect(row).to_have_attribute("data-state", "talking", timeout=30_000)
        await expect(row.locator(t("board-card-name"))).to_have_text("Зайцева Марина Игоревна")
        env.replay.pause()
        await expect(page.locator(t("journal-row"))).to_have_count(2)
        await page.wait_for_timeout(2_200)
        await page.screenshot(path=str(path))


async def main(out: Path) -> None:
    async with chromium() as browser:
        await agent_panel(browser, out / "agent-panel.png")
        await admin_panel(browser, out / "admin-panel.png")
    for name in ("agent-panel.png", "admin-panel.png"):
        print(out / name)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(target))
