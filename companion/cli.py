"""The ``cti`` command: the daemon, the journal, the missed-call register, the replay PBX, the demo.

Every command that reads a config prints a config error as the file, the field and what is wrong,
and exits with status 2; never a traceback. So does any other input that cannot be used as given
(a time, a number, a file, a path): one line saying what and why, exit status 2. A failure of the work
itself (a store that cannot be opened, rows of an import that are wrong, an entry not found) exits with 1.
What is printed comes from callers, agents and files: it goes out as text (:mod:`cti.safe_text`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from cti.safe_text import terminal_text

from .config import ConfigError, Settings, file_problems, load_config
from .output import AGENT_MISS_COLUMNS, CALL_COLUMNS, MISSED_COLUMNS, Format, emit, records_json

if TYPE_CHECKING:
    from rich.progress import Progress

    from store.sqlite import SqliteStore

T = TypeVar("T")

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="CTI Companion: call journal and missed-call register beside an Asterisk PBX.")
missed_app = typer.Typer(help="The missed-call register and its call-back workflow.", invoke_without_command=True)
app.add_typer(missed_app, name="missed")
users_app = typer.Typer(help="Users of the web panel and their API tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")
contacts_app = typer.Typer(help="The client directory: contacts, their phones and cars.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="TOML config file (see config.example.toml)",
                                         envvar="CTI_CONFIG")]
SubConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file", envvar="CTI_CONFIG")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, json or csv")]
SinceOpt = Annotated[str | None, typer.Option(help="from this time: 2026-11-24, '2026-11-24 09:00', 2h, 7d, today")]
UntilOpt = Annotated[str | None, typer.Option(help="up to this time (same forms as --since)")]
#: The largest row id SQLite has; a larger number would fail inside the store instead of being refused.
MAX_ID = 2**63 - 1
IdArg = Annotated[int, typer.Argument(metavar="ID", min=1, max=MAX_ID)]
PortOpt = Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free port)")]
SpeedOpt = Annotated[float, typer.Option(min=0, help="1 = recorded pace, 10 = ten times faster, 0 = at once")]


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


LogLevelOpt = Annotated[LogLevel, typer.Option(case_sensitive=False, help="debug, info, warning or error")]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``cti: message`` (each line as text: it may quote a file or a caller) and exit with ``code``."""
    typer.echo("\n".join(terminal_text(line) for line in f"cti: {message}".split("\n")), err=True)
    raise typer.Exit(code)


def settings_from(path: Path) -> Settings:
    try:
        settings = load_config(path)
        settings.ami.resolved_secret()
    except ConfigError as exc:
        fail(str(exc))
    return settings


_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$", re.ASCII)
#: No journal is older: a time before this is a typo, and far enough back overflows the date arithmetic.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC).timestamp()


def parse_when(text: str | None, settings: Settings, option: str = "--since") -> float | None:
    """A point in time from the command line (``option``'s value), in the configured time zone.

    Unreadable, or before 1970 (``99999999d`` used to overflow into a traceback): a clear error, status 2.
    """
    if text is None:
        return None
    text = text.strip()
    try:
        stamp = _read_time(text, settings.pbx.tzinfo()).timestamp()
    except ValueError:
        fail(f"cannot read the time {option} {text!r}: use 2026-11-24, '2026-11-24 09:30', 2h, 7d, today")
    except OverflowError:
        stamp = -1.0
    if stamp < _EPOCH:
        fail(f"{option} {text!r} is before 1970: no journal is that old (leave {option} out for no limit)")
    return stamp


def _read_time(text: str, tz: tzinfo | None) -> datetime:
    """Raises ValueError when ``text`` is no time, OverflowError when it is too far from today."""
    now = datetime.now(tz).astimezone(tz)
    if text in ("today", "yesterday"):
        return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=text == "yesterday")
    if rel := _RELATIVE.match(text):
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[rel.group(2)]
        return now - timedelta(**{unit: int(rel.group(1))})
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz) if tz is not None else when.astimezone()
    return when


def time_range(since: str | None, until: str | None, settings: Settings) -> tuple[float | None, float | None]:
    """``--since`` and ``--until`` read, and refused when the range is empty (rather than print nothing)."""
    start, end = parse_when(since, settings, "--since"), parse_when(until, settings, "--until")
    if start is not None and end is not None and start > end:
        fail(f"--since {since} is after --until {until}: no call can match")
    return start, end


def require_store(settings: Settings) -> None:
    if not settings.store.path.exists():
        fail(f"no journal at {settings.store.path} yet: start the daemon first (cti run --config FILE)", 1)


def setup_logging(level: LogLevel) -> None:
    """Log to stderr, one line per record: control characters in a message (from the PBX, a client, a file)
    are written as escapes, so they can neither forge a line nor act on the terminal (:mod:`companion.logtext`)."""
    from .logtext import SafeFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(level=level.value.upper(), handlers=[handler])


# -- the daemon -----------------------------------------------------------------------------------


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
        fail(f"{_leaf(group)} (set another [http] port, or enabled = false)", 1)
    except* (StoreError, MigrationError) as group:
        fail(f"{_leaf(group)}")


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
    limit: Annotated[int | None, typer.Option(min=1, max=MAX_ID, help="at most this many calls")] = None,
) -> None:
    """The call journal, oldest first."""
    settings = settings_from(config)
    if direction not in (None, "inbound", "outbound", "internal"):
        fail(f"--direction must be inbound, outbound or internal, not {direction!r}")
    if outcome not in (None, "answered", "missed", "failed"):
        fail(f"--outcome must be answered, missed or failed, not {outcome!r}")
    start, end = time_range(since, until, settings)
    require_store(settings)

    async def query(store: SqliteStore) -> list[dict[str, object]]:
        rows = await store.list_calls(since=start, until=end, number=number, agent=agent, direction=direction,
                                      outcome=outcome, limit=limit)
        return records_json(rows, settings.pbx.tzinfo())

    emit(_with_store(settings, query), fmt, CALL_COLUMNS, "Call journal")


@app.command("agent-misses")
def agent_misses(config: ConfigOpt, fmt: FormatOpt = Format.table, since: SinceOpt = None, until: UntilOpt = None,
                 agent: Annotated[str | None, typer.Option(help="only this agent's extension")] = None) -> None:
    """Per agent: calls that rang an agent's phone and that the agent did not answer."""
    settings = settings_from(config)
    start, end = time_range(since, until, settings)
    require_store(settings)

    async def query(store: SqliteStore) -> list[dict[str, object]]:
        rows = await store.list_agent_misses(agent=agent, since=start, until=end)
        return records_json(rows, settings.pbx.tzinfo())

    emit(_with_store(settings, query), fmt, AGENT_MISS_COLUMNS, "Missed by agent")


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
    start, end = time_range(since, until, settings)
    require_store(settings)

    async def query(store: SqliteStore) -> list[dict[str, object]]:
        rows = await store.list_missed(status=None if status == "all" else status, since=start, until=end,
                                       number=number)
        if not all_reasons:
            rows = [r for r in rows if r.reason != "short_abandon"]
        return records_json(rows, settings.pbx.tzinfo())

    emit(_with_store(settings, query), fmt, MISSED_COLUMNS, f"Missed calls ({status})")


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

    async def act(store: SqliteStore) -> dict[str, object]:
        if reopen:
            entry = await store.reopen_missed(entry_id, comment, by=by)
        else:
            entry = await store.close_missed(entry_id, comment, by=by)
        return entry.to_json(settings.pbx.tzinfo())

    row = _with_store(settings, act)
    typer.echo(terminal_text(f"missed call #{entry_id} ({row['caller'] or 'withheld'}) is now {row['status']}"))


@missed_app.command("close")
def missed_close(ctx: typer.Context, entry_id: IdArg,
                 comment: Annotated[str, typer.Option(help="what was done")], config: SubConfigOpt = None,
                 by: Annotated[str, typer.Option(help="who closes it")] = os.environ.get("USER", "admin")) -> None:
    """Close an entry by hand, with a comment (it is kept in the entry's history)."""
    _missed_action(ctx, config, entry_id, comment, by, reopen=False)


@missed_app.command("reopen")
def missed_reopen(ctx: typer.Context, entry_id: IdArg,
                  comment: Annotated[str, typer.Option(help="why")], config: SubConfigOpt = None,
                  by: Annotated[str, typer.Option(help="who reopens it")] = os.environ.get("USER", "admin")) -> None:
    """Reopen a closed entry (the customer still waits for a call)."""
    _missed_action(ctx, config, entry_id, comment, by, reopen=True)


@missed_app.command("show")
def missed_show(ctx: typer.Context, entry_id: IdArg,
                fmt: FormatOpt = Format.table, config: SubConfigOpt = None) -> None:
    """One entry and its call-back history."""
    settings = settings_from(_config_path(ctx, config))
    require_store(settings)
    tz = settings.pbx.tzinfo()

    async def query(store: SqliteStore) -> tuple[dict[str, object], list[dict[str, object]]]:
        from cti.records import iso_time

        entry = await store.get_missed(entry_id)
        history = await store.missed_history(entry_id)
        return entry.to_json(tz), [
            {"at": iso_time(h.at, tz), "action": h.action, "by": h.by, "linkedid": h.linkedid, "comment": h.comment}
            for h in history
        ]

    entry, history = _with_store(settings, query)
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


def check_traces(paths: list[Path]) -> None:
    """Read every trace once before serving it: a damaged ``ami.jsonl`` is one line naming its line."""
    from asterisk.replay import load_trace

    for path in paths:
        try:
            load_trace(path)
        except (ValueError, OSError) as exc:
            fail(str(exc))


@app.command("replay-pbx")
def replay_pbx(
    traces: Annotated[list[str] | None, typer.Argument(help="trace folders or name prefixes (default: all)")] = None,
    host: str = "127.0.0.1",
    port: PortOpt = 5038,
    username: str = "cti",
    secret: str = "cti-secret",
    speed: SpeedOpt = 1.0,
    loop: Annotated[bool, typer.Option(help="replay again and again with fresh call ids")] = False,
    log_level: LogLevelOpt = LogLevel.info,
) -> None:
    """Serve recorded AMI traces as a real TCP AMI server (a PBX for tests and demos)."""
    from asterisk.replay import run_replay_pbx

    setup_logging(log_level)
    paths = resolve_traces(traces or [])
    check_traces(paths)
    try:
        asyncio.run(run_replay_pbx(paths, host=host, port=port, username=username, secret=secret, speed=speed,
                                   loop=loop))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}", 1)


@app.command()
def demo(
    traces: Annotated[list[str] | None, typer.Argument(help="trace folders or name prefixes (default: all)")] = None,
    speed: Annotated[float, typer.Option(min=0, help="replay speed; 1 = real time, 0 = at once")] = 3.0,
    store: Annotated[Path | None, typer.Option(help="SQLite file (default: a new temporary one)")] = None,
    duration: Annotated[float | None, typer.Option(min=0, help="stop after this many seconds")] = None,
    once: Annotated[bool, typer.Option(help="play the traces once instead of in a loop")] = False,
    http_port: Annotated[int, typer.Option(min=0, max=65535, help="the web panel's port (0: any free port)")] = 8080,
    http_host: Annotated[str, typer.Option(help="the web panel's address")] = "127.0.0.1",
    log_level: LogLevelOpt = LogLevel.warning,
) -> None:
    """Replay PBX + daemon + web panel on loopback, with demo logins. Nothing to set up."""
    from store.migrate import MigrationError
    from store.repository import StoreError
    from ui_bridge.server import PanelError

    from .demo import run_demo

    setup_logging(log_level)
    paths = resolve_traces(traces or [])
    check_traces(paths)
    try:
        asyncio.run(run_demo(paths, speed=speed, store_path=store, duration=duration, loop=not once,
                             http_port=http_port, http_host=http_host))
    except* PanelError as group:
        fail(f"{_leaf(group)} (another program uses it? try --http-port 0 for any free port)", 1)
    except* (StoreError, MigrationError) as group:
        fail(f"{_leaf(group)} (give another --store)")


# -- panel users ----------------------------------------------------------------------------------


class RoleChoice(StrEnum):
    agent = "agent"
    admin = "admin"
    qa = "qa"


def _with_store(settings: Settings, work: Callable[[SqliteStore], Awaitable[T]]) -> T:
    """``work`` on the store; a store that cannot be opened or used, an entry not found: one line, exit 1."""
    from store.migrate import MigrationError
    from store.repository import StoreError
    from store.sqlite import SqliteStore

    async def go() -> T:
        async with SqliteStore.from_settings(settings.store, region=settings.pbx.default_region) as store:
            return await work(store)

    try:
        return asyncio.run(go())
    except (StoreError, MigrationError) as exc:
        fail(str(exc), 1)


def _new_password(password_stdin: bool) -> str:
    from ui_bridge.auth import MIN_PASSWORD_LENGTH

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        fail(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return password


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[RoleChoice, typer.Option(help="agent: own extension only; admin: everything; qa: journal, "
                                                  "recordings, no call control")],
    config: ConfigOpt,
    extension: Annotated[str | None, typer.Option(help="the agent's phone extension (required for agents)")] = None,
    display_name: Annotated[str | None, typer.Option(help="shown in the panel, e.g. 'Анна Смирнова'")] = None,
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin instead of prompting")] = False,
) -> None:
    """Create a panel user (asks for the password; it is stored hashed with scrypt)."""
    from store.repository import User, UserExists
    from ui_bridge.auth import hash_password

    settings = settings_from(config)
    if not re.fullmatch(r"[\w.@-]{1,64}", name):
        fail("a user name is 1-64 letters, digits or . _ @ -")
    if role is RoleChoice.agent and not extension:
        fail("an agent needs --extension (the phone whose calls they see and control)")
    if extension is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", extension):
        fail(f"--extension {extension!r}: an extension is letters, digits, '_', '.' or '-' (it names the phone "
             "in AMI actions)")
    if extension is not None and not re.fullmatch(settings.pbx.agent_pattern, extension):
        typer.echo(terminal_text(f"cti: warning: {extension} does not match [pbx] agent_pattern "
                                 f"{settings.pbx.agent_pattern!r}; the daemon will not see it as an agent's phone"),
                   err=True)
    display = display_name or (settings.pbx.agents.get(extension) if extension else None)
    password_hash = hash_password(_new_password(password_stdin))

    async def work(store: SqliteStore) -> None:
        try:
            await store.add_user(User(name=name, role=role.value, extension=extension, display_name=display,
                                      password_hash=password_hash))
        except UserExists as exc:
            fail(f"{exc} (use 'cti users passwd' to change the password)", 1)

    _with_store(settings, work)
    typer.echo(terminal_text(f"user {name} ({role.value}{', extension ' + extension if extension else ''}) created"))


@users_app.command("list")
def users_list(config: ConfigOpt, fmt: FormatOpt = Format.table) -> None:
    """The panel's users (never their passwords)."""
    settings = settings_from(config)

    async def work(store: SqliteStore) -> list[dict[str, object]]:
        from cti.records import iso_time

        return [{"name": u.name, "role": u.role, "extension": u.extension, "display_name": u.display_name,
                 "created_at": iso_time(u.created_at, settings.pbx.tzinfo())} for u in await store.list_users()]

    rows = _with_store(settings, work)
    emit(rows, fmt, (("name", "Name"), ("role", "Role"), ("extension", "Ext."), ("display_name", "Shown as"),
                     ("created_at", "Created")), "Panel users")


@users_app.command("passwd")
def users_passwd(name: str, config: ConfigOpt, password_stdin: Annotated[bool, typer.Option()] = False) -> None:
    """Set a user's password; their panel sessions end at once (their API tokens stay)."""
    from store.repository import UserNotFound
    from ui_bridge.auth import hash_password

    settings = settings_from(config)
    password_hash = hash_password(_new_password(password_stdin))

    async def work(store: SqliteStore) -> None:
        try:
            await store.update_user(name, password_hash=password_hash)
        except UserNotFound as exc:
            fail(str(exc), 1)

    _with_store(settings, work)
    typer.echo(terminal_text(f"password of {name} changed"))


@users_app.command("remove")
def users_remove(name: str, config: ConfigOpt) -> None:
    """Delete a user with their panel sessions and API tokens; their open panels close within a second."""
    from store.repository import UserNotFound

    settings = settings_from(config)

    async def work(store: SqliteStore) -> None:
        try:
            await store.remove_user(name)
        except UserNotFound as exc:
            fail(str(exc), 1)

    _with_store(settings, work)
    typer.echo(terminal_text(f"user {name} removed"))


@users_app.command("token")
def users_token(name: str, config: ConfigOpt,
                label: Annotated[str | None, typer.Option(help="what the token is for")] = None) -> None:
    """Create an API token for a thin client (sent as 'Authorization: Bearer TOKEN'). Shown once."""
    from store.repository import UserNotFound
    from ui_bridge.auth import new_token, token_hash

    settings = settings_from(config)
    token = new_token()

    async def work(store: SqliteStore) -> None:
        try:
            await store.add_token(name, token_hash(token), label)
        except UserNotFound as exc:
            fail(str(exc), 1)

    _with_store(settings, work)
    typer.echo(token)
    typer.echo(terminal_text(f"(an API token of {name}: it is not shown again; only its hash is kept)"), err=True)


# -- the client directory -----------------------------------------------------------------------------


def _progress(transient: bool = False) -> Progress:
    """A progress bar on stderr, shown only on a terminal: stdout keeps the report, a log stays clean."""
    from rich.console import Console
    from rich.progress import Progress

    return Progress(console=Console(stderr=True), transient=transient, disable=not sys.stderr.isatty())


@contacts_app.command("import")
def contacts_import(
    file: Annotated[Path, typer.Argument(help="CSV file (UTF-8 or Windows-1251; ';' ',' or tab separated)")],
    config: ConfigOpt,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check every row and report; save nothing")] = False,
    encoding: Annotated[str | None, typer.Option(help="force an encoding (default: UTF-8, else cp1251)")] = None,
    delimiter: Annotated[str | None, typer.Option(help="force the separator (default: detected)")] = None,
) -> None:
    """Import contacts and their cars from CSV (as 1C exports them). All rows or none.

    A file that is no such table (UTF-16, an unknown byte, a quote never closed) is refused with the line to
    look at (exit status 2); rows with problems are listed by line and nothing is imported (exit status 1).
    """
    from cti.contacts_csv import CsvError, read_contacts, valid_delimiter

    settings = settings_from(config)
    if delimiter is not None and not valid_delimiter(delimiter):
        fail(f"--delimiter must be one character other than a quote or a line break, not {delimiter!r}")
    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"{file}: cannot read: {exc.strerror}")
    lines = data.count(b"\n") or 1
    with _progress(transient=True) as bar:
        task = bar.add_task("checking", total=lines)
        try:
            result = read_contacts(data, encoding=encoding, delimiter=delimiter,
                                   region=settings.pbx.default_region, on_row=lambda: bar.advance(task))
        except CsvError as exc:
            fail(f"{file}: {exc}")
    summary = terminal_text(f"{file}: {result.rows} rows ({result.encoding}, separator {result.delimiter!r}): "
                            f"{len(result.contacts)} contacts, {result.vehicles} cars")
    if result.problems:
        typer.echo(summary, err=True)
        for problem in result.problems[:200]:
            typer.echo(f"  {terminal_text(str(problem))}", err=True)
        if len(result.problems) > 200:
            typer.echo(f"  ... and {len(result.problems) - 200} more", err=True)
        fail(f"{len(result.problems)} problem(s) in {file}: nothing was imported; fix the rows and run again", 1)
    if dry_run:
        typer.echo(summary + " - all rows are fine (dry run: nothing saved)")
        return

    async def work(store: SqliteStore) -> int:
        with _progress() as bar:
            task = bar.add_task("importing", total=len(result.contacts))
            ids = await store.add_contacts(result.contacts, progress=lambda n: bar.advance(task, n))
        return len(ids)

    try:
        saved = _with_store(settings, work)
    except sqlite3.IntegrityError as exc:
        fail(f"{file}: nothing was imported: {exc} (a contact with the same code exists already?)", 1)
    typer.echo(summary + f" - imported {saved} contacts")


@contacts_app.command("export")
def contacts_export(
    config: ConfigOpt,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")] = None,
    encoding: Annotated[str, typer.Option(help="utf-8 or cp1251 (for old 1C and Excel)")] = "utf-8",
    delimiter: Annotated[str, typer.Option(help="column separator")] = ";",
) -> None:
    """Export the whole directory as CSV: one row per car (a contact without one: one row).

    Written a page at a time; a file appears only when it is complete (written beside it, then renamed).
    """
    import io
    import os

    from cti.contacts_csv import valid_delimiter, write_contacts

    settings = settings_from(config)
    try:
        ascii_compatible = "name;\r\n".encode(encoding) == b"name;\r\n"
    except LookupError:
        fail(f"unknown encoding {encoding!r} (utf-8 or cp1251)")
    if not ascii_compatible:  # UTF-16 and the like: 1C, Excel and our own import would not read it back
        fail(f"--encoding {encoding}: use utf-8 or cp1251")
    if not valid_delimiter(delimiter):
        fail(f"--delimiter must be one character other than a quote or a line break, not {delimiter!r}")
    partial = output.with_name(output.name + ".partial") if output is not None else None
    if output is not None and output.is_dir():
        fail(f"{output} is a folder: give the file to write (-o {output / 'contacts.csv'})")
    if output is not None and not output.parent.is_dir():
        fail(f"{output}: the folder {output.parent} does not exist")
    try:
        raw = partial.open("wb") if partial is not None else sys.stdout.buffer
    except OSError as exc:
        fail(f"{output}: cannot write: {exc.strerror}")
    out = io.TextIOWrapper(raw, encoding=encoding, newline="", write_through=False)

    async def work(store: SqliteStore) -> int:
        after, rows = 0, 0
        while page := await store.list_contacts(after_id=after):
            rows += write_contacts(page, out, delimiter=delimiter, header=after == 0)
            after = page[-1].id or after
        if after == 0:
            write_contacts([], out, delimiter=delimiter)
        return rows

    complete = False
    try:
        rows = _with_store(settings, work)
        out.flush()
        complete = True
    except UnicodeEncodeError as exc:
        fail(f"cannot write {encoding}: {exc.object[exc.start:exc.end]!r} has no {encoding} form; "
             "export in utf-8", 2)
    finally:
        if partial is not None and not complete:  # whatever stopped it: no half file left behind
            out.close()
            partial.unlink(missing_ok=True)
    if partial is not None and output is not None:
        out.close()
        os.replace(partial, output)
        typer.echo(f"{rows} rows written to {output}", err=True)
    else:
        out.detach()


# -- the WebSocket protocol ---------------------------------------------------------------------------


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option(help="write the JSON Schema here instead of stdout")] = None,
    docs: Annotated[Path | None, typer.Option(help="also write the Markdown reference (docs/protocol.md)")] = None,
) -> None:
    """The WebSocket protocol as JSON Schema, generated from the message models."""
    import json

    from ui_bridge.messages import json_schema
    from ui_bridge.protocol_doc import render

    text = json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    for path, content in ((out, text), (docs, render() if docs is not None else "")):
        if path is not None:
            try:
                path.write_text(content, encoding="utf-8")
            except OSError as exc:
                fail(f"{path}: cannot write: {exc.strerror}")


def _leaf(error: BaseException) -> BaseException:
    """The first real error inside nested exception groups (task groups inside task groups)."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


@app.command("ami-user")
def ami_user(config: ConfigOpt,
             permit: Annotated[str | None, typer.Option(
                 help="the daemon's address as the PBX sees it (default: 127.0.0.1 when [ami] host is local)")] = None,
             ) -> None:
    """Print the manager.conf section of a least-privilege AMI user for this daemon (no 'system').

    Paste it on the PBX, put the daemon's secret in it, `manager reload`, and set [ami] use_filters = false:
    the event filters are then in manager.conf instead of being sent with the Filter action, which needs
    the 'system' write class (see docs/security.md).
    """
    import ipaddress

    from asterisk.manager_conf import manager_conf_section
    from cti.model import AMI_FILTERS

    settings = settings_from(config)
    if permit is None:
        local = settings.ami.host in ("localhost", "127.0.0.1", "::1")
        permit = "127.0.0.1" if local else None
        if permit is None:
            fail("the PBX is not on this machine: say the daemon's address as the PBX sees it with --permit")
    try:
        address = ipaddress.IPv4Address(permit)
    except ValueError:
        fail(f"--permit: {permit!r} is not an IPv4 address (manager.conf permits by IPv4 address and mask)")
    try:
        section = manager_conf_section(settings.ami.username, settings.ami.events, AMI_FILTERS, permit=str(address))
    except ValueError as exc:
        fail(str(exc))
    for line in section.splitlines():
        typer.echo(terminal_text(line))


@app.command("check-config")
def check_config(config: ConfigOpt) -> None:
    """Validate a config file and the files it names (the store's folder, the TLS pair); say what it points at."""
    settings = settings_from(config)
    problems = file_problems(settings)
    if problems:
        fail("\n".join(f"{config}: {problem}" for problem in problems))
    typer.echo(terminal_text(f"{config}: ok — AMI {settings.ami.username}@{settings.ami.host}:{settings.ami.port}, "
                             f"store {settings.store.path}"))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
