"""The mailer: sends the store's durable e-mail outbox over SMTP (issue 15, ``docs/complaints.md``).

Why an outbox and a task of its own: a complaint's change writes its e-mails in the same transaction
(``store/outbox.py``), so a notification is never lost with a down SMTP server or a restart, and nothing on the
event loop ever waits for a mail server. This task, in the daemon's TaskGroup when ``[mail] host`` is set, takes the
due mails one at a time and sends each:

* **Taken with a lease** (``Outbox.take_mail``): its next try moves to the lease's end, so another node (several
  daemons on one PostgreSQL store) never sends it meanwhile, and a daemon that dies mid-send leaves it to be taken
  again when the lease runs out.
* **Written by the stdlib** ``email`` **package** (:func:`build_message`): UTF-8, the Russian subject and names
  encoded (RFC 2047), a 7-bit body (base64 or quoted-printable) any server takes, ``Date:`` the time it was queued
  and ``Message-ID:`` made of the outbox id and that time (:func:`message_id`): the one risk of an outbox is a crash
  between the server's "250" and "sent" being stored, after which the mail goes again, and then it is the same
  message, byte for byte, which a mail server or a reader's client recognises as a duplicate. A mail that could
  inject a header (a line break in its subject, a recipient that is not one address) is refused and given up at
  once, whatever wrote it into the store.
* **Sent with aiosmtplib** (:func:`smtp_send`): STARTTLS required (or TLS from the start, or nothing for a local
  relay, ``[mail] security``), the server's certificate checked, a login when one is set, every step within
  ``[mail] timeout`` and the whole try within :data:`ATTEMPT_STEPS` of them.
* **Marked** ``sent``, or **failed** with the server's answer in words (:func:`describe`) and the next try after a
  growing wait (:func:`retry_at`); once the mail is ``[mail] give_up_hours`` old it is given up, its last error kept
  for ``cti mail status`` and logged. A permanent refusal (5xx) is retried the same way: it is most often the
  server's configuration (a relay not allowed, a wrong password) that an admin puts right within the hours.
* **Woken** at once when a change on this node queues a mail (:attr:`Mailer.wakeup`, the ``asyncio.Event`` the
  complaints' desk sets: ``Daemon.mail_queued``), else it looks every ``[mail] poll_seconds``: retries that came due,
  mails another node queued.
* **Stopped cleanly** (:meth:`Mailer.stop`): the mail being sent is finished (and marked) before the task returns.

Time comes from ``clock`` (the tests move it; the waits between looks are the event loop's own).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Literal, TypeVar

import aiosmtplib

from cti.complaints import OutgoingMail
from cti.email_address import BadEmail, check_email
from ui_bridge.mail_settings import MailSettings

if TYPE_CHECKING:
    from store.repository import Store

log = logging.getLogger(__name__)

#: How a mail is written: CRLF lines, and 7-bit only (headers RFC 2047-encoded, the body base64 or quoted-printable),
#: so a server without 8BITMIME or SMTPUTF8 takes it as it is.
POLICY = SMTP.clone(cte_type="7bit")
#: A whole try (connect, TLS, login, the mail) is cut after this many ``[mail] timeout``s, each step within one.
ATTEMPT_STEPS = 4
#: The lease outlasts a whole try by this much (seconds): the mail is not taken by another node while it is sent.
LEASE_MARGIN_SECONDS = 60.0
#: After the store failed (a locked database, PostgreSQL away) the mailer waits this long, doubled up to the last.
STORE_RETRY_FIRST = 1.0
STORE_RETRY_MAX = 30.0
#: The exponent of the back-off stops growing here (the wait is capped by ``retry_max_seconds`` long before).
_MAX_EXPONENT = 64

Outcome = Literal["sent", "retry", "given_up"]
E = TypeVar("E", bound=BaseException)


class MailRefused(ValueError):
    """The mail cannot be written without letting its text into the headers: it is given up at once, unsent."""


class SendFailed(Exception):
    """A try failed; the text says why in words (the server, its answer, or what went wrong on the way)."""

    def __init__(self, text: str, code: int | None = None) -> None:
        super().__init__(text)
        #: The server's SMTP code when it answered with a refusal (4xx, 5xx), else None.
        self.code = code


@dataclass(frozen=True, slots=True)
class SmtpAnswer:
    """What the server said to a mail it took: its code and text, and the recipients it refused among others."""

    code: int
    message: str
    refused: dict[str, str]


@dataclass(frozen=True, slots=True)
class MailResult:
    """What came of one try (logs, ``on_result`` in tests)."""

    mail: OutgoingMail
    outcome: Outcome
    error: str | None = None
    next_try_at: float | None = None
    answer: SmtpAnswer | None = None


# -- the message ---------------------------------------------------------------------------------------------------


def _one_line(text: str, what: str) -> str:
    """``text`` when it is a header's one line; ``MailRefused`` naming ``what`` otherwise. Python's ``email``
    splits headers at more than CR and LF (``str.splitlines``: VT, FF, NEL, U+2028, …), so every one of those is a
    line break here too."""
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in text) or len(text.splitlines()) > 1:
        raise MailRefused(f"the {what} has a line break or a control character: refused (it would add a header)")
    return text


def ascii_address(address: str) -> str:
    """``address`` checked (``cti.email_address``; ``MailRefused``) with its domain in IDNA form (``почта.рф`` →
    ``xn--80a1acny.xn--p1ai``): what ``RCPT TO`` and the headers carry without SMTPUTF8."""
    try:
        checked = check_email(address)
    except BadEmail as exc:
        raise MailRefused(f"recipient refused: {exc}") from None
    local, domain = checked.split("@")
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def message_id(mail: OutgoingMail, from_address: str) -> str:
    """The ``Message-ID`` of outbox mail ``mail``: the same on every try of it, and another for any other mail (the
    id with the time it was queued: a store made anew numbers its mails from 1 again)."""
    domain = ascii_address(from_address).split("@")[1]
    return f"<cti-outbox-{mail.id}-{round(mail.created_at * 1000)}@{domain}>"


def build_message(mail: OutgoingMail, settings: MailSettings, *, tz: tzinfo | None = None,
                  msgid: str | None = None) -> EmailMessage:
    """The message for ``mail``, from ``[mail] from_name <from_address>``; ``MailRefused`` when it cannot be written
    safely. ``Date:`` is when it was queued, in ``tz`` (the site's zone; UTC without one); ``msgid`` replaces the
    outbox's own (``cti mail test``)."""
    if settings.from_address is None:
        raise MailRefused("[mail] from_address is not set")
    if not mail.to:
        raise MailRefused("the mail has no recipient")
    sender = ascii_address(settings.from_address)
    message = EmailMessage(policy=POLICY)
    message["From"] = Address(display_name=_one_line(settings.from_name, "sender's name"), addr_spec=sender)
    message["To"] = [Address(addr_spec=ascii_address(a)) for a in mail.to]
    message["Subject"] = _one_line(mail.subject, "subject")
    message["Date"] = format_datetime(datetime.fromtimestamp(mail.created_at, tz or UTC))
    message["Message-ID"] = msgid or message_id(mail, sender)
    # RFC 3834: a notification a program sent; an out-of-office reply does not answer it.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.body, charset="utf-8")
    return message


def retry_at(mail: OutgoingMail, now: float, settings: MailSettings) -> float | None:
    """When a mail whose try failed ``now`` is tried again, or None: given up (it is ``give_up_hours`` old).

    ``mail.attempts`` is the tries before this one: the waits are ``retry_first_seconds`` × ``retry_factor`` to the
    power of it, up to ``retry_max_seconds``; the last try is at the give-up time itself."""
    deadline = mail.created_at + settings.give_up_hours * 3600
    if now >= deadline:
        return None
    wait = settings.retry_first_seconds * settings.retry_factor ** min(mail.attempts, _MAX_EXPONENT)
    return min(now + min(wait, settings.retry_max_seconds), deadline)


# -- the send ------------------------------------------------------------------------------------------------------


def tls_context(settings: MailSettings) -> ssl.SSLContext | None:
    """The TLS context of every send (made once: it reads the system's CA files): the server's certificate and name
    checked against the system's CAs and ``[mail] ca_file``'s. None for ``security = "none"``."""
    if settings.security == "none":
        return None
    context = ssl.create_default_context()
    if settings.ca_file is not None:
        context.load_verify_locations(cafile=str(settings.ca_file))
    return context


def attempt_seconds(settings: MailSettings) -> float:
    """The longest one try may take."""
    return settings.timeout * ATTEMPT_STEPS


def lease_seconds(settings: MailSettings) -> float:
    """How long a taken mail is this mailer's: a whole try and a margin."""
    return attempt_seconds(settings) + LEASE_MARGIN_SECONDS


async def smtp_send(settings: MailSettings, context: ssl.SSLContext | None, password: str | None,
                    recipients: Sequence[str], message: EmailMessage) -> SmtpAnswer:
    """Send ``message`` to ``recipients`` (ASCII addresses) through ``[mail]``'s server; ``SendFailed`` in words.

    The server's answer to the mail's data is what counts: a failing ``QUIT`` afterwards changes nothing (the mail
    was taken), so it is never a reason to send it again."""
    assert settings.host is not None and settings.from_address is not None
    smtp = aiosmtplib.SMTP(
        hostname=settings.host, port=settings.effective_port, use_tls=settings.security == "tls",
        start_tls=settings.security == "starttls", tls_context=context, timeout=settings.timeout,
        local_hostname=settings.helo_name, username=settings.username, password=password)
    data = message.as_bytes(policy=POLICY)
    try:
        async with asyncio.timeout(attempt_seconds(settings)):
            await smtp.connect()
            refused, text = await smtp.sendmail(ascii_address(settings.from_address), list(recipients), data)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        smtp.close()
        code = exc.code if isinstance(exc, aiosmtplib.SMTPResponseException) else None
        raise SendFailed(describe(exc, settings), code) from exc
    try:
        async with asyncio.timeout(settings.timeout):
            await smtp.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        log.debug("mail: QUIT after the mail was taken failed (%s); the mail counts as sent", exc)
    finally:
        smtp.close()
    # aiosmtplib raises on any answer to the data but 250, and gives that answer's text.
    return SmtpAnswer(250, " ".join(text.split()), {address: f"{r.code} {r.message}" for address, r in refused.items()})


def describe(exc: BaseException, settings: MailSettings) -> str:
    """A failed try in words, for the outbox's ``last_error``, the log and ``cti mail test``."""
    where = f"{settings.host}:{settings.effective_port}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        each = "; ".join(f"{r.recipient}: {_answer(r.code, r.message)}" for r in exc.recipients)
        return f"{where}: every recipient was refused ({each})"
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return f"{where}: the login of {settings.username!r} was refused ({_answer(exc.code, exc.message)})"
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return f"{where}: the sender {exc.sender} was refused ({_answer(exc.code, exc.message)})"
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return f"{where}: the message was refused ({_answer(exc.code, exc.message)})"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{where}: the server refused ({_answer(exc.code, exc.message)})"
    cert = _cause(exc, ssl.SSLCertVerificationError)
    if cert is not None:
        return (f"{where}: the server's TLS certificate is not trusted ({cert.verify_message}); a private CA goes "
                "in [mail] ca_file")
    tls = _cause(exc, ssl.SSLError)
    if tls is not None:
        return f"{where}: TLS failed ({tls.reason or tls})"
    if isinstance(exc, TimeoutError):  # aiosmtplib's timeouts are TimeoutErrors too
        return f"{where}: no answer within {settings.timeout:g} s"
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return f"{where}: the server closed the connection ({exc})"
    unknown = _cause(exc, socket.gaierror)
    if unknown is not None:
        return f"{where}: cannot find the host ({unknown.strerror}: check [mail] host)"
    refused = _cause(exc, ConnectionRefusedError)
    if refused is not None:
        return f"{where}: cannot connect (connection refused: is the server up, the port right?)"
    if isinstance(exc, aiosmtplib.SMTPNotSupported) or "STARTTLS" in str(exc):
        return f"{where}: {exc} (the server offers no STARTTLS: check [mail] security and port)"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{where}: cannot connect ({exc.strerror})"
    return f"{where}: {exc}"


def _answer(code: int, message: str) -> str:
    kind = "permanent" if 500 <= code < 600 else "temporary" if 400 <= code < 500 else "unexpected"
    return f"{code} {' '.join(message.split())}, {kind}"


def _cause(exc: BaseException, kind: type[E]) -> E | None:
    """``exc`` or the first of its causes (``raise … from``, or raised while handling) that is a ``kind``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


# -- the task ------------------------------------------------------------------------------------------------------


class Mailer:
    """Sends the outbox (module docstring). ``store`` is the daemon's (None while it is not open); ``wake`` the event
    a change that queued a mail sets; ``tz`` the zone of the ``Date:`` headers; ``on_result`` hears of every try."""

    def __init__(self, settings: MailSettings, store: Callable[[], Store | None], *,
                 wake: asyncio.Event | None = None, clock: Callable[[], float] = time.time,
                 tz: tzinfo | None = None, on_result: Callable[[MailResult], None] | None = None) -> None:
        if not settings.enabled:
            raise ValueError("[mail] host is not set: no mailer")
        self.settings = settings
        self.store = store
        self.clock = clock
        self.tz = tz
        self.on_result = on_result
        self.password = settings.resolved_password()  # ConfigError when its environment variable is missing
        self.tls = tls_context(settings)
        #: Set by whoever queues a mail on this node; the mailer then looks at once instead of at the next poll.
        self.wakeup = wake if wake is not None else asyncio.Event()
        #: Set to stop: the mail in hand is finished and marked first (:meth:`stop`).
        self.stopping = asyncio.Event()
        #: Tries since start, by outcome (the tests, a health page).
        self.counts: dict[Outcome, int] = {"sent": 0, "retry": 0, "given_up": 0}
        #: Times the outbox was looked at (the tests wait for the first: the mailer is idle then).
        self.looks = 0

    def wake(self) -> None:
        """Look at the outbox now (a mail was queued)."""
        self.wakeup.set()

    def stop(self) -> None:
        """Finish the mail in hand, then let :meth:`run` return."""
        self.stopping.set()

    async def run(self) -> None:
        """Send due mails until :meth:`stop` (or cancelled); a failing store is waited for, never the daemon's end."""
        log.info("mail: sending the outbox through %s as %s", self.settings.server, self.settings.from_address)
        delay = STORE_RETRY_FIRST
        while not self.stopping.is_set():
            self.wakeup.clear()  # before looking: a mail queued from now on wakes the wait below
            store = self.store()
            try:
                result = None if store is None else await self.deliver_next(store)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store failed: the mailer waits, the daemon goes on
                log.warning("mail: the outbox cannot be read or written (%s); trying again in %.0f s", exc, delay)
                await self._idle(delay)
                delay = min(delay * 2, STORE_RETRY_MAX)
                continue
            delay = STORE_RETRY_FIRST
            if result is None:
                await self._idle(self.settings.poll_seconds)

    async def _idle(self, seconds: float) -> None:
        """Wait for a wake-up, for :attr:`stopping`, or ``seconds``."""
        waits = [asyncio.ensure_future(self.wakeup.wait()), asyncio.ensure_future(self.stopping.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def deliver_next(self, store: Store) -> MailResult | None:
        """Take the oldest due mail with a lease and try it; None when none is due."""
        mail = await store.take_mail(now=self.clock(), lease_seconds=lease_seconds(self.settings))
        self.looks += 1
        if mail is None:
            return None
        return await self.deliver(store, mail)

    async def deliver(self, store: Store, mail: OutgoingMail) -> MailResult:
        """Try ``mail`` (taken already) and store what came of it."""
        try:
            message = build_message(mail, self.settings, tz=self.tz)
            recipients = [ascii_address(a) for a in mail.to]
        except MailRefused as exc:
            error = f"refused, not sent: {exc}"
            await store.mail_failed(mail.id, error, at=self.clock(), next_try_at=None)
            log.warning("mail %d%s: given up: %s", mail.id, _about(mail), error)
            return self._tell(MailResult(mail, "given_up", error))
        try:
            answer = await smtp_send(self.settings, self.tls, self.password, recipients, message)
        except SendFailed as exc:
            return await self._failed(store, mail, str(exc))
        except Exception as exc:  # a fault of ours or the library's: counted as a failed try, never the task's end
            log.exception("mail %d%s: the try failed unexpectedly", mail.id, _about(mail))
            return await self._failed(store, mail, f"{type(exc).__name__}: {exc}")
        await store.mail_sent(mail.id, at=self.clock())
        if answer.refused:
            log.warning("mail %d%s: sent, but refused for %s", mail.id, _about(mail),
                        "; ".join(f"{a} ({why})" for a, why in answer.refused.items()))
        else:
            log.info("mail %d%s: sent (%d %s)", mail.id, _about(mail), answer.code, answer.message)
        return self._tell(MailResult(mail, "sent", answer=answer))

    async def _failed(self, store: Store, mail: OutgoingMail, error: str) -> MailResult:
        now = self.clock()
        next_try = retry_at(mail, now, self.settings)
        await store.mail_failed(mail.id, error, at=now, next_try_at=next_try)
        if next_try is None:
            log.warning("mail %d%s: given up after %d tries (%.0f h): %s", mail.id, _about(mail), mail.attempts + 1,
                        self.settings.give_up_hours, error)
            return self._tell(MailResult(mail, "given_up", error))
        log.info("mail %d%s: try %d failed (%s); next in %.3g s", mail.id, _about(mail), mail.attempts + 1, error,
                 next_try - now)
        return self._tell(MailResult(mail, "retry", error, next_try))

    def _tell(self, result: MailResult) -> MailResult:
        self.counts[result.outcome] += 1
        if self.on_result is not None:
            self.on_result(result)
        return result


def _about(mail: OutgoingMail) -> str:
    return f" ({mail.about})" if mail.about else ""


# -- cti mail test -------------------------------------------------------------------------------------------------


async def send_test(settings: MailSettings, address: str, *, now: float, tz: tzinfo | None = None) -> SmtpAnswer:
    """Send a test message to ``address`` now, not through the outbox (``cti mail test``): the server's answer, or
    ``SendFailed`` / ``MailRefused`` / ``ConfigError`` in words."""
    if not settings.enabled or settings.from_address is None:
        raise MailRefused("[mail] host is not set")
    password = settings.resolved_password()
    stamp = datetime.fromtimestamp(now, tz or UTC).strftime("%Y-%m-%d %H:%M:%S %z")
    mail = OutgoingMail(
        id=0, to=(address,), created_at=now, subject="CTI Companion: проверка почты (mail test)",
        body=(f"Это проверочное письмо CTI Companion, отправлено {stamp} через {settings.server}.\n"
              "Если вы его читаете, уведомления о жалобах дойдут.\n\n"
              f"This is a test message from CTI Companion, sent {stamp} through {settings.server}.\n"
              "If you can read it, the complaints' notifications will arrive.\n"))
    sender = ascii_address(settings.from_address)
    message = build_message(mail, settings, tz=tz, msgid=make_msgid("cti-test", domain=sender.split("@")[1]))
    return await smtp_send(settings, tls_context(settings), password, [ascii_address(address)], message)

