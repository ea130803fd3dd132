"""The QA page in a real browser: a QA user opens a call from the journal, plays it and watches the highlighted word
advance, clicks a word and the player seeks there (the Range request seen on the wire), finds the call by a word of
its transcript, scores it and sees the score in the per-agent report; an agent is refused the page and the audio.

The call is scenario 34's split recording (its real files, read where they are); its transcript is a real Vosk run
(the installed Korean model: it proves the pipeline, not Russian accuracy) on those files, stored as the
transcription service stores one. Nothing here writes a word by hand: the words the test looks for are the model's.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Request, expect

from cti.transcripts import Transcript
from recognizer.audio import load_call_audio
from recognizer.vosk_engine import VoskEngine
from tests.browser.panel_browser import STEP_MS, log_in, new_page, t
from tests.panel_env import panel_env
from tests.speech import ko_model_dir
from tests.ui_bridge.qa_calls import AGENT, LINKEDID, RECORDINGS, SOURCES, TRACE, qa_panel


def transcribe() -> Transcript:
    """A real Vosk run on the call's files (the model loaded once, here: this is its only test)."""
    return VoskEngine(ko_model_dir()).transcribe(load_call_audio(SOURCES, lambda name: RECORDINGS / name))


async def test_a_qa_user_replays_searches_and_scores_a_call_and_an_agent_is_refused(browser: Browser) -> None:
    transcript = await asyncio.to_thread(transcribe)
    words = transcript.words
    assert {w.speaker for w in words} == {"agent", "customer"}, "both sides spoke"
    async with qa_panel(transcript) as (env, record):

        page, log = await new_page(browser)
        audio_requests: list[Request] = []
        page.on("request", lambda r: audio_requests.append(r) if "/audio/" in r.url else None)
        await log_in(page, env, "qa")

        # The journal's row links to the call on the QA page.
        link = page.locator(f'{t("journal-row")}[data-linkedid="{LINKEDID}"]').locator(t("journal-qa"))
        await expect(link).to_have_count(1)
        href = await link.get_attribute("href")
        assert href == f"/qa#call=main%2F{LINKEDID}"
        await page.goto(env.url + href)
        call = page.locator(f'{t("qa-call")}[data-linkedid="{LINKEDID}"]')
        await expect(call).to_be_visible()
        word_els = page.locator(t("qa-word"))
        await expect(word_els).to_have_count(len(words))
        await expect(page.locator(t("qa-lane-agent")).first).to_contain_text(words[0].text)
        customer = [i for i, w in enumerate(words) if w.speaker == "customer"]
        await expect(page.locator(t("qa-lane-customer")).first).to_contain_text(words[customer[0]].text)
        await expect(page.locator(f'{t("qa-waveform")}[data-drawn="1"]')).to_be_visible()

        # Play: the highlighted word advances with the sound.
        audio = page.locator(t("qa-audio"))
        await audio.evaluate("a => a.play()")
        current = page.locator(f'{t("qa-word")}[data-current="1"]')
        await expect(current).to_have_count(1)
        first = int(await current.get_attribute("data-index") or -1)
        await page.wait_for_function("""(first) => {
            const word = document.querySelector('[data-test="qa-word"][data-current="1"]');
            return word !== null && Number(word.dataset.index) >= first + 2;
        }""", arg=first, timeout=STEP_MS)  # polled every frame: a word is highlighted for a fraction of a second
        playing = [r for r in audio_requests if r.headers.get("range")]
        assert playing, "the player asked for the audio by HTTP Range"
        response = await playing[0].response()
        assert response is not None and response.status == 206

        # A click on a word (the customer's last) seeks there and plays from it.
        target = customer[-1]
        await audio.evaluate("a => a.pause()")
        await word_els.nth(target).click()
        position = await audio.evaluate("a => a.currentTime")
        assert words[target].start - 0.05 <= position <= words[target].start + 1.0, position
        await expect(page.locator(f'{t("qa-word")}[data-current="1"][data-index="{target}"]')).to_have_count(1)
        await audio.evaluate("a => a.pause()")

        # A search for one of the transcript's words finds the call and opens it at that moment.
        sought = max((w for w in words if w.speaker == "customer"), key=lambda w: len(w.text))
        await page.fill(t("qa-q"), sought.text)
        await page.click(t("qa-search-submit"))
        hit = page.locator(f'{t("qa-hit")}[data-linkedid="{LINKEDID}"]')
        await expect(hit).to_have_count(1)
        assert abs(float(await hit.get_attribute("data-at") or -1) - sought.start) < 0.01
        await hit.click()
        await page.wait_for_function(
            f"() => Math.abs(document.querySelector('[data-test=\"qa-audio\"]').currentTime - {sought.start}) < 0.3",
            timeout=STEP_MS)

        # A score: greeting yes, booking 2 of 2, the rest no: (1 + 2×2) of 7 = 71.4 %.
        await page.locator(f'{t("qa-answer")}[data-key="greeting"]').check()
        await page.locator(f'{t("qa-answer")}[data-key="booking"]').select_option("2")
        await expect(page.locator(t("qa-score-total"))).to_have_attribute("data-points", "5")
        await page.click(t("qa-score-save"))
        await expect(page.locator(t("qa-score"))).to_have_count(1)
        await expect(page.locator(t("qa-score"))).to_contain_text("qa: 5 из 7 (71,4 %)")
        # ... and the per-agent report has it (the days around the call's, in the site's zone).
        day = datetime.fromtimestamp(record.started_at, ZoneInfo("Europe/Moscow")).date()
        await page.fill(t("qa-report-since"), (day - timedelta(days=1)).isoformat())
        await page.fill(t("qa-report-until"), (day + timedelta(days=1)).isoformat())
        await page.click(t("qa-report-show"))
        row = page.locator(f'{t("qa-report-row")}[data-agent="{AGENT}"]')
        await expect(row.locator(t("qa-report-average"))).to_have_text("71,4")
        await expect(row).to_contain_text("Олег Петров")
        assert log.unexpected_errors() == []

        # An agent: the page and the audio are refused.
        agent_page, _ = await new_page(browser)
        await log_in(agent_page, env, "anna")
        refused = await agent_page.goto(env.url + "/qa")
        assert refused is not None and refused.status == 403
        audio_url = f"{env.url}/api/calls/main/{LINKEDID}/audio/0"
        answer = await agent_page.request.get(audio_url)
        assert answer.status == 403 and "QA and admins" in (await answer.json())["error"]["message"]
        assert await agent_page.locator(t("journal-qa")).count() == 0


async def test_the_top_bar_leads_qa_users_and_admins_to_the_qa_page_and_shows_agents_no_link(browser: Browser) -> None:
    async with panel_env([TRACE]) as env:
        for user in ("qa", "admin"):
            page, log = await new_page(browser)
            await log_in(page, env, user)
            link = page.locator("header.topbar").locator(t("topbar-qa"))
            await expect(link).to_have_text("Оценка разговоров")
            await link.click()
            await expect(page).to_have_url(env.url + "/qa")
            await expect(page.locator(t("qa-q"))).to_be_visible()
            await page.click(t("qa-back"))  # and back to the live panel
            await expect(page.locator(f'{t("conn-status")}[data-status="online"]')).to_be_visible()
            assert log.unexpected_errors() == []
        agent_page, _ = await new_page(browser)
        await log_in(agent_page, env, "anna")
        await expect(agent_page.locator(t("user-name"))).to_be_visible()
        assert await agent_page.locator(t("topbar-qa")).count() == 0
