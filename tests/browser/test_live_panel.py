"""Live audio in the panel (issue 17), in a real browser against the whole system (replay PBX → daemon → panel).

The agent reads the call as it is said (partials in grey replaced by finals, who said what, scrolled to the newest)
and answers «Это …?»; the supervisor opens a call on the board to read it live, sees a live keyword flag with the
alerts' sound and clicks «Слушать», which reaches the PBX as an ``Originate`` running ``ChanSpy``.

What is real and what is not: the PBX (the replay over TCP), the daemon, its hub and fan-out, the WebSocket, the
requests (``identify.confirm``/``identify.dismiss``/``listen_in`` through the daemon's live desk, the store, the
AMI action the replay PBX receives) and Chromium are real. The words are not heard: no audio is tapped here (the
SIP/RTP path and the recogniser are tested in tests/live/). The test builds each message the way the daemon's live
taps do (``Messages.transcript_part`` / ``call_flagged_live`` / ``call_identify`` on the call's own context from
the daemon's model) and publishes it on the daemon's fan-out, as ``companion/live/manager.py`` does. The daemon's
live desk is wired as ``Daemon._build_live`` wires it, without the SIP endpoint and the recognisers that
``[live] enabled`` would start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from playwright.async_api import Browser, Locator, Page, expect

from cti.directory import Contact
from cti.effects import CallContext
from cti.keywords import KeywordMatch
from cti.live import Lane, LiveResult, LiveWord
from cti.speech_identify import Evidence, Offer
from store.repository import User
from tests.browser.panel_browser import (
    KNOWN_CALLER,
    OTHER_CLIENT,
    TRANSFER_CALLER,
    TRANSFER_TRACE,
    PageLog,
    add_known_clients,
    log_in,
    new_page,
    t,
    wait_for_pop,
)
from tests.daemon.conftest import leg_event
from tests.panel_env import PanelEnv, panel_env
from ui_bridge.auth import hash_password
from ui_bridge.live_desk import LiveDesk

#: A supervisor with a phone of their own (``listen_in`` rings it); the panel_env's "admin" has none.
BOSS = ("boss", "boss-password-1", "110", "Начальник смены")
#: What a hostile (or broken) transcript may carry: markup, a right-to-left override, a line with no end.
MARKUP = '<img src=x onerror="window.__pwned=1"><b>жирный</b>'
RTL = "\u202eабв 123\u202c конец"
HUGE = "я" * 100_000


def wire_live_desk(env: PanelEnv) -> None:
    """The daemon's live requests, as ``Daemon._build_live`` wires them (here without a SIP tap or recognisers)."""
    daemon = env.running.daemon
    panel = daemon.panel
    assert panel is not None
    desk = LiveDesk(daemon.pbx_handles(), panel.notifier, panel.fanout, daemon.cards, lambda: daemon.store,
                    send=panel.commands.send)
    panel.commands.live = desk.request


def context(env: PanelEnv, linkedid: str) -> CallContext:
    call = env.running.daemon.pbx_handles()["main"].calls.get(linkedid)
    assert call is not None, f"call {linkedid} is not up"
    return call


def say(env: PanelEnv, linkedid: str, lane: Lane, text: str, start: float, *, final: bool) -> None:
    """A lane's partial or final, published as the live taps publish it."""
    panel = env.running.daemon.panel
    assert panel is not None
    words = text.split() or [text]
    step = 0.3
    result = LiveResult(lane=lane, final=final, text=text,
                        words=tuple(LiveWord(w, start + i * step, start + (i + 1) * step, 0.9)
                                    for i, w in enumerate(words[:50])),
                        start=start, end=start + step * min(len(words), 50))
    out = panel.notifier.messages.transcript_part(context(env, linkedid), result)
    panel.fanout.publish(out.message, out.extensions, out.pbx)


def offer(env: PanelEnv, linkedid: str, contact: Contact, said: str) -> None:
    """«Это …?» for ``contact``, from a plate heard, published as the live taps publish it."""
    panel = env.running.daemon.panel
    assert panel is not None and contact.id is not None
    evidence = Evidence(kind="plate", said=said, key=said.replace(" ", ""), confidence=0.93, speaker="customer",
                        words=(0, 1, 2), shared=1)
    out = panel.notifier.messages.call_identify(context(env, linkedid),
                                                Offer(contact.id, contact.name, 0.93, (evidence,)), contact)
    panel.fanout.publish(out.message, out.extensions, out.pbx)


def flag(env: PanelEnv, linkedid: str, matches: Sequence[KeywordMatch]) -> None:
    panel = env.running.daemon.panel
    assert panel is not None
    out = panel.notifier.messages.call_flagged_live(context(env, linkedid), matches)
    panel.fanout.publish(out.message, out.extensions, out.pbx)


def fin(who: str, text: str) -> tuple[str, str, str]:
    """A final line as shown: (kind, who, text)."""
    return ("live-final", who, text)


def par(who: str, text: str) -> tuple[str, str, str]:
    """A partial line as shown (grey, replaced as it grows)."""
    return ("live-partial", who, text)


async def lines_of(box: Locator) -> list[tuple[str, str, str]]:
    """(kind, who, text) of each line of a transcript box, top to bottom."""
    rows = box.locator("li.live-line")
    out = []
    for i in range(await rows.count()):
        row = rows.nth(i)
        kind = (await row.get_attribute("data-test")) or ""
        who = await row.locator(t("live-who")).inner_text()
        out.append((kind, who, await row.locator(t("live-text")).inner_text()))
    return out


async def expect_lines(box: Locator, expected: list[tuple[str, str, str]]) -> None:
    await expect(box.locator("li.live-line")).to_have_count(len(expected))
    await expect(box.locator(t("live-text"))).to_have_text([text for _, _, text in expected])
    assert await lines_of(box) == expected


async def anna_talking(env: PanelEnv, browser: Browser) -> tuple[Page, PageLog, Locator, str]:
    page, log = await new_page(browser)
    await log_in(page, env, "anna")
    await env.serve_through(leg_event("BridgeEnter", "PJSIP/101-"), "anna's answer")  # held: the call stays up
    pop = await wait_for_pop(page, TRANSFER_CALLER)
    linkedid = await pop.get_attribute("data-linkedid")
    assert linkedid
    return page, log, pop, linkedid


async def test_the_agent_reads_the_call_as_it_is_said_and_answers_this_is(browser: Browser) -> None:
    async with panel_env([TRANSFER_TRACE], speed=4) as env:
        _zaitseva, petrov = await add_known_clients(env)
        wire_live_desk(env)
        page, log, pop, linkedid = await anna_talking(env, browser)
        box = pop.locator(t("live-transcript"))
        await expect(box).to_have_count(0)  # nothing said yet: no empty box in the pop

        # The customer's utterance grows as a grey partial, replaced in place, never duplicated.
        say(env, linkedid, "customer", "у меня", 3.2, final=False)
        await expect_lines(box, [par("Клиент", "у меня")])
        say(env, linkedid, "customer", "у меня машина", 3.2, final=False)
        await expect_lines(box, [par("Клиент", "у меня машина")])
        grey = box.locator(t("live-partial")).locator(t("live-text"))
        assert await grey.evaluate("e => getComputedStyle(e).fontStyle") == "italic"

        # The agent's final (said before): a line above the customer's partial, which stays the last line.
        say(env, linkedid, "agent", "слушаю вас", 0.4, final=True)
        await expect_lines(box, [fin("Оператор", "слушаю вас"), par("Клиент", "у меня машина")])
        # The customer's final replaces their partial.
        say(env, linkedid, "customer", "у меня машина не заводится", 3.2, final=True)
        await expect_lines(box, [fin("Оператор", "слушаю вас"), fin("Клиент", "у меня машина не заводится")])
        # A final that settled later but was said earlier goes where it was said; a mixed lane is «Речь».
        say(env, linkedid, "agent", "компания слушает", 1.5, final=True)
        say(env, linkedid, "mixed", "алло алло", 6.0, final=True)
        await expect_lines(box, [fin("Оператор", "слушаю вас"), fin("Оператор", "компания слушает"),
                                 fin("Клиент", "у меня машина не заводится"), fin("Речь", "алло алло")])

        # A long call: the list scrolls, and keeps the newest line in sight.
        for i in range(40):
            say(env, linkedid, "customer" if i % 2 else "agent", f"реплика номер {i}", 10.0 + i, final=True)
        await expect(box.locator(t("live-final"))).to_have_count(44)
        last = box.locator(t("live-final")).last
        await expect(last).to_contain_text("реплика номер 39")
        await expect(last).to_be_in_viewport()
        lines = box.locator(t("live-lines"))
        assert await lines.evaluate("l => l.scrollHeight > l.clientHeight + 50")  # it did overflow
        assert await lines.evaluate("l => l.scrollTop + l.clientHeight >= l.scrollHeight - 2")

        # Hostile text is text: no markup, a right-to-left override kept inside its line, an endless line cut.
        say(env, linkedid, "customer", MARKUP, 60.0, final=True)
        say(env, linkedid, "customer", RTL, 61.0, final=True)
        say(env, linkedid, "customer", HUGE, 62.0, final=True)
        await expect(box.locator(t("live-final"))).to_have_count(47)
        finals = box.locator(t("live-final"))
        await expect(finals.nth(44).locator(t("live-text"))).to_have_text(MARKUP)
        assert await box.locator("img, b").count() == 0
        assert await page.evaluate("() => window.__pwned") is None
        rtl = finals.nth(45)
        await expect(rtl.locator(t("live-who"))).to_have_text("Клиент")
        assert await rtl.locator(t("live-text")).evaluate("e => e.tagName") == "BDI"  # isolated from the label
        assert await rtl.locator(t("live-text")).text_content() == RTL
        huge = await finals.nth(46).locator(t("live-text")).text_content()
        assert huge is not None and huge.startswith("я" * 1000) and len(huge) <= 2001
        assert await pop.evaluate("p => p.scrollWidth <= p.clientWidth + 1")  # wrapped: the pop is no wider
        assert await lines.evaluate("l => l.scrollTop + l.clientHeight >= l.scrollHeight - 2")

        # «Это …?»: «Нет» takes it away and nothing is attached.
        card_name = pop.locator(t("card-name"))
        await expect(card_name).to_have_text(KNOWN_CALLER.name)
        offer(env, linkedid, petrov, "Е 777 КХ 77")
        question = pop.locator(t("identify-offer"))
        await expect(question).to_have_count(1)
        await expect(question).to_contain_text(f"Это {OTHER_CLIENT.name}?")
        await expect(question.locator(t("identify-heard"))).to_have_text("Услышано: госномер Е 777 КХ 77")
        await expect(question).to_contain_text("+7 903 111-22-33")
        replies = len(log.of_type("reply"))
        await question.locator(t("identify-no")).click()
        await expect(question).to_have_count(0)
        await env.wait_for(lambda: len(log.of_type("reply")) > replies, 10, "the dismissal's reply")
        await expect(card_name).to_have_text(KNOWN_CALLER.name)
        assert await env.store.contact_of_call(linkedid) is None

        # Offered again (as if heard anew), «Да» makes the call's card that contact's, for the agent at once.
        offer(env, linkedid, petrov, "Е 777 КХ 77")
        await expect(question).to_have_count(1)
        await question.locator(t("identify-yes")).click()
        await expect(question).to_have_count(0)
        await expect(card_name).to_have_text(OTHER_CLIENT.name)
        await expect(page.locator(t("toast")).filter(has_text=f"Карточка звонка: {OTHER_CLIENT.name}")).to_be_visible()
        [card] = [f for f in log.of_type("call.card") if f["linkedid"] == linkedid]
        assert card["card"]["contacts"][0]["id"] == petrov.id
        attached = await env.store.contact_of_call(linkedid)
        assert attached is not None and attached.id == petrov.id

        # The call leaves anna's phone (the recording's transfer): the pop goes, its transcript is kept folded.
        env.start_calls()
        await expect(pop).to_have_count(0)
        last_call = page.locator(t("live-last"))
        await expect(last_call).to_be_visible()
        assert await last_call.evaluate("d => d.open") is False
        await last_call.locator("summary").click()
        await expect(last_call.locator(t("live-final"))).to_have_count(47)
        await expect(last_call.locator(t("live-final")).first).to_contain_text("слушаю вас")
        assert log.unexpected_errors() == []


async def boss_page(browser: Browser, env: PanelEnv) -> tuple[Page, PageLog]:
    name, password, extension, display = BOSS
    await env.store.add_user(User(name=name, role="admin", extension=extension, display_name=display,
                                  password_hash=await asyncio.to_thread(hash_password, password)))
    page, log = await new_page(browser)
    await log_in(page, env, name, password)
    await expect(page.locator(t("alerts"))).to_be_visible()
    await page.locator(t("alerts")).locator("h2").click()  # the first click unlocks the sound (docs/panel.md)
    return page, log


async def test_a_supervisor_reads_a_call_live_and_listens_in_on_its_flag(browser: Browser) -> None:
    async with panel_env([TRANSFER_TRACE], speed=4) as env:
        wire_live_desk(env)
        page, log = await boss_page(browser, env)
        await env.serve_through(leg_event("BridgeEnter", "PJSIP/101-"), "anna's answer")
        row = page.locator(t("board-row")).filter(has_text="+7 916 000-13-13")
        await expect(row).to_have_count(1)
        await expect(row).to_have_attribute("data-state", "talking")
        linkedid = await row.get_attribute("data-linkedid")
        assert linkedid
        read = row.locator(t("board-live"))
        await expect(read).to_be_hidden()  # no transcript: nothing to read

        say(env, linkedid, "agent", "слушаю вас", 0.4, final=True)
        await expect(read).to_be_visible()
        await read.click()
        reader = page.locator(f'{t("live-open")}[data-linkedid="{linkedid}"]')
        await expect(reader).to_be_visible()
        await expect(reader.locator(t("live-reader-about"))).to_contain_text("+7 916 000-13-13")
        await expect(reader.locator(t("live-reader-about"))).to_contain_text("101")
        await expect_lines(reader, [fin("Оператор", "слушаю вас")])
        # It follows the call as it goes: the partial, then its final.
        say(env, linkedid, "customer", "хочу подать", 2.0, final=False)
        await expect_lines(reader, [fin("Оператор", "слушаю вас"), par("Клиент", "хочу подать")])
        say(env, linkedid, "customer", "хочу подать жалобу", 2.0, final=True)
        await expect_lines(reader, [fin("Оператор", "слушаю вас"), fin("Клиент", "хочу подать жалобу")])

        # The keyword list matched while the call is up: a notice by the alerts, with their sound, and «Слушать».
        flag(env, linkedid, [KeywordMatch(list="complaint", phrase="жалоба", speaker="customer", at_second=2.6)])
        notice = page.locator(f'{t("live-flag")}[data-linkedid="{linkedid}"]')
        await expect(notice).to_be_visible()
        await expect(notice.locator(t("live-flag-name"))).to_have_text(["complaint"])
        await expect(notice.locator(t("live-flag-heard"))).to_have_text("Клиент Сказано: жалоба")
        await expect(notice).to_contain_text("+7 916 000-13-13")
        await expect(page.locator(t("alert-sound"))).to_have_attribute("data-plays", "1")
        # A second list for the same call joins the notice (and rings once more); the same list again does not ring.
        flag(env, linkedid,
             [KeywordMatch(list="competitor", phrase="<b>конкурент</b>", speaker="agent", at_second=3.0)])
        await expect(notice.locator(t("live-flag-name"))).to_have_text(["complaint", "competitor"])
        await expect(notice.locator(t("live-flag-heard"))).to_contain_text("Сказано: <b>конкурент</b>")
        assert await notice.locator("b").count() == 0
        await expect(page.locator(t("alert-sound"))).to_have_attribute("data-plays", "2")
        await expect(page.locator(t("live-flag"))).to_have_count(1)

        before = len(env.replay.received_actions)
        await notice.locator(t("live-listen")).click()
        await expect(page.locator(t("toast")).filter(has_text="Звоним на ваш телефон 110")).to_be_visible()
        originates = [a.message for a in env.replay.received_actions[before:] if a.message.action == "Originate"]
        assert len(originates) == 1, originates
        spy = originates[0]
        assert spy.get("Channel") == "PJSIP/110"
        assert spy.get("Application") == "ChanSpy"
        data = spy.get("Data") or ""
        channel, _, options = data.partition(",")
        assert channel.startswith("PJSIP/101-") and "q" in options and not set(options) & set("wWB")

        # An admin without a phone of their own is told so, and nothing reaches the PBX.
        other, other_log = await new_page(browser)
        await log_in(other, env, "admin")
        flag(env, linkedid, [KeywordMatch(list="complaint", phrase="жалоба", speaker="customer", at_second=2.6)])
        await other.locator(t("live-listen")).click()
        await expect(other.locator(t("toast")).filter(
            has_text="Чтобы слушать, у вашего пользователя должен быть добавочный номер")).to_be_visible()
        assert [a.message for a in env.replay.received_actions[before:] if a.message.action == "Originate"] == [spy]

        # The call ends: the notice and the reader say so, and «Слушать» is off.
        env.start_calls()
        await expect(row).to_have_count(0)
        await expect(notice).to_have_attribute("data-ended", "true")
        await expect(notice.locator(t("live-listen"))).to_be_disabled()
        await expect(reader.locator(t("live-ended"))).to_be_visible()
        await expect(reader.locator(t("live-listen"))).to_be_disabled()
        await notice.locator(t("live-flag-hide")).click()
        await expect(page.locator(t("live-flags"))).to_be_hidden()
        assert log.unexpected_errors() == [] and other_log.unexpected_errors() == []
