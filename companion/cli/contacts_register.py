"""``cti contacts register``: the contact register, filtered, as a table, JSON or CSV.

The same query code as the panel's ``GET /api/contacts/register`` (``Store.iter_registered_contacts`` with a
``cti.contacts_register.ContactFilter``) and the same rows (``register_row``; CSV: ``write_register_csv``, as the
panel's export: ``;``-separated, formulas neutralised, UTF-8 or cp1251 for 1C and Excel), streamed a page at a time,
oldest first.
"""

from __future__ import annotations

import io
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from companion.output import Format, stream

from .app import contacts_app
from .errors import fail
from .loading import pbx_filter, require_store, settings_from
from .options import MAX_ID, ConfigOpt, FormatOpt, PbxOpt, SinceOpt, UntilOpt
from .storage import with_store
from .when import time_range

if TYPE_CHECKING:
    from store.repository import Store

#: Contacts read per page.
PAGE = 500


@contacts_app.command("register")
def contacts_register(
    config: ConfigOpt,
    fmt: FormatOpt = Format.table,
    since: SinceOpt = None,
    until: UntilOpt = None,
    stage: Annotated[str | None, typer.Option(help="request, booking or visit: contacts with that flag")] = None,
    reason: Annotated[str | None, typer.Option(help="the script's reason (directions, repair_private, ...)")] = None,
    channel: Annotated[str | None, typer.Option(help="phone, visit, internet, mobile or invitation")] = None,
    client_type: Annotated[str | None, typer.Option(help="private, corporate, partner or employee")] = None,
    agent: Annotated[str | None, typer.Option(help="the agent's extension")] = None,
    employee: Annotated[str | None, typer.Option(help="the id of the employee the call was passed to")] = None,
    pbx: PbxOpt = None,
    limit: Annotated[int | None, typer.Option(min=1, max=MAX_ID, help="at most this many contacts")] = None,
    encoding: Annotated[str, typer.Option(help="CSV: utf-8 or cp1251 (old 1C and Excel)")] = "utf-8",
) -> None:
    """The contact register (contacts the inbound-contact script registered), oldest first."""
    from cti.contacts_register import TABLE_COLUMNS, ContactFilter, register_row, write_register_csv
    from cti.directory import CONTACT_KINDS
    from cti.scripts.model import CHANNELS, STAGES

    settings = settings_from(config)
    pbxs = pbx_filter(settings, pbx)
    for name, value, known in (("--stage", stage, STAGES), ("--channel", channel, CHANNELS),
                               ("--client-type", client_type, CONTACT_KINDS)):
        if value is not None and value not in known:
            fail(f"{name} must be {', '.join(known)}, not {value!r}")
    if encoding not in ("utf-8", "cp1251"):
        fail(f"--encoding must be utf-8 or cp1251, not {encoding!r}")
    start, end = time_range(since, until, settings)
    require_store(settings)
    where = ContactFilter(since=start, until=end, stage=stage, reason=reason, channel=channel,  # type: ignore[arg-type]
                          client_kind=client_type, agent=agent, employee=employee,  # type: ignore[arg-type]
                          pbxs=tuple(pbxs) if pbxs is not None else None)
    tz = settings.pbx.tzinfo()

    async def query(store: Store) -> int:
        from store.reason_titles import TITLES  # reasons by their script version's titles, as the API's rows

        contacts = store.iter_registered_contacts(where, limit=limit, page_size=PAGE)
        if fmt is not Format.csv:
            return await stream((register_row(c, tz, await TITLES.of_contact(store, c)) async for c in contacts), fmt,
                                TABLE_COLUMNS, "Contact register")
        out = io.TextIOWrapper(sys.stdout.buffer, encoding=encoding, errors="replace", newline="")
        write_register_csv([], out)
        count = 0
        page = []
        async for contact in contacts:
            page.append(register_row(contact, tz, await TITLES.of_contact(store, contact)))
            if len(page) >= PAGE:
                count += write_register_csv(page, out, header=False)
                page = []
        count += write_register_csv(page, out, header=False)
        out.flush()
        out.detach()
        return count

    try:
        with_store(settings, query)
    except BrokenPipeError:
        raise
    except OSError as exc:
        fail(f"cannot write the listing: {exc.strerror or exc}", 1)
