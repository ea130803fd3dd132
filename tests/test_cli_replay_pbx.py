"""``cti replay-pbx --live``: the recorded PBX a newcomer starts by hand answers call control as Asterisk does, as
``cti demo``'s does (a pause from the panel shows up as the member's ``QueueMemberPause``), over real TCP AMI."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from tests.conftest import UNIT
from tests.mail_server import free_port

CTI = Path(sys.executable).parent / "cti"
TRACE = "32-queue-paused-member"  # 105 is a member of the queue


async def _read_until(reader: asyncio.StreamReader, marker: bytes, seconds: float) -> bytes:
    seen = b""
    try:
        async with asyncio.timeout(seconds * UNIT):
            while marker not in seen:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                seen += chunk
    except TimeoutError:
        raise AssertionError(f"no {marker!r} within {seconds * UNIT} s; the last: {seen[-600:]!r}") from None
    return seen


async def test_a_live_replay_pbx_answers_a_pause_with_the_member_s_event() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(CTI), "replay-pbx", TRACE, "--live", "--redate", "--port", str(port), "--speed", "0",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(30 * UNIT):
            while True:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    break
                except OSError:
                    assert process.returncode is None, "cti replay-pbx stopped"
                    await asyncio.sleep(0.05)
        writer.write(b"Action: Login\r\nActionID: 1\r\nUsername: cti\r\nSecret: cti-secret\r\n\r\n")
        assert b"Authentication accepted" in await _read_until(reader, b"Authentication accepted", 10)
        writer.write(b"Action: QueuePause\r\nActionID: 2\r\nInterface: PJSIP/105\r\nPaused: true\r\n"
                     b"Reason: lunch\r\n\r\n")
        answer = await _read_until(reader, b"PausedReason: lunch", 10)
        pauses = [e for e in answer.split(b"\r\n\r\n")
                  if b"Event: QueueMemberPause" in e and b"PausedReason: lunch" in e]
        # At once (the queues.conf beside the traces names 105 a member before any event of the trace does).
        assert pauses and all(b"Interface: PJSIP/105" in p and b"Paused: 1" in p for p in pauses)
        # --redate: the recorded calls are served as today's (the trace's own events carry the time they are served).
        stamps = [float(line.split(b": ")[1]) for line in answer.split(b"\r\n") if line.startswith(b"Timestamp: ")]
        assert stamps and all(abs(s - time.time()) < 3600 for s in stamps), stamps[:3]
        writer.close()
    finally:
        process.terminate()
        await process.wait()
