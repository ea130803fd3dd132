"""``cti missed close|reopen|show``: the missed-call register's call-back workflow by hand."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from companion.output import MISSED_COLUMNS, Format, emit
from cti.safe_text import terminal_text

from .app import missed_app
from .errors import fail
from .loading import config_path, require_store, settings_from
from .options import FormatOpt, IdArg, SubConfigOpt
from .storage import with_store

if TYPE_CHECKING:
    from store.repository import Store

#: Who closes or reopens an entry when ``--by`` is not given: the login running the command.
DEFAULT_BY = os.environ.get("USER", "admin")
HISTORY_COLUMNS = (("at", "At"), ("action", "Action"), ("by", "By"), ("linkedid", "Call"), ("comment", "Comment"))


def _missed_action(ctx: typer.Context, config: Path | None, entry_id: int, comment: str, by: str,
                   reopen: bool) -> None:
    settings = settings_from(config_path(ctx, config))
    require_store(settings)
    if not comment.strip():
        fail("--comment must say what was done (e.g. 'called back, booked a visit')")

    async def act(store: Store) -> dict[str, object]:
        if reopen:
            entry = await store.reopen_missed(entry_id, comment, by=by)
        else:
            entry = await store.close_missed(entry_id, comment, by=by)
        return entry.to_json(settings.pbx.tzinfo())

    row = with_store(settings, act)
    typer.echo(terminal_text(f"missed call #{entry_id} ({row['caller'] or 'withheld'}) is now {row['status']}"))


@missed_app.command("close")
def missed_close(ctx: typer.Context, entry_id: IdArg,
                 comment: Annotated[str, typer.Option(help="what was done")], config: SubConfigOpt = None,
                 by: Annotated[str, typer.Option(help="who closes it")] = DEFAULT_BY) -> None:
    """Close an entry by hand, with a comment (it is kept in the entry's history)."""
    _missed_action(ctx, config, entry_id, comment, by, reopen=False)


@missed_app.command("reopen")
def missed_reopen(ctx: typer.Context, entry_id: IdArg,
                  comment: Annotated[str, typer.Option(help="why")], config: SubConfigOpt = None,
                  by: Annotated[str, typer.Option(help="who reopens it")] = DEFAULT_BY) -> None:
    """Reopen a closed entry (the customer still waits for a call)."""
    _missed_action(ctx, config, entry_id, comment, by, reopen=True)


@missed_app.command("show")
def missed_show(ctx: typer.Context, entry_id: IdArg,
                fmt: FormatOpt = Format.table, config: SubConfigOpt = None) -> None:
    """One entry and its call-back history."""
    settings = settings_from(config_path(ctx, config))
    require_store(settings)
    tz = settings.pbx.tzinfo()

    async def query(store: Store) -> tuple[dict[str, object], list[dict[str, object]]]:
        from cti.records import iso_time

        entry = await store.get_missed(entry_id)
        history = await store.missed_history(entry_id)
        return entry.to_json(tz), [
            {"at": iso_time(h.at, tz), "action": h.action, "by": h.by, "linkedid": h.linkedid, "comment": h.comment}
            for h in history
        ]

    entry, history = with_store(settings, query)
    if fmt is Format.json:
        emit([{**entry, "history": history}], fmt, MISSED_COLUMNS, "")
        return
    emit([entry], fmt, MISSED_COLUMNS, f"Missed call #{entry_id}")
    emit(history, fmt, HISTORY_COLUMNS, "History")
