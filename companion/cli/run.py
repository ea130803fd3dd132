"""``cti run``, ``cti demo`` and ``cti check-config``: the daemon, the demo around it, and its config checked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from companion.config import file_problems
from companion.demo_logins import login_lines as demo_login_lines
from cti.safe_text import terminal_text

from .app import app
from .errors import fail, leaf
from .loading import settings_from, setup_logging
from .options import ConfigOpt, LogLevel, LogLevelOpt, TracesArg
from .traces import check_traces, resolve_traces


@app.command()
def run(config: ConfigOpt, log_level: LogLevelOpt = LogLevel.info) -> None:
    """Run the daemon until SIGTERM/SIGINT: follow the PBX, keep the journal and the register."""
    from companion.daemon import run_daemon
    from store.migrate import MigrationError
    from store.repository import StoreError
    from ui_bridge.server import PanelError

    settings = settings_from(config)
    problems = file_problems(settings)
    if problems:
        fail("\n".join(f"{config}: {problem}" for problem in problems))
    setup_logging(log_level)
    try:
        asyncio.run(run_daemon(settings))
    except* PanelError as group:
        fail(f"{leaf(group)} (set another [http] port, or enabled = false)", 1)
    except* (StoreError, MigrationError) as group:
        fail(f"{leaf(group)}")


_DEMO_HELP = "\n\n".join([
    "Replay PBX + daemon + web panel on loopback, with demo logins. Nothing to set up.",
    "The calls are re-dated to now; the journal is kept in FOLDER/journal.sqlite and FOLDER/cti.toml is written "
    "for the CLI (cti calls --config FOLDER/cti.toml --since today); the sample contacts of examples/contacts.csv "
    "are imported once.",
    "The calls are recorded into FOLDER/recordings and the QA page (/qa) plays them; with a Vosk model in "
    "FOLDER/models (cti models download vosk-model-small-ru-0.22 --config FOLDER/cti.toml), or the dev install's "
    "Korean one, they are transcribed.",
    "\b\nThe panel's logins (name / password, who):\n" + "\n".join(f"  {line}" for line in demo_login_lines()),
])


@app.command(help=_DEMO_HELP)
def demo(
    traces: TracesArg = None,
    speed: Annotated[float, typer.Option(min=0, help=(
        "replay speed; 1 = real time (the calls last as recorded: the panel's timers, waits and alerts are what a "
        "centre sees), 0 = at once"))] = 1.0,
    folder: Annotated[Path | None, typer.Option(
        help="where the journal and the CLI's cti.toml are kept (default: ./cti-demo, or --store's folder)")] = None,
    store: Annotated[Path | None, typer.Option(help="SQLite file of the journal (default: FOLDER/journal.sqlite)")
                     ] = None,
    sample_contacts: Annotated[bool, typer.Option(
        help="import the sample contacts of examples/contacts.csv (once)")] = True,
    duration: Annotated[float | None, typer.Option(min=0, help="stop after this many seconds")] = None,
    once: Annotated[bool, typer.Option(help="play the traces once instead of in a loop")] = False,
    transcribe: Annotated[bool, typer.Option(help=(
        "transcribe the recorded calls when Vosk and a model are at hand (FOLDER/models, a Russian one first: "
        "cti models download vosk-model-small-ru-0.22 --config FOLDER/cti.toml)"))] = True,
    http_port: Annotated[int, typer.Option(min=0, max=65535, help="the web panel's port (0: any free port)")] = 8080,
    http_host: Annotated[str, typer.Option(help="the web panel's address")] = "127.0.0.1",
    log_level: LogLevelOpt = LogLevel.warning,
) -> None:
    from companion.demo import DEMO_FOLDER, SAMPLE_CONTACTS, run_demo
    from store.migrate import MigrationError
    from store.repository import StoreError
    from ui_bridge.server import PanelError

    setup_logging(log_level)
    paths = resolve_traces(traces or [])
    check_traces(paths)
    folder = folder or (store.parent if store is not None else DEMO_FOLDER)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{folder}: cannot make the demo's folder: {exc.strerror} (give another --folder)")
    try:
        asyncio.run(run_demo(paths, speed=speed, store_path=store, duration=duration, loop=not once,
                             http_port=http_port, http_host=http_host, folder=folder,
                             sample_contacts=SAMPLE_CONTACTS if sample_contacts else None, transcribe=transcribe))
    except* PanelError as group:
        fail(f"{leaf(group)} (another program uses it? try --http-port 0 for any free port)", 1)
    except* (StoreError, MigrationError) as group:
        fail(f"{leaf(group)} (give another --store)")


@app.command("check-config")
def check_config(config: ConfigOpt) -> None:
    """Validate a config file and the files it names (the store's folder, the TLS pair); say what it points at."""
    settings = settings_from(config)
    problems = file_problems(settings)
    if problems:
        fail("\n".join(f"{config}: {problem}" for problem in problems))
    pbxs = ", ".join(f"{p.id} {p.ami.username}@{p.ami.host}:{p.ami.port}" for p in settings.followed())
    store = "PostgreSQL" if settings.store.url else str(settings.store.path)
    followed = f"AMI {pbxs.split(' ', 1)[1]}" if not settings.pbxs else f"PBXs {pbxs}"
    typer.echo(terminal_text(f"{config}: ok — {followed}, store {store}"))
    if settings.live.enabled and (warning := settings.live.capacity_warning()) is not None:
        typer.echo(terminal_text(f"{config}: warning: {warning}"))
