"""The reference web panel in a real browser, against the whole system (replay PBX → daemon → panel).

Each test logs in through the login form like a person would, then watches a recorded call arrive.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from playwright.async_api import Browser, expect

from tests.browser.panel_browser import (
    ABANDON_CALLER,
    ABANDON_TRACE,
    TRANSFER_CALLER,
    TRANSFER_TRACE,
    blind_transfer,
    close_missed,
    customer_channel,
    log_in,
    new_page,
    shown,
    t,
    wait_for_missed,
    wait_for_pop,
)
from tests.daemon.conftest import leg_event
from tests.panel_env import panel_env


async def test_agent_pop_then_blind_transfer_redirects_the_customer(browser: Browser, tmp_path: Path) -> None:
    customer = customer_channel(TRANSFER_TRACE, "101")
    async with panel_env([TRANSFER_TRACE], speed=0) as env:
        page, log = await new_page(browser)
        await log_in(page, env, "anna")
        await expect(page.locator(t("user-extension"))).to_have_text("доб. 101")
        await expect(page.locator(t("pop-idle"))).to_be_visible()
        # An agent gets no call control over other people's calls and no admin boards.
        await expect(page.locator(t("missed-register"))).to_have_count(0)
        await expect(page.locator(t("call-board"))).to_have_count(0)

        # The pause toggle asks the PBX to pause anna's queue membership.
        await page.select_option(t("pause-reason"), "lunch")
        await page.click(t("pause-toggle"))
        await env.wait_for(lambda: any(a.message.action == "QueuePause" for a in env.replay.received_actions), 5)
        pause = next(a.message for a in env.replay.received_actions if a.message.action == "QueuePause")
        assert pause.get("Interface") == "PJSIP/101"
        assert pause.get("Paused").lower() == "true"

        # The PBX is taken to anna's answer and held there (actions are still answered): the recording's own
        # transfer, a few events later, would otherwise end anna's leg before the test clicks.
        await env.serve_through(leg_event("BridgeEnter", "PJSIP/101-"), "anna's answer")
        pop = await wait_for_pop(page, TRANSFER_CALLER, state="talking")
        await expect(pop.locator(t("pop-caller-name"))).to_have_text("Зайцева Марина")
        await expect(pop.locator(t("pop-called"))).to_have_text("+7 495 000-01-01")  # the DID, formatted
        await expect(pop.locator(t("call-state"))).to_have_text("Разговор")
        await expect(page.locator(t("my-state"))).to_have_attribute("data-state", "in_call")
        assert log.of_type("call.ringing"), "the pop must come from call.ringing"
        await page.screenshot(path=str(tmp_path / "agent-pop.png"))

        before = len(env.replay.received_actions)
        await blind_transfer(page, pop, "104")
        await env.wait_for(lambda: any(a.message.action == "Redirect" for a in env.replay.received_actions[before:]),
                           5, "a Redirect action")
        redirects = [a.message for a in env.replay.received_actions[before:] if a.message.action == "Redirect"]
        assert len(redirects) == 1
        assert redirects[0].get("Channel") == customer
        assert redirects[0].get("Exten") == "104"

        # The PBX carries on: anna's leg ends and her pop closes.
        env.replay.resume()
        await expect(page.locator(t("call-pop"))).to_have_count(0)
        await expect(page.locator(t("pop-idle"))).to_be_visible()
        assert not log.unexpected_errors()


async def test_admin_closes_an_abandoned_queue_call_with_a_comment(browser: Browser, tmp_path: Path) -> None:
    comment = "перезвонили, записан на ТО"
    async with panel_env([ABANDON_TRACE], speed=0) as env:
        page, log = await new_page(browser)
        await log_in(page, env, "admin")
        await expect(page.locator(t("missed-register"))).to_be_visible()
        await expect(page.locator(t("missed-row"))).to_have_count(0)

        # The live call board: the queue call rings three agents at once (the PBX held there).
        await env.serve_through(leg_event("Newstate", "PJSIP/105-", "Ringing"), "the queue ringing its third agent")
        board = page.locator(t("board-row"))
        await expect(board).to_have_count(1)
        await expect(board).to_contain_text(shown(ABANDON_CALLER))
        await expect(board.locator(".chip.leg-ringing")).to_have_count(3)
        await expect(page.locator(t("agent-row"))).not_to_have_count(0)

        # The caller gives up: the call leaves the board and enters the register, live.
        env.start_calls()
        row = await wait_for_missed(page, ABANDON_CALLER)
        await expect(board).to_have_count(0)
        await expect(row.locator(t("missed-callback"))).to_be_enabled()
        await page.screenshot(path=str(tmp_path / "admin-register.png"))

        # "Call back": the admin has no extension, so the panel asks for one, then originates from it.
        await row.locator(t("missed-callback")).click()
        ask = page.locator(t("callback-dialog"))
        await expect(ask).to_be_visible()
        await ask.locator(t("callback-extension")).fill("104")
        await ask.locator(t("callback-extension-save")).click()
        await env.wait_for(lambda: any(a.message.action == "Originate" for a in env.replay.received_actions), 5)
        originate = next(a.message for a in env.replay.received_actions if a.message.action == "Originate")
        assert originate.get("Channel") == "PJSIP/104"
        assert originate.get("Exten") == ABANDON_CALLER
        await expect(page.locator(t("callback-extension-change"))).to_contain_text("104")

        missed_id = await close_missed(page, row, comment)
        entry = await env.store.get_missed(missed_id)
        assert (entry.status, entry.closed_by, entry.comment) == ("closed", "manual", comment)
        assert any(f["entry"]["id"] == missed_id for f in log.of_type("missed.new"))
        assert any(f["entry"]["id"] == missed_id and f["entry"]["status"] == "closed"
                   for f in log.of_type("missed.updated")), "the server must broadcast missed.updated"

        # After a reload the register comes from GET /api/missed?status=open: still gone.
        await page.reload()
        await expect(page.locator(f'{t("conn-status")}[data-status="online"]')).to_be_visible()
        await expect(page.locator(t("missed-register")).locator("tr.empty")).to_be_visible()
        await expect(page.locator(t("missed-row"))).to_have_count(0)
        # The journal shows the missed call too.
        await expect(page.locator(t("journal-row")).filter(has_text=shown(ABANDON_CALLER))).to_have_count(1)
        assert not log.unexpected_errors()


async def test_a_login_returns_to_the_page_that_asked_for_it_and_never_to_another_site(browser: Browser) -> None:
    async with panel_env([TRANSFER_TRACE]) as env:
        page, log = await new_page(browser)
        # The QA page and the wallboard, opened without a login, come back to themselves after it.
        for where in ("/qa", "/wallboard"):
            await page.goto(env.url + where)
            await expect(page).to_have_url(f"{env.url}/login?next={where}")
            await page.fill(t("login-name"), "qa")
            await page.fill(t("login-password"), env.users["qa"][0])
            await page.click(t("login-submit"))
            await expect(page).to_have_url(env.url + where)
            await page.goto("about:blank")  # the page's socket closing on logout would send it to the login form
            await page.context.clear_cookies()
        # A ``next`` that names another site (an open redirect) is ignored: the login goes to the panel.
        for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            await page.goto(env.url + "/login?next=" + quote(elsewhere, safe=""))
            await page.fill(t("login-name"), "qa")
            await page.fill(t("login-password"), env.users["qa"][0])
            await page.click(t("login-submit"))
            await expect(page).to_have_url(env.url + "/")
            await page.goto("about:blank")  # the panel's socket closing would send it to the login form meanwhile
            await page.context.clear_cookies()
        assert not log.unexpected_errors(), log.errors


async def test_wrong_password_stays_on_login_and_anonymous_index_goes_to_login(browser: Browser) -> None:
    async with panel_env([TRANSFER_TRACE]) as env:
        page, _log = await new_page(browser)
        await page.goto(env.url + "/")
        await expect(page).to_have_url(env.url + "/login")
        await expect(page.locator(t("login-error"))).to_be_hidden()

        await page.fill(t("login-name"), "anna")
        await page.fill(t("login-password"), "not-her-password")
        await page.click(t("login-submit"))
        error = page.locator(t("login-error"))
        await expect(error).to_be_visible()
        await expect(error).to_have_text("Неверное имя пользователя или пароль.")
        await expect(page).to_have_url(env.url + "/login")
        assert all(c.get("name") != "cti_session" for c in await page.context.cookies())

        # The API refuses too, and the panel page sends an anonymous visitor to the login form.
        response = await page.request.get(env.url + "/api/me")
        assert response.status == 401
        await page.goto(env.url + "/")
        await expect(page).to_have_url(env.url + "/login")
        await expect(page.locator(t("login-form"))).to_be_visible()

        # Logging in and out again ends on the login page as well.
        await log_in(page, env, "qa")
        await expect(page.locator(t("journal"))).to_be_visible()
        await expect(page.locator(t("call-board"))).to_have_count(0)
        # QA reads the missed-call register, without a control (docs/panel.md).
        await expect(page.locator(t("missed-register"))).to_have_attribute("data-readonly", "1")
        await page.click(t("logout"))
        await expect(page).to_have_url(env.url + "/login")
        await page.goto(env.url + "/")
        await expect(page).to_have_url(env.url + "/login")

        # Guessing (last: it locks this address out): after a few failures the server answers 429 and the
        # form says how long to wait, with the button held until then.
        await page.fill(t("login-name"), "oleg")
        for _ in range(10):
            await page.fill(t("login-password"), "guess-guess")
            await page.click(t("login-submit"))
            await expect(error).to_be_visible()
            if "Попробуйте через" in (await error.inner_text()):
                break
        await expect(error).to_contain_text("Слишком много неудачных попыток")
        await expect(page.locator(t("login-submit"))).to_be_disabled()
        await expect(page).to_have_url(env.url + "/login")


async def test_panel_reconnects_when_dropped_and_returns_to_login_on_1008(browser: Browser) -> None:
    async with panel_env([TRANSFER_TRACE]) as env:
        page, log = await new_page(browser)
        await log_in(page, env, "oleg")
        assert len(log.of_type("hello")) == 1
        panel = env.running.daemon.panel
        assert panel is not None

        # Too slow (1013): the panel reconnects by itself and gets a fresh hello and state.
        panel.hub.drop(next(iter(panel.hub.clients)), 1013, "too slow: reconnect")
        await env.wait_for(lambda: len(log.of_type("hello")) == 2, 10, "a second hello")
        await expect(page.locator(f'{t("conn-status")}[data-status="online"]')).to_be_visible()
        await expect(page).to_have_url(env.url + "/")

        # Not allowed (1008): back to the login form, which says why and does not bounce back.
        await env.wait_for(lambda: len(panel.hub.clients) == 1, 5, "the new connection")
        panel.hub.drop(next(iter(panel.hub.clients)), 1008, "logged out")
        await expect(page).to_have_url(env.url + "/login?reason=closed")
        await expect(page.locator(t("login-error"))).to_contain_text("Войдите снова")
        await page.wait_for_timeout(300)
        await expect(page).to_have_url(env.url + "/login?reason=closed")
        assert not log.unexpected_errors()
