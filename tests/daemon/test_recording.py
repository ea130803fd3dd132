"""The daemon starts the recordings ``[recording] record`` asks for, over TCP against the replay PBX, and adopts the
dialplan's (companion/recorder.py, asterisk/replay/recording.py).

Each test holds the replay at the agent's answer, lets the daemon decide (its settle time shortened: the replay is
held, nothing happens meanwhile), then plays the rest of the call and reads the journal as ``cti calls`` prints it.
"""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from asterisk.messages import AmiMessage
from asterisk.replay import ReplayPbx, load_trace
from asterisk.replay.recording import find_sample
from cti.recording import recording_base
from tests.daemon.conftest import (
    RunningDaemon,
    journal,
    leg_event,
    serve_through,
    settings_for,
    wait_until,
    write_config,
)
from tests.traces import TRACES

#: The daemon's settle time in these tests (the replay is held while it waits).
SETTLE = 0.05
#: The audio the replay writes for the daemon's recordings: the lab's split recording (trace 11 has none of its own).
SAMPLE = find_sample([TRACES / "34-stereo-recording"])


def actions(pbx: ReplayPbx, name: str) -> list[AmiMessage]:
    return [a.message for a in pbx.received_actions if a.message.action == name]


async def play(trace: str, tmp_path: Path, recording: str, answer: str) -> tuple[ReplayPbx, list[dict[str, object]]]:
    """Play ``trace`` into a daemon with ``recording`` lines in ``[recording]``; ``answer``: the agent channel whose
    ``BridgeEnter`` follows the answer. Returns the replay (its received actions) and the journal."""
    folder = tmp_path / "monitor"
    loaded = load_trace(TRACES / trace)
    async with ReplayPbx([TRACES / trace], speed=0, recordings=folder, recording_audio=SAMPLE) as pbx:
        pbx.pause()
        _, port = pbx.address
        lines = f'{recording}\ndir = "{folder}"'
        config = write_config(tmp_path, port, sections={"recording": lines})
        async with RunningDaemon(settings_for(tmp_path, port, sections={"recording": lines})) as running:
            recorder = running.daemon.recorder
            if recorder is not None:
                recorder.settle = SETTLE
            await serve_through(pbx, [e.message for e in loaded.events], leg_event("BridgeEnter", answer),
                                "the agent's answer")
            if recorder is not None:
                decided = recorder  # every way the recorder ends its look at a call
                await wait_until(lambda: decided.started + decided.adopted + decided.failures + decided.skipped > 0,
                                 10, "the recorder decided")
            pbx.resume()
            await wait_until(lambda: pbx.finished.is_set(), 30, "the replay finished")
            await wait_until(lambda: not running.daemon.book.calls, 10, "every call ended")
    return pbx, journal(config)


async def test_policy_all_records_a_call_the_dialplan_does_not(tmp_path: Path) -> None:
    pbx, rows = await play("11-ringgroup-answered", tmp_path, 'record = "all"', "PJSIP/101-")
    [sent] = actions(pbx, "MixMonitor")
    linkedid = str(rows[0]["linkedid"])
    base = recording_base("main", linkedid)
    assert sent.get("Channel").startswith("PJSIP/trunk-")
    assert (sent.get("File"), sent.get("Options")) == (f"{base}-mix.wav", f"br({base}-in.wav)t({base}-out.wav)")
    assert rows[0]["recording"] == f"{base}-mix.wav"
    assert rows[0]["recordings"] == [f"{base}-mix.wav"]
    folder = tmp_path / "monitor"
    assert SAMPLE is not None and SAMPLE.incoming is not None
    for name, source in ((f"{base}-mix.wav", SAMPLE.mix), (f"{base}-in.wav", SAMPLE.incoming)):  # real audio
        assert (folder / name).read_bytes() == source.read_bytes()
    with wave.open(str(folder / f"{base}-out.wav")) as audio:
        assert audio.getnframes() > 8000 and audio.getframerate() == 8000


async def test_stereo_layout_writes_one_two_channel_file(tmp_path: Path) -> None:
    pbx, rows = await play("11-ringgroup-answered", tmp_path, 'record = "all"\nlayout = "stereo"', "PJSIP/101-")
    [sent] = actions(pbx, "MixMonitor")
    name = f"{recording_base('main', str(rows[0]['linkedid']))}-stereo.wav"
    assert (sent.get("File"), sent.get("Options")) == (name, "bD")
    assert rows[0]["recordings"] == [name]
    with wave.open(str(tmp_path / "monitor" / name)) as audio:
        assert audio.getnchannels() == 2


async def test_a_dialplan_recording_is_adopted(tmp_path: Path) -> None:
    pbx, rows = await play("01-direct-answered", tmp_path, 'record = "all"', "PJSIP/103-")
    assert actions(pbx, "MixMonitor") == []
    assert any(a.get("Variable") == "MIXMONITOR_FILENAME" for a in actions(pbx, "Getvar"))
    assert rows[0]["recording"] == "20261124-001402-79161234567-1795479242.0.wav"


async def test_a_queues_own_recording_set_after_the_answer_is_adopted(tmp_path: Path) -> None:
    """07: the queue's MixMonitor names its file milliseconds after the agent answered: still no second one."""
    pbx, rows = await play("07-queue-ringall-answered", tmp_path, 'record = "selected"\nqueues = ["support"]',
                           "PJSIP/102-")
    assert actions(pbx, "MixMonitor") == []
    assert rows[0]["recordings"] == ["1795479360.12.wav"]


async def test_inbound_policy_skips_an_internal_call(tmp_path: Path) -> None:
    pbx, rows = await play("18-internal-call", tmp_path, 'record = "inbound"', "PJSIP/102-")
    assert actions(pbx, "MixMonitor") == [] and actions(pbx, "Getvar") == []
    assert rows[0]["recordings"] == []


@pytest.mark.parametrize(("lines", "recorded"), [
    ('record = "selected"\ndids = ["74957654321"]', True),
    ('record = "selected"\nqueues = ["support"]\ndids = ["74951234567"]', False),
])
async def test_selected_queues_and_dids(tmp_path: Path, lines: str, recorded: bool) -> None:
    pbx, rows = await play("11-ringgroup-answered", tmp_path, lines, "PJSIP/101-")
    assert len(actions(pbx, "MixMonitor")) == (1 if recorded else 0)
    assert bool(rows[0]["recordings"]) is recorded


async def test_a_refused_mixmonitor_is_logged_and_the_call_goes_on(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """The PBX refuses (the AMI user may not MixMonitor: ``write`` with neither ``call`` nor ``system``): logged,
    counted, not fatal."""
    folder = tmp_path / "monitor"
    trace = TRACES / "11-ringgroup-answered"
    loaded = load_trace(trace)
    async with ReplayPbx([trace], speed=0, recordings=folder, write="agent,originate,reporting") as pbx:
        pbx.pause()
        _, port = pbx.address
        lines = f'record = "all"\ndir = "{folder}"'
        config = write_config(tmp_path, port, sections={"recording": lines})
        async with RunningDaemon(settings_for(tmp_path, port, sections={"recording": lines})) as running:
            recorder = running.daemon.recorder
            assert recorder is not None
            recorder.settle = SETTLE
            await serve_through(pbx, [e.message for e in loaded.events], leg_event("BridgeEnter", "PJSIP/101-"))
            await wait_until(lambda: recorder.failures == 1, 10, "the failure counted")
            # An admin sees it on /api/health, before anyone misses a recording.
            seen = running.daemon.health().recording
            assert seen is not None and (seen.started, seen.failures) == (0, 1)
            assert seen.last_failure is not None and "Permission denied" in seen.last_failure
            pbx.resume()
            await wait_until(lambda: pbx.finished.is_set(), 30, "the replay finished")
            await wait_until(lambda: not running.daemon.book.calls, 10, "every call ended")
    assert recorder.last_failure is not None and "Permission denied" in recorder.last_failure
    assert "MixMonitor for call" in caplog.text
    rows = journal(config)
    assert rows[0]["answered"] is True and rows[0]["recordings"] == []
