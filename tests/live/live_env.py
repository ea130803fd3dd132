"""The daemon with ``[live]`` on, against the replay PBX and the loopback SIP peer: its config and the helpers its tests
share (the spy Originates it sent, the caller id each carries, the lanes' audio as PCMU)."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import warnings
from pathlib import Path

from companion.live.manager import LiveTaps
from cti.live import TapInfo
from recognizer.live import LiveModel
from tests.conftest import UNIT
from tests.daemon.conftest import leg_event
from tests.live.sip_peer import FakePbx, free_udp_ports
from tests.panel_env import PanelEnv
from tests.recognizer.live_audio import tapped_call
from tests.speech import ko_model_dir

if sys.version_info >= (3, 13):  # audioop left the stdlib; audioop-lts (a dev dependency) is the same C code
    import audioop  # pragma: no cover
else:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

#: A recorded, answered queue call: the customer on PJSIP/trunk-0000000c, agent 102 on PJSIP/102-0000000e.
QUEUE_TRACE = "07-queue-ringall-answered"
AGENT_CHANNEL, CUSTOMER_CHANNEL = "PJSIP/102-0000000e", "PJSIP/trunk-0000000c"
#: What the Korean model hears in the customer's first utterance of call_02_en.wav (5.8-9.2 s) through μ-law.
HEARD = ("아우디", "마리가", "백호")


def sections(pbx: FakePbx, tmp: Path, **live: object) -> dict[str, str]:
    """``[live]`` on the loopback peer (calls through queue ``support`` tapped), ``[transcription]`` with the Korean
    model and a keyword list of what it hears, recordings read from an empty folder."""
    ports = free_udp_ports(9)
    values: dict[str, object] = {
        "enabled": "true", "server": '"127.0.0.1"', "server_port": pbx.port, "username": '"cti-tap"',
        "secret": '"s3cret"', "bind_host": '"127.0.0.1"', "sip_port": ports[0], "rtp_port_first": ports[1],
        "rtp_port_last": ports[8], "max_taps": 2, "calls": '"selected"', "queues": '["support"]',
        "answer_timeout": 10 * UNIT, "register_timeout": 1.0 * UNIT, "retry_first_seconds": 0.1,
        "retry_max_seconds": 0.5}
    values.update(live)
    folder = tmp / "monitor"
    folder.mkdir(exist_ok=True)
    heard = ", ".join(f'"{w}"' for w in HEARD)
    transcription = ["enabled = true", f'model = "{ko_model_dir()}"', 'language = "ko"', "lease_seconds = 3",
                     f'keywords = {{ heard = {{ phrases = [{heard}], speaker = "customer" }} }}']
    return {"live": "\n".join(f"{k} = {v}" for k, v in values.items()), "transcription": "\n".join(transcription),
            "recording": f'dir = "{folder}"'}


def spy_actions(env: PanelEnv) -> list[dict[str, str]]:
    """The spy Originates the daemon sent the replay PBX, as header dicts."""
    found = []
    for received in env.replay.received_actions:
        msg = received.message
        if msg.action == "Originate" and "tap-" in msg.get("CallerID", ""):
            found.append({k: msg.get(k, "") for k in ("Channel", "CallerID", "Application", "Data", "Async")})
    return found


def caller_of(spy: dict[str, str]) -> str:
    """The tap user in ``"tap-…" <tap-…>``."""
    return spy["CallerID"].rsplit("<", 1)[1].rstrip(">")


def lane_of(spy: dict[str, str]) -> str:
    return caller_of(spy).rsplit("-", 1)[1]


def live_threads(tap_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if tap_id in t.name]


def ulaw(lane: str) -> bytes:
    return audioop.lin2ulaw(tapped_call().lanes[lane], 2)  # type: ignore[index]


def live_of(env: PanelEnv) -> LiveTaps:
    live = env.running.daemon.live
    assert live is not None
    return live


async def answered(env: PanelEnv, sip_pbx: FakePbx) -> None:
    """The tap registered and the model loaded in the live worker (the daemon preloads it at start, in the
    background: a machine under load may still be at it), then the queue call taken to the moment both its channels
    are bridged (held there)."""
    live = live_of(env)
    async with asyncio.timeout(120 * UNIT):
        await sip_pbx.registered.wait()
        warm = live.workers.open(TapInfo("main", "warm-up", "agent", time.time(), "warm"),
                                 LiveModel.of(live.transcription.default_choice(), live.transcription))
        await warm.close(within=120 * UNIT)
        assert warm.error is None
    await env.serve_through(leg_event("BridgeEnter", CUSTOMER_CHANNEL), "the customer bridged with agent 102")
