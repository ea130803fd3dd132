"""The supervisor's alerts in a real browser, against the whole system (replay PBX → daemon → panel), issue 12:
an alert raised, heard (the page's <audio> element really played its tone), acknowledged (gone from the active
alerts, in the history with the supervisor's name), then resolved when its condition ends.

The replay PBX is held at the moment that makes the condition (a caller in the queue, an agent paused), so the
alert comes from the daemon's own clock crossing the threshold, not from the recording's timing.
"""

from __future__ import annotations

from collections.abc import Callable

from playwright.async_api import Browser, Page, expect

from asterisk.messages import AmiMessage
from tests.browser.panel_browser import ABANDON_CALLER, ABANDON_TRACE, PageLog, log_in, new_page, shown, t
from tests.panel_env import PanelEnv, panel_env

PAUSED_TRACE = "32-queue-paused-member"


def queue_join(m: AmiMessage) -> bool:
    return m.event == "QueueCallerJoin"


def pause_of_101(paused: str) -> Callable[[AmiMessage], bool]:
    return lambda m: (m.event == "QueueMemberPause" and m.get("Interface") == "PJSIP/101"
                      and m.get("Paused") == paused)


async def played_seconds(page: Page) -> float:
    """How much of the alert tone the browser has played (the <audio> element's ``played`` ranges)."""
    return float(await page.locator(t("alert-sound")).evaluate(
        "a => { let s = 0; for (let i = 0; i < a.played.length; i++) s += a.played.end(i) - a.played.start(i);"
        " return s; }"))


async def admin_page(browser: Browser, env: PanelEnv) -> tuple[Page, PageLog]:
    page, log = await new_page(browser)
    await log_in(page, env, "admin")
    await expect(page.locator(t("alerts"))).to_be_visible()
    await expect(page.locator(t("alert"))).to_have_count(0)
    # The first click on the page unlocks the sound (browsers play audio only after a gesture: docs/panel.md).
    await page.locator(t("alerts")).locator("h2").click()
    return page, log


async def test_a_caller_waiting_too_long_is_an_alert_heard_acknowledged_and_then_resolved(browser: Browser) -> None:
    async with panel_env([ABANDON_TRACE], sections={"alerts": "long_wait_seconds = 2"}) as env:
        page, log = await admin_page(browser, env)
        other, _ = await admin_page(browser, env)  # a second supervisor's panel
        await env.serve_through(queue_join, "the caller joining the queue")  # then held: the caller waits

        alert = page.locator(t("alert"))
        await expect(alert).to_have_count(1)
        await expect(alert).to_have_attribute("data-kind", "long_wait")
        await expect(alert).to_contain_text(shown(ABANDON_CALLER))  # formatted by its region
        await expect(alert).to_contain_text("support")
        await expect(page.locator(t("alerts-count"))).to_have_text("1")
        [raised] = log.of_type("alert.raised")
        assert raised["alert"]["key"].startswith("long_wait:main:") and raised["alert"]["status"] == "active"
        # Heard: the page asked for the tone and the browser played it.
        sound = page.locator(t("alert-sound"))
        await expect(sound).to_have_attribute("data-plays", "1")
        await page.wait_for_function("() => { const a = document.querySelector('[data-test=alert-sound]');"
                                     " return a.ended || a.currentTime > 0.3; }")
        assert await played_seconds(page) > 0.3
        await expect(page.locator(t("alert-sound-locked"))).to_be_hidden()

        await alert.locator(t("alert-ack")).click()
        await expect(page.locator(t("alert"))).to_have_count(0)
        # Every supervisor sees it go, and who took it, in the history.
        await expect(other.locator(t("alert"))).to_have_count(0)
        await other.locator(t("alert-history")).locator("summary").click()  # the acknowledging panel opened its own
        for panel in (page, other):
            row = panel.locator(f'{t("alert-history-row")}[data-id="{raised["alert"]["id"]}"]')
            await expect(row.locator(t("alert-history-acked"))).to_contain_text("admin")
            await expect(row).to_have_attribute("data-status", "active")  # the caller still waits
        assert (await env.store.get_alert(raised["alert"]["id"])).acknowledged_by == "admin"

        env.start_calls()  # the caller gives up: the condition ends, the alert is resolved and kept
        row = page.locator(f'{t("alert-history-row")}[data-id="{raised["alert"]["id"]}"]')
        await expect(row).to_have_attribute("data-status", "resolved")
        await expect(page.locator(t("alert"))).to_have_count(0)
        assert len(log.of_type("alert.raised")) == 1  # raised once, not at every evaluation
        assert log.unexpected_errors() == []


async def test_an_agent_paused_too_long_is_an_alert_until_unpaused(browser: Browser) -> None:
    async with panel_env([PAUSED_TRACE], sections={"alerts": "paused_minutes = 0.03"}) as env:
        page, log = await admin_page(browser, env)
        await env.serve_through(pause_of_101("1"), "101 paused")
        alert = page.locator(t("alert"))
        await expect(alert).to_have_count(1)
        await expect(alert).to_have_attribute("data-kind", "paused")
        await expect(alert).to_have_attribute("data-key", "paused:main:101")
        await expect(alert).to_contain_text("Анна Смирнова (101)")
        await expect(page.locator(t("alert-sound"))).to_have_attribute("data-plays", "1")

        await env.serve_through(pause_of_101("0"), "101 unpaused")
        await expect(alert).to_have_count(0)  # resolved without anyone acknowledging it
        [resolved] = log.of_type("alert.resolved")
        assert resolved["alert"]["key"] == "paused:main:101" and resolved["alert"]["acknowledged_by"] is None
        await page.locator(t("alert-history")).locator("summary").click()
        row = page.locator(f'{t("alert-history-row")}[data-id="{resolved["alert"]["id"]}"]')
        await expect(row).to_have_attribute("data-status", "resolved")
        assert log.unexpected_errors() == []
