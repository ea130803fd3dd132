"""The daemon's live taps end to end: the replay PBX answers a queue call, the daemon asks it (AMI) to spy on the call's
two channels, and the test's SIP peer (``sip_peer.py``, the PBX's SIP side) calls the daemon's endpoint with each
spy's caller id and streams that side of ``../shared/speech/call_02_en.wav`` as PCMU at real time, over loopback UDP.

What is real: the AMI actions (over TCP to the replay PBX), SIP and RTP (kernel UDP), the tap's threads, the live
recogniser's worker process with the Korean Vosk model, the WebSocket client, the store. What is not: the replay PBX
does not run ChanSpy (the peer plays the spy call it would make), and the only Vosk model here is Korean, so the words
of the English call come out as Korean guesses (``HEARD``: what that model hears on the customer's side, found by
running it once on the μ-law lane); their order and timing are real, their text is not English. The keyword list is
made of those guesses so that a list really matches a live final while the call is up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cti.live import Lane
from tests.conftest import UNIT
from tests.daemon.conftest import wait_until
from tests.live.live_env import (
    AGENT_CHANNEL,
    CUSTOMER_CHANNEL,
    HEARD,
    QUEUE_TRACE,
    answered,
    caller_of,
    lane_of,
    live_of,
    live_threads,
    sections,
    spy_actions,
    ulaw,
)
from tests.live.sip_peer import FakePbx, PeerCall
from tests.panel_env import panel_env
from tests.recognizer.live_audio import tapped_call
from tests.recognizer.test_live import SLACK
from tests.speech import ko_model_dir
from tests.ui_bridge.wsclient import WsClient

LANES: tuple[Lane, Lane] = ("agent", "customer")


async def test_a_tapped_call_streams_its_words_live_flags_a_keyword_while_up_and_keeps_the_transcript(
        sip_pbx: FakePbx, tmp_path: Path) -> None:
    # max_lag: no audio dropped for lag (back-pressure is recognizer/live.py's test): on a loaded machine the worker
    # falls seconds behind the audio and the words come later, not fewer.
    async with asyncio.timeout(300 * UNIT), panel_env([QUEUE_TRACE], speed=0,
                                                      sections=sections(sip_pbx, tmp_path, max_lag=120)) as env:
        live = live_of(env)
        admin, agent = await WsClient.connect(env, "admin"), await WsClient.connect(env, "oleg")
        await answered(env, sip_pbx)

        # Two spies, each on one side's own channel, quiet, ending with it; dialled to the tap's endpoint.
        await wait_until(lambda: len(spy_actions(env)) == 2, 10, "two spy Originates")
        spies = {lane_of(s): s for s in spy_actions(env)}
        assert spies["agent"]["Data"] == f"{AGENT_CHANNEL},qoE"
        assert spies["customer"]["Data"] == f"{CUSTOMER_CHANNEL},qoE"
        assert all(s["Channel"] == "PJSIP/cti-tap" and s["Application"] == "ChanSpy" for s in spies.values())
        (call,) = live.calls.values()
        tap_id = call.tap_id

        # The PBX's spy calls reach the daemon's endpoint and stream each side at real time.
        peers: dict[str, PeerCall] = {}
        for lane, spy in spies.items():
            status, peer = await sip_pbx.call(("127.0.0.1", live.settings.sip_port), caller_of(spy), payload_types=(0,))
            assert status == 200 and peer is not None
            peers[lane] = peer
        await wait_until(lambda: sorted(call.lanes) == ["agent", "customer"], 10, "both lanes answered")
        await asyncio.gather(*(peer.stream(ulaw(lane)) for lane, peer in peers.items()))

        # A list matched on a live final while the call is still up (the replay holds it bridged).
        flagged = await admin.wait_for("call.flagged", timeout=60)
        assert flagged["live"] is True and flagged["flags"] == ["heard"] and flagged["answered_by"] == "102"
        (hit,) = flagged["hits"]
        assert hit["phrase"] in HEARD and hit["speaker"] == "customer" and 5.0 < hit["at_second"] < 10.0
        linkedid = flagged["linkedid"]
        assert env.running.daemon.calls.get(linkedid) is not None, "the call is still in progress"

        # Every utterance of both sides is settled by a final while the call is still up (each side's audio ends in
        # silence: the pause settles its last words, not the hang-up). How soon after its words (the 1.5 s)
        # is bench/live.py's to measure: here it is the machine's load.
        call_audio = tapped_call()
        spans = {lane: call_audio.spans(lane) for lane in LANES}
        await wait_until(lambda: all(settled(c, lane, spans[lane]) for c in (admin, agent) for lane in LANES), 60,
                         "every utterance settled")
        assert env.running.daemon.calls.get(linkedid) is not None, "the call is still in progress"

        # Every final came in order per lane; the agent gets them too.
        for client in (admin, agent):
            finals = client.of_type("call.transcript.final")
            assert {msg["lane"] for msg in finals} == {"agent", "customer"}
            for lane in ("agent", "customer"):
                mine = [msg for msg in finals if msg["lane"] == lane]
                assert len(mine) >= 3, (lane, mine)
                starts = [msg["start"] for msg in mine]
                assert starts == sorted(starts)
                for msg in mine:
                    assert msg["linkedid"] == linkedid and msg["speaker"] == lane and msg["words"]
                    assert msg["text"] == " ".join(w["text"] for w in msg["words"])
        partials = admin.of_type("call.transcript.partial")
        assert partials and all(p["linkedid"] == linkedid for p in partials)
        assert not agent.of_type("call.flagged")  # the flag is the admins'

        # The call ends: both spy calls get a BYE, their threads and sockets are gone, the words are kept.
        env.start_calls()
        async with asyncio.timeout(20 * UNIT):
            for peer in peers.values():
                await peer.bye_received.wait()
        await wait_until(lambda: not live.calls and not live_threads(tap_id), 20, "the taps torn down")
        assert live.tap.calls_of(tap_id) == []
        await wait_until(lambda: live.kept == 1, 20, "the live transcript kept")
        # What an admin's GET /api/health says of it.
        health = env.running.daemon.health().live
        assert health is not None and health.registered and health.registration_failures == 0
        assert (health.taps, health.tapped, health.lanes_heard, health.kept, health.failures) == (0, 1, 2, 1, 0)
        assert health.dropped_seconds == 0.0
        transcript = await env.store.get_transcript(linkedid, pbx="main")
        assert transcript is not None and transcript.engine == "vosk" and transcript.model == ko_model_dir().name
        assert {w.speaker for w in transcript.words} == {"agent", "customer"}
        assert any(w.text in HEARD and w.speaker == "customer" for w in transcript.words)
        assert await env.store.transcript_flags(linkedid, pbx="main") == ("heard",)
        # The after-call transcription is queued as before (its recording is not in the folder: it fails, and the
        # live transcript stays; one that finishes replaces it).
        assert await env.store.transcription_job_of(linkedid, pbx="main") is not None
        for client in (admin, agent):
            await client.close()


def settled(client: WsClient, lane: Lane, spans: list[tuple[float, float]]) -> bool:
    """Each utterance of the lane (``spans``) has reached the client as a final within its bounds."""
    finals = [m for m in client.of_type("call.transcript.final") if m["lane"] == lane]
    return all(any(m["start"] >= s - SLACK and m["end"] <= e + SLACK for m in finals) for s, e in spans)


async def test_a_spy_that_never_calls_back_leaves_the_call_alone_and_it_is_transcribed_after(
        sip_pbx: FakePbx, tmp_path: Path) -> None:
    async with asyncio.timeout(120 * UNIT), panel_env(
            [QUEUE_TRACE], speed=0, sections=sections(sip_pbx, tmp_path, answer_timeout=1.0 * UNIT)) as env:
        live = live_of(env)
        admin = await WsClient.connect(env, "admin")
        await answered(env, sip_pbx)
        await wait_until(lambda: len(spy_actions(env)) == 2, 10, "two spy Originates")
        await wait_until(lambda: live.failures == 2 and not live.calls, 10, "both lanes given up")
        assert live.lanes_heard == 0 and "did not come" in (live.last_failure or "")
        health = env.running.daemon.health().live
        assert health is not None and health.failures == 2 and health.taps == 0 and health.lanes_heard == 0
        assert health.last_failure is not None and "did not come" in health.last_failure
        env.start_calls()
        await admin.wait_for("call.ended", timeout=10)
        linkedid = admin.of_type("call.ended")[0]["linkedid"]
        await wait_until(lambda: live.kept == 0 and not live.calls, 5, "nothing kept")
        job = None
        async with asyncio.timeout(10 * UNIT):
            while job is None:
                job = await env.store.transcription_job_of(linkedid, pbx="main")
                await asyncio.sleep(0.05)
        assert not admin.of_type("call.transcript.final") and not admin.of_type("call.transcript.partial")
        # The tap stays registered and ready for the next call.
        assert live.tap.registration.registered
        await admin.close()


async def test_the_call_hung_up_mid_stream_tears_both_lanes_down_with_nothing_left(
        sip_pbx: FakePbx, tmp_path: Path) -> None:
    async with asyncio.timeout(120 * UNIT), panel_env([QUEUE_TRACE], speed=0,
                                                      sections=sections(sip_pbx, tmp_path)) as env:
        live = live_of(env)
        await answered(env, sip_pbx)
        await wait_until(lambda: len(spy_actions(env)) == 2, 10, "two spy Originates")
        (call,) = live.calls.values()
        peers = []
        for spy in spy_actions(env):
            status, peer = await sip_pbx.call(("127.0.0.1", live.settings.sip_port), caller_of(spy), payload_types=(0,))
            assert status == 200 and peer is not None
            peers.append((lane_of(spy), peer))
        streams = [asyncio.create_task(peer.stream(ulaw(lane))) for lane, peer in peers]
        await wait_until(lambda: len(call.lanes) == 2 and all(p.sent_packets > 100 for _, p in peers), 10,
                         "both lanes streaming")
        env.start_calls()  # the call ends while both sides still stream
        async with asyncio.timeout(20 * UNIT):
            for _, peer in peers:
                await peer.bye_received.wait()
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        await wait_until(lambda: not live.calls and not live_threads(call.tap_id), 20, "the taps torn down")
        assert live.tap.calls_of(call.tap_id) == []
        assert all(n == 0 for n in live.workers.lanes_per_worker().values())
