"""``cti recordings purge|deleted``: the retention by hand, and its log.

``cti recordings purge`` deletes the audio of the calls older than ``[recording] keep_days`` now, as the daemon does
once a day (``companion/retention.py``: the same code, under the same lease, so it never runs beside the daemon's
own run); ``--dry-run`` lists what would go and deletes nothing. ``cti recordings deleted`` prints the deletion log:
every file the retention deleted (or found already gone), when, of which call.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from cti.records import iso_time
from cti.safe_text import terminal_text

from .app import app
from .errors import fail
from .loading import require_store, settings_from
from .options import ConfigOpt, SinceOpt
from .storage import with_store
from .when import parse_when

if TYPE_CHECKING:
    from companion.config import Settings
    from companion.retention import Purged
    from store.repository import Store

recordings_app = typer.Typer(help="Call recordings: the retention by hand, and the log of deleted audio.",
                             no_args_is_help=True)
app.add_typer(recordings_app, name="recordings")

#: Entries ``deleted`` prints at most unless told.
DELETED_LIMIT = 500


@recordings_app.command("purge")
def purge_command(
    config: ConfigOpt,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be deleted; delete nothing")] = False,
) -> None:
    """Delete the audio of calls older than [recording] keep_days (journal rows and transcripts stay)."""
    settings = settings_from(config)
    if settings.recording.keep_days is None:
        fail(f"{config}: [recording] keep_days is not set: every recording is kept (set it to purge)")
    require_store(settings)
    done = with_store(settings, lambda store: _purge(store, settings, dry_run))
    for p in done:
        where = str(p.path) if p.path is not None else p.name
        detail = f": {p.detail}" if p.detail else ""
        typer.echo(terminal_text(f"{p.outcome}: {where} (call {p.linkedid}, PBX {p.pbx}){detail}"))
    counts = {o: sum(1 for p in done if p.outcome == o) for o in ("deleted", "already gone", "would delete",
                                                                  "refused", "failed")}
    typer.echo(f"{'Would delete' if dry_run else 'Deleted'} {counts['would delete' if dry_run else 'deleted']} "
               f"file(s); {counts['already gone']} already gone; {counts['refused'] + counts['failed']} refused or "
               f"failed (calls older than {settings.recording.keep_days} days)")
    if counts["failed"] or counts["refused"]:
        raise typer.Exit(1)


async def _purge(store: Store, settings: Settings, dry_run: bool) -> list[Purged]:
    from companion.retention import LEASE, purge

    lease = await store.try_lease(LEASE)
    if lease is None:
        fail("the retention is running now (the daemon's daily run, or another purge): try again in a while", 1)
    try:
        return await purge(store, settings.recording, time.time(), dry_run=dry_run)
    finally:
        await lease.release()


@recordings_app.command("deleted")
def deleted_command(
    config: ConfigOpt,
    since: SinceOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="print at most this many entries, newest first")] = DELETED_LIMIT,
) -> None:
    """The log of the recordings the retention deleted (newest first)."""
    settings = settings_from(config)
    start = parse_when(since, settings)
    require_store(settings)
    entries = with_store(settings, lambda store: store.deleted_audio(since=start, limit=limit))
    tz = settings.pbx.tzinfo()
    for d in entries:
        typer.echo(terminal_text(f"{iso_time(d.at, tz)}  {d.pbx}  {d.linkedid}  {d.name}  {d.reason}"))
    if not entries:
        typer.echo("No recording deleted" + (" since then" if since else ""))
