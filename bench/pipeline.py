"""Events per second of the daemon's AMI event path, against panoramisk 1.4's bare parser.

Why this exists: the daemon must keep up with a busy PBX, and the honest yardstick is what any
panoramisk-based client pays just to *parse* the stream. Both sides get the same bytes in the same
64 KiB reads (the size of a large TCP read), and only frames with an ``Event`` header are counted.

(a) **baseline**: panoramisk's ``AMIProtocol.data_received`` with a factory whose ``dispatch()`` only
    counts (no callbacks, no tasks): per-read decoding, splitting and ``Message.from_line``.
(b) **pipeline**: the daemon's own code from the socket read on: ``CtiAmiProtocol.data_received``
    (our ``AmiFramer``) → ``companion.daemon.Daemon.on_message`` (``CallBook.apply``, ``stage_event``,
    ``stage_call``) → a real store (``open_store``: SQLite) on a temporary file, opened and wired as ``Daemon.run``
    does, with its writer task committing concurrently. The final ``flush()`` is inside the timed part.
    Only the socket is left out, as it is for (a), and ``Daemon.run``'s once-a-second ``CtiTick``
    task (one event a second, and it would be counted as one). By default one admin (``all``) panel
    client is connected to the hub (:class:`CountingClient`: it counts frames, no socket), so that every
    message the panel would send is built and encoded, as on a site where a supervisor watches; with
    ``--no-panel-client`` nobody is connected and the panel skips building most messages.

The input is every ``ami.raw`` of ``../shared/ami-traces`` (``CTI_SHARED``), concatenated and repeated
until the wanted number of events. Each repetition shifts the epoch part of every ``*Uniqueid`` /
``*Linkedid`` value and of every ``Timestamp``, so no call is merged with one of an earlier repetition
and the PBX clock moves forward. The bytes are generated before the clock starts. Two corpora:

* **unfiltered**: what a login with ``Events: on`` receives (VarSet, Newexten, RTCP...: the worst case);
* **filtered**: what the daemon's default login receives. As Asterisk's ``manager.c`` does it: the
  event's classes (its ``Privilege`` header) must all be in ``Events:`` (:data:`cti.model.AMI_EVENT_CLASSES`),
  and one of the include filters (:data:`cti.model.AMI_FILTERS`) must ``re.search``-match the event's
  ``Key: Value\\r\\n`` text. Replies to actions carry no ``Privilege`` and are never filtered.

``python -m bench.pipeline`` measures both corpora (5 runs each, fresh state every run; ``--breakdown``
adds the framer alone and the framer + model without the store). ``--soak`` runs 1,000,000 events
through the pipeline sampling memory, in a fresh interpreter per soak (:data:`SOAKS`). The Markdown
report goes to stdout and into its own section of ``docs/benchmarks.md``; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import math
import os
import pstats
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from panoramisk.ami_protocol import AMIProtocol

from asterisk.connection import CtiAmiProtocol
from asterisk.protocol import SPEEDUPS, AmiFramer
from bench.machine import machine
from companion.daemon import Daemon, freeze_startup_heap
from companion.demo import demo_settings
from companion.threads import tune_threads
from cti.model import AMI_EVENT_CLASSES, AMI_FILTERS
from store import open_store
from store.repository import Store, User
from ui_bridge.hub import Client, Transport

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"
#: Bytes per simulated socket read.
READ_SIZE = 64 * 1024
_END = b"\r\n\r\n"
_EVENT = re.compile(rb"^Event: ", re.MULTILINE)
#: The issue's targets: events/s of the pipeline, and its rate as a share of panoramisk's.
TARGET_RATE = 20_000
#: Issue 10: the daemon's filtered pipeline at least as fast as panoramisk's bare parse, measured in the same run.
TARGET_RATIO = 1.0
#: Values whose epoch part (group 1) is shifted per repetition: ``Uniqueid: 1795479360.12``.
_STAMPED = re.compile(rb"^(?:[A-Za-z]*(?:Uniqueid|Linkedid)|Timestamp): (\d+)\.\d+\r$", re.MULTILINE)
_PRIVILEGE = re.compile(r"^Privilege: (.*)\r$", re.MULTILINE)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- the input ---------------------------------------------------------------------------------------

def traces_dir() -> Path:
    shared = Path(os.environ.get("CTI_SHARED", REPO.parent / "shared")).resolve()
    traces = shared / "ami-traces"
    if not any(traces.glob("*/ami.raw")):
        raise SystemExit(f"no */ami.raw under {traces}; set CTI_SHARED to the shared/ folder")
    return traces


def load_frames(traces: Path) -> tuple[bytes, list[bytes], int]:
    """The banner line, every frame (terminator excluded) of every trace in folder order, the folder count."""
    banner = b""
    frames: list[bytes] = []
    raws = sorted(traces.glob("*/ami.raw"))
    for path in raws:
        first, _, rest = path.read_bytes().partition(b"\r\n")
        banner = banner or first + b"\r\n"  # one login: the banner only once, at the start
        frames.extend(f for f in rest.split(_END) if f.strip())
    return banner, frames, len(raws)


class AsteriskFilter:
    """Which events an AMI session with an ``Events:`` class mask and include ``Filter`` regexes receives."""

    def __init__(self, classes: str, filters: Sequence[str]) -> None:
        self.classes = frozenset(c.strip() for c in classes.split(","))
        self.filters = tuple(re.compile(f) for f in filters)

    def delivers(self, frame: bytes) -> bool:
        text = frame.decode("utf-8", "replace") + "\r\n\r\n"  # the event as manager.c formats it
        privilege = _PRIVILEGE.search(text)
        if privilege is None:  # a reply to an action, or an item of one: not an event of the queue
            return True
        if not set(privilege.group(1).split(",")) - {"all"} <= self.classes:
            return False
        return not self.filters or any(f.search(text) for f in self.filters)


@dataclass(frozen=True, slots=True)
class Corpus:
    """One repetition of the traces as a template: literal bytes around the epochs shifted per repetition."""

    name: str
    banner: bytes
    literals: tuple[bytes, ...]  # one more than epochs
    epochs: tuple[int, ...]
    events: int  # frames with an Event header, per repetition
    frames: int
    shift: int  # seconds added per repetition: more than the traces span, so no id comes back

    @classmethod
    def build(cls, name: str, banner: bytes, frames: Sequence[bytes], shift: int) -> Corpus:
        blob = b"".join(f + _END for f in frames)
        literals: list[bytes] = []
        epochs: list[int] = []
        pos = 0
        for m in _STAMPED.finditer(blob):
            literals.append(blob[pos : m.start(1)])
            epochs.append(int(m.group(1)))
            pos = m.end(1)
        literals.append(blob[pos:])
        events = sum(1 for f in frames if _EVENT.search(f))
        return cls(name, banner, tuple(literals), tuple(epochs), events, len(frames), shift)

    def render(self, rep: int) -> bytes:
        offset = rep * self.shift
        parts: list[bytes] = [b""] * (2 * len(self.epochs) + 1)
        parts[0::2] = self.literals
        parts[1::2] = [b"%d" % (e + offset) for e in self.epochs]
        return b"".join(parts)

    def repetitions(self, events: int) -> int:
        return max(1, math.ceil(events / self.events))

    def reads(self, reps: int, first: int = 0) -> list[bytes]:
        """The whole stream, cut in READ_SIZE reads regardless of frame boundaries (as TCP does); ``first``:
        the repetition it starts at (a later one has later times and new ids)."""
        data = self.banner + b"".join(self.render(r) for r in range(first, first + reps))
        return [data[i : i + READ_SIZE] for i in range(0, len(data), READ_SIZE)]

    def stream(self, reps: int) -> Iterator[bytes]:
        """The same stream generated one repetition at a time (for runs too big to hold in memory)."""
        yield self.banner
        for r in range(reps):
            data = self.render(r)
            for i in range(0, len(data), READ_SIZE):
                yield data[i : i + READ_SIZE]


def build_corpora() -> tuple[Corpus, Corpus, int]:
    traces = traces_dir()
    banner, frames, folders = load_frames(traces)
    epochs = [int(m.group(1)) for f in frames for m in _STAMPED.finditer(f + b"\r\n")]
    shift = max(epochs) - min(epochs) + 3600
    ami_filter = AsteriskFilter(AMI_EVENT_CLASSES, AMI_FILTERS)
    unfiltered = Corpus.build("unfiltered", banner, frames, shift)
    filtered = Corpus.build("filtered", banner, [f for f in frames if ami_filter.delivers(f)], shift)
    return unfiltered, filtered, folders


def split_characters(reads: Sequence[bytes]) -> int:
    """Reads that begin inside a UTF-8 character: panoramisk's per-read decode loses it there."""
    return sum(1 for r in reads[1:] if r and 0x80 <= r[0] < 0xC0)


# -- (a) the baseline ---------------------------------------------------------------------------------

class _CountingFactory:
    """Stands where panoramisk's ``Manager`` would: ``dispatch()`` only counts (no callbacks, no tasks)."""

    def __init__(self) -> None:
        self.events = 0

    def dispatch(self, message: object) -> None:
        self.events += 1


def run_panoramisk(reads: Sequence[bytes]) -> tuple[int, float]:
    """Events counted and seconds taken by panoramisk's own parsing of the reads."""
    factory = _CountingFactory()
    protocol = AMIProtocol()
    protocol.connection_made(asyncio.Transport())  # a transport nothing is written to
    protocol.factory = factory
    protocol.encoding = "utf8"  # what panoramisk.Manager sets by default
    started = time.perf_counter()
    for data in reads:
        protocol.data_received(data)
    return factory.events, time.perf_counter() - started


# -- (b) the pipeline ---------------------------------------------------------------------------------

@dataclass(slots=True)
class PipelineRun:
    events: int
    seconds: float
    open_calls: int


Probe = Callable[[Daemon, Store], None]


class CountingClient(Client):
    """An admin panel client with no socket: it takes every frame the hub offers it and only counts them,
    so the panel's cost of building and encoding every message is measured, not a socket's."""

    frames: int = 0

    def offer(self, frame: str) -> bool:
        self.frames += 1
        return True


def connect_counting_client(daemon: Daemon) -> CountingClient:
    """Register a :class:`CountingClient` in the daemon's hub on ``all``, as an admin's socket would be."""
    if daemon.panel is None:
        raise SystemExit("the panel is disabled in the bench's settings: no hub to connect a client to")
    client = CountingClient(User("bench", "admin"), Transport(), asyncio.Queue(1))
    daemon.panel.hub.add(client, "all")
    return client


async def run_pipeline(
    reads: Iterable[bytes], store_path: Path, probe: Probe | None = None, rate: float = 0.0,
    panel_client: bool = False,
) -> PipelineRun:
    """Feed the reads through the daemon's protocol, model and store; the last commit is timed too.

    After every read the loop gets a turn (``asyncio.sleep(0)``), as it does between socket reads, so
    the store's writer task runs concurrently. With ``rate`` (events/s) the reads are paced like a PBX
    sending that many events per second, and the loop idles in between. With ``panel_client`` a
    :class:`CountingClient` is connected to the panel's hub before the first read.
    """
    settings = demo_settings(5038, store_path)
    tune_threads()  # as run_daemon does
    daemon = Daemon(settings)
    if panel_client:
        connect_counting_client(daemon)
    # As Daemon.run wires it, without the AMI client (its socket is what both sides leave out).
    async with open_store(settings.store, region=settings.pbx.default_region) as store:
        daemon.store = store
        protocol = CtiAmiProtocol(daemon.on_message, max_frame_size=settings.ami.max_frame_size)
        protocol.connection_made(asyncio.Transport())
        async with asyncio.TaskGroup() as tg:
            writer = tg.create_task(store.run_writer(), name="store-writer")
            daemon._tasks = tg  # back-pressure spawns its drain task here, as in Daemon.run
            daemon.pipeline.attach(tg)  # the subscribers' tasks (the panel's), as Daemon.run runs them
            freeze_startup_heap()  # as run_daemon does once the daemon is ready
            started = time.perf_counter()
            for data in reads:
                protocol.data_received(data)
                await daemon.wait_for_store()  # the daemon's back-pressure: a socket would stop reading
                delay = started + daemon.events_applied / rate - time.perf_counter() if rate else 0.0
                await asyncio.sleep(max(0.0, delay))
                if probe is not None:
                    probe(daemon, store)
            await daemon.pipeline.drain(60.0)  # the subscribers' last effects, timed as the last commit is
            await store.flush()
            seconds = time.perf_counter() - started
            await daemon.pipeline.close(0.0)
            writer.cancel()
            gc.unfreeze()  # each run starts from the same heap
        protocol.connection_lost(None)
        daemon.store = None
    return PipelineRun(daemon.events_applied, seconds, len(daemon.book.calls))


def count_rows(store_path: Path) -> tuple[int, int]:
    """Calls in the journal and events still in the live-event journal."""
    with sqlite3.connect(store_path) as db:
        calls = db.execute("SELECT count(*) FROM calls").fetchone()[0]
        live = db.execute("SELECT count(*) FROM live_events").fetchone()[0]
    return int(calls), int(live)


# -- where the time goes (--breakdown) ----------------------------------------------------------------

def run_framer(reads: Sequence[bytes]) -> float:
    """Seconds our ``AmiFramer`` alone takes to cut the reads into messages."""
    framer = AmiFramer(expect_banner=True)
    started = time.perf_counter()
    for data in reads:
        framer.receive_data(data, 0.0)
        framer.events_received()
    return time.perf_counter() - started


async def run_model(reads: Sequence[bytes]) -> float:
    """Seconds for ``CtiAmiProtocol`` → ``Daemon.on_message`` with no store (``on_message`` then stops
    after ``CallBook.apply``)."""
    daemon = Daemon(demo_settings(5038, Path("unused.sqlite")))
    protocol = CtiAmiProtocol(daemon.on_message, max_frame_size=daemon.settings.ami.max_frame_size)
    protocol.connection_made(asyncio.Transport())
    started = time.perf_counter()
    for data in reads:
        protocol.data_received(data)
    seconds = time.perf_counter() - started
    protocol.connection_lost(None)
    return seconds


# -- the throughput run -------------------------------------------------------------------------------

@dataclass(slots=True)
class Series:
    rates: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def cell(self) -> str:
        return f"**{self.median:,.0f}** ({min(self.rates):,.0f}–{max(self.rates):,.0f})"


@dataclass(slots=True)
class CorpusResult:
    corpus: Corpus
    reps: int
    events: int
    megabytes: float
    baseline: Series
    pipeline: Series
    framer: Series
    model: Series
    calls: int
    live_events: int
    open_calls: int
    split_reads: int
    reads: int

    @property
    def ratio(self) -> float:
        return self.pipeline.median / self.baseline.median

    @property
    def run_ratios(self) -> list[float]:
        """(b)/(a) of each run with the (a) measured just before it: less exposed to a noisy host."""
        return [b / a for a, b in zip(self.baseline.rates, self.pipeline.rates, strict=True)]


def copy_year(year: Path, workdir: Path) -> Path:
    """A copy of a ``bench.year`` store file (and its WAL) in ``workdir``: the runs journal into it."""
    copy = workdir / "year.sqlite"
    for suffix in ("", "-wal"):
        if Path(f"{year}{suffix}").exists():
            shutil.copyfile(f"{year}{suffix}", f"{copy}{suffix}")
    return copy


def measure(corpus: Corpus, events: int, runs: int, workdir: Path, breakdown: bool,
            underneath: Path | None = None, first_rep: int = 0, panel_client: bool = True) -> CorpusResult:
    """``runs`` interleaved runs of (a) and (b) (and the partial pipelines with ``breakdown``).

    With ``underneath`` (a copy of a ``bench.year`` file) every run of (b) journals into that store, on top of
    its year of calls, instead of a new empty file; "calls journaled" is then what the run added, and each run
    gets its own repetitions from ``first_rep`` on (both (a) and (b): the same bytes), so its calls are new.
    """
    reps = corpus.repetitions(events)
    reads = corpus.reads(reps)
    total = corpus.events * reps
    progress(f"{corpus.name}: {total:,} events in {len(reads):,} reads of {READ_SIZE // 1024} KiB")
    baseline, pipeline, framer, model = Series([]), Series([]), Series([]), Series([])
    calls = live = open_calls = 0
    for run in range(1, runs + 1):
        if underneath is not None:  # the store keeps every run's calls: each run's must be new
            reads = corpus.reads(reps, first=first_rep + (run - 1) * reps)
        gc.collect()
        counted, seconds = run_panoramisk(reads)
        if counted != total:
            raise SystemExit(f"panoramisk counted {counted} events, the corpus has {total}")
        baseline.rates.append(total / seconds)
        if breakdown:
            gc.collect()
            framer.rates.append(total / run_framer(reads))
            gc.collect()
            model.rates.append(total / asyncio.run(run_model(reads)))
        gc.collect()
        store_path = underneath or workdir / f"{corpus.name}-{run}.sqlite"
        before = count_rows(store_path)[0] if underneath is not None else 0
        result = asyncio.run(run_pipeline(reads, store_path, panel_client=panel_client))
        if result.events != total:
            raise SystemExit(f"the pipeline applied {result.events} events, the corpus has {total}")
        pipeline.rates.append(total / result.seconds)
        calls, live = count_rows(store_path)
        calls -= before
        open_calls = result.open_calls
        for suffix in ("", "-wal", "-shm") if underneath is None else ():
            Path(f"{store_path}{suffix}").unlink(missing_ok=True)
        progress(f"  run {run}/{runs}: panoramisk {baseline.rates[-1]:,.0f} ev/s, "
                 f"pipeline {pipeline.rates[-1]:,.0f} ev/s ({calls:,} calls journaled)")
    return CorpusResult(corpus, reps, total, sum(map(len, reads)) / 1e6, baseline, pipeline, framer, model,
                        calls, live, open_calls, split_characters(reads), len(reads))


# -- the soak run -------------------------------------------------------------------------------------

def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True, slots=True)
class Sample:
    events: int
    seconds: float
    rss: float
    calls: int
    channels: int
    pending: int


class Sampler:
    """Takes a :class:`Sample` each time another ``every`` events have been applied."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.next = every
        self.started = time.perf_counter()
        self.samples: list[Sample] = []

    def __call__(self, daemon: Daemon, store: Store) -> None:
        if daemon.events_applied < self.next:
            return
        self.next += self.every
        book = daemon.book
        sample = Sample(daemon.events_applied, time.perf_counter() - self.started, rss_mib(), len(book.calls),
                        len(book.channels), store.pending_count)
        self.samples.append(sample)
        progress(f"  {sample.events:>9,} events  RSS {sample.rss:7.1f} MiB  calls {sample.calls}  "
                 f"channels {sample.channels}  pending writes {sample.pending}")


@dataclass(slots=True)
class SoakResult:
    corpus: str
    rate: float  # 0: as fast as possible
    events: int
    reps: int
    seconds: float
    samples: list[Sample]
    warmup: int
    store_bytes: int
    calls: int
    live_events: int
    open_calls: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SoakResult:
        data = json.loads(text)
        data["samples"] = [Sample(**x) for x in data["samples"]]
        return cls(**data)

    @property
    def label(self) -> str:
        pace = f"paced at {self.rate:,.0f} events/s" if self.rate else "as fast as possible"
        return f"{self.corpus}, {pace}"

    def after_warmup(self) -> list[Sample]:
        return [s for s in self.samples if s.events >= self.warmup] or self.samples

    @property
    def rss_spread(self) -> float:
        """(max − min) / min of RSS after the warm-up."""
        rss = [s.rss for s in self.after_warmup()]
        return (max(rss) - min(rss)) / min(rss)

    @property
    def max_live_calls(self) -> int:
        return max(s.calls for s in self.samples)

    @property
    def rss_growth(self) -> float:
        """Peak RSS of the second half of the run (after the warm-up) against the first half's peak.

        Memory that is *flat* does not grow with the number of events: a pipeline that buffers writes
        goes up and down with its backlog (bounded by ``[store] max_pending``), but its peak does not
        climb. A leak shows as growth; a bounded buffer as spread.
        """
        rss = [s.rss for s in self.after_warmup()]
        half = len(rss) // 2
        first, second = max(rss[: half or 1]), max(rss[half:] or rss)
        return (second - first) / first

    @property
    def flat(self) -> bool:
        """No growth after the warm-up (≤ 5%), and never more calls open than one repetition holds."""
        return self.rss_growth <= 0.05 and self.max_live_calls <= self.calls // self.reps


def soak(corpus: Corpus, events: int, every: int, warmup: int, rate: float, workdir: Path) -> SoakResult:
    reps = corpus.repetitions(events)
    total = corpus.events * reps
    pace = f"paced at {rate:,.0f} events/s" if rate else "as fast as possible"
    progress(f"soak: {total:,} {corpus.name} events ({reps} repetitions, every call new), {pace}, "
             f"sample every {every:,}")
    store_path = workdir / "soak.sqlite"
    sampler = Sampler(every)
    gc.collect()
    result = asyncio.run(run_pipeline(corpus.stream(reps), store_path, sampler, rate))
    calls, live = count_rows(store_path)
    size = sum(p.stat().st_size for p in (store_path, Path(f"{store_path}-wal")) if p.exists())
    return SoakResult(corpus.name, rate, result.events, reps, result.seconds, sampler.samples, warmup, size, calls,
                      live, result.open_calls)


#: The soaks of ``--soak``: the issue's case (unfiltered, at the target rate), the daemon's default
#: traffic at the same rate, and the unfiltered stream as fast as it goes (overload).
SOAKS = (("unfiltered", TARGET_RATE), ("filtered", TARGET_RATE), ("unfiltered", 0.0))


def soak_in_child(args: argparse.Namespace, corpus: str, rate: float) -> SoakResult:
    """One soak in a fresh interpreter, so that no run inherits the memory another one left behind."""
    command = [sys.executable, "-m", "bench.pipeline", "--soak", "--json", "--rate", str(rate),
               "--corpus", corpus, "--soak-events", str(args.soak_events),
               "--sample-every", str(args.sample_every), "--warmup", str(args.warmup)]
    done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, text=True, check=True)
    return SoakResult.from_json(done.stdout)


# -- profile ------------------------------------------------------------------------------------------

def profile(corpus: Corpus, events: int, workdir: Path, top: int, panel_client: bool = True) -> None:
    """One pipeline run under cProfile; the top functions by own time go to stderr.

    cProfile instruments every call, C methods included, so it inflates parsers made of many small
    ``str`` calls: read it for *where*, and ``--breakdown`` for *how much*.
    """
    reads = corpus.reads(corpus.repetitions(events))
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(run_pipeline(reads, workdir / "profile.sqlite", panel_client=panel_client))
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(top)


# -- the report ---------------------------------------------------------------------------------------


def _measured(load: tuple[float, float, float]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Measured {when} on {machine('panoramisk', 'aiosqlite', with_sqlite=True)}; load average before the run "
            f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min).")


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _us(rate: float) -> str:
    return f"{1e6 / rate:.1f}"


def throughput_report(results: Sequence[CorpusResult], runs: int, folders: int,
                      load: tuple[float, float, float], underneath: str = "", panel_client: bool = True) -> str:
    lines = [
        "## Event pipeline vs panoramisk's parser" + (
            ", a year in the store underneath (`python -m bench.pipeline --year FILE`)" if underneath
            else " (`python -m bench.pipeline`)"),
        "",
        _measured(load),
        "",
        f"Input: the `ami.raw` of all {folders} trace folders of `../shared/ami-traces`, concatenated and "
        "repeated, each repetition with the epochs of its `*Uniqueid`/`*Linkedid`/`Timestamp` values shifted "
        f"(every call new), fed in {READ_SIZE // 1024} KiB reads. {runs} runs per figure, (a) and (b) "
        "interleaved, fresh state every run; events/s = frames with an `Event` header ÷ wall time; "
        "**median** (min–max).",
        "",
        "* (a) baseline: panoramisk 1.4 `AMIProtocol.data_received`, `encoding='utf8'` (as `Manager` sets it), "
        "a factory whose `dispatch()` only counts.",
        "* (b) pipeline: `CtiAmiProtocol.data_received` (our `AmiFramer`, "
        + ("with its C fast path `asterisk._speedups`" if SPEEDUPS else "**pure Python**: `asterisk._speedups` "
           "is not built here") + ") → `companion.daemon.Daemon.on_message` "
        "(`CallBook.apply`, `stage_event`, `stage_call`) → the store (`open_store`, SQLite) on a temporary file, "
        "wired as "
        "`Daemon.run` and `run_daemon` do (`tune_threads()`, the start-up heap frozen), its writer task running, "
        "the final `flush()` timed. Same bytes, same reads, same "
        "process; the socket is left out of both.",
        "* The panel: " + ("one admin client connected to the hub on `all` (it counts frames, no socket), so every "
                           "message is built and encoded." if panel_client else
                           "**no client connected** (`--no-panel-client`): the panel skips building most messages."),
        *([f"* **Store underneath**: {underneath}"] if underneath else []),
        "",
        "| corpus | events per run | MB | (a) panoramisk, ev/s | (b) pipeline, ev/s | (b)/(a) of the medians | "
        "(b)/(a) run by run |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r.corpus.name} | {r.events:,} | {r.megabytes:.0f} | {r.baseline.cell()} | "
                     f"{r.pipeline.cell()} | **{r.ratio:.0%}** | {min(r.run_ratios):.0%}–{max(r.run_ratios):.0%} |")
    lines += ["", "Targets (issue 10): pipeline ≥ 20,000 events/s and ≥ 100% of the bare parser's rate "
              "(the filtered stream is the one that counts).", ""]
    for r in results:
        lines.append(f"* {r.corpus.name}: {r.pipeline.median:,.0f} ev/s ≥ 20,000: "
                     f"{_verdict(r.pipeline.median >= TARGET_RATE)}; {r.ratio:.0%} of panoramisk ≥ 100%: "
                     f"{_verdict(r.ratio >= TARGET_RATIO)}.")
    if all(r.framer.rates for r in results):
        lines += [
            "",
            "Where the time goes (µs per event, from the medians; `--breakdown`): our framer alone, then "
            "`CtiAmiProtocol` + `Daemon.on_message` with no store (it stops after `CallBook.apply`), then the "
            "whole pipeline; the differences are what each layer adds.",
            "",
            "| corpus | (a) panoramisk | framer | + protocol + model | + store (= b) |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in results:
            lines.append(f"| {r.corpus.name} | {_us(r.baseline.median)} | {_us(r.framer.median)} | "
                         f"{_us(r.model.median)} | {_us(r.pipeline.median)} |")
    lines += ["", "| corpus | frames / events per repetition | repetitions | calls journaled per run | "
              "calls left open | reads beginning inside a UTF-8 character |", "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.corpus.name} | {r.corpus.frames:,} / {r.corpus.events:,} | {r.reps} | {r.calls:,} | "
                     f"{r.open_calls} | {r.split_reads} of {r.reads:,} |")
    lines += [
        "",
        "The filtered corpus is what the daemon receives with its default config (`Events: "
        f"{AMI_EVENT_CLASSES}` plus `cti.model.AMI_FILTERS`, applied as Asterisk does); the unfiltered one is "
        "`Events: on`, the worst case for the parser. A filtered event costs the pipeline more on average: "
        "the cheap noise (VarSet, Newexten, RTCP, which the model skips and nothing journals) is gone, and "
        "almost every event left belongs to a call and is journaled.",
        "",
        "Every repetition replays the same 31 calls from the same numbers, so the missed-call register sees "
        "a call-back every few calls: far denser than real traffic, which makes the store's share "
        "pessimistic. On a shared VM absolute rates drift from minute to minute (the same (a) run varies by a "
        "third); the run-by-run ratio, (b) against the (a) measured just before it, is the steadier figure.",
        "",
        "Correctness, not speed: where a read begins inside a UTF-8 character (counted above) panoramisk's "
        "per-read `decode('utf8', 'ignore')` drops that character, so a Cyrillic `CallerIDName` loses a "
        "letter; our framer decodes whole frames only.",
    ]
    return "\n".join(lines) + "\n"


def soak_report(results: Sequence[SoakResult], load: tuple[float, float, float]) -> str:
    lines = [
        "## Memory over a long run (`python -m bench.pipeline --soak`)",
        "",
        _measured(load),
        "",
        f"About {results[0].events:,} events through the whole pipeline (as above), every call new, each run "
        "in a fresh interpreter. *Paced* runs feed the reads at the target rate, like a PBX sending that many "
        "events per second, and the loop idles in between; *as fast as possible* is overload. The input is "
        "generated one repetition at a time, so it is not held in memory. RSS from `/proc/self/status`; live "
        "calls/channels are the entries of the `CallBook`; pending writes are the store's `pending_count` "
        "(staged, not yet committed).",
    ]
    for s in results:
        lines += [
            "",
            f"### {s.label}",
            "",
            "| events | seconds | RSS MiB | live calls | live channels | pending writes |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for x in s.samples:
            lines.append(f"| {x.events:,} | {x.seconds:.1f} | {x.rss:.1f} | {x.calls} | {x.channels} | "
                         f"{x.pending:,} |")
        rss = [x.rss for x in s.after_warmup()]
        lines += [
            "",
            f"After the warm-up ({s.warmup:,} events) RSS stays between {min(rss):.1f} and {max(rss):.1f} MiB "
            f"(spread {s.rss_spread:.1%}; second-half peak vs first-half peak {s.rss_growth:+.1%}); at most "
            f"{s.max_live_calls} calls were open at once (a repetition holds {s.calls // s.reps}). "
            f"Flat (no growth beyond 5% after the warm-up, live calls bounded): "
            f"{'yes' if s.flat else '**no**'}. {s.events / s.seconds:,.0f} events/s overall (input generation "
            f"included). Journal at the end: {s.calls:,} calls, {s.live_events} live-event rows, "
            f"{s.open_calls} calls open; store file {s.store_bytes / 2**20:.1f} MiB.",
        ]
    return "\n".join(lines) + "\n"


_DOC_HEAD = """# Benchmarks

Speed and memory are measured here, never in unit tests. Each section is written by the command in its
title; rerun it to update the figures (each run states the machine, the date and the load).
"""


def write_section(key: str, text: str, doc: Path = DOC) -> None:
    """Replace (or append) the section between this key's markers in docs/benchmarks.md."""
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    block = f"{start}\n{text}{end}\n"
    current = doc.read_text(encoding="utf-8") if doc.exists() else _DOC_HEAD
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.DOTALL)
    if pattern.search(current):
        current = pattern.sub(lambda _: block, current)
    else:
        current = current.rstrip("\n") + "\n\n" + block
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(current, encoding="utf-8")


# -- command line -------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline",
                                     description="AMI event pipeline vs panoramisk 1.4's parser: events/s, memory.")
    parser.add_argument("--events", type=int, default=200_000, help="events per measurement (default 200,000)")
    parser.add_argument("--runs", type=int, default=5, help="measurements per figure (default 5)")
    parser.add_argument("--corpus", choices=("both", "unfiltered", "filtered"), default="both",
                        help="throughput: which corpora; soak: unfiltered unless 'filtered'")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time the framer alone and framer + model without the store")
    parser.add_argument("--soak", action="store_true", help="the memory run instead of the throughput run")
    parser.add_argument("--soak-events", type=int, default=1_000_000)
    parser.add_argument("--sample-every", type=int, default=50_000)
    parser.add_argument("--warmup", type=int, default=200_000, help="soak events before RSS must stay flat")
    parser.add_argument("--rate", type=float, default=None,
                        help="soak once at this pace (events/s, 0 = as fast as possible), in this process; "
                             "default: the three soaks of SOAKS, each in a fresh interpreter")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # a soak child's answer
    parser.add_argument("--profile", action="store_true", help="one pipeline run under cProfile (stderr)")
    parser.add_argument("--top", type=int, default=30, help="functions listed by --profile")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--panel-client", action=argparse.BooleanOptionalAction, default=True,
                        help="throughput and profile: connect one admin panel client that counts frames, so "
                             "every panel message is built and encoded (default); --no-panel-client: none")
    parser.add_argument("--year", type=Path, default=None,
                        help="throughput: journal into a copy of this bench.year store file (a year of calls "
                             "underneath) instead of a new empty one")
    args = parser.parse_args(argv)
    if min(args.events, args.runs, args.soak_events, args.sample_every) < 1:
        parser.error("--events, --runs, --soak-events and --sample-every must be positive")

    load = os.getloadavg()
    if args.soak and args.rate is None:
        soaks = [soak_in_child(args, corpus, rate) for corpus, rate in SOAKS]
        key, report = "bench.pipeline.soak", soak_report(soaks, load)
    else:
        unfiltered, filtered, folders = build_corpora()
        with tempfile.TemporaryDirectory(prefix="cti-bench-") as tmp:
            workdir = Path(tmp)
            if args.soak:
                corpus = filtered if args.corpus == "filtered" else unfiltered
                result = soak(corpus, args.soak_events, args.sample_every, args.warmup, args.rate, workdir)
                if args.json:
                    print(result.to_json())
                    return 0
                key, report = "bench.pipeline.soak", soak_report([result], load)
            elif args.profile:
                for corpus in (unfiltered, filtered):
                    if args.corpus in ("both", corpus.name):
                        progress(f"profile: {corpus.name}, {args.events:,} events")
                        profile(corpus, args.events, workdir, args.top, args.panel_client)
                return 0
            else:
                underneath, note = None, ""
                if args.year is not None:
                    progress(f"copying {args.year} into {workdir}")
                    underneath = copy_year(args.year, workdir)
                    with sqlite3.connect(underneath) as db:
                        year_calls = db.execute("SELECT count(*) FROM calls").fetchone()[0]
                    note = (f"every run of (b) journals into one copy of `{args.year}` (`bench.year`: "
                            f"{year_calls:,} calls, {underneath.stat().st_size / 2**30:.2f} GiB before the runs), "
                            "the file the daemon would have after a year; opened and migrated as `Daemon.run` does.")
                results, first = [], 0
                for c in (unfiltered, filtered):
                    if args.corpus in ("both", c.name):
                        results.append(measure(c, args.events, args.runs, workdir, args.breakdown, underneath, first,
                                               args.panel_client))
                        first += c.repetitions(args.events) * args.runs
                key = "bench.pipeline.year" if underneath is not None else "bench.pipeline"
                report = throughput_report(results, args.runs, folders, load, note, args.panel_client)
    print(report)
    if not args.no_write:
        write_section(key, report)
        progress(f"written to {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
