"""The CRM push in a real daemon (replayed traces over TCP, the webhook's receiver over HTTP).

* Click-to-call a CRM started: the call the PBX then makes (that extension to that number, in any form) carries the
  CRM's ``started_by`` from its first event; an expectation for another extension or number changes nothing.
* A daemon stopped mid-call and started again continues the call's sequence where it stood: the events after the
  restart follow on, numbered on, none twice.
* A call that ended while the daemon was away is ended by the first resync, and that end is pushed
  (``complete: false``).
* The transcript of a call, once stored, is pushed as the call's last event.
* No ``[crm]`` CRM section: nothing CRM-related runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from asterisk.messages import AmiMessage
from asterisk.replay import ReplayPbx, load_trace
from companion.crm.push import CrmPush
from cti.crm.webhook import WebhookPlanner
from cti.effects import CallAnswered
from cti.transcripts import EngineChoice, NewJob, Transcript, Word
from store import open_store
from store.settings import StoreSettings
from tests.crm.local_server import serving
from tests.crm.test_webhook import SECRET, webhook_settings
from tests.crm.webhook_server import WebhookReceiver
from tests.daemon.conftest import (
    QUICK_RECONNECT,
    RunningDaemon,
    resyncs,
    serve_through,
    settings_for,
    wait_until,
)
from tests.traces import TRACES, load_messages


def events_of(trace: str) -> list[AmiMessage]:
    return [e.message for e in load_trace(TRACES / trace).events]


def answered(msg: AmiMessage) -> bool:
    return msg.event == "DialEnd" and msg.get("DialStatus") == "ANSWER"


async def test_a_click_to_call_the_crm_started_carries_its_id(tmp_path: Path) -> None:
    receiver = WebhookReceiver(SECRET)
    traces = ["16-click-to-call-answered", "17-click-to-call-noanswer", "37-click-to-call-cyrillic-connected"]
    async with serving(receiver.app) as server, ReplayPbx([TRACES / t for t in traces], speed=0) as pbx:
        pbx.pause()
        _, port = pbx.address
        async with RunningDaemon(webhook_settings(tmp_path, port, server.url)) as running:
            panel = running.daemon.panel
            assert panel is not None and panel.crm_calls is not None
            await wait_until(lambda: resyncs(pbx) >= 1, 10, "the daemon resynced")
            # 16: 101 → 89161234567, in another form; 17: 101 → 84951112200; 37: 104 → 89161230037.
            panel.crm_calls.expect("webhook", "main", "101", "+7 (916) 123-45-67", {"call_id": "crm-16"})
            panel.crm_calls.expect("webhook", "main", "102", "84951112200", {"call_id": "not-102"})  # another phone
            panel.crm_calls.expect("webhook", "main", "104", "89161230037", {"call_id": "crm-37"})
            pbx.resume()
            # 16 and 37: dialing, answered, ended; 17 (nobody answered): dialing, ended.
            await wait_until(lambda: len(receiver.events) == 3 + 2 + 3, 20, "the three calls' events")
    started = {e["call"]["linkedid"]: e.get("started_by") for e in receiver.events}
    assert started == {"1795479586.44": {"call_id": "crm-16"}, "1795479610.46": None,
                       "1795480990.353": {"call_id": "crm-37"}}
    # Every event of the call carries it, not only the first (matched at its dial: the call's first event).
    click = receiver.of_call("main:1795479586.44")
    assert [e["event"] for e in click] == ["dialing", "answered", "ended"]
    assert all(e["started_by"] == {"call_id": "crm-16"} for e in click)


async def test_a_restart_mid_call_continues_the_sequence(tmp_path: Path) -> None:
    receiver = WebhookReceiver(SECRET)
    trace = "07-queue-ringall-answered"
    events = events_of(trace)
    async with serving(receiver.app) as server, ReplayPbx([TRACES / trace], speed=0) as pbx:
        pbx.pause()
        _, port = pbx.address
        settings = webhook_settings(tmp_path, port, server.url)
        async with RunningDaemon(settings) as running:
            await serve_through(pbx, events, answered, "the answer")
            await running.wait_for_effect(CallAnswered)
            await wait_until(lambda: len(receiver.events) >= 4, 10, "ringing ×3 and answered arrived")
        # Stopped (SIGTERM's path) with the call up; the PBX holds its events until the next daemon listens.
        before = len(receiver.events)
        async with RunningDaemon(settings):
            await wait_until(lambda: resyncs(pbx) >= 2, 10, "the second daemon resynced")
            pbx.resume()
            await wait_until(lambda: any(e["event"] == "ended" for e in receiver.events), 20, "the call ended")
    queue = receiver.of_call("main:1795479360.12")
    kinds = [e["event"] for e in queue]
    assert kinds[:4] == ["ringing"] * 3 + ["answered"] and before == 4
    assert kinds.count("ended") == 1 and kinds[-1] == "ended"
    assert kinds.count("ringing") == 3 and kinds.count("answered") == 1  # nothing pushed twice by the restart
    assert [e["seq"] for e in queue] == list(range(1, len(queue) + 1))
    assert queue[-1]["result"]["answered_by"] == "102"
    assert receiver.repeats == 0


async def test_a_call_that_ended_while_the_daemon_was_away_is_ended_by_the_resync(tmp_path: Path) -> None:
    receiver = WebhookReceiver(SECRET)
    trace = "01-direct-answered"
    events = events_of(trace)
    async with serving(receiver.app) as server, ReplayPbx([TRACES / trace], speed=0) as pbx:
        pbx.pause()
        _, port = pbx.address
        settings = webhook_settings(tmp_path, port, server.url)
        async with RunningDaemon(settings) as running:
            await serve_through(pbx, events, answered, "the answer")
            await running.wait_for_effect(CallAnswered)
            await wait_until(lambda: len(receiver.events) == 2, 10, "ringing and answered arrived")
        # The rest of the call, its hang-up with it, happens while no daemon is connected: lost, as on Asterisk.
        pbx.advance(len(events) - pbx.position)
        assert pbx.finished.is_set()
        async with RunningDaemon(settings):
            await wait_until(lambda: len(receiver.events) == 3, 20, "the resync's end was pushed")
    ringing, answer, ended = receiver.events
    assert (ringing["event"], answer["event"], ended["event"]) == ("ringing", "answered", "ended")
    assert ended["result"]["complete"] is False and ended["result"]["answered_by"] == "103"
    assert ended["seq"] == 3


async def test_a_stored_transcript_is_pushed_as_the_calls_last_event(tmp_path: Path) -> None:
    """The transcriber's hook (``CrmPush.transcribed``) over a real store: the call's record and words read back."""
    async with open_store(StoreSettings(path=tmp_path / "t.sqlite"), region="RU") as store:
        from cti.context import enrich
        from cti.effects import CallEnded
        from cti.model import CallBook

        book = CallBook()
        record = None
        for msg in load_messages(TRACES / "01-direct-answered"):
            for effect in enrich(book, book.apply(msg)):
                if isinstance(effect, CallEnded):
                    record = effect.record
        assert record is not None
        store.stage_call(record, None, ())
        await store.flush()
        words = (Word("agent", "здравствуйте", 0.5, 1.1, 0.9), Word("customer", "машина", 1.5, 2.0, 0.8))
        job = await store.enqueue_transcription(NewJob(pbx="main", linkedid=record.linkedid, sources=(),
                                                       choice=EngineChoice(model="small-ru"),
                                                       call_started_at=record.started_at),
                                                at=record.started_at)
        assert job is not None
        taken = await store.take_transcription_job(worker="w", lease_seconds=60, now=record.started_at + 1,
                                                   max_attempts=3)
        assert taken is not None
        assert await store.finish_transcription_job(taken.id, Transcript(words, "vosk", "small-ru", 3.0, "ru"),
                                                    worker="w", at=record.started_at + 2, flags=())
        woken: list[str] = []
        push = CrmPush({"webhook": WebhookPlanner()}, lambda: store, woken.append)
        task = asyncio.create_task(push.run())
        try:
            push.transcribed("main", record.linkedid)
            await wait_until(lambda: woken == ["webhook"], 5, "the transcript was queued for the webhook")
        finally:
            task.cancel()
            await asyncio.wait({task})
        (item,) = await store.list_crm_items(crm="webhook", call=f"main:{record.linkedid}")
    assert item.payload["agent"] == "103"
    assert item.payload["event"] == "transcript"
    assert item.payload["transcript"]["text"] == {"agent": "здравствуйте", "customer": "машина"}
    assert item.payload["transcript"]["words"][1] == {"speaker": "customer", "text": "машина", "start": 1.5,
                                                      "end": 2.0}


async def test_without_a_crm_section_nothing_runs(tmp_path: Path) -> None:
    async with ReplayPbx([TRACES / "01-direct-answered"], speed=0) as pbx:
        _, port = pbx.address
        async with RunningDaemon(settings_for(tmp_path, port, extra_ami=QUICK_RECONNECT)) as running:
            daemon = running.daemon
            assert daemon.crm is None
            assert daemon.panel is not None and daemon.panel.crm_calls is None
            assert "crm-push" not in {s.name for s in daemon.pipeline.stats()}
