"""``cti crm status|retry|amocrm-code``: the CRM push's outbox as it stands, given-up requests put back, amoCRM
signed in.

``cti crm status`` reads the store's CRM outbox (``store.repository.CrmOutbox``, the figures ``GET /api/health`` and
the admin's panel show: ``ui_bridge/crm_watch.py``): per CRM, how many requests wait, how many were given up, how
many were sent, how long the oldest waiting one has waited (the lag) and the last error. ``--failed`` lists the
given-up requests instead (the call, the request, when, the error), newest first. Both as a table, JSON or CSV.

``cti crm retry ID`` queues a given-up request again, due now, with its call's later requests given up after it (a
Bitrix24 ``finish`` given up for want of the ``CALL_ID`` of a ``register`` that was given up goes again after it);
``--all-failed`` every given-up request (of ``--crm``). A running daemon sends them at its sender's next look.

``cti crm amocrm-code CODE`` signs amoCRM in with OAuth (``[crm.amocrm] client_id``...): the authorization code an
admin copies from the integration is exchanged for the token pair, kept in the store over any pair kept before
(``companion/crm/amocrm_auth.py``); a running daemon uses it at its next request. Run again whenever amoCRM refused to
refresh the pair (``cti crm status`` says so).
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from companion.output import Format
from cti.crm import CRM_NAMES, CrmItem, CrmName
from cti.records import iso_time
from cti.safe_text import terminal_text

from .app import app
from .errors import fail
from .loading import require_store, settings_from
from .options import ConfigOpt, FormatOpt
from .storage import with_store

if TYPE_CHECKING:
    from datetime import tzinfo

    from store.repository import Store
    from ui_bridge.api_models import CrmHealth

crm_app = typer.Typer(help="The CRM push: each CRM's outbox, the requests given up, putting them back.",
                      no_args_is_help=True)
app.add_typer(crm_app, name="crm")



class CrmChoice(StrEnum):
    """``--crm``: the CRMs of ``cti.crm.CRM_NAMES``."""

    bitrix24 = "bitrix24"
    amocrm = "amocrm"
    zammad = "zammad"
    onec = "onec"
    webhook = "webhook"


CrmOpt = Annotated[CrmChoice | None, typer.Option("--crm", help=f"only this CRM: {', '.join(CRM_NAMES)}")]

STATUS_COLUMNS = (("crm", "CRM"), ("pending", "Waiting"), ("failed", "Given up"), ("sent", "Sent"),
                  ("lag_seconds", "Lag s"), ("last_error", "Last error"))
FAILED_COLUMNS = (("id", "#"), ("crm", "CRM"), ("call", "Call"), ("seq", "Seq"), ("kind", "Request"),
                  ("failed_at", "Given up at"), ("attempts", "Tries"), ("error", "Error"))
#: How many given-up requests ``--failed`` lists unless told.
FAILED_LIMIT = 200


@crm_app.command("status")
def status_command(
    config: ConfigOpt,
    failed: Annotated[bool, typer.Option("--failed", help="list the given-up requests (call, request, when, "
                                                          "error) instead")] = False,
    crm: CrmOpt = None,
    fmt: FormatOpt = Format.table,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="--failed: list this many of the newest")]
    = FAILED_LIMIT,
) -> None:
    """Per CRM: requests waiting, given up, sent, the lag (the oldest waiting one's age), the last error."""
    from companion.output import emit
    from ui_bridge.crm_watch import CrmWatch

    settings = settings_from(config)
    enabled = settings.crm.enabled
    require_store(settings)
    only = _crm_name(crm)
    tz = settings.pbx.tzinfo()
    if failed:
        async def given_up(store: Store) -> list[CrmItem]:
            return await CrmWatch(enabled, lambda: store).given_up(only, limit)

        items = with_store(settings, given_up)
        if fmt == Format.table and not items:
            typer.echo("No CRM request is given up.")
            return
        emit((_failed_row(item, tz) for item in items), fmt, FAILED_COLUMNS, "CRM requests given up")
        return

    async def read(store: Store) -> list[CrmHealth]:
        return await CrmWatch(enabled, lambda: store).read()

    rows = [health for health in with_store(settings, read) if only is None or health.crm == only]
    if fmt == Format.table:
        if not enabled:
            typer.echo("No CRM is configured ([crm.<name>] sections): nothing is pushed.")
        if not rows:
            return
    emit((_status_row(health) for health in rows), fmt, STATUS_COLUMNS, "CRM push")
    if fmt == Format.table and any(health.failed for health in rows):
        typer.echo("Given-up requests: cti crm status --failed; put one back: cti crm retry ID")


def _status_row(health: CrmHealth) -> dict[str, Any]:
    row = health.model_dump()
    row.pop("retried")  # this daemon's count since its start: not the store's to know (GET /api/health has it)
    if not health.configured:
        row["crm"] = f"{health.crm} (not configured)"
    return row


def _failed_row(item: CrmItem, tz: tzinfo | None) -> dict[str, Any]:
    return {"id": item.id, "crm": item.crm, "call": item.call, "seq": item.seq, "kind": item.kind,
            "created_at": iso_time(item.created_at, tz), "failed_at": iso_time(item.failed_at, tz),
            "attempts": item.attempts, "error": item.last_error}


@crm_app.command("retry")
def retry_command(
    config: ConfigOpt,
    item_id: Annotated[int | None, typer.Argument(metavar="[ID]", min=1, max=2**63 - 1,
                                                  help="the given-up request (cti crm status --failed)")] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="every given-up request (of --crm)")] = False,
    crm: CrmOpt = None,
) -> None:
    """Queue a given-up request again, due now, with its call's later requests given up after it."""
    from store.repository import CrmItemNotFound
    from ui_bridge.crm_watch import CrmWatch

    if (item_id is None) == (not all_failed) or (crm is not None and not all_failed):
        fail("give the request's ID, or --all-failed (with --crm to keep to one CRM)")
    settings = settings_from(config)
    require_store(settings)
    now = time.time()

    async def put_back(store: Store) -> list[CrmItem]:
        watch = CrmWatch(settings.crm.enabled, lambda: store, clock=lambda: now)
        if item_id is not None:
            try:
                return await watch.retry(item_id)
            except CrmItemNotFound:
                fail(f"no CRM request #{item_id} (cti crm status --failed lists the given-up ones)", 1)
        return await watch.retry_all(_crm_name(crm))

    items = with_store(settings, put_back)
    if item_id is not None and items[0].state == "sent":
        fail(f"CRM request #{item_id} was sent: nothing to put back", 1)
    if not items:
        typer.echo("No CRM request is given up: nothing to put back.")
        return
    for item in items:
        typer.echo(terminal_text(f"Queued again: #{item.id} {item.crm} {item.kind} of call {item.call} "
                                 f"(request {item.seq} of the call)"))


@crm_app.command("amocrm-code")
def amocrm_code_command(
    config: ConfigOpt,
    code: Annotated[str, typer.Argument(help="the authorization code from the amoCRM integration's «Ключи и "
                                              "доступы» (it lasts 20 minutes and works once)")],
) -> None:
    """Sign amoCRM in with OAuth: exchange an authorization code for the token pair, kept in the store."""
    import httpx

    from companion.crm.amocrm_auth import AmoCrmTokens, CodeRefused, token_url

    settings = settings_from(config)
    amocrm = settings.crm.amocrm
    if amocrm is None or not amocrm.oauth or amocrm.base_url is None:
        fail("[crm.amocrm] needs base_url and OAuth (client_id, client_secret or client_secret_env, redirect_uri) "
             "for a code: see docs/crm.md, amoCRM / Kommo")
    if problems := amocrm.problems():
        fail(f"[crm.amocrm] {problems[0]}")
    tz = settings.pbx.tzinfo()

    async def sign_in(store: Store) -> float:
        async with httpx.AsyncClient() as http:
            tokens = AmoCrmTokens(amocrm, store=lambda: store, http=http, clock=time.time)
            try:
                record = await tokens.sign_in(code.strip())
            except CodeRefused as exc:
                fail(str(exc), 1)
            except httpx.HTTPError as exc:
                fail(f"cannot reach amoCRM at {token_url(amocrm)} ({type(exc).__name__}: {exc or 'no details'})", 1)
        return float(record["expires_at"])

    expires_at = with_store(settings, sign_in)
    typer.echo(f"amoCRM signed in: the token pair is kept in the store (the access token until "
               f"{iso_time(expires_at, tz)}, renewed by the daemon as it runs out). A running daemon uses it "
               "at its next request.")


def _crm_name(choice: CrmChoice | None) -> CrmName | None:
    return next(name for name in CRM_NAMES if name == choice.value) if choice is not None else None
