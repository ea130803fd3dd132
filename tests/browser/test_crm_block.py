"""The admin's «CRM» block (issue 16, ``docs/crm.md#watching-the-push``), in a real Chromium against the whole system.

A daemon pushes a replayed call to a webhook receiver (``tests/crm/webhook_server.py``) that is down at first: the
block shows the call's events waiting, the lag and the network's error. The receiver comes back refusing the
ringing event (400): the block shows it given up, with the receiver's answer. The receiver then takes everything,
and «Повторить» puts the request back: it is delivered, and the block shows nothing given up. An admin of a daemon
without a CRM sees no block at all.
"""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.browser.panel_browser import log_in, new_page, t
from tests.crm.local_server import LocalServer
from tests.crm.webhook_server import PATH, Answer, WebhookReceiver
from tests.panel_env import panel_env

SECRET = "browser-crm-secret"
TRACE = "01-direct-answered"


async def test_a_crm_down_then_refusing_shows_in_the_block_and_retry_delivers(browser: Browser) -> None:
    receiver = WebhookReceiver(SECRET, refuse=lambda body: (Answer(400, body='{"error": "unknown line"}')
                                                            if body["event"] == "ringing" else None))
    server = LocalServer(receiver.app)
    await server.start()
    await server.stop()  # down: connections refused, the port kept for later
    sections = {"crm": "retry_first_seconds = 0.2\nretry_factor = 1.0\nretry_max_seconds = 0.2",
                "crm.webhook": f'url = "{server.url}{PATH}"\nsecret = "{SECRET}"'}
    try:
        async with panel_env([TRACE], speed=0, sections=sections) as env:
            admin, log = await new_page(browser)
            await log_in(admin, env, "admin")
            block = admin.locator(t("crm-block"))
            await expect(block).to_be_visible()
            row = block.locator(f'{t("crm-row")}[data-crm="webhook"]')
            await expect(row).to_contain_text("вебхук")
            await expect(row.locator(t("crm-pending"))).to_have_text("в очереди 0")
            await expect(row.locator(t("crm-lag"))).to_have_text("без задержки")

            # Down: the call's events wait, with the lag and why.
            env.start_calls()
            await expect(row.locator(t("crm-pending"))).not_to_have_text("в очереди 0")
            await expect(row.locator(t("crm-lag"))).to_contain_text("задержка ")
            await expect(row.locator(t("crm-last-error"))).to_contain_text("последняя ошибка: ")
            await expect(row.locator(t("crm-last-error"))).to_contain_text("cannot connect")

            # Back, refusing the ringing: given up, shown with the receiver's answer.
            await server.start()
            await expect(row.locator(t("crm-pending"))).to_have_text("в очереди 0")
            await expect(row).to_have_attribute("data-failed", "1")
            await expect(row.locator(t("crm-failed"))).to_have_text("не отправлено 1")
            await expect(row).to_have_class("crm-row crm-trouble")
            request = block.locator(t("crm-request"))
            await expect(request).to_have_count(1)
            await expect(request.locator(t("crm-request-kind"))).to_have_text("event")
            await expect(request.locator(t("crm-request-error"))).to_contain_text("HTTP 400")
            await expect(request.locator(t("crm-request-error"))).to_contain_text("unknown line")
            assert [e["event"] for e in receiver.events] == ["answered", "ended"]

            # Taking everything now: «Повторить» puts it back, it is delivered, nothing is left given up.
            receiver.refuse = None
            await request.locator(t("crm-retry")).click()
            await expect(admin.locator(t("toast")).filter(has_text="Запрос снова в очереди")).to_be_visible()
            await expect(row).to_have_attribute("data-failed", "0")
            await expect(block.locator(t("crm-request"))).to_have_count(0)
            await expect(row.locator(t("crm-sent"))).to_have_text("отправлено 3")
            assert [e["event"] for e in receiver.events] == ["answered", "ended", "ringing"]
            assert not log.unexpected_errors(), log.errors
    finally:
        await server.stop()


async def test_no_crm_configured_no_block(browser: Browser) -> None:
    async with panel_env([TRACE]) as env:
        admin, log = await new_page(browser)
        await log_in(admin, env, "admin")
        block = admin.locator(t("crm-block"))
        await expect(block).to_have_attribute("data-loaded", "true")
        await expect(block).to_be_hidden()
        assert not log.unexpected_errors(), log.errors
