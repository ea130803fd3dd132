"""Complaints at the panel in real Chromium, on a replayed call (issue 15's browser test).

Anna (agent 101) answers the recorded call of 79160001313, whom the directory knows (Зайцева Марина Игоревна, her
Kia Rio М 456 ОК 199). One click on «Жалоба» in the pop opens the registration form with the caller, her name, car and
plate filled in; Anna picks the type, types what happened and registers it. Олег, responsible for complaints by
default, sees the registration stage's task on his panel. Time passes on the desk's clock (injected, never slept) and
the escalation runs: the task is overdue, and the admin (a manager) sees it, in red, on the overdue list; he
reassigns the complaint to Дмитрий with a reason (holiday). Дмитрий sees the task on his panel, Олег no longer does;
Дмитрий opens the card, moves the complaint on to the review, and a move without the review's fields is refused with
the server's words next to the fields it names. The history keeps the reassignment and its reason.

The script's «Жалоба» route opens the same form, with what the agent typed in the script as the complaint's text.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from playwright.async_api import Browser, Locator, Page, expect

from cti.complaints import ComplaintFilter
from tests.browser.panel_browser import (
    KNOWN_CALLER,
    TRANSFER_CALLER,
    TRANSFER_TRACE,
    add_known_clients,
    log_in,
    new_page,
    t,
    wait_for_pop,
)
from tests.browser.test_contact_script import CUSTOMER_CHANNEL, SPEED, scripts_config
from tests.daemon.conftest import REPO, leg_event
from tests.panel_env import PanelEnv, panel_env
from ui_bridge.complaints import ComplaintDesk

#: ``[complaints]`` of the test: Олег answers for complaints unless registration names someone; the managers are the
#: admins (no ``managers`` list).
COMPLAINTS = 'default_responsible = "oleg"\n'
#: How far the desk's clock is moved: past the registration stage's deadline (24 h by default).
LATER = 2 * 86400


def desk_of(env: PanelEnv) -> ComplaintDesk:
    panel = env.running.daemon.panel
    assert panel is not None
    return panel.complaints


async def anna_talking(env: PanelEnv, browser: Browser) -> Page:
    """Anna logged in, the recorded call taken to her answer and held there."""
    page, _log = await new_page(browser)
    await log_in(page, env, "anna")
    await env.serve_through(leg_event("BridgeEnter", CUSTOMER_CHANNEL), "101 talking with the caller")
    await wait_for_pop(page, TRANSFER_CALLER, state="talking")
    return page


async def register_from_pop(page: Page, kind: str, text: str) -> Locator:
    """The pop's «Жалоба», the type and the text, «Зарегистрировать»: the form (closed again)."""
    await page.locator(t("call-pop")).locator(t("pop-complaint")).click()
    form = page.locator(t("complaint-register"))
    await expect(form).to_be_visible()
    await form.locator(t("complaint-field-type")).select_option(kind)
    await form.locator(t("complaint-field-comment")).fill(text)
    await form.locator(t("complaint-register-submit")).click()
    await expect(form).to_be_hidden()
    return form


async def add_plan_row(card: Locator, what: str, who: str) -> None:
    """A row of the action plan added in the card (today's date, 2 hours)."""
    rows = card.locator(t("complaint-plan-row"))
    before = await rows.count()
    await card.locator(t("complaint-plan-what")).fill(what)
    await card.locator(t("complaint-plan-who")).fill(who)
    await card.locator(t("complaint-plan-effort")).fill("2")
    await card.locator(t("complaint-plan-add")).click()
    await expect(rows).to_have_count(before + 1)


def task_of(page: Page, panel: str, number: str) -> Locator:
    return page.locator(t(panel)).locator(f'{t("complaint-task")}[data-number="{number}"]')


async def test_a_complaint_registered_from_the_call_reaches_the_responsible_goes_overdue_and_is_reassigned(
        browser: Browser) -> None:
    async with panel_env([TRANSFER_TRACE], sections={"complaints": COMPLAINTS}) as env:
        await add_known_clients(env)
        oleg, oleg_log = await new_page(browser)
        await log_in(oleg, env, "oleg")
        admin, admin_log = await new_page(browser)
        await log_in(admin, env, "admin")
        page = await anna_talking(env, browser)

        # One click in the pop: the form, the caller and the directory's client and car filled in, the type focused.
        pop = page.locator(t("call-pop"))
        await pop.locator(t("pop-complaint")).click()
        form = page.locator(t("complaint-register"))
        await expect(form).to_be_visible()
        await expect(form.locator(t("complaint-field-type"))).to_be_focused()
        await expect(form.locator(t("complaint-field-client_name"))).to_have_value(KNOWN_CALLER.name)
        await expect(form.locator(t("complaint-field-client_phone"))).to_have_value(TRANSFER_CALLER)
        await expect(form.locator(t("complaint-field-car"))).to_have_value("Kia Rio")
        await expect(form.locator(t("complaint-field-plate"))).to_have_value("М 456 ОК 199")
        # The type and the text: all the agent adds.
        await form.locator(t("complaint-field-type")).select_option("quality")
        await form.locator(t("complaint-field-comment")).fill("После ремонта стучит подвеска <b>справа</b>")
        await form.locator(t("complaint-register-submit")).click()
        await expect(form).to_be_hidden()
        toast = page.locator(t("toast")).filter(has_text="зарегистрирована")
        await expect(toast).to_be_visible()

        [kept] = await env.store.list_complaints(ComplaintFilter())
        assert (kept.type, kept.source, kept.responsible, kept.assignee, kept.stage) == (
            "quality", "call", "oleg", "oleg", "registration")
        assert (kept.client_name, kept.client_phone, kept.car, kept.plate) == (
            KNOWN_CALLER.name, TRANSFER_CALLER, "Kia Rio", "М 456 ОК 199")
        assert kept.comment == "После ремонта стучит подвеска <b>справа</b>"
        assert [(c.pbx, c.linkedid) for c in kept.calls] == [
            (await pop.get_attribute("data-pbx"), await pop.get_attribute("data-linkedid"))]
        await expect(toast).to_contain_text(kept.number)

        # The responsible's panel: the registration stage's task, with its deadline, not overdue yet.
        oleg_task = task_of(oleg, "complaint-mine", kept.number)
        await expect(oleg_task).to_have_count(1)
        await expect(oleg_task).to_have_attribute("data-overdue", "false")
        await expect(oleg_task.locator(t("complaint-task-stage"))).to_have_text("Регистрация")
        await expect(oleg_task.locator(t("complaint-task-due"))).to_contain_text("до ")
        # The caller's words are text, never markup.
        await expect(oleg_task).to_contain_text("<b>справа</b>")
        await expect(admin.locator(t("complaint-overdue")).locator(t("complaint-task"))).to_have_count(0)

        # Two days later on the desk's clock: the escalation finds the task overdue and tells the managers.
        desk = desk_of(env)
        now = time.time() + LATER
        desk.clock = lambda: now
        await desk.tick()
        overdue = task_of(admin, "complaint-overdue", kept.number)
        await expect(overdue).to_have_count(1)
        await expect(overdue).to_have_attribute("data-overdue", "true")
        await expect(overdue.locator(t("complaint-task-late"))).to_be_visible()
        await expect(overdue.locator(t("complaint-task-assignee"))).to_contain_text("Олег Петров")

        # The manager reassigns it (holiday): to Дмитрий, with the reason.
        dmitry, dmitry_log = await new_page(browser)
        await log_in(dmitry, env, "dmitry")
        await expect(dmitry.locator(t("complaint-mine"))).to_have_attribute("data-count", "0")
        await overdue.locator(t("complaint-reassign")).click()
        dialog = admin.locator(t("complaint-reassign-dialog"))
        await expect(dialog).to_be_visible()
        await dialog.locator(t("complaint-reassign-submit")).click()  # nobody chosen, no reason: refused here
        await expect(dialog.locator(f'{t("complaint-field-error")}[data-field="reason"]')).to_be_visible()
        await dialog.locator(t("complaint-reassign-to")).select_option("dmitry")
        await dialog.locator(t("complaint-reassign-reason")).fill("Олег в отпуске")
        await dialog.locator(t("complaint-reassign-submit")).click()
        await expect(dialog).to_be_hidden()
        await expect(admin.locator(t("toast")).filter(has_text="переназначена")).to_be_visible()

        # The new assignee sees it on his panel; the old one no longer does; the overdue list names Дмитрий.
        dmitry_task = task_of(dmitry, "complaint-mine", kept.number)
        await expect(dmitry_task).to_have_count(1)
        await expect(dmitry_task).to_have_attribute("data-overdue", "true")  # the stage's deadline stays
        await expect(task_of(oleg, "complaint-mine", kept.number)).to_have_count(0)
        await expect(overdue.locator(t("complaint-task-assignee"))).to_contain_text("Дмитрий Соколов")
        moved = await env.store.get_complaint(kept.id)
        assert (moved.responsible, moved.assignee) == ("dmitry", "dmitry")
        [reassigned] = [i for i in await env.store.complaint_history(kept.id) if i.action == "reassigned"]
        assert (reassigned.by, reassigned.details["reason"]) == ("admin", "Олег в отпуске")

        # Дмитрий opens the card and moves it on; the review refuses to be left without its fields, saying which.
        await dmitry_task.locator(t("complaint-open")).click()
        card = dmitry.locator(t("complaint-card"))
        await expect(card).to_be_visible()
        await expect(card.locator(t("complaint-card-number"))).to_contain_text(kept.number)
        await expect(card.locator(f'{t("complaint-history-item")}[data-action="reassigned"]')).to_contain_text(
            "Олег в отпуске")
        await card.locator(t("complaint-next")).click()
        await expect(card).to_have_attribute("data-stage", "review")
        await expect(card.locator(t("complaint-missing"))).to_contain_text("Описание")
        await card.locator(t("complaint-next")).click()
        refused = card.locator(f'{t("complaint-field-error")}[data-field="description"]')
        await expect(refused).to_be_visible()
        await expect(refused).to_have_text("Описание")
        assert (await env.store.get_complaint(kept.id)).stage == "review"
        # Filled in: the description, a row of the plan, a photo (uploaded, then downloaded back by its link); on to
        # the justification.
        await card.locator(t("complaint-field-description")).fill("Стук на неровностях справа спереди")
        await add_plan_row(card, "Пробная поездка с клиентом", "Дмитрий")
        photo = REPO / "docs" / "screenshots" / "agent-panel.png"
        await card.locator(t("complaint-file-input")).set_input_files(str(photo))
        link = card.locator(t("complaint-file")).locator(t("complaint-file-link"))
        await expect(link).to_have_text("agent-panel.png")
        async with dmitry.expect_download() as downloading:
            await link.click()
        download = await downloading.value
        assert await asyncio.to_thread(Path(await download.path()).read_bytes) == photo.read_bytes()
        await card.locator(t("complaint-next")).click()
        await expect(card).to_have_attribute("data-stage", "justification")
        stored = await env.store.get_complaint(kept.id)
        assert (stored.stage, stored.fields["description"]) == ("justification", "Стук на неровностях справа спереди")
        assert [(r.what, r.who, r.effort_hours) for r in stored.action_plan] == [
            ("Пробная поездка с клиентом", "Дмитрий", 2.0)]
        assert [a.file_name for a in stored.attachments] == ["agent-panel.png"]

        for log in (oleg_log, admin_log):
            assert not log.unexpected_errors(), log.errors
        # Дмитрий's console names the refused move's 422 (the browser logs every 4xx): nothing else.
        assert [e for e in dmitry_log.unexpected_errors() if "422" not in e] == [], dmitry_log.errors


async def test_the_scripts_complaint_route_opens_the_form_with_the_typed_text(browser: Browser) -> None:
    async with panel_env([TRANSFER_TRACE], speed=SPEED, replay_options={"live": True},
                         sections={**scripts_config(), "complaints": COMPLAINTS}) as env:
        page = await anna_talking(env, browser)
        run = page.locator(t("script-run"))
        await run.locator(f'{t("script-option")}[data-value="complaint"]').click()
        await expect(run.locator(f'{t("script-step-title")}[data-step="complaint"]')).to_be_visible()
        await run.locator(t("script-field-what")).fill("Машину вернули грязной")
        await run.locator(t("script-complaint")).click()
        form = page.locator(t("complaint-register"))
        await expect(form).to_be_visible()
        await expect(form.locator(t("complaint-field-comment"))).to_have_value("Машину вернули грязной")
        await expect(form.locator(t("complaint-field-client_phone"))).to_have_value(TRANSFER_CALLER)
        await form.locator(t("complaint-field-type")).select_option("quality")
        await form.locator(t("complaint-register-submit")).click()
        await expect(form).to_be_hidden()
        [kept] = await env.store.list_complaints(ComplaintFilter())
        assert (kept.source, kept.comment, kept.responsible) == ("call", "Машину вернули грязной", "oleg")
        # The script goes on as before: its step still there, the text kept.
        await expect(run.locator(t("script-field-what"))).to_have_value("Машину вернули грязной")

