"""The supervisor view (admin panel) and the wallboard in a real browser, against five recorded queue calls.

Every expected figure is counted by hand below from the traces' ``truth.json`` (and, for the waits, which
truth.json does not give, from the recorded events' own ``Timestamp`` headers: the caller's ``Newchannel`` and
the answering ``DialEnd``), never by the code under test. All five calls go to queue ``support`` (DID
74951234567, ringall 101, 102, 105; short abandons under 3 s; ``[supervisor] service_level_seconds`` 20).

| trace | truth.json | wait (s) |
|---|---|---|
| 08-queue-abandon | missed_reason abandoned, rung 101 102 105 | - (hung up after 8.0 s: not a short abandon) |
| 07-queue-ringall-answered | answered_by 102, talk 12.585, rung not answered 101 105 | 4.516 |
| 10-queue-timeout-voicemail | missed_reason voicemail, rung 101 102 105 | - |
| 32-queue-paused-member | answered_by 105, talk 12.923, rung not answered 102 (101 paused) | 4.511 |
| 36-queue-member-unavailable | answered_by 102, talk 11.374, rung not answered 101 (105 paused) | 11.533 |
"""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect

from tests.browser.panel_browser import log_in, new_page, t
from tests.panel_env import panel_env

#: A ticking time's data-since: the browser's epoch milliseconds.
DIGITS = re.compile(r"^\d+$")
TRACES = ["08-queue-abandon", "07-queue-ringall-answered", "10-queue-timeout-voicemail", "32-queue-paused-member",
          "36-queue-member-unavailable"]

# -- queue support, by hand ---------------------------------------------------------------------------------------
ANSWERED = "3"  # 07, 32, 36
ABANDONED = "1"  # 08
SHORT = "0"  # none hung up within 3 s
UNANSWERED = "1"  # 10: the queue timed out to voicemail
#: Answered within 20 s: 07, 32, 36 (all three); counted: the five calls (no short abandon): 3/5.
SERVICE_LEVEL = "60 %"
#: (4.516 + 4.511 + 11.533) / 3 = 6.853 s, shown rounded to the second.
AVERAGE_WAIT = "0:07"
#: (12.585 + 12.923 + 11.374) / 3 = 12.294 s.
AVERAGE_TALK = "0:12"

# -- agents, by hand: (calls taken, talk time, misses) --------------------------------------------------------------
AGENTS = {
    "101": ("0", "0:00", "4"),  # rang and missed 07, 08, 10, 36; paused through 32 (not rung)
    "102": ("2", "0:24", "3"),  # took 07 (12.585) and 36 (11.374) = 23.959 s; missed 08, 10, 32
    "105": ("1", "0:13", "3"),  # took 32 (12.923 s); missed 07, 08, 10; paused through 36 (not rung)
}


async def expect_supervisor_figures(page: Page) -> None:
    row = page.locator(f'{t("sv-queue-row")}[data-queue="support"]')
    await expect(row.locator(t("sv-answered"))).to_have_text(ANSWERED)
    await expect(row.locator(t("sv-abandoned"))).to_have_text(ABANDONED)
    await expect(row.locator(t("sv-short"))).to_have_text(SHORT)
    await expect(row.locator(t("sv-unanswered"))).to_have_text(UNANSWERED)
    await expect(row.locator(t("sv-sl"))).to_have_text(SERVICE_LEVEL)
    await expect(row.locator(t("sv-avg-wait"))).to_have_text(AVERAGE_WAIT)
    await expect(row.locator(t("sv-avg-talk"))).to_have_text(AVERAGE_TALK)
    await expect(row.locator(t("sv-waiting"))).to_have_text("0")
    await expect(row.locator(t("sv-longest"))).to_have_text("—")
    for ext, (calls, talk, misses) in AGENTS.items():
        agent = page.locator(f'{t("sv-agent-row")}[data-extension="{ext}"]')
        await expect(agent.locator(t("sv-agent-calls"))).to_have_text(calls)
        await expect(agent.locator(t("sv-agent-talk"))).to_have_text(talk)
        await expect(agent.locator(t("sv-agent-misses"))).to_have_text(misses)
        # Every call is over and the pauses were lifted (32: 101 unpaused; 36: 102 and 105): all available, the
        # time in that state ticking.
        await expect(agent.locator(t("sv-agent-state"))).to_have_text("свободен")
        await expect(agent.locator(t("sv-agent-since"))).to_have_attribute("data-since", DIGITS)


async def expect_wallboard_figures(page: Page) -> None:
    queue = page.locator(f'{t("wb-queue")}[data-queue="support"]')
    await expect(queue.locator(t("wb-answered"))).to_have_text(ANSWERED)
    await expect(queue.locator(t("wb-abandoned"))).to_have_text(ABANDONED)
    await expect(queue.locator(t("wb-sl"))).to_have_text(SERVICE_LEVEL)
    await expect(queue.locator(t("wb-avg-wait"))).to_have_text(AVERAGE_WAIT)
    await expect(queue.locator(t("wb-waiting"))).to_have_text("0")
    await expect(queue.locator(t("wb-more"))).to_have_text(
        f"коротких: {SHORT}, без ответа: {UNANSWERED}, ср. разговор: {AVERAGE_TALK}")
    for ext, (calls, _talk, _misses) in AGENTS.items():
        tile = page.locator(f'{t("wb-agent")}[data-extension="{ext}"]')
        await expect(tile.locator(t("wb-agent-calls"))).to_have_text(f"звонков: {calls}")
        await expect(tile).to_have_attribute("data-state", "idle")


async def test_supervisor_view_and_wallboard_show_the_hand_counted_figures(browser: Browser) -> None:
    async with panel_env(TRACES, speed=0) as env:
        admin, admin_log = await new_page(browser)
        await log_in(admin, env, "admin")
        await expect(admin.locator(t("supervisor"))).to_be_visible()
        # The TV: a QA user (reads everything, controls nothing) on /wallboard.
        tv, tv_log = await new_page(browser)
        await log_in(tv, env, "qa")
        await tv.goto(env.url + "/wallboard")
        await expect(tv.locator(f'{t("conn-status")}[data-status="online"]')).to_be_visible()
        await expect(tv.locator(t("control-hangup"))).to_have_count(0)
        assert not await tv.locator("button, input, select").count(), "the wallboard has no controls"

        # The first caller (08) joins the queue and waits; the PBX is held there: one waiting, the wait ticking.
        await env.serve_through(lambda m: m.event == "QueueCallerJoin", "the first caller joining queue support")
        row = admin.locator(f'{t("sv-queue-row")}[data-queue="support"]')
        await expect(row.locator(t("sv-waiting"))).to_have_text("1")
        await expect(row.locator(t("sv-longest"))).to_have_attribute("data-since", DIGITS)
        queue = tv.locator(f'{t("wb-queue")}[data-queue="support"]')
        await expect(queue.locator(t("wb-waiting"))).to_have_text("1")
        await expect(queue.locator(t("wb-longest"))).to_have_attribute("data-since", DIGITS)

        # The rest of the five calls, then the day's figures on both screens.
        env.start_calls()
        await expect_supervisor_figures(admin)
        await expect_wallboard_figures(tv)

        # Reloaded (a new connection): the same figures come back from GET /api/supervisor.
        await tv.reload()
        await expect_wallboard_figures(tv)
        assert not admin_log.unexpected_errors() and not tv_log.unexpected_errors()


async def test_an_agent_on_the_wallboard_is_told_it_is_not_for_them(browser: Browser) -> None:
    async with panel_env(["07-queue-ringall-answered"], speed=0) as env:
        page, _log = await new_page(browser)
        await log_in(page, env, "anna")
        await page.goto(env.url + "/wallboard")
        await expect(page.locator(t("wb-error"))).to_have_text("Табло доступно администраторам и контролю качества.")
