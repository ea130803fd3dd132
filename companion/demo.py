"""``cti demo``: a replay PBX, the daemon and the web panel on loopback; nothing to set up.

The recorded traces of ``../shared/ami-traces`` are served by the project's own AMI server on a free
loopback port, the daemon connects to it over TCP exactly as to Asterisk, the panel listens on
``--http-port`` with demo logins (printed at start), and every call that rings, is answered or ends is
printed as it happens. The traces loop with fresh call ids, so the board stays alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.text import Text

from asterisk.replay import ReplayPbx, load_trace
from companion.daemon import Daemon, freeze_startup_heap, install_stop_signals
from companion.threads import tune_threads
from cti.effects import CallAnswered, CallContext, CallEnded, CallRang, CallTransferred, Effect
from cti.records import iso_time
from cti.safe_text import terminal_text
from store.repository import Store, User, UserExists

from .config import AmiSettings, HttpSettings, PbxSettings, Settings, StoreSettings

DEMO_USER, DEMO_SECRET = "cti", "cti-secret"
#: The panel's demo logins: name → (password, role, extension). The lab PBX's agents are 101..106.
DEMO_LOGINS: dict[str, tuple[str, str, str | None]] = {
    "anna": ("demo-101", "agent", "101"),
    "oleg": ("demo-102", "agent", "102"),
    "maria": ("demo-103", "agent", "103"),
    "dmitry": ("demo-104", "agent", "104"),
    "elena": ("demo-105", "agent", "105"),
    "admin": ("demo-admin", "admin", None),
    "qa": ("demo-qa", "qa", None),
}
LAB_AGENTS = {"101": "Анна Смирнова", "102": "Олег Петров", "103": "Мария Кузнецова", "104": "Дмитрий Соколов",
              "105": "Елена Попова", "106": "Supervisor Smith"}


def demo_settings(port: int, store_path: Path, http_port: int = 8080, http_host: str = "127.0.0.1") -> Settings:
    """The lab PBX of the traces (the same facts as config.example.toml) on a loopback port."""
    return Settings(
        ami=AmiSettings(host="127.0.0.1", port=port, username=DEMO_USER, secret=DEMO_SECRET,
                        ping_interval=5.0, reconnect_min=0.2, reconnect_max=2.0),
        store=StoreSettings(path=store_path),
        pbx=PbxSettings(trunks=["trunk"], agent_pattern=r"1\d\d", agents=LAB_AGENTS,
                        queues=["support", "support-linear", "support-rr", "sales"], timezone="Europe/Moscow"),
        http=HttpSettings(host=http_host, port=http_port),
    )


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

    def __init__(self, console: Console) -> None:
        self.console = console
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
            started = (iso_time(r.started_at) or "")[11:19]
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
                   loop: bool, http_port: int = 8080, http_host: str = "127.0.0.1") -> None:
    console = Console(highlight=False)
    with contextlib.ExitStack() as stack:
        if store_path is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="cti-demo-"))
            store_path = Path(tmp) / "demo.sqlite"
        # A trace recorded while calls were already up is served first: its calls are known to a
        # client only through the resync at connect.
        loaded = sorted((load_trace(t) for t in traces), key=lambda t: not t.snapshot)
        async with ReplayPbx(loaded, username=DEMO_USER, secret=DEMO_SECRET, speed=speed, loop=loop,
                             rebase_time=False) as pbx:
            host, port = pbx.address
            settings = demo_settings(port, store_path, http_port, http_host)
            console.print(_line(("CTI Companion demo", "bold"), f": replay PBX on {host}:{port} serving "
                                f"{len(traces)} recorded trace(s) at {speed:g}× speed; journal in {store_path}"))
            daemon = Daemon(settings)
            printer = JournalPrinter(console)
            daemon.subscribe(printer, name="terminal")
            stop = asyncio.Event()
            install_stop_signals(stop)
            tune_threads()
            async with asyncio.TaskGroup() as tg:
                pbx.pause()  # the calls start once the panel and its logins are announced
                tg.create_task(daemon.run(stop))
                await _announce_panel(console, daemon)
                pbx.resume()
                if duration is not None:
                    tg.create_task(_stop_after(stop, duration))
                if not loop:
                    tg.create_task(_stop_when_done(stop, pbx, daemon))
            console.print("\n" + terminal_text(f"{printer.ended} call(s) in the journal ({store_path})."),
                          markup=False, emoji=False)


async def _announce_panel(console: Console, daemon: Daemon) -> None:
    await daemon.ready.wait()
    assert daemon.store is not None and daemon.panel_server is not None
    await add_demo_logins(daemon.store)
    freeze_startup_heap()
    console.print(f"\n[bold]Web panel:[/] {daemon.panel_server.url}/   (log in as one of these)", highlight=False)
    for name, (password, role, ext) in DEMO_LOGINS.items():
        what = f"agent {ext} ({LAB_AGENTS[ext]})" if ext else role
        console.print(f"  {name:<7} / {password:<11} {what}", highlight=False, markup=False)
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
