"""The journal's listings, exports, "my recent calls" and the screen-pop card, timed on a year of traffic.

Why this exists: issue 10 measured, on a real site's store of 2,000,000 calls, ``cti calls --since 7d``
at 108 s and 452 MB, ``--agent X`` at 38 s and 1.1 GB, a month as JSON at 79 s and 837 MB, an agent's
"my recent calls" at 5-7 s and the card of a caller with 10,000 past calls at p50 79 ms / p99 214 ms. The
targets: ``--since 7d`` as a table under 3 s, ``--agent X`` under 1 s, a month exported at >= 50,000 rows/s
in under 150 MB, and the card costing the same for that caller as for a new one.

**The file** is ``bench.year``'s (made first if needed; ``--year FILE`` names one). "Now" is the end of the
generated year (:data:`bench.year.YEAR_END`), so every time range is passed as an absolute date:
``--since 7d`` is ``--since '2026-11-24 00:00'`` in the configured time zone (Europe/Moscow), a month is
``--since 2026-11-01 --until 2026-12-01``. Nothing is written to the file by the product's listings (the
CLI opens the store as usual; its migrations find nothing to do on a file made by the same code).

**Each CLI listing** runs ``cti calls ...`` in a fresh process (``python -c 'from companion.cli import main;
main()'``, the ``cti`` entry point) with its output going to a file, as a user's redirect would; wall time
from just before the fork to its exit, peak RSS from the child's own resource usage (``os.wait4``, the
per-child form of ``getrusage(RUSAGE_CHILDREN)``), the command forked by a small launcher process so that its
figure is not floored by this process's size (:data:`_LAUNCHER`); from compiled bytecode, as installed (:data:`PYCACHE`,
filled by an untimed first run). ``--runs`` runs each (default 3), the **median** is
reported. Warm OS page cache: the file was just written or read, as a live daemon's store would be.

**The baseline** of each listing, in the same run: the same rows through bare ``sqlite3`` in a fresh
process (``SELECT * ... ORDER BY started_at, linkedid``, every row fetched, nothing converted or printed):
the floor any listing pays for reading them. For ``--agent`` the floor uses the schema at hand: the
``call_agents`` table when the file has one (migration 0006), else the ``json_each`` scan the product used.
A listing with no rows (``--since`` the end of the year) shows what starting the CLI costs.

**In-process figures** (one fresh process, the store opened through its interface as the daemon opens it):
the panel's "my recent calls" (``list_calls(agent=X, limit=20, newest_first=True)``, what ``GET
/api/calls?limit=20`` asks for an agent), and the caller card (``ui_bridge.cards.CardService.card_for``: the
directory, the number's last calls, its open missed entries) for the regular nearest 10,000 calls and for a
number that never called, interleaved, p50/p99; then the same card while another task keeps loading "my
recent calls" of an agent with no calls yet (the panel reloads it after every call end; with nothing to stop
it early it is the slowest such read): a read that queues the pop behind it shows here.

``python -m bench.listings [--year FILE | --calls N --seed S] [--runs 3] [--code DIR] [--label TEXT]``;
``--code DIR`` times another checkout of the project (its CLI and store; ``bench/year.py`` and this file are
copied into it): how "before" figures are taken from an export of an older commit. The report goes to
stdout and into its section of ``docs/benchmarks.md`` (``--no-write`` to leave it alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.machine import machine
from bench.year import DEFAULT_CALLS, DEFAULT_DIR, TZ, YEAR_END, default_out, ensure_year, load_meta, write_section

REPO = Path(__file__).resolve().parent.parent
SECTION = "bench.listings"
WEEK_AGO = YEAR_END - timedelta(days=7)
MONTH_START = datetime(YEAR_END.year, YEAR_END.month - 1 if YEAR_END.month > 1 else 12, 1, tzinfo=TZ)
#: Targets of issue 10.
TARGET_WEEK_TABLE_S = 3.0
TARGET_AGENT_S = 1.0
TARGET_EXPORT_ROWS_S = 50_000
TARGET_EXPORT_MB = 150.0
#: An agent extension with no calls in the year (``bench.year`` uses 101 up to 199 at most).
IDLE_AGENT = "199"
#: The card is timed for the regular whose call count is nearest this (the issue's "10,000 past calls").
HEAVY_CALLS = 10_000


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


# -- running one command in a fresh process ------------------------------------------------------------

@dataclass(slots=True)
class Runs:
    """Wall seconds and peak RSS (MiB) of each run of one command."""

    seconds: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    rows: int = 0
    out_bytes: int = 0

    @property
    def wall(self) -> float:
        return statistics.median(self.seconds)

    @property
    def peak(self) -> float:
        return statistics.median(self.rss)

    def span(self) -> str:
        return f"{min(self.seconds):.2f}–{max(self.seconds):.2f}"


#: Starts one command and reports its wall time and peak RSS. Why a launcher: Linux counts a forked child's peak
#: RSS from the parent's size at the fork (the copy before ``exec``), so a command forked from this process
#: (which holds the year's metadata and has just parsed a month of JSON) would inherit this process's size as
#: its floor. Forked from this small interpreter instead, the command's figure is its own.
_LAUNCHER = """
import json, os, subprocess, sys, time
argv, out = json.loads(sys.argv[1]), sys.argv[2]
with open(out, "wb") as sink:
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=sink, stderr=subprocess.PIPE)
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
print(json.dumps({"wall": wall, "rss_kib": usage.ru_maxrss, "code": code,
                  "errors": errors.decode(errors="replace")[-2000:]}))
"""


def run_child(argv: Sequence[str], cwd: Path, out: Path, pycache: Path | None = None) -> tuple[float, float, int]:
    """Run ``argv`` (through :data:`_LAUNCHER`) with stdout to ``out``; (wall seconds, peak RSS MiB, exit status).

    Wall time is from just before the command's fork to its exit, as the launcher sees it (its own start-up
    is not counted); peak RSS is the command's ``ru_maxrss`` from ``os.wait4``.
    """
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "200", "NO_COLOR": "1",
           "PYTHONPYCACHEPREFIX": str(pycache or PYCACHE)}
    # An installed cti runs from compiled bytecode: a session that forbids writing it (to keep the checkout clean)
    # would time the compiling of every module at each start. It goes to a folder of its own instead, filled by
    # a first untimed run (``measure``).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, json.dumps(list(argv)), str(out)], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, text=True, check=True)
    answer = json.loads(done.stdout)
    if answer["code"] != 0:
        raise SystemExit(f"{' '.join(argv)} exited {answer['code']}: {answer['errors']}")
    return answer["wall"], answer["rss_kib"] / 1024, answer["code"]


#: Where the timed commands' bytecode is kept (see ``run_child``).
PYCACHE = DEFAULT_DIR / "pycache"


def cli(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", "from companion.cli import main; main()", "calls", "--config", str(config), *args]


# -- the bare-sqlite3 floor ---------------------------------------------------------------------------

def floor_sql(db: sqlite3.Connection, kind: str) -> tuple[str, dict[str, Any]]:
    """The SQL that reads exactly the rows of one listing, on the schema the file has."""
    week, month_start, end = WEEK_AGO.timestamp(), MONTH_START.timestamp(), YEAR_END.timestamp()
    order = " ORDER BY started_at, linkedid"
    if kind in ("week", "week_json"):
        return "SELECT * FROM calls WHERE started_at >= :since" + order, {"since": week}
    if kind in ("month_csv", "month_json"):
        return ("SELECT * FROM calls WHERE started_at >= :since AND started_at < :until" + order,
                {"since": month_start, "until": end})
    if kind == "empty":
        return "SELECT * FROM calls WHERE started_at >= :since" + order, {"since": end}
    if kind.startswith("agent:"):
        agent = kind.split(":", 1)[1]
        has_table = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'call_agents'").fetchone()
        if has_table:
            return ("SELECT c.* FROM call_agents a JOIN calls c ON c.linkedid = a.linkedid WHERE a.agent = :agent "
                    "ORDER BY a.started_at, a.linkedid", {"agent": agent})
        return ("SELECT * FROM calls WHERE (answered_by = :agent"
                " OR EXISTS (SELECT 1 FROM json_each(calls.agents_rung_not_answered) WHERE value = :agent)"
                " OR EXISTS (SELECT 1 FROM json_each(calls.agents_answered) WHERE value = :agent))" + order,
                {"agent": agent})
    raise ValueError(kind)


#: The floor's child: nothing but ``sqlite3`` imported, so its start-up is Python's own.
_FLOOR_SCRIPT = """
import json, sqlite3, sys
path, sql, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
print(sum(1 for _ in db.execute(sql, params)))
"""


def floor_argv(path: Path, kind: str) -> tuple[list[str], str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        sql, params = floor_sql(db, kind)
    return [sys.executable, "-c", _FLOOR_SCRIPT, str(path), sql, json.dumps(params)], sql


# -- in-process figures (run as a child: ``--child live``) -------------------------------------------------

def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


async def _open(path: Path) -> Any:
    from store.settings import StoreSettings

    settings = StoreSettings(path=path)
    try:
        from store import open_store  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        from store.sqlite import SqliteStore

        return await SqliteStore.from_settings(settings, region="RU")
    return await open_store(settings, region="RU")


async def live_figures(path: Path, agent: str, idle: str, heavy: str, new: str, samples: int) -> dict[str, Any]:
    from ui_bridge.cards import CardService
    from ui_bridge.settings import DirectorySettings

    store = await _open(path)
    try:
        recent: list[float] = []
        rows = 0
        for _ in range(max(5, samples // 20)):
            t0 = time.perf_counter()
            got = await store.list_calls(agent=agent, limit=20, newest_first=True)
            recent.append(time.perf_counter() - t0)
            rows = len(got)
        # An agent with no calls yet (just hired, a supervisor's extension): nothing stops a scan early.
        recent_idle: list[float] = []
        for _ in range(3):
            t0 = time.perf_counter()
            await store.list_calls(agent=idle, limit=20, newest_first=True)
            recent_idle.append(time.perf_counter() - t0)
        cards = CardService(DirectorySettings(), lambda: store, "RU", TZ)
        timing: dict[str, list[float]] = {"heavy": [], "new": []}
        shown: dict[str, int] = {}
        for _ in range(5):  # warm-up: the first lookups pay for opening pages and statements
            await cards.card_for(heavy)
            await cards.card_for(new)
        for _ in range(samples):
            for kind, number in (("heavy", heavy), ("new", new)):
                t0 = time.perf_counter()
                card = await cards.card_for(number)
                timing[kind].append(time.perf_counter() - t0)
                shown[kind] = len(card.last_calls)
        # The card while the panel keeps reloading the recent calls of the agent with none.
        busy: list[float] = []
        stop = asyncio.Event()

        async def panel() -> int:
            n = 0
            while not stop.is_set():
                await store.list_calls(agent=idle, limit=20, newest_first=True)
                n += 1
            return n

        loader = asyncio.create_task(panel())
        await asyncio.sleep(0.05)
        for _ in range(max(10, samples // 10)):
            t0 = time.perf_counter()
            await cards.card_for(heavy)
            busy.append(time.perf_counter() - t0)
        stop.set()
        reloads = await loader
        await cards.close()
    finally:
        await store.close()

    def stats(values: list[float]) -> dict[str, float]:
        ms = [v * 1000 for v in values]
        return {"n": len(ms), "p50": _pct(ms, 50), "p99": _pct(ms, 99), "max": max(ms)}

    return {"recent": stats(recent), "recent_rows": rows, "recent_idle": stats(recent_idle),
            "card_heavy": stats(timing["heavy"]), "card_new": stats(timing["new"]), "card_busy": stats(busy),
            "busy_reloads": reloads, "shown": shown}


# -- the run ---------------------------------------------------------------------------------------------

def listings(agent: str) -> list[tuple[str, str, list[str], str]]:
    """(key, label, the arguments after ``calls --config FILE``, the floor's kind) of each CLI listing."""
    week, month, end = _when(WEEK_AGO), _when(MONTH_START), _when(YEAR_END)
    return [
        ("empty", "no rows (`--since` the year's end): starting the CLI", ["--since", end], "empty"),
        ("week", "`--since 7d`, table", ["--since", week], "week"),
        ("agent", f"`--agent {agent}` (a typical agent), table", ["--agent", agent], f"agent:{agent}"),
        ("week_json", "`--since 7d --format json`", ["--since", week, "--format", "json"], "week_json"),
        ("month_csv", "a month, `--format csv`", ["--since", month, "--until", end, "--format", "csv"], "month_csv"),
        ("month_json", "a month, `--format json`", ["--since", month, "--until", end, "--format", "json"],
         "month_json"),
    ]


def write_config(directory: Path, store: Path) -> Path:
    config = directory / "config.toml"
    config.write_text(
        "[ami]\nsecret = \"bench\"\n\n[http]\nenabled = false\n\n"
        f"[store]\npath = \"{store}\"\n\n[pbx]\ntimezone = \"{TZ.key}\"\ndefault_region = \"RU\"\n",
        encoding="utf-8")
    return config


def count_output(out: Path, key: str) -> int:
    if key.endswith("json"):
        with open(out, encoding="utf-8") as f:
            return len(json.load(f))
    if key.endswith("csv"):
        with open(out, "rb") as f:
            return max(0, sum(1 for _ in f) - 1)
    return -1


def copy_bench(code: Path) -> None:
    if code.resolve() != REPO:
        for name in ("year.py", "listings.py", "machine.py"):
            shutil.copyfile(REPO / "bench" / name, code / "bench" / name)


def measure(args: argparse.Namespace, path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    code: Path = args.code.resolve()
    copy_bench(code)
    work = args.work / "listings"
    work.mkdir(parents=True, exist_ok=True)
    pycache = args.work / "pycache"
    config = write_config(work, path)
    agent = args.agent or meta["typical_agent"]
    heavy = min(meta["heavy_callers"], key=lambda h: abs(h["calls"] - HEAVY_CALLS))
    results: dict[str, Any] = {"agent": agent, "agent_calls": meta["agent_calls"].get(agent), "listings": {}}
    run_child(cli(config, "--since", _when(YEAR_END)), code, work / "warm-up.out", pycache)  # compiles, untimed
    for key, label, extra, floor_kind in listings(agent):
        product, floored = Runs(), Runs()
        out = work / f"{key}.out"
        floor_cmd, sql = floor_argv(path, floor_kind)
        for run in range(args.runs):
            progress(f"{key}: run {run + 1}/{args.runs}")
            wall, rss, _ = run_child(cli(config, *extra), code, out, pycache)
            product.seconds.append(wall)
            product.rss.append(rss)
            wall, rss, _ = run_child(floor_cmd, code, work / "floor.out", pycache)
            floored.seconds.append(wall)
            floored.rss.append(rss)
        product.out_bytes = out.stat().st_size
        product.rows = count_output(out, key)
        floored.rows = int((work / "floor.out").read_text(encoding="ascii"))
        results["listings"][key] = {"label": label, "args": extra, "product": product, "floor": floored, "sql": sql}
        progress(f"{key}: {product.wall:.2f} s, {product.peak:.0f} MiB; floor {floored.wall:.2f} s "
                 f"({floored.rows:,} rows)")
    progress("in-process: my recent calls, the card")
    live_out = work / "live.out"
    run_child([sys.executable, "-m", "bench.listings", "--child", "live", "--year", str(path), "--agent", agent,
               "--idle-agent", IDLE_AGENT,
               "--heavy", heavy["number"], "--new", meta["new_number"], "--samples", str(args.samples)],
              code, live_out, pycache)
    results["live"] = json.loads(live_out.read_text(encoding="utf-8"))
    results["heavy"] = heavy
    results["idle"] = IDLE_AGENT
    results["new"] = meta["new_number"]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        results["calls"] = db.execute("SELECT count(*) FROM calls").fetchone()[0]
        results["schema"] = db.execute("PRAGMA user_version").fetchone()[0]
    return results


# -- the report ------------------------------------------------------------------------------------------

def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(args: argparse.Namespace, results: dict[str, Any], path: Path, meta: dict[str, Any],
           load: tuple[float, float, float], took: float) -> str:
    code = args.code.resolve()
    ls = results["listings"]
    when = datetime.now(TZ).strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        f"## Listings on a year of traffic (`python -m bench.listings`){' — ' + args.label if args.label else ''}",
        "",
        f"Measured {when} on {machine('aiosqlite', with_sqlite=True)}; load average before the run "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}; the whole run took {took:.0f} s. Code: "
        f"{'this checkout' if code == REPO else f'`{code}`'}; store schema version {results['schema']}.",
        "",
        f"**Store**: {results['calls']:,} calls of `bench.year` (seed {meta['params']['seed']}, "
        f"{meta['bytes'] / 2**30:.2f} GiB, {meta['year_start'][:10]} to {meta['year_end'][:10]}); \"now\" is the "
        f"year's end, so `--since 7d` is `--since '{_when(WEEK_AGO)}'` and the month is {_when(MONTH_START)[:10]} "
        f"to {_when(YEAR_END)[:10]} ({TZ.key}). Each command in a fresh process, output to a file; "
        f"{args.runs} runs, **median** wall time (min–max) and peak RSS (`os.wait4`). Floor = the same rows "
        "through bare `sqlite3` in a fresh process (fetched, not converted or printed).",
        "",
        "| listing | rows | wall s | (min–max) | peak RSS MiB | rows/s | floor s | floor MiB | wall / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for item in ls.values():
        p, f = item["product"], item["floor"]
        rows = f.rows
        rate = f"{rows / p.wall:,.0f}" if rows else "—"
        lines.append(f"| {item['label']} | {rows:,} | **{p.wall:.2f}** | {p.span()} | **{p.peak:.0f}** | {rate} | "
                     f"{f.wall:.2f} | {f.peak:.0f} | {p.wall / f.wall:.1f}× |")
    week, agent = ls["week"]["product"], ls["agent"]["product"]
    lines += [
        "",
        f"Targets (issue 10): `--since 7d` as a table under {TARGET_WEEK_TABLE_S:.0f} s: {week.wall:.2f} s, "
        f"{_verdict(week.wall < TARGET_WEEK_TABLE_S)}; `--agent X` under {TARGET_AGENT_S:.0f} s: {agent.wall:.2f} s "
        f"({ls['agent']['floor'].rows:,} rows), {_verdict(agent.wall < TARGET_AGENT_S)}; a month exported at "
        f">= {TARGET_EXPORT_ROWS_S:,} rows/s in under {TARGET_EXPORT_MB:.0f} MB:",
    ]
    for key in ("month_csv", "month_json"):
        item = ls[key]
        p, rows = item["product"], item["floor"].rows
        ok = rows / p.wall >= TARGET_EXPORT_ROWS_S and p.peak < TARGET_EXPORT_MB
        lines.append(f"{item['label']} {rows / p.wall:,.0f} rows/s, {p.peak:.0f} MiB, {_verdict(ok)};")
    lines[-1] = lines[-1].rstrip(";") + "."
    live = results["live"]
    heavy, new = results["heavy"], results["new"]
    lines += [
        "",
        "In one process, the store opened through its interface (ms, nearest-rank percentiles):",
        "",
        "| read | samples | p50 | p99 | max |",
        "|---|---:|---:|---:|---:|",
        f"| \"my recent calls\" of agent {results['agent']} (`list_calls(agent=, limit=20, newest_first=True)`, "
        f"{live['recent_rows']} rows) | {live['recent']['n']} | {live['recent']['p50']:.1f} | "
        f"{live['recent']['p99']:.1f} | {live['recent']['max']:.1f} |",
        f"| \"my recent calls\" of agent {results['idle']}, who has no calls yet | {live['recent_idle']['n']} | "
        f"{live['recent_idle']['p50']:.1f} | {live['recent_idle']['p99']:.1f} | {live['recent_idle']['max']:.1f} |",
        f"| card of a regular ({heavy['number']}, {heavy['calls']:,} calls) | {live['card_heavy']['n']} | "
        f"**{live['card_heavy']['p50']:.2f}** | **{live['card_heavy']['p99']:.2f}** | "
        f"{live['card_heavy']['max']:.2f} |",
        f"| card of a number that never called ({new}) | {live['card_new']['n']} | **{live['card_new']['p50']:.2f}** | "
        f"**{live['card_new']['p99']:.2f}** | {live['card_new']['max']:.2f} |",
        f"| the regular's card while agent {results['idle']}'s \"my recent calls\" is reloaded without pause "
        f"({live['busy_reloads']} reloads) | "
        f"{live['card_busy']['n']} | {live['card_busy']['p50']:.2f} | {live['card_busy']['p99']:.2f} | "
        f"{live['card_busy']['max']:.2f} |",
        "",
        f"Card, regular / new caller: p50 {live['card_heavy']['p50'] / live['card_new']['p50']:.1f}×, p99 "
        f"{live['card_heavy']['p99'] / live['card_new']['p99']:.1f}× (target: the same cost).",
        "",
        "Floor SQL: " + "; ".join(f"{k}: `{v['sql']}`" for k, v in ls.items() if k in ("week", "agent")) + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.listings",
                                     description="Listings, exports, recent calls and the card on a year of traffic.")
    parser.add_argument("--year", type=Path, default=None, help="a bench.year file (default: made or reused)")
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="runs of each CLI listing (default 3)")
    parser.add_argument("--samples", type=int, default=200, help="card lookups per caller (default 200)")
    parser.add_argument("--agent", default=None, help="the agent of --agent (default: the year's typical agent)")
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose CLI and store are timed")
    parser.add_argument("--label", default="", help="added to the section's title (e.g. 'before')")
    parser.add_argument("--section", default=SECTION, help="the docs/benchmarks.md section key")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--work", type=Path, default=DEFAULT_DIR,
                        help="where the listings' output, their config and the timed code's bytecode go "
                             f"(default {DEFAULT_DIR}; another folder leaves a shared year's folder alone)")
    parser.add_argument("--child", choices=("live",), help=argparse.SUPPRESS)
    parser.add_argument("--heavy", help=argparse.SUPPRESS)
    parser.add_argument("--idle-agent", help=argparse.SUPPRESS)
    parser.add_argument("--new", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "live":
        print(json.dumps(asyncio.run(live_figures(args.year, args.agent, args.idle_agent, args.heavy, args.new,
                                                  args.samples))))
        return 0
    if args.runs < 1 or args.samples < 1:
        parser.error("--runs and --samples must be positive")
    if args.year is not None:
        path: Path = args.year
        found = load_meta(path)
        if found is None:
            parser.error(f"{path} has no bench.year .json beside it")
        meta = found
    else:
        path = default_out(args.calls, args.seed)
        meta, _ = asyncio.run(ensure_year(path, args.calls, args.seed, 48))
    load = os.getloadavg()
    started = time.perf_counter()
    results = measure(args, path, meta)
    text = report(args, results, path, meta, load, time.perf_counter() - started)
    print(text)
    if not args.no_write:
        write_section(args.section, text)
        progress("written to docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
