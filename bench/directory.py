"""Client-directory lookups on 1,000,000 contacts and 1,200,000 vehicles, and import speed.

Why this exists: the caller card and the agents' search box ask the directory one question per ring or
keystroke, and the issue wants each answered in under 1 ms (p99) on a directory the size of a big
dealer group's CRM. The honest yardstick is SQLite itself: the same SQL, on the same file, through the
plain synchronous ``sqlite3`` module in the calling thread. What the store adds on top is ``aiosqlite``'s
round trips to its connection thread.

**The directory** (``bench.directory_data``, seeded): ``--contacts`` people and companies with Russian
names drawn so that surname prefixes have a realistic selectivity, 1-2 mobile numbers each in mixed
written forms, and ``--vehicles`` cars spread 0-3 per contact, with standard Cyrillic plates.
It is written into a store file (SQLite) in blocks that alternate between the product's
``Store.add_contacts`` (chunk 2,000, one transaction per chunk, as ``cti contacts import`` does) and
the **import baseline**: the same statements (one ``INSERT`` per contact, ``executemany`` for phones and
vehicles, the same keys from ``cti.directory`` / ``cti.phones`` / ``cti.plates``, one transaction per
2,000 contacts) through a plain ``sqlite3`` connection in this thread. ``--store-share`` contacts go
through the product (default 100,000, in blocks of ``--block``), the rest through the baseline, which
is about 2.5× faster. Rates are rows/s of store time: the generator's own time is measured and taken out.
The finished file is kept in ``--cache`` (default ``/tmp/cti-bench-directory``), keyed by seed, sizes
and a hash of the schema, the directory SQL, the key functions and the generator; a later run with the
same key reuses it (and reports the import figures measured when it was made, with that date);
``--fresh`` regenerates it.

**CSV import** (every run): ``--csv-rows`` rows (default 100,000) of a fresh seed, written by
``cti.contacts_csv.write_contacts`` in 1C's style (cp1251, ``;``); then ``read_contacts`` (decode, sniff,
parse and check every row: rows/s) and ``Store.add_contacts`` of the result into a new empty store.

**Lookups**: ``--samples`` targets per kind drawn at random from the file (plus 10 % misses):
a phone number typed in another written form than stored; a surname prefix of 3-5 letters; a full
surname; a full plate typed in Latin letters; a plate without its region; the plate's 3 digits (each
matches ~1/999 of all cars; ``limit=20``; at most :data:`DIGITS_SAMPLES` of them).
Each is timed with ``time.perf_counter`` around
``await store.find_contacts(text)`` (parse, SQL, rows → ``Contact``), sequentially, on a loop doing
nothing else; then the **baseline**: the same ``parse_query`` + ``where_query`` SQL + ``fetchall`` +
``contact_from_row`` on a synchronous ``sqlite3`` connection to the same file. Before timing, the file is
read once (so it is in the OS page cache: warm, not cold, figures), the heap is frozen out of the garbage
collector (as the daemon does at start-up), and 100 queries per kind and path are run untimed.
``--rounds`` rounds, each timing every kind through the store and then through the baseline.

Also: ``EXPLAIN QUERY PLAN`` of each kind, the file size, the RSS of this process, aiosqlite round trips
per lookup, and for diagnosis the same lookups with the ``ORDER BY ... LIMIT`` applied before the
phones/vehicles JSON is built (an alternative SQL, not the product's).

Nothing asserts. The Markdown report goes to stdout and into its own section of ``docs/benchmarks.md``
(``--no-write`` to leave the file alone); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import io
import itertools
import json
import math
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiosqlite

from bench.directory_data import PLATE_LETTERS, Generator, written_phone
from bench.machine import machine
from bench.pipeline import write_section
from cti.contacts_csv import read_contacts, write_contacts
from cti.directory import Contact, name_key, parse_query
from store import StoreSettings, open_store
from store import sqlite_directory as directory_sql
from store.repository import Store

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"
SECTION = "bench.directory"
TARGET_P99_MS = 1.0
CHUNK = 2000  # add_contacts' default chunk, and the baseline's transaction size
GENERATOR_VERSION = 1
#: Files whose change makes a cached directory file stale.
#: (``bench/directory_data.py`` is not hashed: bump GENERATOR_VERSION when what it generates changes.)
CACHE_INPUTS = ("store/migrations", "store/sqlite_directory.py", "cti/directory.py", "cti/phones.py",
                "cti/plates.py", "cti/makes.py")
MISS_SHARE = 0.1
#: Hit samples of the plate's 3 digits at most: there are only 999 values, and each lookup takes ~10 ms.
DIGITS_SAMPLES = 500
WARMUP = 100
LATIN_TO_CYRILLIC = str.maketrans("ABEKMHOPCTYX", PLATE_LETTERS)
KINDS: dict[str, str] = {
    "number": "phone number, another written form",
    "prefix": "surname prefix, 3-5 letters",
    "surname": "full surname",
    "plate": "full plate, Latin letters",
    "plate_base": "plate without region",
    "plate_digits": "the plate's 3 digits",
}


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def rss_mib() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process, MiB."""
    out = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out.get("VmRSS", math.nan), out.get("VmHWM", math.nan)


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def file_mib(path: Path) -> float:
    return sum(Path(f"{path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{path}{s}").exists()) / 2**20


# -- generating the directory -----------------------------------------------------------------------------

class Timed:
    """An iterator that counts the time spent producing its items (to take the generator out of rates)."""

    def __init__(self, items: Iterator[Contact]) -> None:
        self.items = items
        self.seconds = 0.0
        self.contacts = self.phones = self.vehicles = 0

    def __iter__(self) -> Iterator[Contact]:
        return self

    def __next__(self) -> Contact:
        t0 = time.perf_counter()
        try:
            item = next(self.items)
        finally:
            self.seconds += time.perf_counter() - t0
        self.contacts += 1
        self.phones += len(item.phones)
        self.vehicles += len(item.vehicles)
        return item


@dataclass
class ImportFigures:
    """Rows written and store seconds (generator time taken out) of one path."""

    contacts: int = 0
    phones: int = 0
    vehicles: int = 0
    seconds: float = 0.0
    blocks: list[float] = field(default_factory=list)  # contacts/s of each block

    def add(self, timed: Timed, wall: float) -> None:
        self.contacts += timed.contacts
        self.phones += timed.phones
        self.vehicles += timed.vehicles
        self.seconds += wall - timed.seconds
        self.blocks.append(timed.contacts / (wall - timed.seconds))

    def rate(self, rows: int) -> float:
        return rows / self.seconds if self.seconds else math.nan


def insert_sync(db: sqlite3.Connection, contacts: Iterable[Contact], region: str = "RU") -> int:
    """The import baseline: ``directory_sql.insert_contacts``'s rows and statements on a plain sqlite3 connection."""
    n = 0
    contacts = iter(contacts)
    while chunk := list(itertools.islice(contacts, CHUNK)):
        db.execute("BEGIN IMMEDIATE")
        first_contact, first_vehicle = db.execute(directory_sql.NEXT_IDS).fetchone()
        rows, phones, vehicles = directory_sql.contact_rows(chunk, first_contact, first_vehicle, region, time.time())
        db.executemany(directory_sql.INSERT_CONTACT, rows)
        db.executemany(directory_sql.INSERT_PHONE, phones)
        db.executemany(directory_sql.INSERT_VEHICLE, vehicles)
        db.execute("COMMIT")
        n += len(chunk)
    return n


def sync_connection(path: Path, *, write: bool = False) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA busy_timeout = 5000")
    if write:
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
    else:
        db.execute("PRAGMA query_only = ON")
    return db


async def generate(path: Path, seed: int, contacts: int, vehicles: int, store_share: int,
                   block: int) -> dict[str, Any]:
    """Write the directory into a new store file; returns the import figures."""
    gen = iter(Generator(seed, contacts, vehicles))
    store_fig, base_fig = ImportFigures(), ImportFigures()
    started = time.perf_counter()
    async with open_store(StoreSettings(path=path), region=REGION) as store:
        db = sync_connection(path, write=True)
        try:
            done = 0
            turn = "store"
            while done < contacts:
                use_store = turn == "store" and store_fig.contacts < store_share
                if use_store:
                    size = min(block, store_share - store_fig.contacts)
                else:
                    size = block if store_fig.contacts < store_share else 100_000
                size = min(size, contacts - done)
                timed = Timed(itertools.islice(gen, size))
                t0 = time.perf_counter()
                if use_store:
                    await store.add_contacts(timed, chunk_size=CHUNK)
                    store_fig.add(timed, time.perf_counter() - t0)
                else:
                    insert_sync(db, timed)
                    base_fig.add(timed, time.perf_counter() - t0)
                done += timed.contacts
                progress(f"  {done:,} / {contacts:,} contacts ({'store' if use_store else 'baseline'} block: "
                         f"{timed.contacts / (time.perf_counter() - t0 - timed.seconds):,.0f} contacts/s of "
                         f"store time; {time.perf_counter() - started:.0f} s)")
                turn = "baseline" if turn == "store" else "store"
        finally:
            db.close()
        counted = await store.count_contacts()
    return {"store": asdict(store_fig), "baseline": asdict(base_fig), "contacts": counted,
            "wall": time.perf_counter() - started, "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine("aiosqlite", with_sqlite=True), "load": os.getloadavg()}


def cache_key(seed: int, contacts: int, vehicles: int) -> str:
    digest = hashlib.sha256(f"{GENERATOR_VERSION}:{sqlite3.sqlite_version}".encode())
    for name in CACHE_INPUTS:
        p = REPO / name
        for f in sorted(p.glob("*.sql")) if p.is_dir() else [p]:
            digest.update(f.name.encode() + f.read_bytes())
    return f"directory-s{seed}-c{contacts}-v{vehicles}-{digest.hexdigest()[:12]}"


def cached(args: argparse.Namespace, tmp: Path) -> tuple[Path, Path | None, dict[str, Any] | None]:
    """Where the directory file goes, where its figures go (None: not cached), and those of a usable cached one."""
    if args.cache == "":
        return tmp / "directory.sqlite", None, None
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    key = cache_key(args.seed, args.contacts, args.vehicles)
    path, meta = cache / f"{key}.sqlite", cache / f"{key}.json"
    if path.exists() and meta.exists() and not args.fresh:
        figures = json.loads(meta.read_text(encoding="utf-8"))
        if figures.get("store_share") == args.store_share:
            return path, meta, figures
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path, meta, None


async def directory_file(args: argparse.Namespace, tmp: Path) -> tuple[Path, dict[str, Any], bool]:
    """The directory's store file (cached or new), its import figures, and whether it came from the cache."""
    path, meta, figures = cached(args, tmp)
    if figures is not None:
        progress(f"using the cached directory {path} (made {figures['measured']})")
        return path, figures, True
    progress(f"generating {args.contacts:,} contacts and {args.vehicles:,} vehicles into {path}")
    figures = await generate(path, args.seed, args.contacts, args.vehicles, args.store_share, args.block)
    figures["store_share"] = args.store_share
    if meta is not None:
        meta.write_text(json.dumps(figures), encoding="utf-8")
    return path, figures, False


def read_through(path: Path) -> None:
    """Read the file once, so that it is in the OS page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


# -- the CSV import path ------------------------------------------------------------------------------------

async def csv_import(rows: int, seed: int, tmp: Path) -> dict[str, Any]:
    contacts = max(1, round(rows / 1.35))  # ~1.35 CSV rows per contact at 1.2 vehicles each
    gen = Generator(seed + 1000, contacts, round(contacts * 1.2))
    out = io.StringIO()
    written = write_contacts(gen, out)
    data = out.getvalue().encode("cp1251")
    progress(f"CSV: {written:,} rows, {len(data) / 2**20:.1f} MiB cp1251; read_contacts ...")
    t0 = time.perf_counter()
    result = read_contacts(data)
    parse = time.perf_counter() - t0
    path = tmp / "csv-import.sqlite"
    async with open_store(StoreSettings(path=path), region=REGION) as store:
        progress(f"CSV: {result.rows:,} rows parsed in {parse:.1f} s, {len(result.problems)} problems; "
                 "add_contacts ...")
        t0 = time.perf_counter()
        ids = await store.add_contacts(result.contacts)
        save = time.perf_counter() - t0
    db = sync_connection(path)
    phones = db.execute("SELECT count(*) FROM contact_phones").fetchone()[0]
    db.close()
    return {"rows": result.rows, "bytes": len(data), "problems": len(result.problems), "parse": parse,
            "contacts": len(ids), "phones": phones, "vehicles": result.vehicles, "save": save}


# -- the lookups ---------------------------------------------------------------------------------------------

@dataclass
class Sample:
    kind: str
    text: str
    hit: bool  # the target exists


def latin_plate(key: str, spaced: bool) -> str:
    if spaced and len(key) >= 6:
        return f"{key[0]} {key[1:4]} {key[4:6]} {key[6:]}".strip().lower()
    return key.lower()


def draw_samples(db: sqlite3.Connection, n: int, seed: int) -> list[Sample]:
    """``n`` hits per kind from random existing contacts/vehicles, plus ``MISS_SHARE`` misses."""
    rng = random.Random(seed)
    max_contact = db.execute("SELECT max(id) FROM contacts").fetchone()[0]
    max_vehicle = db.execute("SELECT max(id) FROM vehicles").fetchone()[0]
    misses = max(1, round(n * MISS_SHARE))
    out: list[Sample] = []

    def exists(sql: str, *params: Any) -> bool:
        return db.execute(sql, params).fetchone() is not None

    # phone numbers: a stored number, typed in another form
    rows = [db.execute("SELECT number, number_key FROM contact_phones WHERE rowid = ?",
                       (rng.randint(1, db.execute("SELECT max(rowid) FROM contact_phones").fetchone()[0]),)).fetchone()
            for _ in range(n)]
    for number, key in (r for r in rows if r is not None):
        digits = key[1:]
        forms = [written_phone(digits, f) for f in range(7)]
        out.append(Sample("number", rng.choice([f for f in forms if f != number]), True))
    while sum(1 for s in out if s.kind == "number" and not s.hit) < misses:
        digits = f"9{rng.randrange(10**9):09d}"
        if not exists("SELECT 1 FROM contact_phones WHERE number_key = ?", "7" + digits):
            out.append(Sample("number", written_phone(digits, rng.randrange(7)), False))
    # names: the surname of a random contact, a prefix of it, as typed (capitalised or not, ё or е)
    for _ in range(n):
        name = db.execute("SELECT name FROM contacts WHERE id = ?", (rng.randint(1, max_contact),)).fetchone()[0]
        surname = name.split()[0].strip("«»\"")
        if rng.random() < 0.5:
            surname = surname.replace("ё", "е")
        typed = surname if rng.random() < 0.7 else surname.lower()
        out.append(Sample("surname", typed, True))
        out.append(Sample("prefix", typed[:rng.randint(3, 5)], True))
    letters = "бвгджзклмнпрстфхцчшщ"
    for kind in ("prefix", "surname"):
        while sum(1 for s in out if s.kind == kind and not s.hit) < misses:
            word = "".join(rng.choices(letters, k=4 if kind == "prefix" else 7)).capitalize()
            key = name_key(word)
            if not exists("SELECT 1 FROM contacts WHERE name_key >= ? AND name_key < ?", key, key + "\U0010ffff"):
                out.append(Sample(kind, word, False))
    # plates
    digit_hits = 0
    for _ in range(n):
        row = db.execute("SELECT plate_key, plate_base, plate_number FROM vehicles WHERE id = ?",
                         (rng.randint(1, max_vehicle),)).fetchone()
        full, base, digits = row
        out.append(Sample("plate", latin_plate(full, rng.random() < 0.5), True))
        base_typed = base.translate(LATIN_TO_CYRILLIC).lower() if rng.random() < 0.5 else base.lower()
        out.append(Sample("plate_base", base_typed, True))
        if digit_hits < DIGITS_SAMPLES:
            out.append(Sample("plate_digits", digits, True))
            digit_hits += 1
    for kind in ("plate", "plate_base"):
        while sum(1 for s in out if s.kind == kind and not s.hit) < misses:
            letters3 = rng.choices("ABEKMHOPCTYX", k=3)
            base = f"{letters3[0]}{rng.randint(1, 999):03d}{letters3[1]}{letters3[2]}"
            full = base + rng.choice(("77", "199", "50", "16", "78"))
            if kind == "plate" and not exists("SELECT 1 FROM vehicles WHERE plate_key = ?", full):
                out.append(Sample(kind, latin_plate(full, rng.random() < 0.5), False))
            if kind == "plate_base" and not exists("SELECT 1 FROM vehicles WHERE plate_base = ?", base):
                out.append(Sample(kind, base.lower(), False))
    if not exists("SELECT 1 FROM vehicles WHERE plate_number = '000'"):
        out += [Sample("plate_digits", "000", False)] * round(min(n, DIGITS_SAMPLES) * MISS_SHARE)
    for s in out:  # every sample must parse to the kind it stands for
        q = parse_query(s.text)
        expected = {"number": "number", "prefix": "name", "surname": "name", "plate": "plate",
                    "plate_base": "plate", "plate_digits": "plate_number"}[s.kind]
        assert q is not None and q.kind == expected, (s, q)  # a bug of this benchmark, not of the product
    return out


def sync_find(db: sqlite3.Connection, text: str, limit: int = 20, *, sql_of: Callable[..., str] | None = None
              ) -> list[Contact]:
    """The baseline: ``Store.find_contacts`` without aiosqlite (same parse, SQL and conversion)."""
    parsed = parse_query(text)
    if parsed is None:
        return []
    where, params = directory_sql.where_query(parsed, limit)
    sql = sql_of(where) if sql_of else directory_sql.SELECT_CONTACTS + where
    return [directory_sql.contact_from_row(r) for r in db.execute(sql, params).fetchall()]


#: How national numbers are read by this benchmark's store (as the store's default).
REGION = "RU"


def sqlite_reader(store: Store) -> aiosqlite.Connection:
    """Diagnosis of the SQLite store only: its general reader connection (``store/sqlite/lanes.py``)."""
    lanes = getattr(store, "lanes")  # noqa: B009 - not part of the Store interface: mypy must not look for it there
    return cast(aiosqlite.Connection, lanes.reader)


async def one_trip_find(store: Store, text: str, limit: int = 20) -> list[Contact]:
    """Diagnosis: ``find_contacts`` with the rows fetched in one round trip (``execute_fetchall``)."""
    parsed = parse_query(text, REGION)
    if parsed is None:
        return []
    where, params = directory_sql.where_query(parsed, limit)
    rows = await sqlite_reader(store).execute_fetchall(directory_sql.SELECT_CONTACTS + where, params)
    return [directory_sql.contact_from_row(r) for r in rows]


def ids_first(where: str) -> str:
    """Diagnosis only: the product's WHERE/ORDER/LIMIT picks the ids first, the JSON is built for those alone."""
    return (directory_sql.SELECT_CONTACTS
            + f"WHERE c.id IN (SELECT c.id FROM contacts c {where}) ORDER BY c.name_key, c.id")


@dataclass
class KindResult:
    kind: str
    store: list[float] = field(default_factory=list)  # ms
    baseline: list[float] = field(default_factory=list)
    alt: list[float] = field(default_factory=list)
    one_trip: list[float] = field(default_factory=list)
    store_rounds: list[float] = field(default_factory=list)  # p99 per round
    baseline_rounds: list[float] = field(default_factory=list)
    hits: int = 0
    misses: int = 0
    found: list[int] = field(default_factory=list)  # contacts returned, per hit sample
    empty_hits: int = 0  # hits that returned nothing (should be 0)


async def time_lookups(store: Store, db: sqlite3.Connection, samples: list[Sample], rounds: int,
                       seed: int, alt: bool) -> dict[str, KindResult]:
    by_kind: dict[str, list[Sample]] = {k: [s for s in samples if s.kind == k] for k in KINDS}
    results = {k: KindResult(k, hits=sum(s.hit for s in v), misses=sum(not s.hit for s in v))
               for k, v in by_kind.items()}
    rng = random.Random(seed)
    clock = time.perf_counter
    progress("warm-up: 100 untimed queries per kind and path")
    for items in by_kind.values():
        for s in rng.sample(items, min(WARMUP, len(items))):
            await store.find_contacts(s.text)
            sync_find(db, s.text)
    gc.collect()
    gc.freeze()
    for r in range(rounds):
        for kind, items in by_kind.items():
            res = results[kind]
            order = items[:]
            rng.shuffle(order)
            t_start = clock()
            lat = []
            for s in order:
                t0 = clock()
                found = await store.find_contacts(s.text)
                lat.append((clock() - t0) * 1000)
                if r == 0 and s.hit:
                    res.found.append(len(found))
                    res.empty_hits += not found
            res.store += lat
            res.store_rounds.append(pct(lat, 99))
            lat = []
            for s in order:
                t0 = clock()
                sync_find(db, s.text)
                lat.append((clock() - t0) * 1000)
            res.baseline += lat
            res.baseline_rounds.append(pct(lat, 99))
            if alt:
                for s in order:
                    t0 = clock()
                    await one_trip_find(store, s.text)
                    res.one_trip.append((clock() - t0) * 1000)
            if alt and r == 0:
                for s in order:
                    t0 = clock()
                    sync_find(db, s.text, sql_of=ids_first)
                    res.alt.append((clock() - t0) * 1000)
            progress(f"  round {r + 1}/{rounds} {kind}: store p50 {pct(res.store, 50):.3f} ms p99 "
                     f"{res.store_rounds[-1]:.3f} ms, baseline p99 {res.baseline_rounds[-1]:.3f} ms "
                     f"({clock() - t_start:.1f} s)")
    gc.unfreeze()
    return results


async def hops_per_lookup(store: Store, samples: list[Sample]) -> dict[str, float]:
    """aiosqlite round trips to the reader thread per ``find_contacts`` (counted by wrapping its ``_execute``)."""
    reader = sqlite_reader(store)  # diagnosis only
    original: Callable[..., Any] = reader._execute
    count = 0

    async def counting(fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        return await original(fn, *args, **kwargs)

    reader._execute = counting  # type: ignore[method-assign]
    out: dict[str, float] = {}
    try:
        for kind in KINDS:
            items = [s for s in samples if s.kind == kind][:50]
            count = 0
            for s in items:
                await store.find_contacts(s.text)
            out[kind] = count / len(items)
    finally:
        del reader._execute  # back to the class's method
    return out


def plans(db: sqlite3.Connection, samples: list[Sample]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for kind in KINDS:
        sample = next(s for s in samples if s.kind == kind and s.hit)
        parsed = parse_query(sample.text)
        assert parsed is not None
        where, params = directory_sql.where_query(parsed, 20)
        rows = db.execute("EXPLAIN QUERY PLAN " + directory_sql.SELECT_CONTACTS + where, params).fetchall()
        depth: dict[int, int] = {0: -1}
        lines = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + detail)
        out[kind] = [f"-- {sample.text!r} → {parsed.kind} {parsed.key!r}", *lines]
    return out


def selectivity(db: sqlite3.Connection, samples: list[Sample]) -> dict[str, float]:
    """Median number of rows the WHERE matches (before LIMIT), over up to 200 hit samples per kind."""
    out: dict[str, float] = {}
    for kind in KINDS:
        counts = []
        for s in [s for s in samples if s.kind == kind and s.hit][:200]:
            parsed = parse_query(s.text)
            assert parsed is not None
            where, params = directory_sql.where_query(parsed, 10**9)
            where = where.rsplit(" ORDER BY c.name_key", 1)[0]  # the outer order; a subquery may have its own
            counts.append(db.execute(f"SELECT count(*) FROM contacts c {where}", params).fetchone()[0])
        out[kind] = pct(counts, 50) if counts else math.nan
    return out


# -- the report ---------------------------------------------------------------------------------------------

def _ms(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def report(args: argparse.Namespace, load: tuple[float, float, float], gen: dict[str, Any], cached: bool,
           path: Path, csv: dict[str, Any], results: dict[str, KindResult], hops: dict[str, float],
           plan: dict[str, list[str]], matched: dict[str, float], rss: dict[str, tuple[float, float]],
           elapsed: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    st, bl = gen["store"], gen["baseline"]
    lines = [
        "## Client directory: lookups and import (`python -m bench.directory`)",
        "",
        f"Measured {when} on {machine('aiosqlite', with_sqlite=True)}; "
        f"load average before the run {load[0]:.2f} / {load[1]:.2f} / "
        f"{load[2]:.2f} (1 / 5 / 15 min); the whole run took {elapsed:.0f} s.",
        "",
        f"**Directory**: {gen['contacts']:,} contacts ({st['phones'] + bl['phones']:,} phone numbers, "
        f"{st['vehicles'] + bl['vehicles']:,} vehicles), generated by `bench.directory_data` with seed {args.seed} "
        f"(Russian surname × first name × patronymic, surnames Zipf-like over ~1,600 distinct forms, 2 % "
        f"companies; 1-2 mobile numbers in 7 written forms; 0-3 cars each, standard Cyrillic plates, makes "
        f"of `cti.makes`). Store file {file_mib(path):,.0f} MiB. "
        + (f"**The file came from the cache** (`{path}`), made {gen['measured']} "
           f"(load then {gen['load'][0]:.2f}); the import figures below are from that run. `--fresh` remakes it."
           if cached else f"Generated in this run ({gen['wall']:.0f} s) and cached in `{path.parent}` for the next."),
        "",
        "### Import speed",
        "",
        f"Rows/s of store time (the generator's own time taken out). The directory was written in blocks of "
        f"{args.block:,} contacts alternating between the product and the baseline until "
        f"{st['contacts']:,} contacts had gone through the product, the rest through the baseline:",
        "",
        "* **store** = `Store.add_contacts(contacts, chunk_size=2000)`, as `cti contacts import` calls it;",
        "* **baseline** = the same statements and keys on a plain `sqlite3` connection in the calling thread "
        "(`directory_sql.contact_rows`, then one `executemany` per table, one transaction per 2,000).",
        "",
        "| path | contacts | contacts/s | phones/s | vehicles/s | all rows/s | contacts/s by block |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, f in (("store", st), ("baseline", bl)):
        secs = f["seconds"] or math.nan
        rows = f["contacts"] + f["phones"] + f["vehicles"]
        blocks = ", ".join(f"{b:,.0f}" for b in f["blocks"][:6]) + (" ..." if len(f["blocks"]) > 6 else "")
        lines.append(f"| {name} | {f['contacts']:,} | **{f['contacts'] / secs:,.0f}** | {f['phones'] / secs:,.0f} | "
                     f"{f['vehicles'] / secs:,.0f} | {rows / secs:,.0f} | {blocks} |")
    ratio = ((st["contacts"] / st["seconds"]) / (bl["contacts"] / bl["seconds"])
             if st["seconds"] and bl["seconds"] else math.nan)
    lines += [
        "",
        f"Store / baseline, contacts/s: **{ratio:.0%}**. At the store's rate, 1,000,000 contacts take "
        f"{1e6 / (st['contacts'] / st['seconds']) / 60:.1f} min to import.",
        "",
        f"**CSV path** (this run): {csv['rows']:,} rows written by `write_contacts` (cp1251, `;`, "
        f"{csv['bytes'] / 2**20:.1f} MiB, {csv['contacts']:,} contacts, {csv['vehicles']:,} vehicles), "
        f"then `read_contacts` (decode, sniff, parse and check): **{csv['rows'] / csv['parse']:,.0f} rows/s** "
        f"({csv['parse']:.1f} s, {csv['problems']} problems); then `add_contacts` of the result into a new "
        f"empty store: **{csv['contacts'] / csv['save']:,.0f} contacts/s** "
        f"({(csv['contacts'] + csv['phones'] + csv['vehicles']) / csv['save']:,.0f} rows/s of all three tables, "
        f"{csv['save']:.1f} s). File to store: {csv['rows'] / (csv['parse'] + csv['save']):,.0f} CSV rows/s.",
        "",
        "### Lookups",
        "",
        f"Per call, ms, nearest-rank percentiles over {args.rounds} rounds; targets drawn at random from the "
        f"file ({args.samples:,} hits per kind, {min(args.samples, DIGITS_SAMPLES)} for the 3 digits: there "
        f"are only 999 values; seed {args.seed}) plus 10 % misses; `limit=20`; warm OS page cache. "
        "**store** = `await store.find_contacts(text)` (parse, SQL on the reader connection through "
        "aiosqlite's thread, rows → `Contact`); **baseline** = the same parse, SQL and conversion on a "
        "synchronous `sqlite3` connection in this thread. \"matched\" is the median number of contacts the "
        "WHERE selects before `LIMIT 20`.",
        "",
        "| query | samples (hits + misses) | matched | store p50 | p90 | **p99** | max | baseline p50 | p90 "
        "| **p99** | max | store − baseline, p50 | round trips |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, label in KINDS.items():
        r = results[kind]
        s, b = r.store, r.baseline
        lines.append(
            f"| {label} | {r.hits:,} + {r.misses:,} | {matched[kind]:,.0f} | {_ms(pct(s, 50))} | {_ms(pct(s, 90))} | "
            f"**{_ms(pct(s, 99))}** | {_ms(max(s))} | {_ms(pct(b, 50))} | {_ms(pct(b, 90))} | **{_ms(pct(b, 99))}** | "
            f"{_ms(max(b))} | {(pct(s, 50) - pct(b, 50)) * 1000:.0f} µs | {hops[kind]:.0f} |")
    lines += ["", "p99 per round, store / baseline, ms: " + "; ".join(
        f"{k} " + ", ".join(f"{a:.3f}/{b:.3f}" for a, b in zip(results[k].store_rounds, results[k].baseline_rounds,
                                                                strict=True)) for k in KINDS) + ".", ""]
    missed = [k for k in KINDS if pct(results[k].store, 99) >= TARGET_P99_MS]
    lines.append(f"Target (issue): p99 < {TARGET_P99_MS:g} ms for every kind through the store: "
                 + ("met." if not missed else "**missed** by " + ", ".join(
                     f"{KINDS[k]} ({pct(results[k].store, 99):.2f} ms)" for k in missed) + "; met by the others."))
    gaps = [(pct(results[k].store, 50) - pct(results[k].baseline, 50)) * 1000 for k in KINDS]
    trips = [hops[k] for k in KINDS]
    per_trip = [g / t for g, t in zip(gaps, trips, strict=True) if t]
    lines += ["", f"What the store adds to SQLite (store − baseline at p50): {min(gaps):.0f}–{max(gaps):.0f} µs per "
              f"lookup, for {min(trips):.0f}–{max(trips):.0f} aiosqlite round trips (cursor, execute, "
              f"`fetchmany` until empty; counted by wrapping the reader connection's `_execute`): "
              f"about {statistics.median(per_trip):.0f} µs per round trip on this box. Of the store's p50, that is "
              f"{min(g / (pct(results[k].store, 50) * 1000) for g, k in zip(gaps, KINDS, strict=True)):.0%}–"
              f"{max(g / (pct(results[k].store, 50) * 1000) for g, k in zip(gaps, KINDS, strict=True)):.0%}."]
    empty = {k: results[k].empty_hits for k in KINDS if results[k].empty_hits}
    lines.append("")
    lines.append("Every hit sample found at least one contact." if not empty else
                 f"**Hit samples that found nothing**: {empty}.")
    if any(results[k].alt for k in KINDS):
        lines += ["", "Diagnosis, not the product's code (same samples, same rounds):", "",
                  "* **one round trip** = what `find_contacts` does, but the rows fetched with aiosqlite's "
                  "`execute_fetchall` on the store's reader connection (one hop to its thread) instead of "
                  "`execute` + `async for` over `fetchmany(256)`;",
                  "* **ids first** = the same WHERE/ORDER BY/LIMIT choosing the 20 ids in a subquery, the "
                  "phones/vehicles JSON then built for those 20 only (`WHERE c.id IN (SELECT c.id FROM contacts c "
                  "<the product's WHERE ... LIMIT 20>) ORDER BY ...`), synchronous `sqlite3`, round 1 "
                  "(compare with the baseline's round-1 figures in the same row).", "",
                  "| query | store p50 | p99 | one round trip p50 | **p99** | baseline (round 1) p50 | p99 "
                  "| ids first p50 | **p99** |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for k in KINDS:
            r = results[k]
            n = len(r.alt)
            b = r.baseline[:n]
            lines.append(f"| {KINDS[k]} | {_ms(pct(r.store, 50))} | {_ms(pct(r.store, 99))} | "
                         f"{_ms(pct(r.one_trip, 50))} | **{_ms(pct(r.one_trip, 99))}** | {_ms(pct(b, 50))} | "
                         f"{_ms(pct(b, 99))} | {_ms(pct(r.alt, 50))} | **{_ms(pct(r.alt, 99))}** |")
    lines += ["", "Query plans (`EXPLAIN QUERY PLAN` of the product's SQL, one sample each):", "", "```"]
    for kind in KINDS:
        lines += plan[kind]
    lines += ["```", ""]
    lines.append("RSS of this process (MiB, current / peak so far): " + "; ".join(
        f"{k} {a:,.0f} / {b:,.0f}" for k, (a, b) in rss.items()) + ".")
    return "\n".join(lines) + "\n"


# -- command line -------------------------------------------------------------------------------------------

async def run(args: argparse.Namespace) -> str:
    load = os.getloadavg()
    started = time.perf_counter()
    rss: dict[str, tuple[float, float]] = {"at start": rss_mib()}
    with tempfile.TemporaryDirectory(prefix="cti-bench-directory-") as tmp_name:
        tmp = Path(tmp_name)
        path, gen, cached = await directory_file(args, tmp)
        rss["after the directory is made"] = rss_mib()
        csv = await csv_import(args.csv_rows, args.seed, tmp) if args.csv_rows else {
            "rows": 0, "bytes": 0, "problems": 0, "parse": math.nan, "contacts": 0, "phones": 0, "vehicles": 0,
            "save": math.nan}
        read_through(path)
        db = sync_connection(path)
        progress("drawing samples")
        samples = draw_samples(db, args.samples, args.seed)
        matched = selectivity(db, samples)
        plan = plans(db, samples)
        async with open_store(StoreSettings(path=path), region=REGION) as store:
            rss["store open, before the lookups"] = rss_mib()
            results = await time_lookups(store, db, samples, args.rounds, args.seed, not args.no_diagnosis)
            hops = await hops_per_lookup(store, samples)
            rss["after the lookups"] = rss_mib()
        db.close()
        return report(args, load, gen, cached, path, csv, results, hops, plan, matched, rss,
                      time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.directory",
                                     description="Client-directory lookup latency and import speed.")
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--vehicles", type=int, default=None, help="default 1.2 × --contacts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--samples", type=int, default=2000, help="hit targets per query kind (default 2,000)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--store-share", type=int, default=100_000,
                        help="contacts written through Store.add_contacts (the rest: baseline)")
    parser.add_argument("--block", type=int, default=25_000, help="contacts per alternating import block")
    parser.add_argument("--csv-rows", type=int, default=100_000, help="rows of the CSV import (0: skip)")
    parser.add_argument("--cache", default="/tmp/cti-bench-directory",
                        help="folder for the generated directory file ('' = a temporary file, not kept)")
    parser.add_argument("--fresh", action="store_true", help="regenerate the cached directory file")
    parser.add_argument("--no-diagnosis", action="store_true", help="skip the alternative-SQL timings")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.vehicles is None:
        args.vehicles = round(args.contacts * 1.2)
    if min(args.contacts, args.samples, args.rounds, args.block) < 1 or args.store_share < 0:
        parser.error("--contacts, --samples, --rounds and --block must be positive")
    if args.vehicles > 3 * args.contacts:
        parser.error("at most 3 vehicles per contact")
    args.store_share = min(args.store_share, args.contacts)
    text = asyncio.run(run(args))
    print(text)
    if not args.no_write:
        write_section(SECTION, text, DOC)
        progress(f"written to {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
