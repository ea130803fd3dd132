"""How many simultaneous live taps one core keeps up with (issue 17): ``python -m bench.live_tap``.

For N taps at once, a PBX in another process (``tests/live/sip_peer.py``'s registrar and caller, so its CPU is not
counted) registers the daemon's :class:`~companion.live.sip_tap.SipTap`, calls it N times and streams a call of
``../shared/speech`` as PCMU at real time to each for ``--seconds``; this process drains every lane as the daemon
would (frames counted, nothing else done with them). Measured in this process while the calls stream: its CPU time
(event loop + pyVoIP's threads + ours), the CPU of the lanes' receiving threads alone (``/proc/self/task``), and
whether every sample sent arrived. Reported: CPU per second of audio per tap, the share of one core, and the taps
one core would keep at that rate. The speech recogniser's own cost is ``bench/live.py``'s (L3), not this one's.

Nothing asserts. ``--no-write`` keeps ``docs/benchmarks.md`` as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

from bench.year import write_section

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def _thread_cpu(native_id: int) -> float | None:
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


async def _peer(taps: int, seconds: float) -> None:
    """The PBX's side (run in its own process): registrar, N calls, real-time PCMU, BYE."""
    with warnings.catch_warnings():  # Python 3.11's stdlib (deprecated); audioop-lts from 3.13
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

    from companion.live.sip_messages import tap_user
    from recognizer.audio import read_wav
    from tests.live.sip_peer import FakePbx
    from tests.speech import speech_calls

    call = next(c for c in speech_calls() if c.lang == "ru")
    pcm = read_wav(call.path).channels[0][: int(seconds * 8000) * 2]
    g711 = audioop.lin2ulaw(pcm, 2)
    pbx = FakePbx()
    port = await pbx.start()
    print(port, flush=True)
    tap_port = int(await asyncio.to_thread(sys.stdin.readline))
    async with asyncio.timeout(30):
        await pbx.registered.wait()
    peers = []
    for i in range(taps):
        status, peer = await pbx.call(("127.0.0.1", tap_port), tap_user(f"bench{i}", "agent"), payload_types=(0,))
        assert status == 200 and peer is not None
        peers.append(peer)
    await asyncio.gather(*(peer.stream(g711) for peer in peers))
    await asyncio.gather(*(peer.bye() for peer in peers))
    pbx.close()


async def _run(taps: int, seconds: float) -> dict[str, float]:
    from companion.live.sip_tap import SipTap
    from tests.live.sip_peer import free_udp_ports
    from ui_bridge.live_settings import LiveSettings

    peer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.live_tap", "--peer", "--taps", str(taps), "--seconds", str(seconds), cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert peer.stdin is not None and peer.stdout is not None
    pbx_port = int(await peer.stdout.readline())
    ports = free_udp_ports(2 * taps + 3)
    settings = LiveSettings(enabled=True, server="127.0.0.1", server_port=pbx_port, secret="s3cret",
                            bind_host="127.0.0.1", sip_port=ports[0], rtp_port_first=ports[1],
                            rtp_port_last=ports[-1], max_taps=taps)
    received = 0
    async with SipTap(settings) as tap:
        for i in range(taps):
            tap.expect(f"bench{i}")
        peer.stdin.write(f"{settings.sip_port}\n".encode())
        await peer.stdin.drain()
        async with asyncio.timeout(60):
            calls = [await tap.wait_call(f"bench{i}", "agent") for i in range(taps)]
        lane_cpu: dict[int, float] = {}
        lanes = [t for t in threading.enumerate() if t.name.startswith("cti-live-rtp-bench")]

        async def sample() -> None:
            while True:
                for thread in lanes:
                    if thread.native_id is not None and (cpu := _thread_cpu(thread.native_id)) is not None:
                        lane_cpu[thread.native_id] = cpu
                await asyncio.sleep(0.2)

        async def drain(call: object) -> int:
            return sum([len(frame.pcm) // 2 async for frame in call])  # type: ignore[attr-defined]

        sampler = asyncio.create_task(sample())
        cpu0, wall0 = time.process_time(), time.monotonic()
        lane0 = {t.native_id: _thread_cpu(t.native_id) or 0.0 for t in lanes if t.native_id is not None}
        counts = await asyncio.gather(*(drain(call) for call in calls))
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        sampler.cancel()
        received = sum(counts)
    await peer.wait()
    audio = taps * seconds
    lanes_cpu = sum(lane_cpu.get(tid, 0.0) - lane0.get(tid, 0.0) for tid in lane0)
    return {"taps": taps, "wall": wall, "cpu": cpu, "lanes_cpu": lanes_cpu, "audio": audio,
            "complete": received / (audio * 8000)}


def _table(rows: list[dict[str, float]]) -> str:
    lines = ["| taps | audio s | process CPU s | share of one core | CPU ms per audio s per tap | of it, lane threads "
             "| samples arrived | taps one core keeps (at this rate) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        per = r["cpu"] / r["audio"]
        lines.append(f"| {r['taps']:.0f} | {r['audio']:.0f} | {r['cpu']:.2f} | {100 * r['cpu'] / r['wall']:.1f} % | "
                     f"{1000 * per:.1f} | {1000 * r['lanes_cpu'] / r['audio']:.1f} | {100 * r['complete']:.2f} % | "
                     f"{1 / per:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", default="1,8,32,64", help="N taps at once, comma-separated runs")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.peer:
        asyncio.run(_peer(int(args.taps), args.seconds))
        return
    rows = [asyncio.run(_run(int(n), args.seconds)) for n in args.taps.split(",")]
    table = _table(rows)
    print(table)
    if not args.no_write:
        section = (f"## Live SIP taps: CPU per tap (`python -m bench.live_tap`)\n\n"
                   f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average "
                   f"{os.getloadavg()[0]:.2f} at the end; {args.seconds:g} s of PCMU per tap at real time from a PBX "
                   f"in another process over loopback UDP.\n\n{table}\n")
        write_section("bench.live_tap", section)


if __name__ == "__main__":
    main()
