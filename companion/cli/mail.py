"""``cti mail status|test``: the e-mail outbox as it stands, and a test message sent now.

``cti mail status`` reads the store's outbox (``store/outbox.py``): how many of the latest mails are waiting, sent,
given up; each waiting mail with its tries, its next try and its last error; each given-up mail with the error it was
given up with. ``cti mail test ADDRESS`` sends one message through ``[mail]``'s server at once (not through the
outbox: nothing is queued) and prints the server's answer, or why it failed, in words (exit status 1): what an admin
runs after editing ``[mail]``, before waiting for a complaint's notification.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Annotated

import typer

from cti.records import iso_time
from cti.safe_text import terminal_text

from .app import app
from .errors import fail
from .loading import require_store, settings_from
from .options import ConfigOpt
from .storage import with_store

if TYPE_CHECKING:
    from datetime import tzinfo

    from cti.complaints import OutgoingMail

mail_app = typer.Typer(help="E-mail: the outbox's state, and a test message through [mail]'s server.",
                       no_args_is_help=True)
app.add_typer(mail_app, name="mail")

#: How many of the latest mails ``status`` reads unless told.
STATUS_LIMIT = 1000


@mail_app.command("status")
def status_command(
    config: ConfigOpt,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="read this many of the latest mails")] = STATUS_LIMIT,
) -> None:
    """The outbox: mails waiting (tries, next try, last error), sent, given up (with their errors)."""
    settings = settings_from(config)
    mail = settings.mail
    if mail.enabled:
        typer.echo(terminal_text(f"Mail server: {mail.server}, from {mail.from_name} <{mail.from_address}>"))
    else:
        typer.echo("Mail server: none ([mail] host is not set): mails wait in the outbox until one is set")
    require_store(settings)
    mails = with_store(settings, lambda store: store.list_mails(limit=limit))
    tz = settings.pbx.tzinfo()
    pending = [m for m in mails if m.sent_at is None and m.failed_at is None]
    given_up = [m for m in mails if m.failed_at is not None and m.sent_at is None]
    sent = len(mails) - len(pending) - len(given_up)
    scope = f"the latest {len(mails)}" if len(mails) >= limit else "all"
    typer.echo(f"Outbox ({scope} mails): {len(pending)} waiting, {sent} sent, {len(given_up)} given up")
    if pending:
        typer.echo("Waiting:")
        for m in reversed(pending):  # oldest first: the order they go out in
            tries = f"{_tries(m.attempts)} failed" if m.attempts else "not tried yet"
            _print(m, tz, f"{tries}; next try {_when(m.next_try_at, tz)}", m.last_error)
    if given_up:
        typer.echo("Given up:")
        for m in given_up:
            _print(m, tz, f"given up {_when(m.failed_at, tz)} after {_tries(m.attempts)}", m.last_error)


def _tries(count: int) -> str:
    return f"{count} tr{'y' if count == 1 else 'ies'}"


def _when(epoch: float | None, tz: tzinfo | None) -> str:
    return (iso_time(epoch, tz) or "")[:19].replace("T", " ")


def _print(m: OutgoingMail, tz: tzinfo | None, state: str, error: str | None) -> None:
    about = f" [{m.about}]" if m.about else ""
    typer.echo(terminal_text(f"  #{m.id} {_when(m.created_at, tz)} to {', '.join(m.to)}{about}: {m.subject}"))
    typer.echo(terminal_text(f"      {state}"))
    if error:
        typer.echo(terminal_text(f"      error: {error}"))


@mail_app.command("test")
def test_command(
    address: Annotated[str, typer.Argument(metavar="ADDRESS", help="whom to send the test message to")],
    config: ConfigOpt,
) -> None:
    """Send a test message to ADDRESS now through [mail]'s server; print the server's answer or the error."""
    from asterisk.settings import ConfigError
    from companion.mailer import MailRefused, SendFailed, send_test
    from cti.email_address import BadEmail, check_email

    settings = settings_from(config)
    mail = settings.mail
    if not mail.enabled:
        fail(f"{config}: [mail] host is not set: there is no server to send through")
    problems = mail.problems()
    if problems:
        fail("\n".join(f"{config}: {problem}" for problem in problems))
    try:
        to = check_email(address)
    except BadEmail as exc:
        fail(f"ADDRESS: {exc}")
    try:
        answer = asyncio.run(send_test(mail, to, now=time.time(), tz=settings.pbx.tzinfo()))
    except ConfigError as exc:
        fail(str(exc))
    except (SendFailed, MailRefused) as exc:
        fail(f"not sent: {exc}", 1)
    typer.echo(terminal_text(f"Sent to {to} through {mail.server}: the server answered {answer.code} "
                             f"{answer.message}"))
