"""The ``cti`` command: the daemon, the journal, the missed-call register, the replay PBX, the demo.

Every command that reads a config prints a config error as the file, the field and what is wrong,
and exits with status 2; never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from .config import ConfigError, Settings, load_config
from .output import AGENT_MISS_COLUMNS, CALL_COLUMNS, MISSED_COLUMNS, Format, emit, records_json

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="CTI Companion: call journal and missed-call register beside an Asterisk PBX.")
missed_app = typer.Typer(help="The missed-call register and its call-back workflow.", invoke_without_command=True)
app.add_typer(missed_app, name="missed")

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="TOML config file (see config.example.toml)",
                                         envvar="CTI_CONFIG")]
SubConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file", envvar="CTI_CONFIG")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, json or csv")]
SinceOpt = Annotated[str | None, typer.Option(help="from this time: 2026-11-24, '2026-11-24 09:00', 2h, 7d, today")]
UntilOpt = Annotated[str | None, typer.Option(help="up to this time (same forms as --since)")]


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"cti: {message}", err=True)
    raise typer.Exit(code)


def settings_from(path: Path) -> Settings:
    try:
        settings = load_config(path)
        settings.ami.resolved_secret()
    except ConfigError as exc:
        fail(str(exc))
    return settings


_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")


def parse_when(text: str | None, settings: Settings) -> float | None:
    """A point in time from the command line, in the configured time zone."""
    if text is None:
        return None
    tz = settings.pbx.tzinfo()
    now = datetime.now(tz).astimezone(tz)
    text = text.strip()
    if text == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    if text == "yesterday":
        return (now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)).timestamp()
    rel = _RELATIVE.match(text)
    if rel:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[rel.group(2)]
        return (now - timedelta(**{unit: int(rel.group(1))})).timestamp()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"cannot read the time {text!r}: use 2026-11-24, '2026-11-24 09:30', 2h, 7d, today")
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz) if tz is not None else when.astimezone()
    return when.timestamp()


def require_store(settings: Settings) -> None:
    if not settings.store.path.exists():
        fail(f"no journal at {settings.store.path} yet: start the daemon first (cti run --config FILE)", 1)


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        stream=sys.stderr)


# -- the daemon -----------------------------------------------------------------------------------


@app.command()
def run(config: ConfigOpt,
        log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info") -> None:
    """Run the daemon until SIGTERM/SIGINT: follow the PBX, keep the journal and the register."""
    from .app import run_daemon

    settings = settings_from(config)
    setup_logging(log_level)
    asyncio.run(run_daemon(settings))


# -- the journal ----------------------------------------------------------------------------------


@app.command()
def calls(
    config: ConfigOpt,
    fmt: FormatOpt = Format.table,
    since: SinceOpt = None,
    until: UntilOpt = None,
    number: Annotated[str | None, typer.Option(help="caller or called number, any form (8 916..., +7...)")] = None,
    agent: Annotated[str | None, typer.Option(help="agent extension (answered or rung)")] = None,
    direction: Annotated[str | None, typer.Option(help="inbound, outbound or internal")] = None,
    outcome: Annotated[str | None, typer.Option(help="answered, missed or failed")] = None,
    limit: Annotated[int | None, typer.Option(help="at most this many calls")] = None,
) -> None:
    """The call journal, oldest first."""
    settings = settings_from(config)
    if direction not in (None, "inbound", "outbound", "internal"):
        fail(f"--direction must be inbound, outbound or internal, not {direction!r}")
    if outcome not in (None, "answered", "missed", "failed"):
        fail(f"--outcome must be answered, missed or failed, not {outcome!r}")
    require_store(settings)

    async def query() -> list[dict[str, object]]:
        from store.sqlite import SqliteStore

        async with SqliteStore.from_settings(settings.store, region=settings.pbx.default_region) as store:
            rows = await store.list_calls(since=parse_when(since, settings), until=parse_when(until, settings),
                                          number=number, agent=agent, direction=direction, outcome=outcome,
                                          limit=limit)
        return records_json(rows, settings.pbx.tzinfo())

    emit(asyncio.run(query()), fmt, CALL_COLUMNS, "Call journal")


@app.command("agent-misses")
def agent_misses(config: ConfigOpt, fmt: FormatOpt = Format.table, since: SinceOpt = None, until: UntilOpt = None,
                 agent: Annotated[str | None, typer.Option(help="only this agent's extension")] = None) -> None:
    """Per agent: calls that rang an agent's phone and that the agent did not answer."""
    settings = settings_from(config)
    require_store(settings)

    async def query() -> list[dict[str, object]]:
        from store.sqlite import SqliteStore

        async with SqliteStore.from_settings(settings.store, region=settings.pbx.default_region) as store:
            rows = await store.list_agent_misses(agent=agent, since=parse_when(since, settings),
                                                 until=parse_when(until, settings))
        return records_json(rows, settings.pbx.tzinfo())

    emit(asyncio.run(query()), fmt, AGENT_MISS_COLUMNS, "Missed by agent")


# -- the missed-call register ---------------------------------------------------------------------


@missed_app.callback()
def missed(
    ctx: typer.Context,
    config: SubConfigOpt = None,
    fmt: FormatOpt = Format.table,
    status: Annotated[str, typer.Option(help="open, closed or all")] = "open",
    since: SinceOpt = None,
    until: UntilOpt = None,
    number: Annotated[str | None, typer.Option(help="caller number, any form")] = None,
    all_reasons: Annotated[bool, typer.Option("--all", help="include short abandons (hung up within seconds)")] = False,
) -> None:
    """The missed-call register (open entries by default). Subcommands: close, reopen, show."""
    ctx.obj = config
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_from(_config_path(ctx, None))
    if status not in ("open", "closed", "all"):
        fail(f"--status must be open, closed or all, not {status!r}")
    require_store(settings)

    async def query() -> list[dict[str, object]]:
        from store.sqlite import SqliteStore

        async with SqliteStore.from_settings(settings.store, region=settings.pbx.default_region) as store:
            rows = await store.list_missed(status=None if status == "all" else status,
                                           since=parse_when(since, settings), until=parse_when(until, settings),
                                           number=number)
        if not all_reasons:
            rows = [r for r in rows if r.reason != "short_abandon"]
        return records_json(rows, settings.pbx.tzinfo())

    emit(asyncio.run(query()), fmt, MISSED_COLUMNS, f"Missed calls ({status})")


def _config_path(ctx: typer.Context, config: Path | None) -> Path:
    path = config or ctx.obj
    if path is None:
        fail("give the config file: --config FILE (or set CTI_CONFIG)")
    return Path(path)


def _missed_action(ctx: typer.Context, config: Path | None, entry_id: int, comment: str, by: str,
                   reopen: bool) -> None:
    settings = settings_from(_config_path(ctx, config))
    require_store(settings)
    if not comment.strip():
        fail("--comment must say what was done (e.g. 'called back, booked a visit')")

    async def act() -> dict[str, object]:
        from store.repository import MissedNotFound, MissedStateError
        from store.sqlite import SqliteStore

        async with SqliteStore.from_settings(settings.store, region=settings.pbx.default_region) as store:
            try:
                if reopen:
                    entry = await store.reopen_missed(entry_id, comment, by=by)
                else:
                    entry = await store.close_missed(entry_id, comment, by=by)
            except (MissedNotFound, MissedStateError) as exc:
                fail(str(exc), 1)
        return entry.to_json(settings.pbx.tzinfo())

    row = asyncio.run(act())
    typer.echo(f"missed call #{entry_id} ({row['caller'] or 'withheld'}) is now {row['status']}")


@missed_app.command("close")
def missed_close(ctx: typer.Context, entry_id: Annotated[int, typer.Argument(metavar="ID")],
                 comment: Annotated[str, typer.Option(help="what was done")], config: SubConfigOpt = None,
                 by: Annotated[str, typer.Option(help="who closes it")] = os.environ.get("USER", "admin")) -> None:
    """Close an entry by hand, with a comment (it is kept in the entry's history)."""
    _missed_action(ctx, config, entry_id, comment, by, reopen=False)


@missed_app.command("reopen")
def missed_reopen(ctx: typer.Context, entry_id: Annotated[int, typer.Argument(metavar="ID")],
                  comment: Annotated[str, typer.Option(help="why")], config: SubConfigOpt = None,
                  by: Annotated[str, typer.Option(help="who reopens it")] = os.environ.get("USER", "admin")) -> None:
    """Reopen a closed entry (the customer still waits for a call)."""
    _missed_action(ctx, config, entry_id, comment, by, reopen=True)


@missed_app.command("show")
def missed_show(ctx: typer.Context, entry_id: Annotated[int, typer.Argument(metavar="ID")],
                fmt: FormatOpt = Format.table, config: SubConfigOpt = None) -> None:
    """One entry and its call-back history."""
    settings = settings_from(_config_path(ctx, config))
    require_store(settings)
    tz = settings.pbx.tzinfo()

    async def query() -> tuple[dict[str, object], list[dict[str, object]]]:
        from cti.records import iso_time
        from store.repository import MissedNotFound
        from store.sqlite import SqliteStore

        async with SqliteStore.from_settings(settings.store, region=settings.pbx.default_region) as store:
            try:
                entry = await store.get_missed(entry_id)
            except MissedNotFound as exc:
                fail(str(exc), 1)
            history = await store.missed_history(entry_id)
        return entry.to_json(tz), [
            {"at": iso_time(h.at, tz), "action": h.action, "by": h.by, "linkedid": h.linkedid, "comment": h.comment}
            for h in history
        ]

    entry, history = asyncio.run(query())
    if fmt is Format.json:
        emit([{**entry, "history": history}], fmt, MISSED_COLUMNS, "")
        return
    emit([entry], fmt, MISSED_COLUMNS, f"Missed call #{entry_id}")
    emit(history, fmt, (("at", "At"), ("action", "Action"), ("by", "By"), ("linkedid", "Call"),
                        ("comment", "Comment")), "History")


# -- the replay PBX and the demo ------------------------------------------------------------------


def shared_dir() -> Path:
    """Where ../shared is: $CTI_SHARED, else beside the current directory or the installed project."""
    env = os.environ.get("CTI_SHARED")
    if env:
        return Path(env)
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        candidate = base.parent / "shared"
        if (candidate / "ami-traces").is_dir():
            return candidate
    return Path.cwd().parent / "shared"


def resolve_traces(names: list[str]) -> list[Path]:
    root = shared_dir() / "ami-traces"
    if not names:
        found = sorted(p for p in root.glob("*") if (p / "ami.jsonl").is_file()) if root.is_dir() else []
        if not found:
            fail(f"no AMI traces under {root}: set CTI_SHARED to the shared/ folder")
        return found
    out = []
    for name in names:
        path = Path(name)
        if not path.is_dir():
            matches = sorted(root.glob(f"{name}*")) if root.is_dir() else []
            if len(matches) != 1:
                fail(f"no trace folder {name!r} (looked in {root})")
            path = matches[0]
        if not (path / "ami.jsonl").is_file():
            fail(f"{path} is not a trace folder (no ami.jsonl)")
        out.append(path)
    return out


@app.command("replay-pbx")
def replay_pbx(
    traces: Annotated[list[str] | None, typer.Argument(help="trace folders or name prefixes (default: all)")] = None,
    host: str = "127.0.0.1",
    port: int = 5038,
    username: str = "cti",
    secret: str = "cti-secret",
    speed: Annotated[float, typer.Option(help="1 = recorded pace, 10 = ten times faster, 0 = at once")] = 1.0,
    loop: Annotated[bool, typer.Option(help="replay again and again with fresh call ids")] = False,
    log_level: str = "info",
) -> None:
    """Serve recorded AMI traces as a real TCP AMI server (a PBX for tests and demos)."""
    from asterisk.replay import run_replay_pbx

    setup_logging(log_level)
    paths = resolve_traces(traces or [])
    try:
        asyncio.run(run_replay_pbx(paths, host=host, port=port, username=username, secret=secret, speed=speed,
                                   loop=loop))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}", 1)


@app.command()
def demo(
    traces: Annotated[list[str] | None, typer.Argument(help="trace folders or name prefixes (default: all)")] = None,
    speed: Annotated[float, typer.Option(help="replay speed; 1 = real time")] = 3.0,
    store: Annotated[Path | None, typer.Option(help="SQLite file (default: a new temporary one)")] = None,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    once: Annotated[bool, typer.Option(help="play the traces once instead of in a loop")] = False,
    log_level: str = "warning",
) -> None:
    """Replay PBX + daemon on loopback; the journal fills live in the terminal. Nothing to set up."""
    from .demo import run_demo

    setup_logging(log_level)
    paths = resolve_traces(traces or [])
    asyncio.run(run_demo(paths, speed=speed, store_path=store, duration=duration, loop=not once))


@app.command("check-config")
def check_config(config: ConfigOpt) -> None:
    """Validate a config file and say what it points at."""
    settings = settings_from(config)
    typer.echo(f"{config}: ok — AMI {settings.ami.username}@{settings.ami.host}:{settings.ami.port}, "
               f"store {settings.store.path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
