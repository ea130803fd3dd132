"""The reports page in a real browser: an admin opens the reports, picks the fixture's two days, and sees the figures
worked out by hand (tests/store/report_fixture.py) as numbers and as charts Chart.js drew (their data read back from
the canvas's chart), the calls with no contact listed with a hostile caller name shown as text, and the CSV link.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.browser.panel_browser import log_in, new_page, t
from tests.panel_env import panel_env
from tests.store.report_fixture import fill

TRACE = "13-blind-transfer-redirect"  # never started: the store is filled by hand
HOSTILE = "<img src=x onerror=alert(1)>"


async def chart_data(page: Page, index: int = 0) -> Any:
    """The datasets of the ``index``-th chart of the report, as Chart.js holds them, and the canvas's drawn size."""
    return await page.evaluate("""(i) => {
        const canvas = document.querySelectorAll('[data-test="report-chart"]')[i];
        const chart = globalThis.Chart.getChart(canvas);
        return {labels: chart.data.labels, data: chart.data.datasets.map((d) => d.data), width: canvas.width,
                height: canvas.height};
    }""", index)


async def test_an_admin_reads_the_reports_with_their_charts(browser: Browser) -> None:
    async with panel_env([TRACE]) as env:
        await fill(env.store)
        c2 = await env.store.get_call("c2")
        assert c2 is not None
        env.store.stage_call(dataclasses.replace(c2, caller_name=HOSTILE), None, [])
        await env.store.flush()
        page, log = await new_page(browser)
        await log_in(page, env, "admin")
        await page.click(t("reports-toggle"))
        await page.fill(t("report-since"), "2026-03-10")
        await page.fill(t("report-until"), "2026-03-12")
        await page.click(t("report-show"))

        # PBX vs registered: 4 answered inbound calls, 2 of them registered, 3 phone contacts.
        body = page.locator(f'{t("report-body")}[data-report="registered"][data-drawn="1"]')
        await expect(body).to_be_visible()
        await expect(page.locator(t("report-answered")).locator(".report-figure-value")).to_have_text("4")
        await expect(page.locator(t("report-registered")).locator(".report-figure-value")).to_have_text("2")
        await expect(page.locator(t("report-unregistered")).locator(".report-figure-value")).to_have_text("2")
        await expect(page.locator(t("report-phone-contacts")).locator(".report-figure-value")).to_have_text("3")
        drawn = await chart_data(page)
        assert drawn["data"] == [[1, 1], [2, 0], [1, 2]]  # registered, not registered, phone contacts, per day
        assert drawn["width"] > 0 and drawn["height"] > 0
        calls = page.locator(f'{t("report-unregistered-calls")} tbody tr')
        await expect(calls).to_have_count(2)
        await expect(calls.nth(0)).to_contain_text(HOSTILE)  # the caller's name as text, never markup
        await expect(calls.nth(0)).to_contain_text("c2.wav")
        # The admin has no extension: "register now" opens the script on the panel of the agent who took the call.
        await expect(calls.nth(0).locator(t("report-register"))).to_be_enabled()
        await expect(calls.nth(0).locator(t("report-register"))).to_have_attribute(
            "title", "Откроет сценарий на панели оператора 101")
        csv = await page.locator(t("report-csv")).get_attribute("href")
        assert csv is not None and csv.startswith("/api/reports/registered?") and "format=csv" in csv

        # The funnel: all 4 → 3 → 3 → 2; the chart's primary and repeat bars.
        await page.click(t("report-tab-funnel"))
        await expect(page.locator(f'{t("report-body")}[data-report="funnel"][data-drawn="1"]')).to_be_visible()
        for key, value in (("contacts", "4"), ("request", "3"), ("booking", "3"), ("visit", "2")):
            await expect(page.locator(t(f"report-{key}")).locator(".report-figure-value")).to_have_text(value)
        assert (await chart_data(page))["data"] == [[3, 2, 2, 1], [1, 1, 1, 1]]

        # Contacts: 4, 3 primary and 1 repeat; three charts (by day, channel, client type).
        await page.click(t("report-tab-contacts"))
        await expect(page.locator(f'{t("report-body")}[data-report="contacts"][data-drawn="3"]')).to_be_visible()
        await expect(page.locator(t("report-repeat")).locator(".report-figure-value")).to_have_text("1")
        assert (await chart_data(page))["data"] == [[2, 1], [0, 1]]
        assert (await chart_data(page, 1))["data"] == [[3, 1]]  # phone, visit

        # Missed calls: 3 missed, 2 called back, the median 1202.5 s and p90 1805 s.
        await page.click(t("report-tab-missed"))
        await expect(page.locator(f'{t("report-body")}[data-report="missed"][data-drawn="1"]')).to_be_visible()
        await expect(page.locator(t("report-missed")).locator(".report-figure-value")).to_have_text("3")
        await expect(page.locator(t("report-callback-median")).locator(".report-figure-value")).to_have_text("20:03")
        await expect(page.locator(t("report-callback-p90")).locator(".report-figure-value")).to_have_text("30:05")
        assert (await chart_data(page))["data"] == [[2, 0], [0, 0], [0, 0], [0, 1]]
        assert log.unexpected_errors() == []
