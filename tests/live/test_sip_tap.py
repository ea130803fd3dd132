"""The SIP tap over loopback: a small PBX (``sip_peer.py``) registers it, calls it and streams a call of
``../shared/speech`` as G.711 at real time over real UDP; what reaches the asyncio side is what was sent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from companion.live.sip_messages import tap_user
from companion.live.sip_tap import SipTap, TappedCall
from cti.live import LIVE_RATE, AudioFrame, Lane
from recognizer.audio import ALAW_TABLE, MULAW_TABLE, read_wav
from tests.conftest import UNIT
from tests.live.sip_peer import FakePbx, PeerCall, free_udp_ports
from tests.speech import speech_calls
from ui_bridge.live_settings import LiveSettings

if sys.version_info >= (3, 13):  # audioop left the stdlib; audioop-lts (a dev dependency) is the same C code
    import audioop  # pragma: no cover
else:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

SECONDS = 2.5


def _agent_speech(seconds: float) -> bytes:
    """The first agent utterance of the Russian call, 16-bit PCM (its left channel), ``seconds`` long."""
    call = next(c for c in speech_calls() if c.lang == "ru")
    wav = read_wav(call.path)
    first = next(u for u in call.utterances if u.channel == "agent")
    start = int(first.start * wav.rate) * 2
    return wav.channels[0][start:start + int(seconds * LIVE_RATE) * 2]


def _encode(pcm: bytes, payload_type: int) -> bytes:
    return audioop.lin2ulaw(pcm, 2) if payload_type == 0 else audioop.lin2alaw(pcm, 2)


def _decode(g711: bytes, payload_type: int) -> bytes:
    table = MULAW_TABLE if payload_type == 0 else ALAW_TABLE
    return bytes(table[np.frombuffer(g711, dtype=np.uint8)].tobytes())


def _fds() -> set[tuple[str, str]]:
    """This process's descriptors and what each one is (a number reused for another socket is another entry), so a
    test compares what it opened, whatever an earlier test's leftovers do meanwhile (closed by the collector)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, gone already
            found.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
    return found


def _live_threads() -> set[threading.Thread]:
    """The live threads now; a test compares sets, so an earlier test's thread still ending is not counted as its."""
    return {t for t in threading.enumerate() if t.name.startswith("cti-live")}


def _settings(sip_pbx: FakePbx, **changes: object) -> LiveSettings:
    ports = free_udp_ports(5)
    values: dict[str, object] = dict(
        enabled=True, server="127.0.0.1", server_port=sip_pbx.port, username="cti-tap", secret="s3cret",
        bind_host="127.0.0.1", sip_port=ports[0], rtp_port_first=ports[1], rtp_port_last=ports[4], max_taps=2,
        register_timeout=1.0 * UNIT, retry_first_seconds=0.1, retry_max_seconds=0.3)
    values.update(changes)
    return LiveSettings.model_validate(values)


async def _collect(call: TappedCall) -> list[AudioFrame]:
    return [frame async for frame in call]


async def tapped_call(tap: SipTap, sip_pbx: FakePbx, tap_id: str, lane: Lane, *,
                      payload_types: tuple[int, ...] = (0,)) -> tuple[PeerCall, TappedCall]:
    """The tap registered, a call ``tap_id``/``lane`` expected, the PBX's spy call to it answered: the PBX's side
    (to stream from) and the tap's (to read)."""
    async with asyncio.timeout(5 * UNIT):
        await tap.wait_registered()
    tap.expect(tap_id)
    status, peer = await sip_pbx.call(("127.0.0.1", tap.settings.sip_port), tap_user(tap_id, lane),
                                  payload_types=payload_types)
    assert status == 200 and peer is not None
    async with asyncio.timeout(3 * UNIT):
        call = await tap.wait_call(tap_id, lane)
    return peer, call


def _check_contiguous(frames: list[AudioFrame]) -> None:
    position = 0.0
    for frame in frames:
        assert frame.start == pytest.approx(position, abs=1e-9)
        position += frame.seconds


@pytest.mark.parametrize("payload_type", [0, 8], ids=["PCMU", "PCMA"])
async def test_the_frames_are_the_audio_sent_in_order(sip_pbx: FakePbx, payload_type: int) -> None:
    """A call streamed at real time arrives as 16-bit PCM equal to the decoded G.711 sent, in order, contiguous,
    with nothing filled; it ends when the PBX hangs up."""
    settings = _settings(sip_pbx)
    async with SipTap(settings) as tap:
        peer, call = await tapped_call(tap, sip_pbx, "c0ffee", "agent", payload_types=(payload_type, 101))
        assert peer.payload_type == payload_type
        assert call.codec == ("PCMU" if payload_type == 0 else "PCMA")
        collecting = asyncio.create_task(_collect(call))
        g711 = _encode(_agent_speech(SECONDS), payload_type)
        await peer.stream(g711)
        assert await peer.bye() == 200
        async with asyncio.timeout(3 * UNIT):
            frames = await collecting
        await tap.hang_up("c0ffee")
    assert all(f.lane == "agent" for f in frames)
    assert not any(f.filled for f in frames)
    _check_contiguous(frames)
    assert b"".join(f.pcm for f in frames) == _decode(g711, payload_type)
    assert call.counters is not None and call.counters.late == 0 and call.counters.gaps == 0


async def test_the_packets_still_in_the_socket_when_the_bye_comes_are_not_lost(sip_pbx: FakePbx) -> None:
    """The PBX sends a burst and hangs up at once: the lane's thread is behind when the SIP thread handles the BYE (as
    on a loaded machine, the packets waiting in the kernel's buffer), and still every packet sent before the BYE is
    in the lane's frames: the call's last words are not thrown away with its socket."""
    settings = _settings(sip_pbx)
    async with SipTap(settings) as tap:
        peer, call = await tapped_call(tap, sip_pbx, "5ca1ab1e", "customer")
        collecting = asyncio.create_task(_collect(call))
        g711 = _encode(_agent_speech(SECONDS), 0)
        sent = await peer.stream(g711, realtime=False)  # 125 packets at once: well within the socket's buffer
        assert await peer.bye() == 200
        async with asyncio.timeout(3 * UNIT):
            frames = await collecting
    assert len(sent) == len(g711) // 160
    _check_contiguous(frames)
    assert not any(f.filled for f in frames)
    assert b"".join(f.pcm for f in frames) == _decode(g711, 0)


async def test_loss_and_a_timestamp_jump_leave_the_rest_intact(sip_pbx: FakePbx) -> None:
    """5 % of the packets lost and the RTP clock jumping 10 s ahead mid-stream: every packet that came is there,
    in order, sample for sample; each loss is silence of the packet's length, the jump at most ``max_gap``."""
    settings = _settings(sip_pbx, max_gap=0.5)
    g711 = _encode(_agent_speech(SECONDS), 0)
    packets = len(g711) // 160
    lost = set(random.Random(17).sample(range(1, packets - 1), k=packets // 20))
    async with SipTap(settings) as tap:
        peer, call = await tapped_call(tap, sip_pbx, "feed01", "customer")
        collecting = asyncio.create_task(_collect(call))
        jump_at = packets // 2
        sent = await peer.stream(g711, lose=lost, jump_at=jump_at, jump=10 * LIVE_RATE)
        await peer.bye()
        async with asyncio.timeout(3 * UNIT):
            frames = await collecting
    _check_contiguous(frames)
    audio = b"".join(f.pcm for f in frames if not f.filled)
    expected = b"".join(_decode(g711[i * 160:(i + 1) * 160], 0) for i in sent)
    assert audio == expected
    # Each hole in what was sent, by the sender's clock, is silence: a loss its length, the jump at most max_gap.
    expected_silence, end = 0, None
    for index in sent:
        stamp = index * 160 + (10 * LIVE_RATE if index >= jump_at else 0)
        if end is not None:
            expected_silence += min(stamp - end, int(0.5 * LIVE_RATE))
        end = stamp + 160
    assert sum(len(f.pcm) // 2 for f in frames if f.filled) == expected_silence
    assert all(f.pcm == bytes(len(f.pcm)) for f in frames if f.filled)
    assert call.counters is not None and call.counters.gaps >= 1


async def test_a_call_hung_up_mid_stream_leaves_no_thread_or_socket(sip_pbx: FakePbx) -> None:
    """The PBX hangs up one lane mid-stream, the daemon the other: the lanes end, their threads and sockets are
    gone; stopping the tap ends its own threads and closes its socket: as before it started."""
    settings = _settings(sip_pbx)
    threads_before, fds_before = _live_threads(), _fds()
    tap = SipTap(settings)
    await tap.start()
    async with asyncio.timeout(5 * UNIT):
        await tap.wait_registered()
    idle_fds = _fds()
    tap.expect("abc123")
    addr = ("127.0.0.1", settings.sip_port)
    _, agent_peer = await sip_pbx.call(addr, tap_user("abc123", "agent"))
    _, customer_peer = await sip_pbx.call(addr, tap_user("abc123", "customer"))
    assert agent_peer is not None and customer_peer is not None
    async with asyncio.timeout(3 * UNIT):
        agent = await tap.wait_call("abc123", "agent")
        customer = await tap.wait_call("abc123", "customer")
    assert len(_live_threads() - threads_before) == 4  # SIP, registration, two lanes
    g711 = _encode(_agent_speech(SECONDS), 0)
    agent_frames = asyncio.create_task(_collect(agent))
    customer_frames = asyncio.create_task(_collect(customer))
    streams = [asyncio.create_task(peer.stream(g711)) for peer in (agent_peer, customer_peer)]

    # The PBX hangs up the agent's lane mid-stream ...
    async with asyncio.timeout(3 * UNIT):
        while agent_peer.sent_packets < 40:
            await asyncio.sleep(0.02)
    assert await agent_peer.bye() == 200
    async with asyncio.timeout(3 * UNIT):
        assert await agent_frames
        await agent.wait_closed()
    # ... and the daemon the customer's (the tap's BYE reaches the PBX).
    await tap.hang_up("abc123")
    async with asyncio.timeout(3 * UNIT):
        await customer_peer.bye_received.wait()
        assert await customer_frames
    for stream in streams:
        stream.cancel()
    customer_peer.close()  # the PBX's own socket (the tap's are what is checked)
    assert agent.ended and customer.ended
    assert sorted(t.name for t in _live_threads() - threads_before) == ["cti-live-register", "cti-live-sip"]
    assert _fds() - idle_fds == set()
    await tap.stop()
    assert _live_threads() - threads_before == set()
    assert _fds() - fds_before == set()


async def test_registration_answers_the_digest_challenge(sip_pbx: FakePbx) -> None:
    """The registrar challenges (401, qop=auth); the tap answers with the right digest and is registered; an OPTIONS
    ping (Asterisk's qualify) gets 200."""
    settings = _settings(sip_pbx)
    async with SipTap(settings) as tap:
        async with asyncio.timeout(5 * UNIT):
            state = await tap.wait_registered()
        assert state.registered and state.expires == 60
        assert [(r.authorized, r.valid) for r in sip_pbx.registers[:2]] == [(False, False), (True, True)]
        sip_pbx.options(("127.0.0.1", settings.sip_port))
        async with asyncio.timeout(3 * UNIT):
            while not sip_pbx.options_answers:
                await asyncio.sleep(0.02)
        assert sip_pbx.options_answers == [200]
    # stopping removes the binding: the last REGISTER asks for no time at all
    assert sip_pbx.registers[-1].expires == 0 and sip_pbx.registers[-1].valid


@pytest.mark.parametrize("mode", ["silent", "refuse"])
async def test_a_failing_registrar_is_tried_again_until_it_takes_the_tap(sip_pbx: FakePbx, mode: str) -> None:
    """A PBX that does not answer, or refuses, is tried again with a back-off well past pyVoIP's three attempts;
    once it answers, the tap is registered."""
    sip_pbx.mode = mode
    settings = _settings(sip_pbx, register_timeout=0.2 * UNIT)
    async with SipTap(settings) as tap:
        async with asyncio.timeout(15 * UNIT):
            state = await tap.wait_registration(lambda s: s.failures >= 5)
        assert not state.registered and state.last_error
        sip_pbx.mode = "ok"
        async with asyncio.timeout(5 * UNIT):
            state = await tap.wait_registered()
        assert state.registered and state.failures == 0


async def test_a_wrong_secret_is_said_and_retried(sip_pbx: FakePbx) -> None:
    """A wrong secret is refused with words saying so, and registration goes on being tried."""
    settings = _settings(sip_pbx, secret="wrong")
    async with SipTap(settings) as tap:
        async with asyncio.timeout(10 * UNIT):
            state = await tap.wait_registration(lambda s: s.failures >= 3)
        assert "refused" in (state.last_error or "")
        assert not any(r.valid for r in sip_pbx.registers)


async def test_calls_no_tap_expects_or_without_g711_are_refused(sip_pbx: FakePbx) -> None:
    """A call naming no expected tap gets 403, a forgotten tap too; one offering no G.711 gets 488: no call, no
    thread, no port taken."""
    settings = _settings(sip_pbx)
    async with SipTap(settings) as tap:
        async with asyncio.timeout(5 * UNIT):
            await tap.wait_registered()
        addr = ("127.0.0.1", settings.sip_port)
        threads = _live_threads()
        assert (await sip_pbx.call(addr, tap_user("nobody", "agent")))[0] == 403
        assert (await sip_pbx.call(addr, "4951234567"))[0] == 403
        tap.expect("beef")
        assert (await sip_pbx.call(addr, tap_user("beef", "agent"), payload_types=(9, 3, 101)))[0] == 488
        tap.forget("beef")
        assert (await sip_pbx.call(addr, tap_user("beef", "agent")))[0] == 403
        assert _live_threads() - threads == set()
        assert tap.calls_of("beef") == []


def test_only_sip_tap_imports_pyvoip() -> None:
    """pyVoIP (GPL-3.0, optional) is imported by one module only."""
    root = Path(__file__).resolve().parents[2]
    importers = sorted(str(p.relative_to(root)) for folder in ("companion", "cti", "store", "ui_bridge", "recognizer",
                                                               "asterisk")
                       for p in (root / folder).rglob("*.py") if "pyVoIP" in p.read_text(encoding="utf-8")
                       and ("import pyVoIP" in p.read_text(encoding="utf-8")
                            or "from pyVoIP" in p.read_text(encoding="utf-8")))
    assert importers == ["companion/live/sip_tap.py"]
