"""``cti calls``, ``cti agent-misses`` and ``cti missed``: the journal and the register, printed as they are read.

A site keeps years of calls: a listing is read from the store a page at a time (the store's ``iter_*``) and each
row is printed as it comes (:func:`companion.output.stream`; ``cti calls`` a page at a time,
:func:`companion.call_rows.print_calls`), so ``--since 30d --format json`` holds a page, not a month.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from companion.call_rows import print_calls
from companion.config import Settings
from companion.output import AGENT_MISS_COLUMNS, MISSED_COLUMNS, Format, stream

from .app import app, missed_app
from .errors import fail
from .loading import config_path, pbx_filter, require_store, settings_from
from .options import MAX_ID, ConfigOpt, FormatOpt, PbxOpt, SinceOpt, SubConfigOpt, UntilOpt
from .storage import with_store
from .when import time_range

if TYPE_CHECKING:
    from store.repository import Store

#: Calls read per page of ``cti calls``: each page's text is written in one piece (``companion.call_rows``), and
#: the next page is read while this one is printed; two pages of a month's JSON are about 2 MB.
CALL_PAGE = 1000


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
    pbx: PbxOpt = None,
) -> None:
    """The call journal, oldest first."""
    settings = settings_from(config)
    pbxs = pbx_filter(settings, pbx)
    if direction not in (None, "inbound", "outbound", "internal"):
        fail(f"--direction must be inbound, outbound or internal, not {direction!r}")
    if outcome not in (None, "answered", "missed", "failed"):
        fail(f"--outcome must be answered, missed or failed, not {outcome!r}")
    start, end = time_range(since, until, settings)
    require_store(settings)
    tz = settings.pbx.tzinfo()

    async def query(store: Store) -> int:
        def pages(fields: Sequence[str] | None) -> AsyncIterator[Sequence[tuple[Any, ...]]]:
            return store.iter_call_pages(since=start, until=end, number=number, agent=agent, direction=direction,
                                         outcome=outcome, limit=limit, page_size=CALL_PAGE, fields=fields,
                                         stored=True, pbxs=pbxs)

        return await print_calls(pages, fmt, tz)

    _print_listing(settings, query)


@app.command("agent-misses")
def agent_misses(config: ConfigOpt, fmt: FormatOpt = Format.table, since: SinceOpt = None, until: UntilOpt = None,
                 agent: Annotated[str | None, typer.Option(help="only this agent's extension")] = None,
                 pbx: PbxOpt = None) -> None:
    """Per agent: calls that rang an agent's phone and that the agent did not answer."""
    settings = settings_from(config)
    pbxs = pbx_filter(settings, pbx)
    start, end = time_range(since, until, settings)
    require_store(settings)
    tz = settings.pbx.tzinfo()

    async def query(store: Store) -> int:
        rows = (r.to_json(tz) async for r in store.iter_agent_misses(agent=agent, since=start, until=end,
                                                                          pbxs=pbxs))
        return await stream(rows, fmt, AGENT_MISS_COLUMNS, "Missed by agent")

    _print_listing(settings, query)


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
    pbx: PbxOpt = None,
) -> None:
    """The missed-call register (open entries by default). Subcommands: close, reopen, show."""
    ctx.obj = config
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_from(config_path(ctx, None))
    pbxs = pbx_filter(settings, pbx)
    if status not in ("open", "closed", "all"):
        fail(f"--status must be open, closed or all, not {status!r}")
    start, end = time_range(since, until, settings)
    require_store(settings)
    tz = settings.pbx.tzinfo()

    async def query(store: Store) -> int:
        entries = store.iter_missed(status=None if status == "all" else status, since=start, until=end,
                                    number=number, pbxs=pbxs)
        rows = (e.to_json(tz) async for e in entries if all_reasons or e.reason != "short_abandon")
        return await stream(rows, fmt, MISSED_COLUMNS, f"Missed calls ({status})")

    _print_listing(settings, query)


def _print_listing(settings: Settings, query: Callable[[Store], Awaitable[int]]) -> None:
    """Run a listing; an output that cannot be written (a full disk) is one line, not a traceback.

    A closed pipe (``cti calls | head``) is left to click, which ends the command quietly as ``cat`` would.
    """
    try:
        with_store(settings, query)
    except BrokenPipeError:
        raise
    except OSError as exc:
        fail(f"cannot write the listing: {exc.strerror or exc}", 1)
