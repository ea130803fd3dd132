"""A year of a call centre's traffic written into a store file, for timing what grows with history.

Why this exists: a site keeps years of calls, and every listing, export and screen-pop card must cost the
same on the day the daemon is installed and a year later (issue 10 measured 108 s for ``cti calls --since
7d`` on a real site's 2,000,000-call, 3.1 GB file). ``bench.listings`` times the listings on the file this
module makes; ``bench.pipeline --year FILE`` runs the event path with it underneath.

**The calls are the traces' calls.** Every folder of ``../shared/ami-traces`` (``CTI_SHARED``) is replayed
once through the real call model (``cti.model.CallBook``) and each finished call (``CallEnded``: the
``CallRecord`` with its legs, the missed entry, the agents' misses) becomes a *shape*: queue ring-all
answered, queue abandoned, queue timeout to voicemail, a member unavailable, ring group, direct DID, hold,
split recording, blind transfers (to an agent, unanswered, to an outside number), directed pickup,
click-to-call answered / not answered / busy, an agent dialling out, internal calls, a withheld number,
and a short abandon (the caller-hangs-up shape squeezed under 3 s). Each generated call is a copy of one
shape (weights in :data:`SHAPES`) with new ids (Asterisk's ``epoch.sequence``), new times, a new customer
number and name, its agents drawn from the queue's members (or any agent), talk time drawn from a
log-normal law and ring time stretched, the recording names rebuilt as the dial plan names them. The missed
entry is made by the model's own ``missed_entry``; the register's call-backs happen through the store's own
rule: an outbound call is, half of the time, a call-back to the oldest missed number not yet called back.

**Who calls.** ``--agents`` agents (default 48: 101..148) in four queues and ring groups. Customers: 30
regulars (fleet customers, a call-centre's partners) with 5,000-15,000 calls each at 2,000,000 calls
(scaled with ``--calls``), and a long tail where most numbers call a few times (a number's rank ``i`` in a
pool of 0.35 × calls gets ~``i^-1/3`` of the calls: the median caller has 2, the busiest ~150).

**When.** 365 days ending at :data:`YEAR_END` (2026-12-01 00:00 Moscow time; the traces are of 2026-11-24),
weekdays busier than Saturday and Sunday, the New Year holidays quiet, a mild seasonal swing, and an
hourly profile peaking 10:00-16:00 with a lunch dip. Calls are staged in the order they start.

**How it is written**: through the store's interface exactly as the daemon does (``stage_call(record,
missed, agent_misses)`` with the writer task running, the ``[store]`` defaults, back-pressure at
``max_pending``), so the schema, the indexes, the register and its history, and any table a migration adds
are filled as in production. The file and a ``.json`` beside it (the parameters, the regulars' numbers, a
never-seen number, the agents' volumes, the generation rate) are kept; a later run with the same
parameters, generator version and writing code (:data:`WRITER_FILES`) reuses the file (``--fresh`` remakes it).

``python -m bench.year [--calls N] [--seed S] [--out PATH]``; the report goes to stdout and (unless
``--no-write``) into its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import json
import math
import os
import random
import re
import sqlite3
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from asterisk.messages import AmiMessage
from bench.machine import machine
from cti.effects import CallEnded
from cti.model import CallBook, ModelConfig, missed_entry
from cti.records import AgentMiss, CallRecord
from store.settings import StoreSettings

REPO = Path(__file__).resolve().parent.parent
SECTION = "bench.year"
#: Bump when what is generated changes (a cached file made by an older generator is then remade).
GENERATOR_VERSION = 1
DEFAULT_DIR = Path("/tmp/bench-year")
DEFAULT_CALLS = 2_000_000
TZ = ZoneInfo("Europe/Moscow")
#: The generated year ends here (exclusive); listings treat this moment as "now".
YEAR_END = datetime(2026, 12, 1, tzinfo=TZ)
DAYS = 365
YEAR_START = YEAR_END - timedelta(days=DAYS)
MODEL = ModelConfig()

#: (trace folder prefix, weight, label). Weights are relative; inbound ≈ 60%, outbound ≈ 30%, internal 6%.
SHAPES: tuple[tuple[str, float, str], ...] = (
    ("07", 18.0, "queue, ring-all, answered"),
    ("32", 5.0, "queue, a paused member, answered"),
    ("36", 2.0, "queue, a member unavailable, answered"),
    ("31", 1.5, "queue, answered, blind transfer by the phone"),
    ("08", 4.0, "queue, caller abandons"),
    ("10", 1.5, "queue, timeout to voicemail"),
    ("01", 8.0, "direct DID, answered"),
    ("02", 2.0, "direct DID, the agent hangs up"),
    ("21", 2.0, "direct DID, hold and resume"),
    ("34", 1.0, "direct DID, split recording"),
    ("23", 0.5, "withheld number, answered"),
    ("03", 1.0, "direct DID, no answer, voicemail"),
    ("04", 0.7, "direct DID, busy"),
    ("05", 1.3, "direct DID, caller hangs up while ringing"),
    ("05s", 1.0, "direct DID, short abandon"),
    ("11", 4.0, "ring group, answered"),
    ("12", 1.0, "ring group, no answer"),
    ("13", 1.2, "blind transfer to an agent"),
    ("15", 0.5, "blind transfer, target does not answer"),
    ("35", 0.5, "blind transfer to an outside number"),
    ("29", 0.5, "directed pickup"),
    ("16", 14.0, "click-to-call, answered"),
    ("37", 3.0, "click-to-call, answered, Cyrillic connected line"),
    ("33", 8.0, "agent dials out, answered"),
    ("17", 3.0, "click-to-call, no answer"),
    ("27", 1.5, "click-to-call, busy"),
    ("18", 5.0, "internal call, answered"),
    ("28", 1.0, "internal call, no answer"),
)
#: Queues: name → (DID, which slice of the agents are its members).
QUEUES: dict[str, tuple[str, slice]] = {
    "support": ("74951234567", slice(0, 18)),
    "support-rr": ("74951234569", slice(12, 30)),
    "support-linear": ("74951234568", slice(24, 36)),
    "sales": ("74959990000", slice(36, None)),
}
QUEUE_WEIGHTS = (5.0, 2.0, 1.5, 2.0)
HEAVY_CALLERS = 30
HEAVY_RANGE = (5_000, 15_000)  # calls per regular at 2,000,000 calls
TAIL_POOL = 0.35  # distinct long-tail numbers per call
TAIL_SKEW = 1.5
CALLBACK_SHARE = 0.5  # outbound calls that call back a missed number
FOREIGN_SHARE = 0.003
WEEKDAY = (1.0, 1.0, 1.0, 0.97, 0.92, 0.45, 0.25)
HOURS = (0.02, 0.01, 0.01, 0.01, 0.01, 0.02, 0.05, 0.15, 0.5, 1.0, 1.3, 1.4, 1.3, 1.0, 1.3, 1.3, 1.2, 1.0,
         0.6, 0.3, 0.15, 0.1, 0.05, 0.03)
FIRST = ("Александр", "Алексей", "Анна", "Андрей", "Дарья", "Дмитрий", "Екатерина", "Елена", "Игорь", "Ирина",
         "Кирилл", "Мария", "Михаил", "Наталья", "Олег", "Ольга", "Павел", "Сергей", "Светлана", "Татьяна")
LAST = ("Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков",
        "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов",
        "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин", "Захаров")
COMPANIES = ("ООО Автопарк", "ООО ТрансЛогистик", "АО Такси Столица", "ООО Каршеринг", "ИП Грузоперевозки",
             "ООО СтройТехника", "ООО Доставка", "АО Лизинг-Авто", "ООО Ромашка", "ООО Вектор")
_FEMALE = ("Анна", "Дарья", "Екатерина", "Елена", "Ирина", "Мария", "Наталья", "Ольга", "Светлана", "Татьяна")
_CHANNEL = re.compile(r"^(?P<tech>[^/]+)/(?P<name>.+?)-(?P<seq>[0-9a-f]{8})(?P<half>;\d)?$")
_DATED_RECORDING = re.compile(r"^\d{8}-\d{6}-(?P<who>.*)-(?P<uid>\d+\.\d+)(?P<rest>.*)$")
_UID_RECORDING = re.compile(r"^(?P<uid>\d+\.\d+)(?P<rest>\.wav)$")
_AGENT = re.compile(r"1\d\d")


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def traces_dir() -> Path:
    """``$CTI_SHARED/ami-traces`` (default ``../shared`` beside the repository), as ``bench.pipeline`` reads it."""
    traces = Path(os.environ.get("CTI_SHARED", REPO.parent / "shared")).resolve() / "ami-traces"
    if not any(traces.glob("*/ami.jsonl")):
        raise SystemExit(f"no */ami.jsonl under {traces}; set CTI_SHARED to the shared/ folder")
    return traces


# -- the shapes ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Shape:
    """One call of a trace, as a template for many."""

    key: str
    label: str
    weight: float
    ended: CallEnded
    agents: tuple[str, ...]  # the template's agents, in order of appearance
    customer: str | None  # the template's outside number (the caller inbound, the called outbound)
    group: str  # whose agents ring: a queue, a ring group, or anyone ("any")

    @property
    def record(self) -> CallRecord:
        return self.ended.record


def replay(trace: Path) -> list[CallEnded]:
    """The finished calls of one trace, through the real model (as tests/cti/test_model_traces.py does)."""
    book = CallBook(MODEL)
    out: list[CallEnded] = []
    for line in (trace / "ami.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if not isinstance(item.get("msg"), list):
            continue
        msg = AmiMessage.from_pairs(item["msg"], received_at=item["t"])
        if msg.event == "SuccessfulAuth":  # the connection announces the PBX clock at login
            msg = AmiMessage.from_pairs([("Event", "CtiConnected"), ("PbxTime", msg.get("Timestamp"))],
                                        received_at=item["t"])
        out.extend(e for e in book.apply(msg) if isinstance(e, CallEnded))
    return out


def _agents_of(ended: CallEnded) -> tuple[str, ...]:
    r = ended.record
    seen: dict[str, None] = {}
    candidates = [leg.agent for leg in r.legs] + [r.answered_by, r.transferred_to, r.caller, r.called]
    candidates += [*r.agents_rung_not_answered, *r.agents_answered, *(m.agent for m in ended.agent_misses)]
    for value in candidates:
        if value is not None and _AGENT.fullmatch(value):
            seen[value] = None
    return tuple(seen)


def load_shapes() -> list[Shape]:
    traces = {p.name[:2]: p for p in traces_dir().iterdir() if p.is_dir() and (p / "ami.jsonl").is_file()}
    shapes = []
    for key, weight, label in SHAPES:
        folder = traces.get(key[:2])
        if folder is None:
            raise SystemExit(f"no trace folder {key[:2]}-* under {traces_dir()}")
        [ended] = replay(folder)  # one call per folder (25-resync-midcall, with four, is not a shape)
        r = ended.record
        customer = r.caller if r.direction == "inbound" else r.called if r.direction == "outbound" else None
        if r.queue is not None:
            group = "queue"
        elif r.did == "74957654321":
            group = "ringgroup"
        else:
            group = "any"
        shapes.append(Shape(key, label, weight, ended, _agents_of(ended), customer, group))
    return shapes


# -- who calls -----------------------------------------------------------------------------------------

@dataclass(slots=True)
class Population:
    """The customers' numbers: a few regulars with thousands of calls, a long tail with a few each."""

    rng: random.Random
    heavy: list[str]
    heavy_cum: list[float]
    heavy_share: float
    tail: int

    @classmethod
    def make(cls, rng: random.Random, calls: int) -> Population:
        scale = calls / DEFAULT_CALLS
        counts = [rng.uniform(*HEAVY_RANGE) * scale for _ in range(HEAVY_CALLERS)]
        heavy = [f"7495{rng.randrange(10**7):07d}" if i % 3 else f"7903{rng.randrange(10**7):07d}"
                 for i in range(HEAVY_CALLERS)]
        cum, total = [], 0.0
        for c in counts:
            total += c
            cum.append(total)
        return cls(rng, heavy, cum, min(0.5, total / calls), max(10, int(calls * TAIL_POOL)))

    def tail_number(self, index: int) -> str:
        # i -> (i * 7919 + c) mod 10^9 is one-to-one for i < 10^9: every index is its own number.
        return f"79{(index * 7919 + 123_456_789) % 10**9:09d}"

    def never_called(self) -> str:
        return self.tail_number(self.tail + 4242)

    def draw(self) -> str:
        u = self.rng.random()
        if u < self.heavy_share:
            return self.heavy[bisect.bisect(self.heavy_cum, self.rng.random() * self.heavy_cum[-1])]
        if u < self.heavy_share + FOREIGN_SHARE:
            return f"4477009{self.rng.randrange(10**5):05d}"
        return self.tail_number(int(self.tail * self.rng.random() ** TAIL_SKEW))

    def name(self, number: str) -> str | None:
        n = int(number[-9:])
        if number in self.heavy:
            return f"{COMPANIES[n % len(COMPANIES)]} №{n % 97 + 1}"
        if n % 10 < 3:  # many callers show no name, only their number
            return None
        first = FIRST[n % len(FIRST)]
        last = LAST[(n // 7) % len(LAST)]
        return f"{last}{'а' if first in _FEMALE else ''} {first}"


def agent_names(agents: Sequence[str]) -> dict[str, str]:
    out = {}
    for i, agent in enumerate(agents):
        first = FIRST[(i * 7) % len(FIRST)]
        last = LAST[(i * 11) % len(LAST)]
        out[agent] = f"{first} {last}{'а' if first in _FEMALE else ''}"
    return out


# -- when ----------------------------------------------------------------------------------------------

def day_counts(calls: int) -> list[int]:
    """Calls per day of the year (largest remainder: they sum to ``calls``)."""
    weights = []
    for d in range(DAYS):
        day = YEAR_START + timedelta(days=d)
        w = WEEKDAY[day.weekday()] * (1.0 + 0.15 * math.sin(2 * math.pi * (d - 40) / DAYS))
        if day.month == 1 and day.day <= 8:  # the New Year holidays
            w *= 0.3
        weights.append(w)
    total = sum(weights)
    exact = [calls * w / total for w in weights]
    counts = [int(x) for x in exact]
    for i in sorted(range(DAYS), key=lambda i: exact[i] - counts[i], reverse=True)[: calls - sum(counts)]:
        counts[i] += 1
    return counts


def start_times(rng: random.Random, calls: int) -> Iterator[float]:
    """Every call's start (epoch seconds), in order."""
    hours = list(range(24))
    for d, n in enumerate(day_counts(calls)):
        midnight = (YEAR_START + timedelta(days=d)).timestamp()
        picks = rng.choices(hours, weights=HOURS, k=n)
        yield from sorted(midnight + h * 3600 + rng.random() * 3600 for h in picks)


# -- one call from a shape -----------------------------------------------------------------------------

@dataclass(slots=True)
class Generator:
    """Makes the calls of the year, one after another, from the shapes."""

    rng: random.Random
    shapes: list[Shape]
    agents: list[str]
    names: dict[str, str]
    people: Population
    seq: int = 1000  # Asterisk's uniqueid sequence
    channel_seq: int = 0x1000
    #: Missed numbers not called back yet, oldest first: (number, when it was missed).
    to_call_back: deque[tuple[str, float]] = field(default_factory=deque)
    shape_counts: Counter[str] = field(default_factory=Counter)
    agent_calls: Counter[str] = field(default_factory=Counter)  # calls each agent took part in
    number_calls: Counter[str] = field(default_factory=Counter)
    callbacks: int = 0
    _cum: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        total = 0.0
        for s in self.shapes:
            total += s.weight
            self._cum.append(total)

    def pick_shape(self) -> Shape:
        return self.shapes[bisect.bisect(self._cum, self.rng.random() * self._cum[-1])]

    def _members(self, shape: Shape) -> tuple[str | None, list[str]]:
        """The queue (if any) and the agents who may stand in for the template's agents."""
        if shape.group == "queue":
            queue = self.rng.choices(list(QUEUES), weights=QUEUE_WEIGHTS)[0]
            return queue, self.agents[QUEUES[queue][1]]
        return None, self.agents

    def _customer(self, shape: Shape, start: float) -> str:
        if shape.record.direction == "outbound" and self.to_call_back and self.rng.random() < CALLBACK_SHARE:
            while self.to_call_back and start - self.to_call_back[0][1] > 2 * 86400:
                self.to_call_back.popleft()  # never called back
            if self.to_call_back and start - self.to_call_back[0][1] > 120:
                self.callbacks += 1
                return self.to_call_back.popleft()[0]
        return self.people.draw()

    def call(self, start: float) -> CallEnded:
        shape = self.pick_shape()
        self.shape_counts[shape.key] += 1
        r = shape.record
        rng = self.rng
        queue, members = self._members(shape)
        new_agents = rng.sample(members, len(shape.agents))
        amap = dict(zip(shape.agents, new_agents, strict=True))
        smap: dict[str | None, str | None] = {k: v for k, v in amap.items()}  # exact-value replacements
        for old, new in amap.items():
            for did in ("749500001", "749500003"):  # direct DIDs name the agent's extension
                smap[did + old[1:]] = did + new[1:]
        if queue is not None and r.queue is not None:
            smap[r.queue] = queue
            smap[r.did] = QUEUES[queue][0]
        number: str | None = None
        if shape.customer is not None:
            number = self._customer(shape, start)
            self.number_calls[number] += 1
            smap[shape.customer] = "8" + number[1:] if r.direction == "outbound" and number[0] == "7" else number
        if r.transferred_to is not None and r.transferred_to not in smap:  # to an outside number
            outside = self.people.draw()
            smap[r.transferred_to] = "8" + outside[1:] if outside[0] == "7" else outside

        def s(value: str | None) -> str | None:
            return smap.get(value, value)

        # Times: the ring part stretched by k, the talk part by a log-normal draw.
        old_start = r.started_at
        old_answer = r.answered_at
        if shape.key == "05s":
            k = rng.uniform(0.8, 2.9) / max(0.1, (r.ended_at or old_start + 1) - old_start)
        elif r.answered:
            k = rng.uniform(0.6, 2.5)
        else:
            k = rng.uniform(0.7, 4.0) if r.queue is not None else rng.uniform(0.7, 1.8)
        if r.answered:
            median = {"inbound": 150.0, "outbound": 100.0, "internal": 60.0}[r.direction]
            talk = min(3600.0, rng.lognormvariate(math.log(median), 0.8))
            stretch = talk - r.talk_seconds
        else:
            stretch = 0.0

        def t(value: float) -> float:
            d = value - old_start
            if old_answer is not None and value > old_answer:
                return start + (old_answer - old_start) * k + (value - old_answer) + stretch
            return start + d * k

        def tt(value: float | None) -> float | None:
            return None if value is None else t(value)

        ids: dict[str, str] = {}

        def new_id(old: str, when: float) -> str:
            got = ids.get(old)
            if got is None:
                self.seq += 1
                got = ids[old] = f"{int(when)}.{self.seq}"
            return got

        legs = []
        for leg in r.legs:
            new_id(leg.uniqueid, t(leg.started_at))
        linkedid = new_id(r.linkedid, start)
        for leg in r.legs:
            m = _CHANNEL.match(leg.channel)
            channel = leg.channel
            if m is not None:
                self.channel_seq += 1
                name = m["name"]
                if "@" in name:  # Local/104@agents
                    ext, _, ctx = name.partition("@")
                    name = f"{amap.get(ext, ext)}@{ctx}"
                else:
                    name = amap.get(name, name)
                channel = f"{m['tech']}/{name}-{self.channel_seq:08x}{m['half'] or ''}"
            legs.append(replace(
                leg, uniqueid=ids[leg.uniqueid], channel=channel, agent=s(leg.agent), number=s(leg.number),
                started_at=t(leg.started_at), answered_at=tt(leg.answered_at), ended_at=tt(leg.ended_at)))

        def recording(name: str) -> str:
            if m := _DATED_RECORDING.match(name):
                stamp = datetime.fromtimestamp(start, TZ).strftime("%Y%m%d-%H%M%S")
                who = s(m["who"]) or ""
                return f"{stamp}-{who}-{ids.get(m['uid'], linkedid)}{m['rest']}"
            if m := _UID_RECORDING.match(name):
                return f"{ids.get(m['uid'], linkedid)}{m['rest']}"
            return name

        caller = s(r.caller)
        caller_name = r.caller_name
        if r.direction == "inbound":
            caller_name = self.people.name(number) if number is not None else caller_name
        elif caller is not None and caller in self.names:
            caller_name = self.names[caller]
        answered_by = s(r.answered_by)
        record = replace(
            r, linkedid=linkedid, caller=caller, caller_name=caller_name, called=s(r.called),
            answered_by=answered_by, missed_reason="short_abandon" if shape.key == "05s" else r.missed_reason,
            talk_seconds=r.talk_seconds + stretch if r.answered else r.talk_seconds,
            transferred_to=s(r.transferred_to),
            agents_rung_not_answered=tuple(amap[a] for a in r.agents_rung_not_answered),
            recording=recording(r.recording) if r.recording else None, started_at=start,
            answered_at=tt(r.answered_at), ended_at=tt(r.ended_at), ring_seconds=r.ring_seconds * k,
            queue=s(r.queue), did=s(r.did), recordings=tuple(recording(x) for x in r.recordings),
            linkedids=tuple(new_id(x, start) for x in r.linkedids),
            agents_answered=tuple(amap[a] for a in r.agents_answered), legs=tuple(legs),
        )
        misses = tuple(
            AgentMiss(linkedid=linkedid, agent=amap[m.agent], rang_at=t(m.rang_at), ring_seconds=m.ring_seconds * k,
                      reason=m.reason, answered_by=s(m.answered_by), caller=caller)
            for m in shape.ended.agent_misses
        )
        missed = missed_entry(record, MODEL)
        if missed is not None and missed.caller_key is not None and missed.reason != "short_abandon":
            self.to_call_back.append((missed.caller_key, start))
        self.agent_calls.update(set(new_agents))
        return CallEnded(record, missed, misses)


# -- writing the file ----------------------------------------------------------------------------------

#: What decides a year file's content: the schema and the code that writes rows (not the read side, which changes
#: more often and would cost a ten-minute regeneration for nothing). Paths of both the current layout and the
#: single-module store of older commits (for ``bench.listings --code``).
WRITER_FILES = ("store/migrations/*.sql", "store/migrate.py", "store/sqlite.py", "store/staging.py",
                "store/sqlite/writer.py", "store/sqlite/rows.py", "cti/records.py", "cti/callbacks.py")


def store_digest() -> str:
    """A hash of :data:`WRITER_FILES`: a file made by other writing code is stale (a migration adds a table, the
    writer starts filling it)."""
    h = hashlib.sha256()
    for p in sorted(f for pattern in WRITER_FILES for f in REPO.glob(pattern)):
        h.update(str(p.relative_to(REPO)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def params(calls: int, seed: int, agents: int) -> dict[str, Any]:
    return {"calls": calls, "seed": seed, "agents": agents, "generator": GENERATOR_VERSION,
            "store": store_digest(), "year_end": YEAR_END.isoformat()}


def default_out(calls: int, seed: int) -> Path:
    return DEFAULT_DIR / f"year-{calls}-s{seed}.sqlite"


def meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def load_meta(path: Path) -> dict[str, Any] | None:
    try:
        meta: dict[str, Any] = json.loads(meta_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if path.exists() else None


async def _open(path: Path) -> Any:
    """The store as the daemon opens it: through the interface's factory when it exists."""
    settings = StoreSettings(path=path)
    try:
        from store import open_store  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        from store.sqlite import SqliteStore

        return await SqliteStore.from_settings(settings, region="RU")
    return await open_store(settings, region="RU")


def _progress_bar() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]} calls/s"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=False)


def remove_store_file(path: Path) -> None:
    meta_path(path).unlink(missing_ok=True)  # first: a half-written file must never look finished
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)


def file_bytes(path: Path) -> int:
    return sum(Path(f"{path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{path}{s}").exists())


async def write_year(path: Path, calls: int, seed: int, n_agents: int, quiet: bool = False) -> dict[str, Any]:
    """Generate the year into a new file at ``path``; return what the ``.json`` beside it holds."""
    remove_store_file(path)
    rng = random.Random(seed)
    agents = [str(101 + i) for i in range(n_agents)]
    people = Population.make(rng, calls)
    gen = Generator(rng, load_shapes(), agents, agent_names(agents), people)
    store = await _open(path)
    settings = StoreSettings(path=path)
    generating = 0.0
    started = time.perf_counter()
    bar = None if quiet else _progress_bar()
    try:
        async with asyncio.TaskGroup() as tg:
            writer = tg.create_task(store.run_writer(), name="store-writer")
            if bar is not None:
                bar.start()
                task = bar.add_task("writing a year", total=calls, rate="-")
            for done, when in enumerate(start_times(rng, calls), start=1):
                g0 = time.perf_counter()
                ended = gen.call(when)
                generating += time.perf_counter() - g0
                store.stage_call(ended.record, ended.missed, ended.agent_misses)
                if done % 500 == 0:
                    await asyncio.sleep(0)  # the writer's turn, as between socket reads
                    if store.pending_count > settings.max_pending:  # the daemon's back-pressure
                        await store.flush()
                    if bar is not None and done % 5000 == 0:
                        rate = done / (time.perf_counter() - started)
                        bar.update(task, completed=done, rate=f"{rate:,.0f}")
            await store.flush()
            seconds = time.perf_counter() - started
            writer.cancel()
    finally:
        if bar is not None:
            bar.stop()
        await store.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables = {name: db.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # names from the schema
                  for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND name NOT LIKE 'sqlite_%' ORDER BY name")}
        missed_open = db.execute("SELECT count(*) FROM missed WHERE status = 'open'").fetchone()[0]
        closed_by = dict(db.execute("SELECT closed_by, count(*) FROM missed WHERE status = 'closed' "
                                    "GROUP BY closed_by").fetchall())
        outcomes = dict(db.execute("SELECT outcome, count(*) FROM calls GROUP BY outcome").fetchall())
        directions = dict(db.execute("SELECT direction, count(*) FROM calls GROUP BY direction").fetchall())
    heavy = sorted(((gen.number_calls[n], n) for n in people.heavy), reverse=True)
    volumes = sorted(gen.agent_calls.values())
    typical = min(agents, key=lambda a: abs(gen.agent_calls[a] - volumes[len(volumes) // 2]))
    counts = sorted(gen.number_calls.values())
    size = file_bytes(path)
    return {
        "made_at": datetime.now(TZ).isoformat(timespec="seconds"),
        "machine": machine("aiosqlite", with_sqlite=True),
        "seconds": seconds, "generating_seconds": generating, "calls_per_second": calls / seconds,
        "store_calls_per_second": calls / max(1e-9, seconds - generating),
        "bytes": size, "tables": tables, "missed_open": missed_open, "missed_closed_by": closed_by,
        "outcomes": outcomes, "directions": directions, "callbacks_generated": gen.callbacks,
        "shapes": {f"{s.key} {s.label}": gen.shape_counts[s.key] for s in gen.shapes},
        "agents": agents, "agent_calls": dict(gen.agent_calls), "typical_agent": typical,
        "heavy_callers": [{"number": n, "calls": c} for c, n in heavy],
        "distinct_numbers": len(counts), "median_calls_per_number": counts[len(counts) // 2] if counts else 0,
        "new_number": people.never_called(), "year_start": YEAR_START.isoformat(), "year_end": YEAR_END.isoformat(),
        "timezone": str(TZ),
    }


async def ensure_year(path: Path, calls: int, seed: int, agents: int, *, fresh: bool = False,
                      quiet: bool = False) -> tuple[dict[str, Any], bool]:
    """The year at ``path`` (made now, or reused when made with the same parameters); (meta, reused)."""
    wanted = params(calls, seed, agents)
    meta = None if fresh else load_meta(path)
    if meta is not None and meta.get("params") == wanted:
        return meta, True
    progress(f"generating {calls:,} calls into {path} (seed {seed}, {agents} agents)")
    made = await write_year(path, calls, seed, agents, quiet=quiet)
    meta = {"params": wanted, **made}
    meta_path(path).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return meta, False


# -- the report ----------------------------------------------------------------------------------------

def write_section(key: str, text: str, doc: Path = REPO / "docs" / "benchmarks.md") -> None:
    """Replace (or append) this key's section of docs/benchmarks.md, as ``bench.pipeline.write_section`` does.

    A copy rather than an import: ``bench.pipeline`` imports the whole daemon, which the year and the
    listings need not load (nor fail on while it is being changed).
    """
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    block = f"{start}\n{text}{end}\n"
    current = doc.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.DOTALL)
    current = pattern.sub(lambda _: block, current) if pattern.search(current) else (
        current.rstrip("\n") + "\n\n" + block)
    doc.write_text(current, encoding="utf-8")


def report(meta: dict[str, Any], path: Path, reused: bool) -> str:
    p = meta["params"]
    t = meta["tables"]
    heavy = meta["heavy_callers"]
    volumes = sorted(meta["agent_calls"].values())
    shapes = sorted(meta["shapes"].items(), key=lambda kv: -kv[1])
    lines = [
        "## A year of traffic in the store (`python -m bench.year`)",
        "",
        f"Made {meta['made_at']} on {meta['machine']}"
        + (" (reused by this run: same parameters, generator and writing code)." if reused else "."),
        "",
        f"**{p['calls']:,} calls** (seed {p['seed']}), {meta['year_start'][:10]} to {meta['year_end'][:10]} "
        f"({meta['timezone']}), {len(meta['agents'])} agents, written through the store's interface as the daemon "
        "does (`stage_call` with the writer task running, the `[store]` defaults, back-pressure at `max_pending`): "
        f"**{meta['seconds']:,.0f} s, {meta['calls_per_second']:,.0f} calls/s** "
        f"({meta['generating_seconds']:,.0f} s of it generating the calls in the same thread). "
        f"File {meta['bytes'] / 2**30:.2f} GiB (`{path}`).",
        "",
        "| table | rows |",
        "|---|---:|",
        *(f"| {name} | {n:,} |" for name, n in t.items()),
        "",
        f"Outcomes: {', '.join(f'{k} {v:,}' for k, v in sorted(meta['outcomes'].items()))}; directions: "
        f"{', '.join(f'{k} {v:,}' for k, v in sorted(meta['directions'].items()))}. Register: "
        f"{meta['missed_open']:,} entries open, closed by "
        f"{', '.join(f'{k} {v:,}' for k, v in sorted(meta['missed_closed_by'].items()))} "
        f"({meta['callbacks_generated']:,} outbound calls were call-backs).",
        "",
        f"Callers: {meta['distinct_numbers']:,} distinct numbers, median {meta['median_calls_per_number']} "
        f"calls each; {len(heavy)} regulars with {heavy[-1]['calls']:,}–{heavy[0]['calls']:,} calls. Agents: "
        f"{volumes[0]:,}–{volumes[-1]:,} calls each (rung or answered); typical agent "
        f"{meta['typical_agent']} ({meta['agent_calls'][meta['typical_agent']]:,}).",
        "",
        "Shapes (trace folder, what happens, calls): "
        + "; ".join(f"{name} {n:,}" for name, n in shapes) + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.year",
                                     description="Write a year of call-centre traffic into a store file.")
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS, help="calls in the year (default 2,000,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--agents", type=int, default=48, help="agents (30-60 in a real centre; default 48)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"the store file (default {DEFAULT_DIR}/year-<calls>-s<seed>.sqlite)")
    parser.add_argument("--fresh", action="store_true", help="remake the file even if one with these parameters exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.calls < 100 or not 38 <= args.agents <= 99:
        parser.error("--calls must be at least 100 and --agents 38-99 (the queues take agents 1-37 and more)")
    out = args.out or default_out(args.calls, args.seed)
    meta, reused = asyncio.run(ensure_year(out, args.calls, args.seed, args.agents, fresh=args.fresh,
                                           quiet=args.quiet))
    text = report(meta, out, reused)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
        progress("written to docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
