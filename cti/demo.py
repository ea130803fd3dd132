"""``cti demo``: a replay PBX and the daemon on loopback, the journal filling live in the terminal.

Nothing to set up: the recorded traces of ``../shared/ami-traces`` are served by the project's own
AMI server on a free loopback port, the daemon connects to it over TCP exactly as to Asterisk, and
every call that rings, is answered or ends is printed as it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from asterisk.replay import ReplayPbx, load_trace

from .app import Daemon, install_stop_signals
from .config import AmiSettings, PbxSettings, Settings, StoreSettings
from .effects import CallAnswered, CallEnded, CallRang, CallTransferred, Effect
from .records import iso_time

DEMO_USER, DEMO_SECRET = "cti", "cti-secret"


def demo_settings(port: int, store_path: Path) -> Settings:
    """The lab PBX of the traces (the same facts as config.example.toml) on a loopback port."""
    return Settings(
        ami=AmiSettings(host="127.0.0.1", port=port, username=DEMO_USER, secret=DEMO_SECRET,
                        ping_interval=5.0, reconnect_min=0.2, reconnect_max=2.0),
        store=StoreSettings(path=store_path),
        pbx=PbxSettings(trunks=["trunk"], agent_pattern=r"1\d\d"),
    )


class JournalPrinter:
    """Prints each effect as one line; calls that end get a summary line."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.ended = 0

    def __call__(self, effect: Effect) -> None:
        c = self.console
        if isinstance(effect, CallRang):
            who = effect.caller or "withheld"
            name = f" ({effect.caller_name})" if effect.caller_name else ""
            via = f" via queue {effect.queue}" if effect.queue else ""
            c.print(f"[cyan]ringing[/]   {who}{name} → agent {effect.agent}{via}", highlight=False)
        elif isinstance(effect, CallAnswered):
            c.print(f"[green]answered[/]  {effect.linkedid} by {effect.answered_by}", highlight=False)
        elif isinstance(effect, CallTransferred):
            c.print(f"[yellow]transfer[/]  {effect.linkedid} → {effect.transferred_to} ({effect.kind})",
                    highlight=False)
        elif isinstance(effect, CallEnded):
            self.ended += 1
            r = effect.record
            if r.answered:
                verdict = f"[green]answered[/] by {r.answered_by}, talk {r.talk_seconds:.0f} s"
            else:
                verdict = f"[red]{r.outcome}[/] ({r.missed_reason})"
            started = (iso_time(r.started_at) or "")[11:19]
            c.print(f"[bold]call #{self.ended:<3}[/] {started} {r.direction:<8} {r.caller or 'withheld'} → "
                    f"{r.called or '?'}: {verdict}"
                    + (f", transferred to {r.transferred_to}" if r.transferred_to else "")
                    + (" [red](missed-call register)[/]" if effect.missed else ""), highlight=False)


async def run_demo(traces: Sequence[Path], *, speed: float, store_path: Path | None, duration: float | None,
                   loop: bool) -> None:
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
            settings = demo_settings(port, store_path)
            console.print(f"[bold]CTI Companion demo[/]: replay PBX on {host}:{port} serving {len(traces)} "
                          f"recorded trace(s) at {speed:g}× speed; journal in {store_path}")
            console.print("Press Ctrl+C to stop.\n")
            daemon = Daemon(settings)
            printer = JournalPrinter(console)
            daemon.subscribe(printer)
            stop = asyncio.Event()
            install_stop_signals(stop)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(daemon.run(stop))
                if duration is not None:
                    tg.create_task(_stop_after(stop, duration))
                if not loop:
                    tg.create_task(_stop_when_done(stop, pbx, daemon))
            console.print(f"\n{printer.ended} call(s) in the journal ({store_path}).", markup=False)


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
