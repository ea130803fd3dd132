"""``cti demo``: a replay PBX, the daemon and the web panel on loopback; nothing to set up.

The recorded traces of ``../shared/ami-traces`` are served by the project's own AMI server on a free
loopback port, the daemon connects to it over TCP exactly as to Asterisk, the panel listens on
``--http-port`` with demo logins (printed at start), and every call that rings, is answered or ends is
printed as it happens. The traces loop with fresh call ids, so the board stays alive.

Everything is as a first-time user would want it: the calls are re-dated to the moment they are replayed
(``cti calls --since today`` lists them), the journal is kept in a named file of the demo's folder
(``./cti-demo/journal.sqlite``) beside a config file for the CLI (``./cti-demo/cti.toml``: ``cti calls --config
./cti-demo/cti.toml`` works against the demo), the sample directory of ``examples/contacts.csv`` (the traces'
callers, their companies, cars and plates) is imported once, so the caller card and the search show something
from the first call, and the replay PBX answers a pause or a transfer from the panel as a real Asterisk would
(:mod:`asterisk.replay.live`), with the lab PBX's queue members (``pbx-conf/queues.conf`` beside the traces).

An agent who answers an inbound call sees the shipped Russian contact script (``examples/scripts``, ``car-service``)
beside the caller card, with the lab's masters to pass the call to: Дмитрий Соколов (104) answers a transfer, Елена
Попова (105) never does (her phone rings out after the lab's 15 s, as a ring-forever phone would), so both ends of
a transfer step can be seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Sequence
from datetime import tzinfo
from pathlib import Path

from rich.console import Console
from rich.text import Text

from asterisk.replay import ReplayPbx, load_trace
from asterisk.replay.queues_conf import read_queues_conf
from companion.daemon import Daemon, freeze_startup_heap, install_stop_signals
from companion.threads import tune_threads
from cti.effects import CallAnswered, CallContext, CallEnded, CallRang, CallTransferred, Effect
from cti.records import iso_time
from cti.safe_text import terminal_text
from store.repository import Store, User, UserExists
from ui_bridge.settings import AlertSettings, ScriptEmployee, ScriptSettings

from .config import AmiSettings, HttpSettings, PbxSettings, Settings, StoreSettings
from .demo_logins import DEMO_LOGINS, LAB_AGENTS, login_lines

__all__ = ["DEMO_LOGINS", "LAB_AGENTS", "demo_settings", "import_sample_contacts", "run_demo", "write_demo_config"]

DEMO_USER, DEMO_SECRET = "cti", "cti-secret"
#: Where the demo keeps its journal and writes the CLI's config file, unless told otherwise.
DEMO_FOLDER = Path("cti-demo")
JOURNAL_NAME, CONFIG_NAME = "journal.sqlite", "cti.toml"
#: The sample directory: the traces' callers with their companies, cars and plates.
SAMPLE_CONTACTS = Path(__file__).resolve().parents[1] / "examples" / "contacts.csv"
#: The lab PBX's zone: what the demo's times are printed in, and what its config file says.
DEMO_TIMEZONE = "Europe/Moscow"
LAB_QUEUES = ["support", "support-linear", "support-rr", "sales"]
#: The shipped contact scripts; the Russian one opens when an agent answers an inbound call.
SCRIPTS_FOLDER = Path(__file__).resolve().parents[1] / "examples" / "scripts"
DEMO_SCRIPT = "car-service"
#: The script's masters as the lab's agents: the demo logins ``dmitry`` (104) and ``elena`` (105).
DEMO_MASTERS = [ScriptEmployee(id=name, name=LAB_AGENTS[ext], extension=ext)
                for name, (_password, _role, ext) in DEMO_LOGINS.items() if ext in ("104", "105")]
#: The master whose phone never answers a transfer (the live replay's ring-forever phone): the script's reminder shows.
UNANSWERED_MASTER = "105"


def demo_scripts(folder: Path | None = SCRIPTS_FOLDER) -> ScriptSettings:
    """``[scripts]`` of the demo: the shipped scripts with the lab's masters; none when the folder is not there (an
    install without ``examples/``)."""
    if folder is None or not folder.is_dir():
        return ScriptSettings()
    return ScriptSettings(folder=folder, default=DEMO_SCRIPT, employees={"masters": DEMO_MASTERS})


def demo_settings(port: int, store_path: Path, http_port: int = 8080, http_host: str = "127.0.0.1",
                  scripts_folder: Path | None = SCRIPTS_FOLDER) -> Settings:
    """The lab PBX of the traces (the same facts as config.example.toml) on a loopback port."""
    return Settings(
        ami=AmiSettings(host="127.0.0.1", port=port, username=DEMO_USER, secret=DEMO_SECRET,
                        ping_interval=5.0, reconnect_min=0.2, reconnect_max=2.0),
        store=StoreSettings(path=store_path),
        pbx=PbxSettings(trunks=["trunk"], agent_pattern=r"1\d\d", agents=LAB_AGENTS,
                        queues=LAB_QUEUES, timezone=DEMO_TIMEZONE),
        http=HttpSettings(host=http_host, port=http_port),
        # Low thresholds, so the recorded calls raise the supervisor's alerts within the demo's first minutes.
        alerts=AlertSettings(long_wait_seconds=10, service_level_below=80, service_level_min_calls=3,
                             paused_minutes=2, missed_not_called_back_minutes=5),
        scripts=demo_scripts(scripts_folder),
    )


def write_demo_config(path: Path, settings: Settings) -> None:
    """A config file for the CLI that points at the running demo: its journal, its PBX, its panel, its zone.

    ``cti calls --config ./cti-demo/cti.toml`` (and every other command) then reads the demo's journal. The store's
    path is written relative to the file when it is beside it (the folder can be moved), else absolute. Written
    beside and renamed, so a CLI reading it meanwhile never sees half a file.
    """
    store = settings.store.path.resolve()
    folder = path.parent.resolve()
    store_text = str(store.relative_to(folder)) if store.is_relative_to(folder) else str(store)
    ami, pbx, http = settings.ami, settings.pbx, settings.http

    def q(value: str) -> str:  # a TOML basic string (JSON's escapes are TOML's)
        return json.dumps(value, ensure_ascii=False)

    lines = [
        "# Written by `cti demo` at every start: the CLI's view of the running demo.",
        "# cti calls --config THIS_FILE --since today",
        "", "[ami]", f"host = {q(ami.host)}", f"port = {ami.port}", f"username = {q(ami.username)}",
        f"secret = {q(ami.resolved_secret())}", "",
        "[store]", f"path = {q(store_text)}", "",
        "[pbx]", f"trunks = [{', '.join(q(t) for t in pbx.trunks)}]", f"agent_pattern = {q(pbx.agent_pattern)}",
        f"queues = [{', '.join(q(name) for name in pbx.queues)}]", f"timezone = {q(pbx.timezone)}", "",
        "[pbx.agents]", *(f"{q(ext)} = {q(name)}" for ext, name in pbx.agents.items()), "",
        "[http]", f"host = {q(http.host)}", f"port = {http.port}", "",
    ]
    scripts = settings.scripts
    if scripts.folder is not None:
        lines += ["[scripts]", f"folder = {q(str(scripts.folder))}", f"default = {q(scripts.default)}", "",
                  "[scripts.employees]",
                  *(f"{q(name)} = [{', '.join(_employee_toml(e, q) for e in people)}]"
                    for name, people in scripts.employees.items()), ""]
    partial = path.with_name(path.name + ".partial")
    partial.write_text("\n".join(lines), encoding="utf-8")
    os.replace(partial, path)


def _employee_toml(employee: ScriptEmployee, q: Callable[[str], str]) -> str:
    fields = [f"id = {q(employee.id)}", f"name = {q(employee.name)}"]
    if employee.extension is not None:
        fields.append(f"extension = {q(employee.extension)}")
    return "{ " + ", ".join(fields) + " }"


async def import_sample_contacts(store: Store, file: Path, region: str = "RU") -> int:
    """Import the sample directory once: contacts whose code (``external_id``) the store has are skipped, so a
    second demo on the same journal adds nothing. Returns how many were added.

    Raises:
        ValueError: the file has rows the import refuses (a broken sample is a bug to see, not to hide).
    """
    from cti.contacts_csv import read_contacts

    result = read_contacts(await asyncio.to_thread(file.read_bytes), region=region)
    if result.problems:
        raise ValueError(f"{file}: {'; '.join(str(p) for p in result.problems[:5])}")
    known: set[str | None] = set()
    after = 0
    while page := await store.list_contacts(after_id=after):
        known.update(c.external_id for c in page)
        after = page[-1].id or after
    new = [c for c in result.contacts if c.external_id not in known]
    if new:
        await store.add_contacts(new)
    return len(new)


async def add_demo_logins(store: Store) -> None:
    from ui_bridge.auth import hash_password

    for name, (password, role, ext) in DEMO_LOGINS.items():
        password_hash = await asyncio.to_thread(hash_password, password)
        display = LAB_AGENTS.get(ext or "") or {"admin": "Администратор", "qa": "Контроль качества"}.get(name)
        with contextlib.suppress(UserExists):  # a --store kept from an earlier demo has them
            await store.add_user(User(name=name, role=role, extension=ext,  # type: ignore[arg-type]
                                      display_name=display, password_hash=password_hash))


def _party(context: CallContext | None, linkedid: str) -> str:
    """Who the call is with, as a person reads it: the caller (and name) of an inbound call, the number dialled
    of an outbound one; the call's id only when the effect came without its context."""
    if context is None:
        return f"call {linkedid}"
    number = context.called if context.direction == "outbound" else context.caller
    name = f" ({context.caller_name})" if context.caller_name and context.direction != "outbound" else ""
    return f"{number or 'withheld'}{name}"


class JournalPrinter:
    """Prints each effect as one line; calls that end get a summary line.

    Names, numbers and queues come from the PBX (a caller sets their own display name): they are printed
    as text (:class:`rich.text.Text`, control characters escaped), only the verbs carry styles.
    """

    def __init__(self, console: Console, tz: tzinfo | None = None) -> None:
        self.console = console
        self.tz = tz
        self.ended = 0

    def __call__(self, effect: Effect) -> None:
        line: Text | None = None
        if isinstance(effect, CallRang):
            who = effect.caller or "withheld"
            name = f" ({effect.caller_name})" if effect.caller_name else ""
            via = f" via queue {effect.queue}" if effect.queue else ""
            line = _line(("ringing", "cyan"), f"   {who}{name} → agent {effect.agent}{via}")
        elif isinstance(effect, CallAnswered):
            line = _line(("answered", "green"), f"  {_party(effect.context, effect.linkedid)} by {effect.answered_by}")
        elif isinstance(effect, CallTransferred):
            line = _line(("transfer", "yellow"),
                         f"  {_party(effect.context, effect.linkedid)} → {effect.transferred_to} ({effect.kind})")
        elif isinstance(effect, CallEnded):
            self.ended += 1
            r = effect.record
            started = (iso_time(r.started_at, self.tz) or "")[11:19]
            line = _line((f"call #{self.ended:<3}", "bold"),
                         f" {started} {r.direction:<8} {r.caller or 'withheld'} → {r.called or '?'}: ")
            if r.answered:
                line.append_text(_line(("answered", "green"), f" by {r.answered_by}, talk {r.talk_seconds:.0f} s"))
            else:
                line.append_text(_line((r.outcome, "red"), f" ({r.missed_reason})"))
            if r.transferred_to:
                line.append(terminal_text(f", transferred to {r.transferred_to}"))
            if effect.missed:
                line.append(" (missed-call register)", style="red")
        if line is not None:
            self.console.print(line, highlight=False)


def _line(verb: tuple[str, str], rest: str) -> Text:
    """A styled verb, then plain text from the PBX with its control characters escaped."""
    return Text.assemble(verb, terminal_text(rest))


async def run_demo(traces: Sequence[Path], *, speed: float, store_path: Path | None, duration: float | None,
                   loop: bool, http_port: int = 8080, http_host: str = "127.0.0.1", folder: Path | None = None,
                   sample_contacts: Path | None = SAMPLE_CONTACTS) -> None:
    """Run the demo until stopped (or ``duration``, or the traces' end without ``loop``).

    ``folder`` (default: the store's folder, else ``./cti-demo``) gets the CLI's config file; ``store_path``
    (default: ``journal.sqlite`` in the folder) keeps the journal across runs. ``sample_contacts``: the CSV
    imported once into the directory (None: none).
    """
    # A journal line is one line even when piped to a file (a pipe has no width: rich would wrap at 80).
    console = Console(highlight=False, soft_wrap=True)
    folder = folder or (store_path.parent if store_path is not None else DEMO_FOLDER)
    store_path = store_path or folder / JOURNAL_NAME
    # A trace recorded while calls were already up is served first: its calls are known to a
    # client only through the resync at connect.
    loaded = sorted((load_trace(t) for t in traces), key=lambda t: not t.snapshot)
    members = read_queues_conf(traces[0].parent / "pbx-conf" / "queues.conf") if traces else []
    async with ReplayPbx(loaded, username=DEMO_USER, secret=DEMO_SECRET, speed=speed, loop=loop, redate=True,
                         live=True, queue_members=members) as pbx:
        assert pbx.live is not None
        pbx.live.unanswered.add(UNANSWERED_MASTER)
        host, port = pbx.address
        settings = demo_settings(port, store_path, http_port, http_host)
        tz = settings.pbx.tzinfo()
        console.print(_line(("CTI Companion demo", "bold"), f": replay PBX on {host}:{port} serving "
                            f"{len(traces)} recorded trace(s) at {speed:g}× speed, re-dated to now; journal in "
                            f"{store_path}; times in {settings.pbx.timezone}"))
        daemon = Daemon(settings)
        printer = JournalPrinter(console, tz)
        daemon.subscribe(printer, name="terminal")
        stop = asyncio.Event()
        install_stop_signals(stop)
        tune_threads()
        async with asyncio.TaskGroup() as tg:
            pbx.pause()  # the calls start once the panel and its logins are announced
            tg.create_task(daemon.run(stop))
            await _announce_panel(console, daemon, folder / CONFIG_NAME, sample_contacts)
            pbx.resume()
            if duration is not None:
                tg.create_task(_stop_after(stop, duration))
            if not loop:
                tg.create_task(_stop_when_done(stop, pbx, daemon))
        console.print("\n" + terminal_text(f"{printer.ended} call(s) in the journal ({store_path})."),
                      markup=False, emoji=False)


async def _announce_panel(console: Console, daemon: Daemon, config_file: Path, sample_contacts: Path | None) -> None:
    await daemon.ready.wait()
    assert daemon.store is not None and daemon.panel_server is not None
    await add_demo_logins(daemon.store)
    if sample_contacts is not None:
        try:
            added = await import_sample_contacts(daemon.store, sample_contacts, daemon.settings.pbx.default_region)
            said = f"Sample contacts from {sample_contacts}: " + (
                f"{added} imported" if added else "already in the directory")
        except FileNotFoundError:  # an install without the examples/ folder
            said = f"Sample contacts: {sample_contacts} not found, none imported"
        console.print(terminal_text(said), markup=False, emoji=False)
    url = daemon.panel_server.url
    assert daemon.panel_server.address is not None
    port = daemon.panel_server.address[1]
    settings = daemon.settings
    bound = settings.model_copy(update={"http": settings.http.model_copy(update={"port": port})})
    await asyncio.to_thread(write_demo_config, config_file, bound)
    freeze_startup_heap()
    console.print(terminal_text(f"Config file for the CLI: {config_file}   "
                                f"(cti calls --config {config_file} --since today)"), markup=False, emoji=False)
    scripts = settings.scripts
    if scripts.folder is not None:
        masters = ", ".join(f"{e.name} ({e.extension})" for e in DEMO_MASTERS)
        console.print(terminal_text(
            f"Contact script: {scripts.default} from {scripts.folder}, beside the card of every inbound call an agent "
            f"answers; masters {masters}, {LAB_AGENTS[UNANSWERED_MASTER]} never answers a transfer"),
            markup=False, emoji=False)
    console.print(f"\n[bold]Web panel:[/] {url}/   (log in as one of these)", highlight=False)
    for line in login_lines():
        console.print(f"  {line}", highlight=False, markup=False)
    console.print("Press Ctrl+C to stop.\n")


async def _stop_after(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    stop.set()


async def _stop_when_done(stop: asyncio.Event, pbx: ReplayPbx, daemon: Daemon) -> None:
    await pbx.finished.wait()
    # Let the last calls end in the model before stopping.
    for _ in range(50):
        if not daemon.book.calls:
            break
        await asyncio.sleep(0.1)
    stop.set()
